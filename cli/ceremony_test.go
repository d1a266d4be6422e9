package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/testhsm"
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
	code, out, errs := custos(t, append(args, "--workspace", b.ws)...)
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
	out := b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
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
	b.run(t, command.ExitFail, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)

	two := b.share(1, "Cara-Cruz") + "," + b.share(3, "Zoë-Ångström")
	out = b.run(t, command.ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "Acme Devices CA 1", "--ops-pin-file", b.pin)
	id := regexp.MustCompile(`issuing CA (ica-[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("issue-ca printed no id:\n%s", out)
	}
	pemPath := filepath.Join(b.ws, "certs", id[1]+".pem")
	if o, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(b.ws, "certs", "acme-root-2026-root.pem"), pemPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify: %v %s", err, o)
	}

	// Wrong usage is exit 2; one share, or a mistyped share, is exit 1 naming the problem.
	b.run(t, command.ExitUsage, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin)
	b.run(t, command.ExitUsage, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", "/nonexistent.share", "--name", "X", "--ops-pin-file", b.pin)
	if out := b.run(t, command.ExitFail, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", b.share(1, "Cara-Cruz"), "--name", "X", "--ops-pin-file", b.pin); !strings.Contains(out, "1 of 3 shares present") {
		t.Errorf("one share: %s", out)
	}
	typo := filepath.Join(b.dir, "typo.share")
	text, _ := os.ReadFile(b.share(2, "Cody-Chen"))
	lines := strings.Split(string(text), "\n")
	groups := []byte(lines[3])
	groups[7] ^= 1 // a mistyped character in group 2
	lines[3] = string(groups)
	os.WriteFile(typo, []byte(strings.Join(lines, "\n")), 0o600)
	if out := b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", b.share(1, "Cara-Cruz")+","+typo); !strings.Contains(out, "group 2 of") {
		t.Errorf("typo: %s", out)
	}

	out = b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two, "--next-update-days", "30")
	if !strings.Contains(out, "root CRL 1") {
		t.Errorf("crl: %s", out)
	}
	newShares := filepath.Join(b.dir, "new")
	os.Mkdir(newShares, 0o700)
	b.run(t, command.ExitOK, "ceremony", "reshare", "--root", "acme-root-2026", "--shares", two, "--custodians", "Ann Ames, 李雷, Bo Bo", "--threshold", "2", "--shares-dir", newShares, "--ops-pin-file", b.pin)
	newTwo := filepath.Join(newShares, "1-Ann-Ames.share") + "," + filepath.Join(newShares, "2-李雷.share")
	b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	b.run(t, command.ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", newTwo,
		"--backup", filepath.Join(b.ws, "backup", "acme-root-2026-epoch2.wrapped"), "--token", "acme-root-b", "--ops-pin-file", b.pin)
	b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)

	// Every record verifies, with the workspace's root and with the root file given.
	records, _ := filepath.Glob(filepath.Join(b.ws, "records", "*.pdf"))
	if len(records) != 4 { // root, issue-ca, reshare, restore
		t.Errorf("%d records: %v", len(records), records)
	}
	rootPEM := filepath.Join(b.ws, "certs", "acme-root-2026-root.pem")
	for _, r := range records {
		out := b.run(t, command.ExitOK, "verify", r)
		if strings.Count(out, "PASS") < 11 || strings.Contains(out, "FAIL") {
			t.Errorf("verify %s:\n%s", r, out)
		}
		b.run(t, command.ExitOK, "verify", r, "--root", rootPEM)
		if o, _ := exec.Command("pdfsig", r).CombinedOutput(); !strings.Contains(string(o), "Signature is Valid.") {
			t.Errorf("pdfsig %s:\n%s", r, o)
		}
	}
	journals, _ := filepath.Glob(filepath.Join(b.ws, "journal", "*.jsonl"))
	b.run(t, command.ExitOK, "verify", journals[0])

	checkNoSecretsLeaked(t, b, []string{b.shares, newShares})

	b.run(t, command.ExitOK, "ceremony", "destroy", "--root", "acme-root-2026", "--shares", newTwo, "--ops-pin-file", b.pin)
	b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)
}

// checkNoSecretsLeaked searches every workspace file and everything the commands printed for
// the quorum secrets of the shares in shareDirs, their derived PINs and KEKs, every share, and
// the operator PIN (see findSecrets).
func checkNoSecretsLeaked(t *testing.T, b *ceremonyBench, shareDirs []string) {
	t.Helper()
	found, searched, err := findSecrets(shareDirs, [][]byte{[]byte("ops-pin-1234")}, b.ws, b.out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
	t.Logf("searched %s", searched)
}

// A quorum command prints what the custodians compare with their record before it reads a
// share; a module changed by one byte is refused naming both hashes, until set-module.
func TestSetModuleCommand(t *testing.T) {
	b := newCeremonyBench(t)
	module := testhsm.CopyModule(t)
	plan, _ := os.ReadFile(b.plan)
	os.WriteFile(b.plan, []byte(regexp.MustCompile(`(?m)^module: .*$`).ReplaceAllString(string(plan), "module: "+module)), 0o644)
	b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(3, "Zoë-Ångström")
	out := b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	sum := func() string {
		o, err := exec.Command("sha256sum", module).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(o))[0]
	}
	accepted := sum()
	for _, want := range []string{"quorum statement 1", "root words", "module       " + module, "its sha256   " + accepted, "compare these with your ceremony record"} {
		if !strings.Contains(out, want) {
			t.Errorf("crl does not print %q:\n%s", want, out)
		}
	}
	testhsm.ChangeOneByte(t, module)
	changed := sum()
	out = b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	if !strings.Contains(out, changed) || !strings.Contains(out, accepted) || !strings.Contains(out, "custos ceremony set-module") {
		t.Errorf("a changed module:\n%s", out)
	}
	b.run(t, command.ExitUsage, "ceremony", "set-module", "--root", "acme-root-2026", "--shares", two)
	out = b.run(t, command.ExitOK, "ceremony", "set-module", "--root", "acme-root-2026", "--shares", two, "--module", module, "--ops-pin-file", b.pin)
	if !strings.Contains(out, "now load "+module) || !strings.Contains(out, "sha256      "+changed) || !strings.Contains(out, "its sha256  "+accepted) {
		t.Errorf("set-module:\n%s", out)
	}
	out = b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	if !strings.Contains(out, "quorum statement 2") || !strings.Contains(out, "its sha256   "+changed) {
		t.Errorf("crl after set-module:\n%s", out)
	}
	records, _ := filepath.Glob(filepath.Join(b.ws, "records", "*set-module*.pdf"))
	if len(records) != 1 {
		t.Fatalf("set-module records: %v", records)
	}
	if out := b.run(t, command.ExitOK, "verify", records[0]); !strings.Contains(out, "PASS") {
		t.Errorf("verify the set-module record:\n%s", out)
	}
}
