package rebuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// TestRebuildEqualsLive runs every workflow in one workspace, on SoftHSM2 tokens, then
// rebuilds the registry from the journals: the rebuilt registry must equal the live one,
// table by table (registry.Compare: every row, leaving out only row numbers and the schema's
// own history), every journal must replay and every record be accounted for.
//
// When this fails after you added something to the registry, the message says which table
// differs and how. Every registry write must journal a fact carrying all it stores: give it a
// registry.Fact (registry/facts.go: a struct with every value the write stores or takes from
// the clock or the registry's state, its kind in factKinds, an apply that calls the write), pass
// it to r.write, and add the table's canonical query to registry/compare.go. Then run your
// workflow here too.
func TestRebuildEqualsLive(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	reg := func() *registry.Registry { return w.env.Registry }

	// The Settings screen chooses another module, then the HSM's again.
	if err := run.SaveModule(ctx, w.env, "/opt/other/libpkcs11.so"); err != nil {
		t.Fatal(err)
	}
	if err := run.SaveModule(ctx, w.env, w.hsm.ModulePath); err != nil {
		t.Fatal(err)
	}
	// A second issuing CA, its device CRL split into shards, revoked by a root CRL with a record; a root CRL without an operator
	// PIN, so without a record.
	ica2, err := ceremony.IssueCA(ctx, w.env, w.quorum(t, 2, 3), ceremony.IssueCARequest{CommonName: "Acme Devices CA 2", OpsPIN: []byte(opsPIN),
		CRLBaseURL: "http://pki.acme.example/crl", CRLShards: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Its CRL set, in its shards, before it is revoked.
	set, err := decommission.PublishCRL(ctx, w.env, decommission.PublishRequest{Issuer: ica2.IssuerID, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 7 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if set.Shards != 4 {
		t.Fatalf("the CRL set of %s has %d shards, want 4", ica2.IssuerID, set.Shards)
	}
	if _, err := ceremony.RootCRL(ctx, w.env, w.quorum(t, 1, 3), ceremony.RootCRLRequest{Revoke: pki.SerialHex(ica2.Certificate.SerialNumber),
		Reason: pki.ReasonSuperseded, OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	noRecord, err := ceremony.RootCRL(ctx, w.env, w.quorum(t, 1, 2), ceremony.RootCRLRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Two custodians check their shares; a copy of the backup goes out on removable media.
	if _, err := ceremony.CheckShares(ctx, w.env, "acme-root", []ceremony.ShareInput{{Source: "cara.share", Text: []byte(w.people.shares[1])},
		{Source: "zoe.share", Text: []byte(w.people.shares[3])}}, []byte(opsPIN)); err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	if _, err := ceremony.CopyBackup(ctx, w.env, ceremony.BackupCopyRequest{Root: "acme-root", To: media, By: "Ada Admin", Media: "USB-1"}); err != nil {
		t.Fatal(err)
	}
	// Devices: five provisioned on tokens, four imported from their certificates.
	for _, s := range []string{"P1", "P2", "P3", "P4", "P5"} {
		w.provision(t, s)
	}
	if _, err := decommission.Import(ctx, w.env, w.issuer, []string{w.certificates(t, "I1", "I2", "I3", "I4")}, nil); err != nil {
		t.Fatal(err)
	}
	// Single devices: erased, and lost.
	single := func(serial string, m decommission.Method, pin string) (*decommission.Result, error) {
		return decommission.Decommission(ctx, w.env, decommission.Request{Serial: serial, Method: m, Technician: "Tess Tech", Validator: "Vic Validator",
			Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(pin)})
	}
	if _, err := single("P1", decommission.Erase, devPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := single("I1", decommission.Unreachable, ""); err != nil {
		t.Fatal(err)
	}
	// A run that fails (a wrong device PIN) and is aborted.
	failed, err := single("P4", decommission.Erase, "wrong-pin-0000")
	if err == nil {
		t.Fatal("a wrong device PIN was taken")
	}
	if _, err := handlers.Abort(ctx, w.env, failed.RunID, run.PINs{}); err != nil {
		t.Fatal(err)
	}
	// A device re-keyed, to P-384; a rekey that fails (a wrong device PIN) and is aborted.
	rekey := func(serial, pin string) (*decommission.RekeyResult, error) {
		return decommission.Rekey(ctx, w.env, decommission.RekeyRequest{Serial: serial, Algorithm: keyalg.ECDSAP384, Technician: "Tess Tech",
			OpsPIN: []byte(opsPIN), DevicePIN: []byte(pin)})
	}
	if _, err := rekey("P5", devPIN); err != nil {
		t.Fatal(err)
	}
	badRekey, err := rekey("P5", "wrong-pin-0000")
	if err == nil {
		t.Fatal("a wrong device PIN was taken")
	}
	if _, err := handlers.Abort(ctx, w.env, badRekey.RunID, run.PINs{}); err != nil {
		t.Fatal(err)
	}
	// A fleet: erased, re-initialised, destroyed, lost, and one whose token is nowhere (it fails
	// and stays whole). Cancelled after its first device, then run again to the end.
	m := w.manifest(t, "fleet.csv", "P2,erase,,returned", "P3,reinit,,", "I2,physical,,shredded", "I3,unreachable,,lost in transit", "I4,erase,,")
	cctx, cancel := context.WithCancel(ctx)
	env := w.env
	w.env.Progress = func(e run.Event) {
		if e.Step.ID == "fleet" && e.Done >= 1 {
			cancel()
		}
	}
	if _, err := w.fleet(cctx, m, "fleet.csv"); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled fleet: %v", err)
	}
	w.env = env
	res, err := w.fleet(ctx, m, "fleet.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Decommissioned != 4 || res.Failed != 1 {
		t.Fatalf("fleet: %+v", res)
	}
	if _, err := decommission.PublishCRL(ctx, w.env, decommission.PublishRequest{Issuer: w.issuer, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 7 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	// The first issuing CA is retired (it signs CRLs only, and does); the record signer is
	// replaced (the old one revoked, its key destroyed, a root CRL).
	if _, err := ceremony.RetireCA(ctx, w.env, w.quorum(t, 1, 3), ceremony.RetireCARequest{Issuer: w.issuer, OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := decommission.PublishCRL(ctx, w.env, decommission.PublishRequest{Issuer: w.issuer, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 7 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.NewRecordSigner(ctx, w.env, w.quorum(t, 2, 3), ceremony.RecordSignerRequest{OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	// The quorum's life: a reshare, a restore into a new token, an issuing CA from the restored
	// root, and the end of the root.
	p2 := &people{shares: map[int]string{}}
	rs, err := ceremony.Reshare(ctx, w.env, w.quorum(t, 1, 2), ceremony.ReshareRequest{Custodians: []string{"Ann Ames", "李雷", "Zoë Ångström"},
		Threshold: 2, OpsPIN: []byte(opsPIN)}, p2)
	if err != nil {
		t.Fatal(err)
	}
	w.people = p2
	// The copy of the superseded backup is destroyed, witnessed.
	if _, err := ceremony.RetireBackup(ctx, w.env, ceremony.BackupRetireRequest{Root: "acme-root", Copy: 1, By: "Ada Admin", Witness: "Wes Witness"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.Restore(ctx, w.env, w.quorum(t, 1, 3), ceremony.RestoreRequest{Backup: rs.BackupPath, Token: "acme-root-b", OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	// That issuing CA's record hits a full disk; resume writes it from the journal.
	full := w.env
	full.RecordFault = func(string) error { return syscall.ENOSPC }
	if _, err := ceremony.IssueCA(ctx, full, w.quorum(t, 2, 3), ceremony.IssueCARequest{CommonName: "Acme Devices CA 3", OpsPIN: []byte(opsPIN)}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("issue-ca on a full disk: %v", err)
	}
	stopped, err := handlers.Stopped(ctx, w.env)
	if err != nil || len(stopped) != 1 || !stopped[0].CanResume {
		t.Fatalf("stopped runs %+v, %v", stopped, err)
	}
	if _, err := handlers.Resume(ctx, w.env, stopped[0].ID, run.PINs{Ops: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	// A reshare that records the ceremony's token lost (the restored one holds the root), a
	// copy of the new backup left outstanding, and a driver update the quorum accepts.
	p3 := &people{shares: map[int]string{}}
	if _, err := ceremony.Reshare(ctx, w.env, w.quorum(t, 1, 2), ceremony.ReshareRequest{Custodians: []string{"Ann Ames", "Bo Berg", "Cy Cole"},
		Threshold: 2, LostTokens: []string{"acme-root"}, LostReason: "left in a taxi", OpsPIN: []byte(opsPIN)}, p3); err != nil {
		t.Fatal(err)
	}
	w.people = p3
	if _, err := ceremony.CopyBackup(ctx, w.env, ceremony.BackupCopyRequest{Root: "acme-root", To: t.TempDir(), By: "Ada Admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.SetModule(ctx, w.env, w.quorum(t, 2, 3), ceremony.SetModuleRequest{Module: testhsm.CopyModule(t), OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.Destroy(ctx, w.env, w.quorum(t, 1, 2), []byte(opsPIN)); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, reg(), noRecord.RunID); st != registry.RunCompleted {
		t.Fatalf("the root CRL without a record is %s", st)
	}

	live := w.env.Workspace.DBPath()
	rep := w.rebuild(t)
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	for _, p := range rep.Problems {
		t.Errorf("rebuild: %s", p)
	}
	if rep.Live != live {
		t.Errorf("compared with %q, not the live registry %s", rep.Live, live)
	}
	for _, d := range rep.Diffs {
		t.Errorf("the registry rebuilt from the journals differs from the live one (- live, + rebuilt): %s", d)
	}
	if t.Failed() {
		t.Log("The registry is derived data: every registry write must journal a fact carrying all it stores. " +
			"A table or column that differs is written by a change without one: in registry/facts.go give that change a Fact " +
			"(one struct with every value it stores, the clock's and the registry's state's included, and apply, which makes " +
			"the same change on replay), list it in factKinds, and have the write pass it to Registry.write; the workflow must " +
			"make the change through run.Run.Registry() (or an operation's, run.StartOperation), so the fact lands in its journal. " +
			"A value that truly cannot be derived is left out in registry/compare.go, with the reason beside it. " +
			"Then run every new workflow in world_test.go.")
	}
	if rep.Journals < 20 || rep.Records < 10 || rep.Facts < 50 {
		t.Errorf("the rebuild read %d journals, %d records, %d facts: fewer than the workflows made", rep.Journals, rep.Records, rep.Facts)
	}
	t.Logf("%s", rep.Summary())
	// The live registry is untouched, and the rebuilt one opens.
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live registry: %v", err)
	}
	r, err := registry.Open(ctx, rep.Rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, _ := r.CountDevices(ctx, registry.DeviceDecommissioned); n != 6 {
		t.Errorf("%d devices decommissioned in the rebuilt registry, want 6", n)
	}
}

// The rebuild names what it cannot account for: a record without its journal, a record whose
// journal grew after it, a journal whose chain is broken, a journal from before typed payloads;
// it leaves out a torn last line, saying so; and Replace refuses while anything is missing,
// then puts the rebuilt registry in place, keeping the old one beside it.
func TestRebuildNamesWhatItCannotAccountFor(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.provision(t, "P1")
	res, err := decommission.Decommission(ctx, w.env, decommission.Request{Serial: "P1", Method: decommission.Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(w.dir, workspace.RecordsDir)
	journals := filepath.Join(w.dir, workspace.JournalDir)
	rep := w.rebuild(t)
	if !rep.Complete() || len(rep.Diffs) != 0 {
		t.Fatalf("a clean workspace: %+v", rep)
	}
	os.Remove(rep.Rebuilt)

	// A record copied in from elsewhere; an entry appended to a recorded run's journal; a
	// journal whose second line was edited; an old journal of string payloads; a torn last line.
	b, _ := os.ReadFile(res.RecordPath)
	os.WriteFile(filepath.Join(records, "stray.pdf"), b, 0o644)
	j, err := record.OpenJournal(res.JournalPath, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	j.Note("afterwards", record.System, nil)
	j.Close()
	first, _ := filepath.Glob(filepath.Join(journals, "acme-root-issue-ca-*.jsonl"))
	jb, _ := os.ReadFile(first[0])
	os.WriteFile(first[0], []byte(strings.Replace(string(jb), `"role":"system"`, `"role":"administrator"`, 1)), 0o644)
	os.WriteFile(filepath.Join(journals, "old-run.jsonl"), []byte(`{"seq":1,"time":"2026-11-01T10:00:00Z","run":"old-run","step":"root.preflight","status":"done","data":{"host":"ws1"},"prev":"`+strings.Repeat("0", 64)+`"}`+"\n"), 0o644)
	op, _ := filepath.Glob(filepath.Join(journals, "P1-provision-*.jsonl"))
	f, _ := os.OpenFile(op[0], os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":99,"time":"2026-`)
	f.Close()

	rep = w.rebuild(t)
	want := []string{
		"record stray.pdf: no journal of the workspace is its run's",
		"record " + filepath.Base(res.RecordPath) + " carries the first",
		"nothing may be journaled after a run's record",
		"journal " + filepath.Base(first[0]) + ": journal line",
		"journal old-run.jsonl: it does not begin with the build that wrote it",
	}
	all := strings.Join(rep.Problems, "\n")
	for _, s := range want {
		if !strings.Contains(all, s) {
			t.Errorf("problems lack %q:\n%s", s, all)
		}
	}
	if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, filepath.Base(op[0])+": its last line (23 bytes) is incomplete") {
		t.Errorf("notes: %s", notes)
	}
	ws, err := workspace.Open(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := Replace(ws, rep, time.Now()); !errors.Is(err, ErrIncomplete) {
		t.Errorf("replace with problems: %v", err)
	}
	if _, err := os.Stat(ws.DBPath()); err != nil {
		t.Errorf("a refused replace moved the live registry: %v", err)
	}
	// Put right, the rebuild is complete and replaces the live registry.
	os.Remove(filepath.Join(records, "stray.pdf"))
	os.Remove(filepath.Join(journals, "old-run.jsonl"))
	os.WriteFile(first[0], jb, 0o644)
	// The record no longer matches its grown journal; without it, the run is not completed in
	// the rebuilt registry: a difference from the live one, not something missing.
	os.Remove(res.RecordPath)
	os.Remove(rep.Rebuilt)
	rep, err = Rebuild(ctx, ws, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if len(rep.Diffs) != 2 || rep.Diffs[0].Table != "decommission_results" || rep.Diffs[1].Table != "runs" ||
		!strings.Contains(rep.Diffs[1].String(), `+ id="`+res.RunID+`", kind="decommission", operation="single", subject="P1", status="running"`) {
		t.Errorf("diffs: %v", rep.Diffs)
	}
	if err := Replace(ws, rep, time.Now()); err != nil {
		t.Fatal(err)
	}
	if rep.Rebuilt != ws.DBPath() || rep.Replaced == "" {
		t.Errorf("replaced: %+v", rep)
	}
	if _, err := os.Stat(rep.Replaced); err != nil {
		t.Errorf("the old registry is not kept: %v", err)
	}
	// Two rebuilds in one second (a rebuild, then one with --replace, as a person types them)
	// each take a name of their own.
	at := time.Now()
	ra, err := Rebuild(ctx, ws, at)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Rebuild(ctx, ws, at)
	if err != nil {
		t.Fatalf("a second rebuild in the same second: %v", err)
	}
	if ra.Rebuilt == rb.Rebuilt || !strings.HasSuffix(rb.Rebuilt, "-2.db") {
		t.Errorf("two rebuilds in one second made %s and %s", ra.Rebuilt, rb.Rebuilt)
	}
	if err := Replace(ws, rb, at); err != nil {
		t.Fatalf("replace in the same second as the last: %v", err)
	}
}

// TestFleetChildHelper is the child of TestRegistryDeletedDuringAFleet: it retires the fleet
// of the manifest, and after its first thousand devices says so and waits for a line on its
// standard input before going on.
func TestFleetChildHelper(t *testing.T) {
	dir, manifest := os.Getenv("CUSTOS_TEST_FLEET_WS"), os.Getenv("CUSTOS_TEST_FLEET_MANIFEST")
	if dir == "" {
		t.Skip("child process of TestRegistryDeletedDuringAFleet")
	}
	ctx := context.Background()
	env, err := run.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	paused := false
	env.Progress = func(e run.Event) {
		if e.Step.ID == "fleet" && e.Done >= 1000 && !paused {
			paused = true
			fmt.Printf("handled %d\n", e.Done)
			bufio.NewReader(os.Stdin).ReadString('\n')
		}
	}
	m, err := decommission.LoadManifest(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = decommission.Fleet(ctx, env, m, decommission.FleetRequest{ManifestPath: manifest, Technician: "Tess Tech", Validator: "Vic Validator",
		Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		fmt.Printf("fleet failed: %v\n", err)
		os.Exit(1)
	}
}

// The registry deleted while a fleet runs: the run fails at its next commit instead of
// reporting success; every way of opening the workspace then refuses it, naming the way out;
// the registry rebuilt from the journals holds everything committed; the fleet, run again,
// finishes (including the device whose erasure the failed commit left unrecorded); and the
// root works again: an issuing CA under quorum.
func TestRegistryDeletedDuringAFleet(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.provision(t, "E1")
	w.provision(t, "E2")
	const lost = 1200
	var serials, rows []string
	for i := range lost {
		serials = append(serials, fmt.Sprintf("U%04d", i))
	}
	if _, err := decommission.Import(ctx, w.env, w.issuer, []string{w.certificates(t, serials...)}, nil); err != nil {
		t.Fatal(err)
	}
	rows = append(rows, "E1,erase,,")
	for _, s := range serials {
		rows = append(rows, s+",unreachable,,lost")
	}
	rows = append(rows, "E2,erase,,")
	m := w.manifest(t, "fleet.csv", rows...)
	w.close()

	child := exec.Command(os.Args[0], "-test.run=^TestFleetChildHelper$", "-test.count=1")
	child.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_WS="+w.dir, "CUSTOS_TEST_FLEET_MANIFEST="+filepath.Join(filepath.Dir(w.dir), "fleet.csv"))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	var stderr strings.Builder
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "handled 1001") {
		child.Process.Kill()
		t.Fatalf("the child did not pause after its first batch: %q %v\n%s", line, err, stderr.String())
	}
	db := filepath.Join(w.dir, "custos.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("go on\n"))
	rest, _ := io.ReadAll(out)
	if err := child.Wait(); err == nil {
		t.Fatalf("the fleet reported success with its registry deleted:\n%s", rest)
	}
	if !strings.Contains(string(rest), "was deleted or moved away") {
		t.Errorf("the fleet's failure does not say its registry was deleted:\n%s", rest)
	}

	// Every way in refuses the workspace, naming why.
	if _, _, err := registry.OpenWorkspace(ctx, w.dir); !errors.Is(err, registry.ErrRegistryLost) {
		t.Errorf("open to work: %v", err)
	}
	if _, _, _, err := registry.OpenWorkspaceReadOnly(ctx, w.dir); !errors.Is(err, registry.ErrRegistryLost) {
		t.Errorf("open to read: %v", err)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a refused open created a registry")
	}

	rep := w.rebuild(t)
	if !rep.Complete() || rep.Live != "" {
		t.Fatalf("rebuild: %+v", rep)
	}
	ws, err := workspace.Open(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Replace(ws, rep, time.Now()); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	w.open(t)
	if n, _ := w.env.Registry.CountDevices(ctx, registry.DeviceDecommissioned); n != 1001 {
		t.Errorf("%d devices decommissioned in the rebuilt registry, want the 1001 committed before the deletion", n)
	}
	res, err := w.fleet(ctx, m, "fleet.csv")
	if err != nil {
		t.Fatal(err)
	}
	if res.Decommissioned != lost+2 || res.Failed != 0 {
		t.Errorf("the fleet run again: %+v", res)
	}
	if n, _ := w.env.Registry.CountDevices(ctx, registry.DeviceDecommissioned); n != lost+2 {
		t.Errorf("%d devices decommissioned, want %d", n, lost+2)
	}
	if _, err := ceremony.IssueCA(ctx, w.env, w.quorum(t, 1, 3), ceremony.IssueCARequest{CommonName: "Acme Devices CA 2", OpsPIN: []byte(opsPIN)}); err != nil {
		t.Errorf("the root after the rebuild: %v", err)
	}
}
