package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/cli/command"
)

// opensslOut runs openssl and returns what it printed, failing the test if it fails.
func opensslOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// certSerial is a certificate file's serial in upper-case hex, as openssl prints it.
func certSerial(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(strings.TrimPrefix(opensslOut(t, "x509", "-in", path, "-noout", "-serial"), "serial="))
}

// tokenBlock is what pkcs11-tool -L says about the token labelled label.
func tokenBlock(t *testing.T, module, label string) string {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", module, "-L").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool -L: %v\n%s", err, out)
	}
	for _, block := range strings.Split(string(out), "\nSlot ") {
		if strings.Contains(block, "token label        : "+label+"\n") {
			return block
		}
	}
	t.Fatalf("pkcs11-tool -L lists no token %q:\n%s", label, out)
	return ""
}

// issueCA runs ceremony issue-ca and returns the new issuing CA's id.
func (b *ceremonyBench) issueCA(t *testing.T, shares, name string) string {
	t.Helper()
	out := b.run(t, command.ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", shares, "--name", name, "--ops-pin-file", b.pin)
	id := regexp.MustCompile(`issuing CA (ica-[0-9a-f]+)`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("issue-ca printed no id:\n%s", out)
	}
	return id[1]
}

// Revocation binds: an operator command naming the root is refused before any login (the root
// token's PIN counter untouched); a revoked issuing CA signs nothing, a retired one only CRLs;
// a revoked record signer signs no record until ceremony record-signer makes a new one.
func TestRevocationBinds(t *testing.T) {
	b := newCeremonyBench(t)
	module := strings.Split(strings.Split(mustRead(t, b.plan), "module: ")[1], "\n")[0]
	b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
	devPIN := filepath.Join(b.dir, "dev.pin")
	os.WriteFile(devPIN, []byte("dev-pin-1234\n"), 0o600)
	provision := func(want int, issuer, serial string) string {
		return b.run(t, want, "device", "provision", "--issuer", issuer, "--serial", serial, "--model", "Pump",
			"--token", "dev-"+serial, "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	}

	// The root, named by id or by common name, is refused before any login.
	for _, root := range []string{"acme-root-2026", "Acme Medical Root CA 2026"} {
		for _, out := range []string{
			b.run(t, command.ExitFail, "crl", "publish", "--issuer", root, "--ops-pin-file", b.pin),
			provision(command.ExitFail, root, "SN-ROOT"),
		} {
			if !strings.Contains(out, "the root signs only under quorum: use custos ceremony crl") || !strings.Contains(out, "--issuer") {
				t.Errorf("an operator command naming the root:\n%s", out)
			}
		}
	}
	if block := tokenBlock(t, module, "acme-root-2026"); strings.Contains(block, "count low") || strings.Contains(block, "final try") {
		t.Errorf("the root token counted a wrong PIN:\n%s", block)
	}

	// A revoked issuing CA issues nothing and publishes no CRL; its devices cannot be
	// decommissioned through it.
	icaA := b.issueCA(t, two, "Acme Devices CA 1")
	provision(command.ExitOK, icaA, "SN-A1")
	serialA := certSerial(t, filepath.Join(b.ws, "certs", icaA+".pem"))
	out := b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two, "--revoke", serialA,
		"--reason", "keyCompromise", "--ops-pin-file", b.pin)
	if !strings.Contains(out, "revoked issuing CA "+icaA) {
		t.Errorf("crl --revoke:\n%s", out)
	}
	crls, _ := filepath.Glob(filepath.Join(b.ws, "crl", "acme-root-2026-*.pem"))
	if txt := opensslOut(t, "crl", "-in", crls[len(crls)-1], "-noout", "-text"); !strings.Contains(txt, "Serial Number: "+serialA) || !strings.Contains(txt, "Key Compromise") {
		t.Errorf("root CRL:\n%s", txt)
	}
	for _, out := range []string{
		provision(command.ExitFail, icaA, "SN-A2"),
		b.run(t, command.ExitFail, "crl", "publish", "--issuer", icaA, "--ops-pin-file", b.pin),
		b.run(t, command.ExitFail, "decommission", "--serial", "SN-A1", "--method", "unreachable", "--technician", "Tess Tech", "--validator", "Vic Validator",
			"--witness", "Wes Witness", "--ops-pin-file", b.pin),
	} {
		if !strings.Contains(out, "was revoked (keyCompromise)") || !strings.Contains(out, "signs nothing") {
			t.Errorf("the revoked issuing CA:\n%s", out)
		}
	}
	if _, err := os.Stat(filepath.Join(b.ws, "crl", icaA+"-000001.crl")); err == nil {
		t.Error("the revoked issuing CA signed a CRL")
	}

	// A retired issuing CA signs CRLs and nothing else.
	icaB := b.issueCA(t, two, "Acme Devices CA 2")
	provision(command.ExitOK, icaB, "SN-B1")
	provision(command.ExitOK, icaB, "SN-B0")
	b.run(t, command.ExitOK, "ceremony", "retire-ca", "--root", "acme-root-2026", "--shares", two, "--issuer", icaB, "--ops-pin-file", b.pin)
	if out := provision(command.ExitFail, icaB, "SN-B2"); !strings.Contains(out, "signs only CRLs") {
		t.Errorf("the retired issuing CA issued:\n%s", out)
	}
	b.run(t, command.ExitOK, "crl", "publish", "--issuer", icaB, "--ops-pin-file", b.pin)
	b.run(t, command.ExitOK, "decommission", "--serial", "SN-B1", "--method", "unreachable", "--technician", "Tess Tech", "--validator", "Vic Validator",
		"--witness", "Wes Witness", "--ops-pin-file", b.pin)

	// The record signer revoked: the run that revokes it signs no record, nor does any later one.
	nextSecond()
	signer1 := filepath.Join(b.ws, "certs", "acme-root-2026-record-signer.pem")
	out = b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two, "--revoke", certSerial(t, signer1),
		"--reason", "keyCompromise", "--ops-pin-file", b.pin)
	if !strings.Contains(out, "revoked record-signer") || !strings.Contains(out, "record      none (the run revoked the record signer") {
		t.Errorf("crl revoking the record signer:\n%s", out)
	}
	for _, out := range []string{
		b.run(t, command.ExitFail, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "X", "--ops-pin-file", b.pin),
		b.run(t, command.ExitFail, "decommission", "--serial", "SN-B0", "--method", "unreachable", "--technician", "Tess Tech", "--validator", "Vic Validator",
			"--witness", "Wes Witness", "--ops-pin-file", b.pin),
	} {
		if !strings.Contains(out, "record signer of acme-root-2026") || !strings.Contains(out, "was revoked (keyCompromise)") ||
			!strings.Contains(out, "custos ceremony record-signer") {
			t.Errorf("the revoked record signer:\n%s", out)
		}
	}

	// A new record signer signs from its own record on; replacing it again revokes it
	// (superseded) on the next root CRL, beside the first one (keyCompromise).
	out = b.run(t, command.ExitOK, "ceremony", "record-signer", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin)
	signer2 := regexp.MustCompile(`certificate (\S+record-signer-\S+\.pem)`).FindStringSubmatch(out)
	if signer2 == nil {
		t.Fatalf("record-signer:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^record signer of acme-root-2026: .+\n  certificate \S+\n  serial      [0-9A-F]+\n  sha256      \S+\n  replaces    serial \S+, revoked on root CRL \d+; its key destroyed$`).MatchString(out) {
		t.Errorf("record-signer does not say what it made, line by line:\n%s", out)
	}
	b.issueCA(t, two, "Acme Devices CA 3")
	nextSecond() // the issue-ca record is signed by the signer this revokes
	out = b.run(t, command.ExitOK, "ceremony", "record-signer", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin)
	crls, _ = filepath.Glob(filepath.Join(b.ws, "crl", "acme-root-2026-*.pem"))
	txt := opensslOut(t, "crl", "-in", crls[len(crls)-1], "-noout", "-text")
	for _, want := range []string{"Serial Number: " + certSerial(t, signer1), "Serial Number: " + certSerial(t, signer2[1]), "Key Compromise", "Superseded"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the last root CRL lacks %q:\n%s", want, txt)
		}
	}
	// Every record verifies; the newest is signed by the newest signer.
	records, _ := filepath.Glob(filepath.Join(b.ws, "records", "*.pdf"))
	for _, r := range records {
		b.run(t, command.ExitOK, "verify", r)
	}
	newest := regexp.MustCompile(`record\s+(\S+\.pdf)`).FindStringSubmatch(out)
	signer3 := regexp.MustCompile(`certificate (\S+record-signer-\S+\.pem)`).FindStringSubmatch(out)
	if newest == nil || signer3 == nil {
		t.Fatalf("record-signer:\n%s", out)
	}
	if got, want := recordSignerSerial(t, newest[1]), certSerial(t, signer3[1]); got != want {
		t.Errorf("the newest record is signed by serial %s, not the newest record signer's %s", got, want)
	}
}

// recordSignerSerial is the serial of the certificate that signed a PDF record, as pdfsig
// dumps its signature and openssl reads it.
func recordSignerSerial(t *testing.T, pdf string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("pdfsig", "-dump", pdf)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdfsig -dump: %v\n%s", err, out)
	}
	sigs, _ := filepath.Glob(filepath.Join(dir, "*.sig0"))
	if len(sigs) != 1 {
		t.Fatalf("pdfsig dumped %v", sigs)
	}
	opensslOut(t, "pkcs7", "-inform", "DER", "-in", sigs[0], "-print_certs", "-out", filepath.Join(dir, "certs.pem"))
	// The signer is the first certificate that is not a CA: the record signer.
	pem := mustRead(t, filepath.Join(dir, "certs.pem"))
	for _, block := range strings.SplitAfter(pem, "-----END CERTIFICATE-----") {
		if !strings.Contains(block, "BEGIN CERTIFICATE") {
			continue
		}
		f := filepath.Join(dir, "one.pem")
		os.WriteFile(f, []byte(block[strings.Index(block, "-----BEGIN"):]), 0o600)
		if txt := opensslOut(t, "x509", "-in", f, "-noout", "-text"); !strings.Contains(txt, "CA:TRUE") {
			return certSerial(t, f)
		}
	}
	t.Fatalf("no signer certificate in the signature of %s", pdf)
	return ""
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deleteToken removes the files of the SoftHSM2 token labelled label, as a lost or destroyed
// token: the module no longer lists it.
func deleteToken(t *testing.T, label string) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	objs, _ := filepath.Glob(filepath.Join(dir, "*", "token.object"))
	for _, o := range objs {
		b, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), label+strings.Repeat(" ", 32-len(label))) {
			if err := os.RemoveAll(filepath.Dir(o)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no SoftHSM2 token labelled %q in %s", label, dir)
}

// backupFiles lists the names in the workspace's backup folder.
func backupFiles(t *testing.T, ws string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(ws, "backup"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A reshare changes the PINs of the original and of a restored token alike, destroys the
// superseded blob and says what old shares still open; a restore works with every token that
// held the root deleted, refuses a blob of another epoch, and issue-ca runs from it; a holder
// that cannot be reached stops a reshare before any change unless it is recorded lost.
func TestReshareAndRestoreEveryHolder(t *testing.T) {
	b := newCeremonyBench(t)
	b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
	epoch1 := filepath.Join(b.ws, "backup", "acme-root-2026-epoch1.wrapped")
	if info, err := os.Stat(epoch1); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, %v", info, err)
	}
	outside := filepath.Join(b.dir, "usb-epoch1.wrapped") // a copy nobody accounted for
	blob, _ := os.ReadFile(epoch1)
	os.WriteFile(outside, blob, 0o600)
	usb := filepath.Join(b.dir, "usb")
	os.Mkdir(usb, 0o700)
	out := b.run(t, command.ExitOK, "backup", "copy", "--root", "acme-root-2026", "--to", usb, "--by", "Ada Admin", "--media", "USB-7")
	if !strings.Contains(out, "backup copy 1 of acme-root-2026: epoch 1") {
		t.Errorf("backup copy:\n%s", out)
	}
	if info, err := os.Stat(filepath.Join(usb, "acme-root-2026-epoch1.wrapped")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, %v", info, err)
	}
	b.run(t, command.ExitFail, "backup", "copy", "--root", "acme-root-2026", "--to", usb, "--by", "Ada Admin") // never over a file
	b.run(t, command.ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", two, "--backup", epoch1,
		"--token", "acme-root-b", "--ops-pin-file", b.pin)

	newShares := filepath.Join(b.dir, "new")
	os.Mkdir(newShares, 0o700)
	out = b.run(t, command.ExitOK, "ceremony", "reshare", "--root", "acme-root-2026", "--shares", two, "--custodians", "Ann Ames, Bo Bo, Cy Cole",
		"--threshold", "2", "--shares-dir", newShares, "--ops-pin-file", b.pin)
	for _, want := range []string{"PINs changed on acme-root-b, acme-root-2026", "superseded backup destroyed: " + epoch1, "overwritten, then removed",
		"The old shares still open what follows", "backup copy 1 (epoch 1", `on "USB-7" by Ada Admin`, "then record that with backup retire"} {
		if !strings.Contains(out, want) {
			t.Errorf("reshare says nothing of %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no longer work") {
		t.Errorf("reshare claims the old shares no longer work:\n%s", out)
	}
	if got := backupFiles(t, b.ws); len(got) != 1 || got[0] != "acme-root-2026-epoch2.wrapped" {
		t.Errorf("backup/ after the reshare: %v", got)
	}
	newTwo := filepath.Join(newShares, "1-Ann-Ames.share") + "," + filepath.Join(newShares, "2-Bo-Bo.share")
	// The account: the workspace's epoch 1 blob retired by Custos, its copy superseded and
	// outstanding until a person records it destroyed before a witness.
	list := b.run(t, command.ExitOK, "backup", "list", "--root", "acme-root-2026")
	for _, want := range []string{`(?m)^workspace +1 +retired .*epoch1\.wrapped +overwritten and removed by Custos`,
		`(?m)^workspace +2 +current .*epoch2\.wrapped`, `(?m)^1 +1 +superseded .*usb/acme-root-2026-epoch1\.wrapped on "USB-7" +copied by Ada Admin`} {
		if !regexp.MustCompile(want).MatchString(list) {
			t.Errorf("backup list does not match %q:\n%s", want, list)
		}
	}
	b.run(t, command.ExitUsage, "backup", "retire", "--root", "acme-root-2026", "--copy", "1", "--by", "Ada Admin")
	if out := b.run(t, command.ExitFail, "backup", "retire", "--root", "acme-root-2026", "--copy", "1", "--by", "Ada Admin", "--witness", "Ada Admin"); !strings.Contains(out, "--witness") {
		t.Errorf("a witness who is the person who destroyed it:\n%s", out)
	}
	b.run(t, command.ExitOK, "backup", "retire", "--root", "acme-root-2026", "--copy", "1", "--by", "Ada Admin", "--witness", "Wes Witness")
	if out := b.run(t, command.ExitFail, "backup", "retire", "--root", "acme-root-2026", "--copy", "1", "--by", "Ada Admin", "--witness", "Wes Witness"); !strings.Contains(out, "was retired on") {
		t.Errorf("retiring a copy twice:\n%s", out)
	}
	list = b.run(t, command.ExitOK, "backup", "list", "--root", "acme-root-2026")
	if !regexp.MustCompile(`(?m)^1 +1 +retired .*destroyed by Ada Admin, witnessed by Wes Witness`).MatchString(list) {
		t.Errorf("backup list after retire:\n%s", list)
	}
	// The next quorum operation's journal, and so its record, carries the account.
	out = b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo, "--ops-pin-file", b.pin)
	rec := regexp.MustCompile(`record\s+\S+/records/(\S+)\.pdf`).FindStringSubmatch(out)
	if rec == nil {
		t.Fatalf("crl names no record:\n%s", out)
	}
	if j := mustRead(t, filepath.Join(b.ws, "journal", rec[1]+".jsonl")); !strings.Contains(j, `"crl.backups"`) || !strings.Contains(j, "retired, destroyed by Ada Admin witnessed by Wes Witness") {
		t.Errorf("the crl's journal lacks the backup account:\n%s", j)
	}
	// Each holder alone opens with the new shares, and neither with the old.
	deleteToken(t, "acme-root-b")
	b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two)
	b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)
	b.run(t, command.ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", newTwo,
		"--backup", filepath.Join(b.ws, "backup", "acme-root-2026-epoch2.wrapped"), "--token", "acme-root-c", "--ops-pin-file", b.pin)
	deleteToken(t, "acme-root-2026")
	b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo)

	// Every token that held the root gone: restore from the current backup, then issue-ca.
	deleteToken(t, "acme-root-c")
	if out := b.run(t, command.ExitFail, "ceremony", "restore", "--root", "acme-root-2026", "--shares", newTwo, "--backup", outside,
		"--token", "acme-root-d"); !strings.Contains(out, "at epoch 1; the quorum is at epoch 2") || !strings.Contains(out, "--backup") {
		t.Errorf("a blob of epoch 1:\n%s", out)
	}
	b.run(t, command.ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", newTwo,
		"--backup", filepath.Join(b.ws, "backup", "acme-root-2026-epoch2.wrapped"), "--token", "acme-root-d", "--ops-pin-file", b.pin)
	b.issueCA(t, newTwo, "Acme Devices CA 1")

	// A reshare cannot reach the deleted holders: refused before any change, naming one;
	// with both recorded lost it goes on, and lists them as what the old shares still open.
	third := filepath.Join(b.dir, "third")
	os.Mkdir(third, 0o700)
	reshare := func(want int, extra ...string) string {
		return b.run(t, want, append([]string{"ceremony", "reshare", "--root", "acme-root-2026", "--shares", newTwo,
			"--custodians", "Ann Ames, Bo Bo", "--threshold", "2", "--shares-dir", third, "--ops-pin-file", b.pin}, extra...)...)
	}
	if out := reshare(command.ExitFail); !strings.Contains(out, `token "acme-root-c" holds the root and cannot be reached`) || !strings.Contains(out, "nothing was changed") {
		t.Errorf("a reshare with an unreachable holder:\n%s", out)
	}
	if out := reshare(command.ExitFail, "--lost-token", "acme-root-c", "--lost-token", "acme-root-2026"); !strings.Contains(out, "--lost-reason") {
		t.Errorf("lost tokens without a reason:\n%s", out)
	}
	b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", newTwo) // nothing changed
	out = reshare(command.ExitOK, "--lost-token", "acme-root-b", "--lost-token", "acme-root-c", "--lost-token", "acme-root-2026", "--lost-reason", "token files deleted")
	for _, want := range []string{"PINs changed on acme-root-d", `token "acme-root-c" recorded lost`, "The old shares still open what follows",
		`token "acme-root-c", recorded lost`, "token files deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("reshare with lost tokens says nothing of %q:\n%s", want, out)
		}
	}
	thirdTwo := filepath.Join(third, "1-Ann-Ames.share") + "," + filepath.Join(third, "2-Bo-Bo.share")
	b.issueCA(t, thirdTwo, "Acme Devices CA 2")
	if got := backupFiles(t, b.ws); len(got) != 1 || got[0] != "acme-root-2026-epoch3.wrapped" {
		t.Errorf("backup/ after the third epoch: %v", got)
	}
}

