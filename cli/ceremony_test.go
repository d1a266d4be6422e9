package cli

import (
	"bytes"
	"compress/zlib"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/shamir"

	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/quorum"
)

const cliPlan = `id: acme-root-2026
module: MODULE
operations_token: acme-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen, Zoë Ångström]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: Acme Medical Root CA 2026, organization: Acme Medical, country: US, validity_years: 20}
backup: true
`

// ceremonyBench is a workspace with a plan, a PIN file and a shares folder.
type ceremonyBench struct {
	dir, ws, plan, pin, shares string
	out                        bytes.Buffer // everything the commands printed
}

func newCeremonyBench(t *testing.T) *ceremonyBench {
	t.Helper()
	env := testhsm.New(t)
	b := &ceremonyBench{dir: t.TempDir()}
	b.ws = filepath.Join(b.dir, "ws")
	b.plan = filepath.Join(b.dir, "plan.yaml")
	b.pin = filepath.Join(b.dir, "ops.pin")
	b.shares = filepath.Join(b.dir, "shares")
	os.WriteFile(b.plan, []byte(strings.Replace(cliPlan, "MODULE", env.ModulePath, 1)), 0o644)
	os.WriteFile(b.pin, []byte("ops-pin-1234\n"), 0o600)
	os.Mkdir(b.shares, 0o700)
	return b
}

