package ceremony

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"filippo.io/age/plugin"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/run"
)

// ShareSource is where a custodian's share is read from for a quorum operation: a share file
// (plain, or .share.age encrypted to the custodian's age recipient), or their own token.
type ShareSource struct {
	File  string
	Token string // the label of the custodian's token
}

func (s ShareSource) String() string {
	if s.Token != "" {
		return "token:" + s.Token
	}
	return s.File
}

// Encrypted says the source is an age file.
func (s ShareSource) Encrypted() bool { return strings.HasSuffix(s.File, ".age") }

// ParseShareSources reads a comma-separated list of share sources: file paths, and
// token:LABEL for a share on a custodian's token.
func ParseShareSources(list string) ([]ShareSource, error) {
	var out []ShareSource
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			continue
		case strings.HasPrefix(item, "token:"):
			label := strings.TrimPrefix(item, "token:")
			if label == "" {
				return nil, fmt.Errorf("%q names no token: use token:LABEL", item)
			}
			out = append(out, ShareSource{Token: label})
		default:
			out = append(out, ShareSource{File: item})
		}
	}
	return out, nil
}

// ShareKeys open the shares that are not in clear: the age identities of .share.age files, and
// the custodian's PIN of a token (PIN returns it; the caller of PIN zeroes it).
type ShareKeys struct {
	Identities []age.Identity
	PIN        func(ctx context.Context, token string) ([]byte, error)
}

// maxEncryptedShare bounds a .share.age file: an armored share file is under 2 KiB.
const maxEncryptedShare = 64 << 10

// ReadShare reads one share from src, for the quorum v states. A custodian's token is
// reached only through the module the quorum statement names, hashed first and refused if it
// is another file, before the custodian's PIN is asked for; on the token, the share of v's
// root and epoch is read. The caller zeroes the share.
func (v *VerifiedQuorum) ReadShare(ctx context.Context, env run.Env, src ShareSource, keys ShareKeys) ([]byte, error) {
	switch {
	case src.Token != "":
		if keys.PIN == nil {
			return nil, fmt.Errorf("token:%s: nobody can be asked for the token's PIN here", src.Token)
		}
		path, err := env.ModulePath(ctx, v.Statement.Module.Path)
		if err != nil {
			return nil, err
		}
		mod, _, err := openModule(ctx, env, path, v.Statement.Module.SHA256)
		if err != nil {
			return nil, err
		}
		defer mod.Close()
		pin, err := keys.PIN(ctx, src.Token)
		if err != nil {
			return nil, fmt.Errorf("token:%s: %w", src.Token, err)
		}
		defer secret.Zero(pin)
		sess, done, err := loginCustodian(ctx, mod, src.Token, pin)
		if err != nil {
			return nil, err
		}
		defer done()
		b, err := readShare(ctx, sess, v.Statement.Root, v.Statement.Epoch, 0)
		if err != nil {
			return nil, fmt.Errorf("token:%s: %w", src.Token, err)
		}
		return b, nil
	case src.Encrypted():
		ct, err := inputfile.Read(ctx, "encrypted share file", src.File, maxEncryptedShare)
		if err != nil {
			return nil, err
		}
		b, err := decryptShare(ct, keys.Identities)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.File, err)
		}
		return b, nil
	default:
		b, err := secret.ReadShareFile(src.File)
		if err != nil {
			return nil, err
		}
		defer secret.Zero(b)
		return []byte(StripShareComments(string(b))), nil
	}
}

// decryptShare decrypts an age share file (armored or binary) with the identities and drops
// its comment lines. The caller zeroes the result.
func decryptShare(ct []byte, ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, run.NewFieldError("Identities", "the share is encrypted: give the custodian's age identity file")
	}
	var in io.Reader = bytes.NewReader(ct)
	if bytes.HasPrefix(bytes.TrimSpace(ct), []byte(armor.Header)) {
		in = armor.NewReader(bytes.NewReader(ct))
	}
	r, err := age.Decrypt(in, ids...)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxEncryptedShare+1))
	defer secret.Zero(b)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if len(b) > maxEncryptedShare {
		return nil, fmt.Errorf("it decrypts to more than %d bytes: it is not a share file", maxEncryptedShare)
	}
	return []byte(StripShareComments(string(b))), nil
}

// ParseIdentityFile reads age identities from an identity file, one a line ("#" lines and
// blank lines ignored): X25519 (AGE-SECRET-KEY-1...), hybrid (AGE-SECRET-KEY-PQ-1...) and plugin
// identities (AGE-PLUGIN-NAME-1..., such as a YubiKey's, whose plugin is run to decrypt and
// speaks to the custodian through ui). The file must be readable by its owner alone.
func ParseIdentityFile(path string, ui *plugin.ClientUI) ([]age.Identity, error) {
	b, err := secret.ReadIdentityFile(path)
	if err != nil {
		return nil, err
	}
	defer secret.Zero(b)
	var ids []age.Identity
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "AGE-PLUGIN-") {
			if ui == nil {
				ui = &plugin.ClientUI{}
			}
			id, err := plugin.NewIdentity(line, ui)
			if err != nil {
				return nil, fmt.Errorf("identity file %s, line %d: %w", path, n, err)
			}
			ids = append(ids, id)
			continue
		}
		parsed, err := age.ParseIdentities(strings.NewReader(line))
		if err != nil {
			// The line is not echoed: it may be a private key.
			return nil, fmt.Errorf("identity file %s, line %d: not an age identity", path, n)
		}
		ids = append(ids, parsed...)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("identity file %s holds no age identity", path)
	}
	return ids, nil
}