// Destroy ends everything the root made: it stops before any change when a holder is missing;
// then the issuing CAs sign last CRLs and lose their keys, the final root CRL lists every
// issuing CA (openssl), the record signer signs the destroy record, no blob remains in
// backup/, the copy outside is listed outstanding, and every later command is refused naming
// the destroy run.
func TestDestroyEndsEverything(t *testing.T) {
	b := newCeremonyBench(t)
	b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
	devPIN := filepath.Join(b.dir, "dev.pin")
	os.WriteFile(devPIN, []byte("dev-pin-1234\n"), 0o600)
	provision := func(want int, issuer, serial string) string {
		return b.run(t, want, "device", "provision", "--issuer", issuer, "--serial", serial, "--model", "Pump",
			"--token", "dev-"+serial, "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	}
	icaA := b.issueCA(t, two, "Acme Devices CA 1")
	icaB := b.issueCA(t, two, "Acme Devices CA 2")
	icaC := b.issueCA(t, two, "Acme Devices CA 3")
	provision(command.ExitOK, icaA, "SN-A1")
	serialC := certSerial(t, filepath.Join(b.ws, "certs", icaC+".pem"))
	b.run(t, command.ExitOK, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two, "--revoke", serialC,
		"--reason", "keyCompromise", "--ops-pin-file", b.pin)
	usb := filepath.Join(b.dir, "usb")
	os.Mkdir(usb, 0o700)
	b.run(t, command.ExitOK, "backup", "copy", "--root", "acme-root-2026", "--to", usb, "--by", "Ada Admin")
	b.run(t, command.ExitOK, "ceremony", "restore", "--root", "acme-root-2026", "--shares", two,
		"--backup", filepath.Join(b.ws, "backup", "acme-root-2026-epoch1.wrapped"), "--token", "acme-root-b", "--ops-pin-file", b.pin)

	// A holder missing: refused before any change.
	tokens := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	var original string
	for _, d := range mustGlob(t, filepath.Join(tokens, "*")) {
		if strings.Contains(mustRead(t, filepath.Join(d, "token.object")), "acme-root-2026  ") {
			original = d
		}
	}
	os.Rename(original, filepath.Join(b.dir, "original-token"))
	if out := b.run(t, command.ExitFail, "ceremony", "destroy", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin); !strings.Contains(out, `token "acme-root-2026" holds the root and cannot be reached`) {
		t.Errorf("destroy with a holder missing:\n%s", out)
	}
	provision(command.ExitOK, icaA, "SN-A2") // nothing changed
	os.Rename(filepath.Join(b.dir, "original-token"), original)

	out := b.run(t, command.ExitOK, "ceremony", "destroy", "--root", "acme-root-2026", "--shares", two, "--ops-pin-file", b.pin)
	for _, want := range []string{"root acme-root-2026 destroyed: its key on acme-root-b, acme-root-2026", "Outstanding, for people to destroy",
		"backup copy 1 (epoch 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("destroy says nothing of %q:\n%s", want, out)
		}
	}
	runID := regexp.MustCompile(`record\s+\S+/records/(\S+)\.pdf`).FindStringSubmatch(out)
	if runID == nil {
		t.Fatalf("destroy signed no record:\n%s", out)
	}
	b.run(t, command.ExitOK, "verify", filepath.Join(b.ws, "records", runID[1]+".pdf"))
	// The final root CRL lists every issuing CA; the revoked one keeps its reason.
	pem := regexp.MustCompile(`PEM\s+(\S+\.pem)`).FindStringSubmatch(out)
	if pem == nil {
		t.Fatalf("destroy names no final CRL:\n%s", out)
	}
	txt := opensslOut(t, "crl", "-in", pem[1], "-noout", "-text")
	for _, ica := range []string{icaA, icaB, icaC} {
		if s := certSerial(t, filepath.Join(b.ws, "certs", ica+".pem")); !strings.Contains(txt, "Serial Number: "+s) {
			t.Errorf("the final root CRL lacks %s (serial %s):\n%s", ica, s, txt)
		}
	}
	if strings.Count(txt, "Cessation Of Operation") != 2 || strings.Count(txt, "Key Compromise") != 1 {
		t.Errorf("the final root CRL's reasons:\n%s", txt)
	}
	// The issuing CAs that could sign signed a last CRL; the revoked one did not.
	for ica, want := range map[string]bool{icaA: true, icaB: true, icaC: false} {
		if got := len(mustGlob(t, filepath.Join(b.ws, "crl", ica+"-*.crl"))) > 0; got != want {
			t.Errorf("issuing CA %s signed a last CRL: %v, want %v", ica, got, want)
		}
	}
	if got := backupFiles(t, b.ws); len(got) != 0 {
		t.Errorf("backup/ after destroy: %v", got)
	}
	for _, label := range []string{"acme-root-2026", "acme-root-b"} {
		if out, err := exec.Command("pkcs11-tool", "--module", tokenModule(t, b), "--token-label", label, "-O").CombinedOutput(); err != nil || strings.Contains(string(out), "Object") {
			t.Errorf("token %s after destroy:\n%s", label, out)
		}
	}
	// Everything that would use the root, its issuing CAs or its record signer is refused,
	// naming the destroy run.
	for _, out := range []string{
		provision(command.ExitFail, icaA, "SN-A3"),
		b.run(t, command.ExitFail, "crl", "publish", "--issuer", icaB, "--ops-pin-file", b.pin),
		b.run(t, command.ExitFail, "decommission", "--serial", "SN-A1", "--method", "unreachable", "--technician", "Tess Tech", "--validator", "Vic Validator",
			"--witness", "Wes Witness", "--ops-pin-file", b.pin),
		b.run(t, command.ExitFail, "ceremony", "crl", "--root", "acme-root-2026", "--shares", two),
		b.run(t, command.ExitFail, "backup", "copy", "--root", "acme-root-2026", "--to", usb, "--by", "Ada Admin"),
	} {
		if !strings.Contains(out, runID[1]) {
			t.Errorf("a command after destroy does not name the destroy run %s:\n%s", runID[1], out)
		}
	}
	// The copy outside is retired by a person, as any copy.
	b.run(t, command.ExitOK, "backup", "retire", "--root", "acme-root-2026", "--copy", "1", "--by", "Ada Admin", "--witness", "Wes Witness")
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tokenModule is the module path the bench's plan names.
func tokenModule(t *testing.T, b *ceremonyBench) string {
	return strings.Split(strings.Split(mustRead(t, b.plan), "module: ")[1], "\n")[0]
}

// nextSecond waits for the clock's next second: a CRL gives revocation times to the second,
// and verify fails a record signed in the second its signer was revoked, since it cannot tell
// which came first.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
}
