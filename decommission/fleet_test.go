package decommission

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

func TestParseManifest(t *testing.T) {
	good := "serial,method,reason,note\nSN-1,erase,,returned\nSN-2, unreachable ,keyCompromise,lost in transit\n\nSN-3,physical,cessationOfOperation,\n"
	m, err := ParseManifest(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rows) != 3 || m.Rows[1].Method != Unreachable || m.Rows[2].Line != 5 || m.Rows[0].Note != "returned" {
		t.Errorf("rows = %+v", m.Rows)
	}
	tests := []struct{ name, text, want string }{
		{"no header", "", "no header"},
		{"missing column", "serial,method\nSN-1,erase\n", `no "reason" column`},
		{"bad method", "serial,method,reason\nSN-1,shred,\n", "line 2: method \"shred\""},
		{"bad reason", "serial,method,reason\nSN-1,erase,bored\n", "line 2:"},
		{"duplicate", "serial,method,reason\nSN-1,erase,\nSN-1,erase,\n", "line 3: serial SN-1 is also on line 2"},
		{"no serial", "serial,method,reason\n,erase,\n", "line 2: no serial"},
		{"bad quote", "serial,method,reason\n\"SN-1,erase,\n", "line"},
		{"empty", "serial,method,reason\n", "no devices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Every bad line is reported, not just the first.
	_, err = ParseManifest(strings.NewReader("serial,method,reason\nA,x,\nB,erase,\nC,y,\n"))
	var me ManifestError
	if !errors.As(err, &me) || len(me) != 2 || me[0].Line != 2 || me[1].Line != 4 {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("serial,method,reason,note\nSN-1,erase,,x\n"))
	f.Add([]byte("serial,method,reason\n\"a\"\"b\",unreachable,keyCompromise\n"))
	f.Add([]byte("\ufeffSerial,Method,Reason\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(bytes.NewReader(b))
		if err == nil && len(m.Rows) == 0 {
			t.Fatal("accepted a manifest without devices")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// registerMany registers n devices of the fixture's issuing CA without tokens, the way a
// fleet in the field is known only by its certificates: one certificate signed by the issuing
// CA on the HSM, its serial rewritten for each device (the registry does not re-verify it).
func registerMany(t testing.TB, f *fixture, n int) []string {
	t.Helper()
	ctx := context.Background()
	p := f.provision(t, "TEMPLATE-0000001")
	der := p.Certificate.Raw
	at := bytes.Index(der, p.Certificate.SerialNumber.Bytes())
	var serials []string
	devices := func(yield func(registry.NewDevice, error) bool) {
		for i := 0; i < n; i++ {
			c := bytes.Clone(der)
			sn := bytes.Clone(p.Certificate.SerialNumber.Bytes())
			copy(sn[len(sn)-4:], []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			copy(c[at:], sn)
			serial := fmt.Sprintf("DEV-%06d", i)
			serials = append(serials, serial)
			cert := registry.Certificate{IssuerID: f.issuer, Serial: registry.SerialNumber(new(big.Int).SetBytes(sn).Bytes()),
				Subject: p.Certificate.Subject.String(), NotBefore: p.Certificate.NotBefore, NotAfter: p.Certificate.NotAfter, DER: c}
			if !yield(registry.NewDevice{Device: registry.Device{Serial: serial, Model: "Pump", IssuerID: f.issuer}, Certificate: cert,
				Key: registry.DeviceKey{PublicKeySHA256: [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 7}}}, nil) {
				return
			}
		}
	}
	op, err := run.StartOperation(ctx, f.env, "import", f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Registry().ImportDevices(ctx, devices); err != nil {
		t.Fatal(err)
	}
	return serials
}

func manifestOf(serials []string, method Method) string {
	var b strings.Builder
	b.WriteString("serial,method,reason,note\n")
	for _, s := range serials {
		fmt.Fprintf(&b, "%s,%s,,\n", s, method)
	}
	return b.String()
}

func TestFleet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b := f.provision(t, "SN-A"), f.provision(t, "SN-B")
	many := registerMany(t, f, 30)
	text := "serial,method,reason,note\n" + a.Serial + ",erase,,returned\n" + b.Serial + ",reinit,,\n" +
		strings.TrimPrefix(manifestOf(many[:20], Unreachable), "serial,method,reason,note\n") +
		strings.TrimPrefix(manifestOf(many[20:], Physical), "serial,method,reason,note\n")
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	req := func() FleetRequest {
		return FleetRequest{ManifestPath: path, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	}
	var progress []run.Event
	f.env.Progress = func(p run.Event) { progress = append(progress, p) }
	res, err := Fleet(ctx, f.env, m, req())
	if err != nil {
		t.Fatal(err)
	}
	if res.Decommissioned != 32 || res.Failed != 0 || len(res.CRLs) != 1 || res.CRLs[0].Entries != 32 {
		t.Errorf("result %+v", res)
	}
	if len(progress) == 0 || progress[len(progress)-1].Step.Title == "" {
		t.Error("no progress reported")
	}
	file, _ := os.ReadFile(res.RecordPath)
	if rep := record.Verify(file, f.root(t)); !rep.OK() {
		t.Errorf("fleet record: %+v", rep.Checks)
	}
	txt := command(t, "pdftotext", res.RecordPath, "-")
	for _, want := range []string{"fleet of 32 devices", "DEV-000029", "SN-A", "results.csv"} {
		if want != "results.csv" && !strings.Contains(txt, want) {
			t.Errorf("fleet record lacks %q", want)
		}
	}
	if out := command(t, "pdfdetach", "-list", res.RecordPath); !strings.Contains(out, "results.csv") || !strings.Contains(out, "journal.jsonl") {
		t.Errorf("attachments: %s", out)
	}
	// The same manifest again changes nothing.
	again, err := Fleet(ctx, f.env, m, req())
	if err != nil || !again.AlreadyCompleted {
		t.Errorf("second run: %+v %v", again, err)
	}
	n, _ := f.env.Registry.CountRevocations(ctx, f.issuer)
	if n != 32 {
		t.Errorf("%d revocations, want 32", n)
	}
}

func TestFleetRefusesBadRowsBeforeAnythingChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	many := registerMany(t, f, 3)
	text := manifestOf(many, Unreachable) + "NOT-REGISTERED,unreachable,,\n"
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Fleet(ctx, f.env, m, FleetRequest{ManifestPath: "fleet.csv", Technician: "T", Validator: "Vic Validator", Witness: "W", OpsPIN: []byte(opsPIN)})
	if err == nil || !strings.Contains(err.Error(), "line 5: device NOT-REGISTERED is not registered") {
		t.Errorf("err = %v", err)
	}
	if n, _ := f.env.Registry.CountRevocations(ctx, f.issuer); n != 0 {
		t.Errorf("%d revocations after a refused manifest", n)
	}
}

// Preview marks every line naming a device the workspace does not know, before anyone fills
// in people or PINs, and changes nothing.
func TestPreviewMarksUnknownDevices(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	many := registerMany(t, f, 2)
	text := "serial,method,reason\nGHOST-1,unreachable,,\n" + strings.TrimPrefix(manifestOf(many, Unreachable), "serial,method,reason,note\n") + "GHOST-2,physical,,\n"
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	err = Preview(ctx, f.env, m)
	var me ManifestError
	if !errors.As(err, &me) || len(me) != 2 || me[0].Line != 2 || me[1].Line != 5 ||
		!strings.Contains(me[0].Problem, "GHOST-1 is not registered") || !strings.Contains(me[1].Problem, "GHOST-2") {
		t.Fatalf("Preview = %v, want lines 2 and 5 marked", err)
	}
	good, err := ParseManifest(strings.NewReader(manifestOf(many, Unreachable)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Preview(ctx, f.env, good); err != nil {
		t.Errorf("Preview of registered devices = %v", err)
	}
	if runs, err := f.env.Registry.UnfinishedRuns(ctx); err != nil || len(runs) != 0 {
		t.Errorf("a preview started runs: %v %v", runs, err)
	}
	if n, _ := f.env.Registry.CountRevocations(ctx, f.issuer); n != 0 {
		t.Errorf("%d revocations after a preview", n)
	}
}

// TestFleetCrashHelper is the child process of TestFleetSurvivesKills.
func TestFleetCrashHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_FLEET_DIR")
	if dir == "" {
		t.Skip("child process of TestFleetSurvivesKills")
	}
	ctx := context.Background()
	env, done := openEnv(t, dir)
	defer done()
	text, _ := os.ReadFile(filepath.Join(dir, "fleet.csv"))
	m, err := ParseManifest(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fleet(ctx, env, m, FleetRequest{ManifestPath: filepath.Join(dir, "fleet.csv"), Technician: "T", Validator: "Vic Validator", Witness: "W", OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
}

// Kill -9 a fleet of 2,000 devices at 20 moments, re-running after each: every device is
// handled once, every revoked serial is on the newest CRL, CRL numbers increase, every
// journal verifies.
func TestFleetSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process 20 times")
	}
	ctx := context.Background()
	f := newFixture(t)
	serials := registerMany(t, f, 2000)
	writeFile(t, filepath.Join(f.dir, "fleet.csv"), manifestOf(serials, Unreachable))
	f.env.Workspace.Close()
	f.env.Registry.Close()
	tokens := f.hsm.SaveTokenFiles(t)
	kills, torn := 0, 0
	for i := 0; i < 40 && kills < 20; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFleetCrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_DIR="+f.dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+(i*37)%250) * time.Millisecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		torn += tokens.RestoreTorn(t)
		if err == nil {
			break // it finished before the kill
		}
		kills++
	}
	if torn > 0 {
		t.Logf("SoftHSM lost a token file to %d of the kills (its C_Login rewrites token.object in place); restored", torn)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_DIR="+f.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	env, done := openEnv(t, f.dir)
	defer done()
	checkNothingHalfWritten(t, f)
	m, _ := ParseManifest(strings.NewReader(manifestOf(serials, Unreachable)))
	rr, err := env.Registry.Run(ctx, FleetRunID(m))
	if err != nil || rr.Status != registry.RunCompleted {
		t.Fatalf("run %+v %v", rr, err)
	}
	results := 0
	for r, err := range env.Registry.RunResults(ctx, rr.ID) {
		if err != nil || r.Outcome != registry.OutcomeDecommissioned {
			t.Fatalf("result %+v %v", r, err)
		}
		results++
	}
	if results != 2000 {
		t.Errorf("%d results, want 2000", results)
	}
	crls, _ := env.Registry.CRLs(ctx, f.issuer)
	for i := 1; i < len(crls); i++ {
		if crls[i].Number <= crls[i-1].Number {
			t.Errorf("CRL numbers do not increase: %v", crls)
		}
	}
	latest, _ := env.Registry.LatestCRL(ctx, f.issuer)
	if latest.Entries != 2000 {
		t.Errorf("newest CRL lists %d", latest.Entries)
	}
	der, _ := os.ReadFile(latest.Path)
	crl, err := x509.ParseRevocationList(der)
	if err != nil || len(crl.RevokedCertificateEntries) != 2000 {
		t.Errorf("CRL file: %v", err)
	}
	journals, _ := filepath.Glob(filepath.Join(f.dir, "ws", "journal", "*.jsonl"))
	for _, j := range journals {
		if _, err := record.ReadJournalFile(j); err != nil {
			t.Errorf("journal %s: %v", j, err)
		}
	}
	t.Logf("killed the fleet run %d times; %d CRLs signed in all", kills, len(crls))
}

func openEnv(t testing.TB, dir string) (run.Env, func()) {
	ws, err := workspaceOpen(filepath.Join(dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(context.Background(), ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	return run.Env{Workspace: ws, Registry: reg}, func() { reg.Close(); ws.Close() }
}

// TestFleetDiesAfterEraseHelper is the child of TestFleetResumesAfterAnErasedDevice: it
// dies the moment the device's erasure is verified, before the revocation.
func TestFleetDiesAfterEraseHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_FLEET_ERASE")
	if dir == "" {
		t.Skip("child process of TestFleetResumesAfterAnErasedDevice")
	}
	env, done := openEnv(t, dir)
	defer done()
	env.Progress = func(p run.Event) {
		if p.Step.ID == "verify" && p.Status == record.StatusDone {
			os.Exit(3)
		}
	}
	text, _ := os.ReadFile(filepath.Join(dir, "fleet.csv"))
	m, _ := ParseManifest(bytes.NewReader(text))
	Fleet(context.Background(), env, m, FleetRequest{ManifestPath: filepath.Join(dir, "fleet.csv"), Technician: "T", Validator: "Vic Validator", Witness: "W",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	t.Fatal("the run was meant to die")
}

func TestFleetResumesAfterAnErasedDevice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-E")
	text := "serial,method,reason,note\nSN-E,erase,,\n"
	writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	f.env.Workspace.Close()
	f.env.Registry.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetDiesAfterEraseHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_ERASE="+f.dir)
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	env, done := openEnv(t, f.dir)
	defer done()
	m, _ := ParseManifest(strings.NewReader(text))
	res, err := Fleet(ctx, env, m, FleetRequest{ManifestPath: filepath.Join(f.dir, "fleet.csv"), Technician: "T", Validator: "Vic Validator", Witness: "W",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Decommissioned != 1 || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	h, _ := env.Registry.DeviceHistory(ctx, p.Serial)
	if len(h.Results) == 0 || !strings.Contains(h.Results[len(h.Results)-1].Verification, "erasure finished on resuming") {
		t.Errorf("results %+v", h.Results)
	}
}

// A fleet killed right after it registered its run leaves a journal of its start and the
// registry's fact alone: the re-run takes it up from the start and finishes.
func TestFleetResumesARunKilledBeforeItsFirstEntry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	serials := registerMany(t, f, 3)
	text := manifestOf(serials, Unreachable)
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	runID := FleetRunID(m)
	jpath := f.env.Workspace.Path("journal", runID+".jsonl")
	j, err := record.CreateJournal(jpath, runID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Registry.Journaled(run.JournalFacts(j)).StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: runID,
		Kind: registry.RunDecommission, Operation: "fleet", Subject: path, JournalPath: jpath},
		ManifestPath: path, ManifestSHA256: m.SHA256[:], Technician: "T", Witness: "W"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	res, err := Fleet(ctx, f.env, m, FleetRequest{ManifestPath: path, Technician: "T", Validator: "Vic Validator", Witness: "W", OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Decommissioned != 3 {
		t.Errorf("result %+v", res)
	}
	jf, err := record.ReadJournalFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if jf.Entries[0].Step != record.StepStart || jf.Entries[1].Step != "registry.start-decommission-run" ||
		jf.Entries[2].Step != "fleet.manifest" || jf.Entries[2].Run != runID {
		t.Errorf("first entries %+v", jf.Entries[:3])
	}
}
