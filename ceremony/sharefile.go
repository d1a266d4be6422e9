package ceremony

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/workspace"
)

// ShareFileName is the name of custodian's share file number n: "<n>-<custodian>.share",
// keeping letters and digits of any script, so "Zoë Ångström" stays readable.
func ShareFileName(n int, custodian string) string {
	safe := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, custodian)
	return fmt.Sprintf("%d-%s.share", n, safe)
}

// WriteShareFile writes d's share into dir as ShareFileName, readable by its owner only
// (0600) and never over an existing file, after comment lines saying whose it is. It is the
// destination a custodian chooses when the share goes onto their own medium. It returns the
// file's path.
func WriteShareFile(dir string, d ShareDelivery) (string, error) {
	path := filepath.Join(dir, ShareFileName(d.Number, d.Custodian))
	text := []byte(fmt.Sprintf("# Share %d of %d of root ceremony %s for %s. %d shares are needed.\n# Keep it offline; never copy it onto a networked computer.\n%s\n",
		d.Number, d.Of, d.CeremonyID, d.Custodian, d.Threshold, d.Text))
	defer secret.Zero(text)
	if err := workspace.CreateExclusive(path, text, 0o600); err != nil {
		return "", fmt.Errorf("write share file: %w", err)
	}
	return path, nil
}

// ReadShareFile reads a share file (secret.ReadShareFile: a regular file only its owner can
// read, a few hundred bytes) and returns the share without its comment lines.
func ReadShareFile(path string) (string, error) {
	b, err := secret.ReadShareFile(path)
	if err != nil {
		return "", err
	}
	defer secret.Zero(b)
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n"), nil
}
