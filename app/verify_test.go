package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/workspace"
)

func TestVerifyAnyFileAgainstAChosenRoot(t *testing.T) {
	s, _, _ := world(t, false)
	recs, _ := filepath.Glob(s.ws.Path(workspace.RecordsDir, "*.pdf"))
	journals, _ := filepath.Glob(s.ws.Path(workspace.JournalDir, "*.jsonl"))
	if len(recs) == 0 || len(journals) == 0 {
		t.Fatalf("records %v, journals %v", recs, journals)
	}
	dir := t.TempDir()
	data, _ := os.ReadFile(recs[0])
	data[len(data)/2] ^= 1
	tampered := filepath.Join(dir, "tampered.pdf")
	os.WriteFile(tampered, data, 0o644)
	// A root that did not sign anything here, made by openssl.
	other := filepath.Join(dir, "other-root.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "k.pem"), "-out", other, "-subj", "/CN=Someone Else Root", "-days", "30").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	onUI(func() { s.show("verify") })
	eventually(t, "the workspace's root", func() bool {
		return strings.HasSuffix(findAll[*widget.Select](s.body)[0].Selected, "-root.pem")
	})
	verify := func(file, root string) {
		onUI(func() {
			if root != "" {
				sel := findAll[*widget.Select](s.body)[0]
				sel.Options = append(sel.Options, root)
				sel.SetSelected(root)
			}
			entryWithPlaceholder(t, s, "a signed record").SetText(file)
			test.Tap(button(s.body, "Verify"))
		})
		eventually(t, "the verification of "+filepath.Base(file), func() bool { return !strings.Contains(texts(s.body), "Verifying ") })
	}
	for _, c := range []struct {
		name, file, root string
		want             []string
	}{
		{"record", recs[0], "", []string{"verifies: every check passed", "PASS  signature is valid"}},
		{"tampered", tampered, "", []string{"tampered.pdf does not verify", "FAIL  signature is valid"}},
		{"journal", journals[0], "", []string{"verifies: every check passed", "PASS"}},
		{"another root", recs[0], other, []string{"does not verify", "FAIL"}},
		{"missing file", filepath.Join(dir, "nothing.pdf"), "", []string{"nothing.pdf"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			verify(c.file, c.root)
			onUI(func() {
				txt := strings.SplitN(texts(s.body), "[Details]", 2)[0] + texts(s.body)
				for _, w := range c.want {
					if !strings.Contains(txt, w) {
						t.Errorf("the screen lacks %q:\n%s", w, txt)
					}
				}
				if strings.Contains(strings.SplitN(texts(s.body), "[Details]", 2)[0], "--") {
					t.Errorf("a flag is shown outside the details:\n%s", texts(s.body))
				}
			})
			if c.name == "tampered" {
				snapshot(t, s, "verify-tampered")
			}
		})
	}
}
