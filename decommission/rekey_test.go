package decommission

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

func rekeyRequest(serial string) RekeyRequest {
	return RekeyRequest{Serial: serial, Technician: "Tess Tech", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
}

// onToken counts what pkcs11-tool, logged in with the device PIN, lists on a device token:
// private keys, public keys and certificates.
func onToken(t testing.TB, module, token string) (privs, pubs, certs int, listing string) {
	t.Helper()
	listing = command(t, "pkcs11-tool", "--module", module, "--token-label", token, "--login", "--pin", devPIN, "--list-objects")
	return strings.Count(listing, "Private Key Object"), strings.Count(listing, "Public Key Object"),
		strings.Count(listing, "Certificate Object"), listing
}

// checkOneIdentity fails unless the device's token holds exactly one key pair and one
// certificate, the certificate is the one the registry has for its only active key, and the
// key on the token signs under it.
func checkOneIdentity(t testing.TB, f *fixture, module, serial, token string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	privs, pubs, certs, listing := onToken(t, module, token)
	if privs != 1 || pubs != 1 || certs != 1 {
		t.Errorf("%s: token %s holds %d private keys, %d public keys, %d certificates, want one each:\n%s", serial, token, privs, pubs, certs, listing)
	}
	h, err := f.env.Registry.DeviceHistory(ctx, serial)
	if err != nil {
		t.Fatal(err)
	}
	var active []registry.DeviceKey
	for _, k := range h.Keys {
		if k.State == registry.KeyActive {
			active = append(active, k)
		}
	}
	if len(active) != 1 {
		t.Fatalf("%s: %d active keys in the registry, want 1: %+v", serial, len(active), h.Keys)
	}
	s, done := deviceSession(t, module, token)
	defer done()
	cert, err := s.Certificate(ctx, hsm.Match{ID: active[0].KeyID})
	if err != nil {
		t.Fatalf("%s: the registry's active key %x has no certificate on the token: %v\n%s", serial, active[0].KeyID, err, listing)
	}
	if registry.PublicKeySHA256(cert) != active[0].PublicKeySHA256 || !bytes.Equal(cert.SerialNumber.Bytes(), active[0].CertSerial) {
		t.Errorf("%s: the token's certificate is not the registry's for the active key", serial)
	}
	key, err := s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: active[0].KeyID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := possession(key, cert, "the key"); err != nil {
		t.Errorf("%s: %v", serial, err)
	}
	return cert
}

// deviceSession opens a device token of module logged in with the device PIN; done closes it.
func deviceSession(t testing.TB, module, token string) (s *hsm.Session, done func()) {
	t.Helper()
	ctx := context.Background()
	m, err := hsm.Open(module)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = m.OpenSession(ctx, token); err != nil {
		m.Close()
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.User, []byte(devPIN)); err != nil {
		s.Close()
		m.Close()
		t.Fatal(err)
	}
	return s, func() { s.Logout(ctx); s.Close(); m.Close() }
}

// checkRevokedOnCRL fails unless the issuer's newest CRL, read by openssl, lists serial as
// superseded.
func checkRevokedOnCRL(t testing.TB, f *fixture, issuerID string, serial *x509.Certificate) {
	t.Helper()
	latest, err := f.env.Registry.LatestCRL(context.Background(), issuerID)
	if err != nil {
		t.Fatal(err)
	}
	path := latest.Path
	if !filepath.IsAbs(path) {
		path = f.env.Workspace.Path(path)
	}
	text := command(t, "openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-text")
	want := strings.ToUpper(serial.SerialNumber.Text(16))
	if len(want)%2 == 1 {
		want = "0" + want
	}
	i := strings.Index(text, "Serial Number: "+want)
	if i < 0 || !strings.Contains(text[i:min(len(text), i+200)], "Superseded") {
		t.Errorf("CRL %d of %s does not list %s as superseded:\n%s", latest.Number, issuerID, want, text)
	}
}

// A device moves to a new key: the old one is proven, a new one made on its token (local,
// never extractable, as pkcs11-tool shows), certified by the same CA, then by a newer CA that
// splits its CRL (its shard's distribution point and policy; openssl and zlint read it), the
// old certificate revoked superseded (openssl crl, verify -crl_check), the old identity gone
// from the token, and the registry's history and the signed record say so.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "RK-1")
	res, err := Rekey(ctx, f.env, rekeyRequest(p.Serial))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(res.NewKeyID, p.KeyID) || res.NewCertificate.SerialNumber.Cmp(p.Certificate.SerialNumber) == 0 {
		t.Fatalf("the new key or certificate is the old one: %+v", res)
	}
	cert := checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
	if !bytes.Equal(cert.Raw, res.NewCertificate.Raw) {
		t.Errorf("the token's certificate is not the new one")
	}
	out := command(t, "pkcs11-tool", "--module", f.hsm.ModulePath, "--token-label", p.Token, "--login", "--pin", devPIN,
		"--list-objects", "--type", "privkey")
	for _, want := range []string{"never extractable", "local", "ID:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the new key is not %s:\n%s", want, out)
		}
	}
	checkRevokedOnCRL(t, f, f.issuer, p.Certificate)
	chain := chainFile(t, f, f.issuer)
	crl := pemOf(t, res.CRL.DERPath)
	if o, err := execOut("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl, writePEM(t, f.dir, p.Certificate)); err == nil || !strings.Contains(o, "revoked") {
		t.Errorf("openssl verify -crl_check of the old certificate: %v\n%s", err, o)
	}
	if o, err := execOut("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl, writePEM(t, f.dir, res.NewCertificate)); err != nil {
		t.Errorf("openssl verify -crl_check of the new certificate: %v\n%s", err, o)
	}
	zlintClean(t, res.NewCertificate)

	// The registry: the old key superseded by this run and destroyed, the new one active.
	h, err := f.env.Registry.DeviceHistory(ctx, p.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Keys) != 2 || h.Keys[0].State != registry.KeyDestroyed || h.Keys[1].State != registry.KeyActive {
		t.Fatalf("keys: %+v", h.Keys)
	}
	notes := ""
	for _, ch := range h.Keys[0].History {
		notes += string(ch.State) + " " + ch.RunID + " " + ch.Note + "; "
	}
	for _, want := range []string{"deactivated " + res.RunID + " superseded by rekey, run " + res.RunID, "destroyed " + res.RunID} {
		if !strings.Contains(notes, want) {
			t.Errorf("the old key's history lacks %q: %s", want, notes)
		}
	}
	if len(h.Revocations) != 1 || h.Revocations[0].Reason != pki.ReasonSuperseded {
		t.Errorf("revocations: %+v", h.Revocations)
	}

	// The record verifies and says what happened.
	b, err := os.ReadFile(res.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	if rep := record.Verify(b, f.root(t)); !rep.OK() {
		t.Errorf("the record does not verify: %+v", rep.Checks)
	}
	text := command(t, "pdftotext", "-layout", res.RecordPath, "-")
	for _, want := range []string{"New identity", "re-keyed", "superseded", pki.SerialHex(res.NewCertificate.SerialNumber)[:8], "Purge"} {
		if !strings.Contains(text, want) {
			t.Errorf("the record lacks %q", want)
		}
	}

	// Again, to a newer CA that splits its CRL, and to P-384.
	sharded := shardedCA(t, f, "Acme Devices CA 2", 4)
	req := rekeyRequest(p.Serial)
	req.Issuer, req.Algorithm = sharded.IssuerID, keyalg.ECDSAP384
	res2, err := Rekey(ctx, f.env, req)
	if err != nil {
		t.Fatal(err)
	}
	cert = checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
	if !bytes.Equal(cert.Raw, res2.NewCertificate.Raw) {
		t.Errorf("the token's certificate is not the newest")
	}
	x := command(t, "openssl", "x509", "-in", writePEM(t, f.dir, cert), "-noout", "-text")
	shard := pki.ShardOf(cert.SerialNumber, 4)
	for _, want := range []string{"ASN1 OID: secp384r1", "Policy: " + policyOID, "URI:http://pki.acme.example/crl/" + sharded.IssuerID + "/" + string(rune('0'+shard)) + ".crl", "Acme Devices CA 2"} {
		if !strings.Contains(x, want) {
			t.Errorf("the certificate from the sharded CA lacks %q:\n%s", want, x)
		}
	}
	zlintClean(t, cert)
	checkRevokedOnCRL(t, f, f.issuer, res.NewCertificate) // the first CA revoked what it issued
	dev, _ := f.env.Registry.Device(ctx, p.Serial)
	if dev.IssuerID != sharded.IssuerID {
		t.Errorf("the device's issuer is %s, want %s", dev.IssuerID, sharded.IssuerID)
	}

	// And it can still be decommissioned: nothing of any of its identities is left.
	if _, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vera Valid", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
	if privs, pubs, certs, listing := onToken(t, f.hsm.ModulePath, p.Token); privs+pubs+certs != 0 {
		t.Errorf("after decommission the token keeps:\n%s", listing)
	}
}