// run runs a command, keeping what it printed, and fails the test unless it exits with want.
func (b *ceremonyBench) run(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errs := run(t, append(args, "--workspace", b.ws)...)
	b.out.WriteString(out + errs)
	if code != want {
		t.Fatalf("custos %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out + errs
}

func (b *ceremonyBench) share(n int, name string) string {
	return filepath.Join(b.shares, fmt.Sprintf("%d-%s.share", n, name))
}

func TestCeremonyCommands(t *testing.T) {
	b := newCeremonyBench(t)
	out := b.run(t, ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	for _, want := range []string{"root acme-root-2026", "sha256", "words", "record signer", "backup", "journal"} {
		if !strings.Contains(out, want) {
			t.Errorf("root summary lacks %q:\n%s", want, out)
		}
	}
	for i, name := range []string{"Cara-Cruz", "Cody-Chen", "Zoë-Ångström"} {
		info, err := os.Stat(b.share(i+1, name))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("share file %d: %v %v", i+1, info, err)
		}
	}
	// A second run never overwrites a share file.
	b.run(t, ExitFail, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)

	two := b.share(1, "Cara-Cruz") + "," + b.share(3, "Zoë-Ångström")
	out = b.run(t, ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "Acme Devices CA 1", "--ops-pin-file", b.pin)
	id := regexp.MustCompile(`issuing CA (ica-[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("issue-ca printed no id:\n%s", out)
	}
	pemPath := filepath.Join(b.ws, "certs", id[1]+".pem")
	if o, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(b.ws, "certs", "acme-root-2026-root.pem"), pemPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, o)
	}

	// Wrong usage is exit 2; one share, or a mistyped share, is exit 1 naming the problem.
	b.run(t, ExitUsage, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin)
	b.run(t, ExitUsage, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", "/nonexistent.share", "--name", "X", "--ops-pin-file", b.pin)
	if out := b.run(t, ExitFail, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", b.share(1, "Cara-Cruz"), "--name", "X", "--ops-pin-file", b.pin); !strings.Contains(out, "1 of 3 shares present") {
		t.Errorf("one share: %s", out)
	}
	typo := filepath.Join(b.dir, "typo.share")
	text, _ := os.ReadFile(b.share(2, "Cody-Chen"))
	lines := strings.Split(string(text), "\n")
	groups := []byte(lines[3])
	groups[7] ^= 1 // a mistyped character in group 2
	lines[3] = string(groups)
	os.WriteFile(typo, []byte(strings.Join(lines, "\n")), 0o600)
	if out := b.run(t, ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", b.share(1, "Cara-Cruz")+","+typo); !strings.Contains(out, "group 2 of") {
		t.Errorf("typo: %s", out)
	}

	out = b.run(t, ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two, "--next-update-days", "30")
	if !strings.Contains(out, "root CRL 1") {
		t.Errorf("crl: %s", out)
	}
	newShares := filepath.Join(b.dir, "new")
	os.Mkdir(newShares, 0o700)
	b.run(t, ExitOK, "ceremony", "reshare", "--root", "acme-root-2026", "--shares", two, "--custodians", "Ann Ames, 李雷, Bo Bo", "--threshold", "2", "--shares-dir", newShares, "--ops-pin-file", b.pin)
	newTwo := filepath.Join(newShares, "1-Ann-Ames.share") + "," + filepath.Join(newShares, "2-李雷.share")
	b.run(t, ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	b.run(t, ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", newTwo,
		"--backup", filepath.Join(b.ws, "backup", "acme-root-2026-epoch2.wrapped"), "--token", "acme-root-b", "--ops-pin-file", b.pin)
	b.run(t, ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)

	// Every record verifies, with the workspace's root and with the root file given.
	records, _ := filepath.Glob(filepath.Join(b.ws, "records", "*.pdf"))
	if len(records) != 4 { // root, issue-ca, reshare, restore
		t.Errorf("%d records: %v", len(records), records)
	}
	rootPEM := filepath.Join(b.ws, "certs", "acme-root-2026-root.pem")
	for _, r := range records {
		out := b.run(t, ExitOK, "verify", r)
		if strings.Count(out, "PASS") != 7 {
			t.Errorf("verify %s:\n%s", r, out)
		}
		b.run(t, ExitOK, "verify", r, "--root", rootPEM)
		if o, _ := exec.Command("pdfsig", r).CombinedOutput(); !strings.Contains(string(o), "Signature is Valid.") {
			t.Errorf("pdfsig %s:\n%s", r, o)
		}
	}
	tampered := filepath.Join(b.dir, "tampered.pdf")
	data, _ := os.ReadFile(records[0])
	data[len(data)/2] ^= 1
	os.WriteFile(tampered, data, 0o644)
	if out := b.run(t, ExitFail, "verify", tampered); !strings.Contains(out, "FAIL  signature is valid") {
		t.Errorf("tampered record:\n%s", out)
	}
	journals, _ := filepath.Glob(filepath.Join(b.ws, "journal", "*.jsonl"))
	b.run(t, ExitOK, "verify", journals[0])
	b.run(t, ExitUsage, "verify", filepath.Join(b.dir, "missing.pdf"))

	checkNoSecretsLeaked(t, b, []string{b.shares, newShares})

	b.run(t, ExitOK, "ceremony", "destroy", "--root", "acme-root-2026", "--shares", newTwo)
	b.run(t, ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)
}

// checkNoSecretsLeaked reconstructs every quorum secret from the share files, derives the
// PINs and KEKs as DESIGN.md says, and searches every workspace file (PDF streams inflated)
// and everything the commands printed for them and for every share, raw and encoded.
func checkNoSecretsLeaked(t *testing.T, b *ceremonyBench, shareDirs []string) {
	t.Helper()
	var needles [][]byte
	add := func(secret []byte) {
		needles = append(needles, secret, []byte(hex.EncodeToString(secret)), []byte(strings.ToUpper(hex.EncodeToString(secret))),
			[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret)))
	}
	for _, dir := range shareDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.share"))
		var parts [][]byte
		for _, f := range files {
			text, _ := os.ReadFile(f)
			sh, err := quorum.ParseShare(stripComments(string(text)))
			if err != nil {
				t.Fatal(err)
			}
			add(sh.Bytes)
			for _, g := range sh.Groups() {
				needles = append(needles, []byte(g))
			}
			parts = append(parts, sh.Bytes)
		}
		s, err := shamir.Combine(parts)
		if err != nil {
			t.Fatal(err)
		}
		add(s)
		for label, n := range map[string]int{"custos/v1/root-token/so-pin": 16, "custos/v1/root-token/user-pin": 16,
			"custos/v1/operations-token/so-pin": 16, "custos/v1/backup-kek": 32} {
			k, _ := hkdf.Key(sha256.New, s, []byte("acme-root-2026"), label, n)
			add(k)
		}
	}
	add([]byte("ops-pin-1234"))
	haystacks := map[string][]byte{"command output": b.out.Bytes()}
	filepath.WalkDir(b.ws, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			haystacks[p] = append(data, inflatePDFStreams(data)...)
		}
		return nil
	})
	for where, hay := range haystacks {
		for _, n := range needles {
			if len(n) >= 5 && bytes.Contains(hay, n) {
				t.Errorf("%s contains a secret (%q…)", where, n[:5])
			}
		}
	}
	t.Logf("searched %d files and the output for %d secret forms", len(haystacks)-1, len(needles))
}

// inflatePDFStreams returns the inflated content of every Flate stream in a PDF, so a secret
// inside a compressed page or attachment is found too.
func inflatePDFStreams(data []byte) []byte {
	var out []byte
	for rest := data; ; {
		i := bytes.Index(rest, []byte("stream"))
		if i < 0 {
			return out
		}
		rest = rest[i+len("stream"):]
		rest = bytes.TrimLeft(rest, "\r\n")
		if r, err := zlib.NewReader(bytes.NewReader(rest)); err == nil {
			b, _ := io.ReadAll(r)
			out = append(out, b...)
		}
	}
}