// A rekey that cannot be done is refused, naming the field, before any run starts or any
// token changes.
func TestRekeyRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "RF-1")
	older := f.issuer
	f.issuer = f.issueCA(t, ceremony.IssueCARequest{CommonName: "Acme Devices CA 2"}).IssuerID
	q := f.provision(t, "RF-2") // of the newer CA
	gone := f.provision(t, "RF-3")
	if _, err := Decommission(ctx, f.env, Request{Serial: gone.Serial, Method: Erase, Technician: "T", Validator: "Vera Valid", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
	runsBefore, _ := f.env.Registry.RunsOf(ctx, p.Serial)
	for _, c := range []struct {
		name, field, want string
		req               func() RekeyRequest
	}{
		{"unknown", "Serial", "not registered", func() RekeyRequest { return rekeyRequest("NOPE") }},
		{"no technician", "Technician", "technician", func() RekeyRequest { r := rekeyRequest(p.Serial); r.Technician = " "; return r }},
		{"no device PIN", "DevicePIN", "device PIN", func() RekeyRequest { r := rekeyRequest(p.Serial); r.DevicePIN = nil; return r }},
		{"no operator PIN", "OpsPIN", "operator PIN", func() RekeyRequest { r := rekeyRequest(p.Serial); r.OpsPIN = nil; return r }},
		{"bad algorithm", "Algorithm", "algorithm", func() RekeyRequest { r := rekeyRequest(p.Serial); r.Algorithm = "dsa-1024"; return r }},
		{"older CA", "Issuer", "same or a newer CA", func() RekeyRequest { r := rekeyRequest(q.Serial); r.Issuer = older; return r }},
		{"root", "Issuer", "", func() RekeyRequest { r := rekeyRequest(p.Serial); r.Issuer = "acme-root"; return r }},
		{"decommissioned", "", "decommissioned", func() RekeyRequest { return rekeyRequest(gone.Serial) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Rekey(ctx, f.env, c.req())
			if err == nil {
				t.Fatal("accepted")
			}
			if c.field != "" && run.FieldOf(err) != c.field {
				t.Errorf("field %q, want %q: %v", run.FieldOf(err), c.field, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v does not say %q", err, c.want)
			}
		})
	}
	if runs, _ := f.env.Registry.RunsOf(ctx, p.Serial); len(runs) != len(runsBefore) {
		t.Errorf("a refused rekey started a run: %+v", runs)
	}
	checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
	// A wrong device PIN is refused before the run changes anything on the token.
	req := rekeyRequest(p.Serial)
	req.DevicePIN = []byte("wrong-pin-0000")
	if _, err := Rekey(ctx, f.env, req); err == nil {
		t.Fatal("a wrong device PIN was accepted")
	}
	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	for _, r := range runs {
		if _, err := rekeyHandlers.Abort(ctx, f.env, r.ID, run.PINs{}); err != nil {
			t.Fatalf("abort %s: %v", r.ID, err)
		}
	}
	checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
}

// TestRekeyDiesAtHelper is the child of TestRekeyResumeAfterEachStep: it re-keys one device
// and dies the moment a given step is done.
func TestRekeyDiesAtHelper(t *testing.T) {
	dir, serial, at := os.Getenv("CUSTOS_TEST_REKEY_DIR"), os.Getenv("CUSTOS_TEST_REKEY_SERIAL"), os.Getenv("CUSTOS_TEST_REKEY_AT")
	if dir == "" {
		t.Skip("child process of TestRekeyResumeAfterEachStep")
	}
	env, done := openEnv(t, dir)
	defer done()
	env.Progress = func(p run.Event) {
		if p.Step.ID == at && p.Status == record.StatusDone {
			os.Exit(3)
		}
	}
	Rekey(context.Background(), env, rekeyRequest(serial))
	t.Fatal("the run was meant to die")
}

var rekeyHandlers = run.Handlers{Handler(), RekeyHandler()}

// A rekey that dies right after each of its steps is finished by resume: one identity on the
// token, the new one, the registry agreeing, the old certificate on the newest CRL, and the
// signed record verifies. One that dies before its certificate is issued can be aborted
// instead: the device keeps its old identity alone.
func TestRekeyResumeAfterEachStep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var steps []string
	for _, st := range RekeySteps() {
		steps = append(steps, st.ID)
	}
	devices := map[string]*Provisioned{}
	for _, st := range append(steps, "abort-identify", "abort-generate", "late") {
		devices[st] = f.provision(t, "RD-"+st)
	}
	f.env.Workspace.Close()
	f.env.Registry.Close()
	die := func(serial, at string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRekeyDiesAtHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_REKEY_DIR="+f.dir, "CUSTOS_TEST_REKEY_SERIAL="+serial, "CUSTOS_TEST_REKEY_AT="+at)
		if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("%s: child: %v\n%s", at, err, out)
		}
	}
	for _, st := range steps {
		p := devices[st]
		die(p.Serial, st)
		env, done := openEnv(t, f.dir)
		f.env = env
		runs, _ := env.Registry.UnfinishedRuns(ctx)
		if len(runs) != 1 || runs[0].Kind != registry.RunRekey {
			t.Fatalf("after dying at %s: unfinished runs %+v", st, runs)
		}
		out, err := rekeyHandlers.Resume(ctx, env, runs[0].ID, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)})
		if err != nil {
			t.Fatalf("resume after dying at %s: %v", st, err)
		}
		rr, _ := env.Registry.Run(ctx, runs[0].ID)
		if rr.Status != registry.RunCompleted {
			t.Errorf("after dying at %s and resuming: run is %s (%s)", st, rr.Status, out.Summary)
		}
		cert := checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
		if bytes.Equal(cert.Raw, p.Certificate.Raw) {
			t.Errorf("after dying at %s and resuming: the token keeps the old certificate", st)
		}
		checkRevokedOnCRL(t, f, f.issuer, p.Certificate)
		b, err := os.ReadFile(rr.RecordPath)
		if err != nil {
			t.Fatalf("after dying at %s: the record: %v", st, err)
		}
		if rep := record.Verify(b, f.root(t)); !rep.OK() {
			t.Errorf("after dying at %s: the record does not verify: %+v", st, rep.Checks)
		}
		done()
	}
	for _, st := range []string{"identify", "generate"} {
		p := devices["abort-"+st]
		die(p.Serial, st)
		env, done := openEnv(t, f.dir)
		f.env = env
		runs, _ := env.Registry.UnfinishedRuns(ctx)
		if len(runs) != 1 {
			t.Fatalf("after dying at %s: unfinished runs %+v", st, runs)
		}
		// Before a new key was made, abort needs no PIN; after, the device PIN, to remove it.
		_, err := rekeyHandlers.Abort(ctx, env, runs[0].ID, run.PINs{})
		if st == "generate" {
			if run.FieldOf(err) != "DevicePIN" {
				t.Errorf("abort after generate without the device PIN: %v", err)
			}
			out, aerr := rekeyHandlers.Abort(ctx, env, runs[0].ID, run.PINs{Device: []byte(devPIN)})
			err = aerr
			if len(out.Done) != 2 {
				t.Errorf("abort after generate removed %v, want the new key pair", out.Done)
			}
		}
		if err != nil {
			t.Fatalf("abort after %s: %v", st, err)
		}
		cert := checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
		if !bytes.Equal(cert.Raw, p.Certificate.Raw) {
			t.Errorf("after an abort at %s the device lost its old certificate", st)
		}
		// And it re-keys afterwards.
		if _, err := Rekey(ctx, env, rekeyRequest(p.Serial)); err != nil {
			t.Fatalf("rekey after the abort at %s: %v", st, err)
		}
		checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
		done()
	}
	// Once the certificate is issued, abort refuses and says to resume.
	p := devices["late"]
	die(p.Serial, "issue")
	env, done := openEnv(t, f.dir)
	defer done()
	f.env = env
	runs, _ := env.Registry.UnfinishedRuns(ctx)
	if _, err := rekeyHandlers.Abort(ctx, env, runs[0].ID, run.PINs{Device: []byte(devPIN)}); err == nil || !strings.Contains(err.Error(), "custos resume") {
		t.Errorf("abort after issue: %v", err)
	}
	if _, err := Rekey(ctx, env, rekeyRequest(p.Serial)); err == nil || !strings.Contains(err.Error(), "stopped half way") {
		t.Errorf("a second rekey while one is stopped: %v", err)
	}
	if _, err := Decommission(ctx, env, Request{Serial: p.Serial, Method: Erase, Technician: "T", Validator: "Vera Valid", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err == nil || !strings.Contains(err.Error(), "stopped half way") {
		t.Errorf("a decommission while a rekey is stopped: %v", err)
	}
	if _, err := rekeyHandlers.Resume(ctx, env, runs[0].ID, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
	checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
}

// A device moves between every algorithm Custos makes: its token holds the one new key pair
// and certificate after each move, openssl reads the new key's type, and zlint finds nothing.
func TestRekeyAlgorithms(t *testing.T) {
	f := newFixture(t)
	p := f.provision(t, "ALG-1")
	for _, c := range []struct {
		alg  keyalg.Algorithm
		want string
	}{
		{keyalg.Ed25519, "ED25519"},
		{keyalg.RSA3072, "(3072 bit)"},
		{keyalg.RSA4096, "(4096 bit)"},
		{keyalg.ECDSAP384, "secp384r1"},
		{keyalg.ECDSAP256, "prime256v1"},
	} {
		req := rekeyRequest(p.Serial)
		req.Algorithm = c.alg
		res, err := Rekey(context.Background(), f.env, req)
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		cert := checkOneIdentity(t, f, f.hsm.ModulePath, p.Serial, p.Token)
		if !bytes.Equal(cert.Raw, res.NewCertificate.Raw) {
			t.Errorf("%s: the token's certificate is not the new one", c.alg)
		}
		if x := command(t, "openssl", "x509", "-in", writePEM(t, f.dir, cert), "-noout", "-text"); !strings.Contains(x, c.want) {
			t.Errorf("%s: openssl does not read %q:\n%s", c.alg, c.want, x)
		}
		zlintClean(t, cert)
	}
}
