package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

func TestDecommissionOneDevice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, _ := w.register(t, "SN-1", t0)
	w.startRun(t, "run-1", "single")
	at := t0.AddDate(1, 0, 0)
	d := Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "erase", Verification: "0 of 3 objects remain; signing fails",
		Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: at, Note: "returned by customer"}
	res, err := w.r.DecommissionDevice(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	want := DeviceResult{RunID: "run-1", DeviceSerial: "SN-1", DeviceModel: nd.Device.Model, IssuerID: "ica-test", Outcome: OutcomeDecommissioned, Method: "erase",
		Verification: d.Verification, Reason: pki.ReasonCessationOfOperation, Note: d.Note, KeyState: KeyDestroyed, RevokedAt: at,
		RevokedSerials: []SerialNumber{nd.Certificate.Serial}, KeyIDs: [][]byte{nd.Key.KeyID}, At: at}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("result\n%+v\nwant\n%+v", res, want)
	}
	// All four changes are there.
	dev, _ := w.r.Device(ctx, "SN-1")
	rv, err := w.r.RevocationOf(ctx, "ica-test", nd.Certificate.Serial)
	h, _ := w.r.DeviceHistory(ctx, "SN-1")
	if dev.Status != DeviceDecommissioned || !dev.DecommissionedAt.Equal(at) || err != nil || !rv.RevokedAt.Equal(at) ||
		rv.Reason != pki.ReasonCessationOfOperation || h.Keys[0].State != KeyDestroyed || len(h.Results) != 1 {
		t.Fatalf("after decommission: device %+v, revocation %+v %v, key %s", dev, rv, err, h.Keys[0].State)
	}
	stored := collect(t, w.r.RunResults(ctx, "run-1"))
	if len(stored) != 1 || !reflect.DeepEqual(stored[0], want) {
		t.Fatalf("stored result %+v", stored)
	}

	// The same run again (a resumed run): the stored result, nothing changed.
	again := d
	again.At, again.Reason = at.Add(time.Hour), pki.ReasonSuperseded
	res2, err := w.r.DecommissionDevice(ctx, again)
	if err != nil || !reflect.DeepEqual(res2, want) {
		t.Fatalf("second time in the same run: %+v, %v", res2, err)
	}
	// Another run: already decommissioned, and it says by which run.
	w.startRun(t, "run-2", "single")
	again.RunID = "run-2"
	res3, err := w.r.DecommissionDevice(ctx, again)
	if err != nil || res3.Outcome != OutcomeAlreadyDecommissioned || len(res3.RevokedSerials) != 0 {
		t.Fatalf("in a later run: %+v, %v", res3, err)
	}
	if !bytes.Contains([]byte(res3.Note), []byte("by run run-1")) {
		t.Errorf("note %q does not name the run", res3.Note)
	}
	if n, _ := w.r.CountRevocations(ctx, "ica-test"); n != 1 {
		t.Errorf("%d revocations", n)
	}
	if rv2, _ := w.r.RevocationOf(ctx, "ica-test", nd.Certificate.Serial); !rv2.RevokedAt.Equal(at) || rv2.Reason != pki.ReasonCessationOfOperation {
		t.Errorf("the revocation changed: %+v", rv2)
	}
	h2, _ := w.r.DeviceHistory(ctx, "SN-1")
	if len(h2.Keys[0].History) != len(h.Keys[0].History) {
		t.Errorf("key history grew from %d to %d", len(h.Keys[0].History), len(h2.Keys[0].History))
	}
}

func TestDecommissionLostDevice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.register(t, "SN-LOST", t0)
	w.startRun(t, "run-1", "single")
	at, lostSince := t0.AddDate(0, 3, 0), t0.AddDate(0, 2, 0)
	res, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-LOST", Method: "unreachable",
		Verification: "not reachable: reported lost", Reason: pki.ReasonKeyCompromise, KeyState: KeyCompromised, At: at, InvalidityDate: lostSince})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyState != KeyCompromised || !res.InvalidityDate.Equal(lostSince) {
		t.Errorf("result %+v", res)
	}
	h, _ := w.r.DeviceHistory(ctx, "SN-LOST")
	var states []KeyState
	for _, c := range h.Keys[0].History {
		states = append(states, c.State)
	}
	if !reflect.DeepEqual(states, []KeyState{KeyPreActivation, KeyActive, KeyCompromised}) {
		t.Errorf("a lost device's key went %v", states)
	}
	if len(h.Revocations) != 1 || h.Revocations[0].Reason != pki.ReasonKeyCompromise || !h.Revocations[0].InvalidityDate.Equal(lostSince) {
		t.Errorf("revocations %+v", h.Revocations)
	}
}

func TestDecommissionSkipsExpiredCertificates(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, _ := w.register(t, "SN-OLD", t0)
	w.startRun(t, "run-1", "single")
	res, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-OLD", Method: "physical",
		Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: nd.Certificate.NotAfter.Add(time.Hour)})
	if err != nil || res.Outcome != OutcomeDecommissioned || len(res.RevokedSerials) != 0 {
		t.Fatalf("decommission after expiry: %+v, %v", res, err)
	}
}

func TestDecommissionRefusals(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.register(t, "SN-1", t0)
	w.startRun(t, "run-1", "single")
	if _, err := w.r.StartRun(ctx, Run{ID: "cer-1", Kind: RunCeremony, Operation: "root", JournalPath: "j"}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "run-done", "single")
	if err := w.r.CompleteRun(ctx, "run-done", "records/x.pdf", time.Time{}); err != nil {
		t.Fatal(err)
	}
	good := Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "erase", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)}
	tests := []struct {
		name   string
		edit   func(d *Decommission)
		target error
		want   []string
	}{
		{"unknown device", func(d *Decommission) { d.DeviceSerial = "SN-404" }, ErrNotFound, []string{`"SN-404"`, "not registered"}},
		{"unknown run", func(d *Decommission) { d.RunID = "run-404" }, ErrNotFound, []string{`"run-404"`}},
		{"ceremony run", func(d *Decommission) { d.RunID = "cer-1" }, ErrConflict, []string{`"cer-1"`, "ceremony"}},
		{"finished run", func(d *Decommission) { d.RunID = "run-done" }, ErrConflict, []string{`"run-done"`, "completed"}},
		{"key state active", func(d *Decommission) { d.KeyState = KeyActive }, ErrInvalid, []string{`"SN-1"`, `"active"`}},
		{"no method", func(d *Decommission) { d.Method = "" }, ErrInvalid, []string{"method"}},
		{"reason 7", func(d *Decommission) { d.Reason = 7 }, ErrInvalid, []string{"reason 7"}},
		{"invalidity in the future", func(d *Decommission) { d.InvalidityDate = d.At.Add(time.Hour) }, ErrInvalid, []string{"invalidity"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := good
			tc.edit(&d)
			_, err := w.r.DecommissionDevice(ctx, d)
			wantErr(t, err, tc.target, tc.want...)
			if dev, _ := w.r.Device(ctx, "SN-1"); dev.Status != DeviceActive {
				t.Fatal("a refused decommission changed the device")
			}
		})
	}
}

// TestDecommissionBatchIsAllOrNothing puts an unknown device in the middle of a batch: the
// devices before it in the same batch must not be decommissioned.
func TestDecommissionBatchIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var batch []Decommission
	for i := 0; i < 6; i++ {
		s := fmt.Sprintf("SN-%d", i)
		w.register(t, s, t0)
		batch = append(batch, Decommission{RunID: "fleet-1", DeviceSerial: s, Method: "unreachable", Reason: pki.ReasonCessationOfOperation,
			KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)})
	}
	w.startRun(t, "fleet-1", "fleet")
	bad := append(append(append([]Decommission{}, batch[:3]...), Decommission{RunID: "fleet-1", DeviceSerial: "SN-GHOST",
		Method: "unreachable", KeyState: KeyDestroyed}), batch[3:]...)
	_, err := w.r.DecommissionDevices(ctx, bad)
	wantErr(t, err, ErrNotFound, `"SN-GHOST"`, `"fleet-1"`)
	if n, _ := w.r.CountDevices(ctx, DeviceDecommissioned); n != 0 {
		t.Fatalf("%d devices decommissioned by a failed batch", n)
	}
	if n, _ := w.r.CountRevocations(ctx, "ica-test"); n != 0 {
		t.Fatalf("%d revocations from a failed batch", n)
	}
	if done, _ := w.r.RunDoneSerials(ctx, "fleet-1"); len(done) != 0 {
		t.Fatalf("done after a failed batch: %v", done)
	}
	res, err := w.r.DecommissionDevices(ctx, batch)
	if err != nil || len(res) != 6 {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.DeviceSerial != batch[i].DeviceSerial || r.Outcome != OutcomeDecommissioned || len(r.RevokedSerials) != 1 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

// TestFleetResume stops a fleet run after two batches (as a kill would), then resumes it
// with the whole manifest: each device is handled exactly once.
func TestFleetResume(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	injected := errors.New("killed")
	batches := 0
	r, err := open(ctx, path, func(op string) error {
		if op == "decommission" {
			batches++
			if batches == 3 {
				return injected
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	w := &world{r: r, root: newRoot(t, "Acme Medical Root CA 2026")}
	w.ica = newSubCA(t, w.root, "Acme Medical Device CA 1")
	newWorldOn(t, w)
	var manifest []Decommission
	for i := 0; i < 50; i++ {
		s := fmt.Sprintf("SN-%03d", i)
		w.register(t, s, t0)
		manifest = append(manifest, Decommission{RunID: "fleet-1", DeviceSerial: s, Method: "unreachable",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)})
	}
	// One device was retired earlier by another run.
	w.startRun(t, "single-0", "single")
	early := manifest[7]
	early.RunID = "single-0"
	if _, err := r.DecommissionDevice(ctx, early); err != nil {
		t.Fatal(err)
	}
	batches = 0
	w.startRun(t, "fleet-1", "fleet")
	run := func(size int) error {
		done, err := r.RunDoneSerials(ctx, "fleet-1")
		if err != nil {
			return err
		}
		var todo []Decommission
		for _, d := range manifest {
			if !done[d.DeviceSerial] {
				todo = append(todo, d)
			}
		}
		for len(todo) > 0 {
			n := min(size, len(todo))
			if _, err := r.DecommissionDevices(ctx, todo[:n]); err != nil {
				return err
			}
			todo = todo[n:]
		}
		return nil
	}
	if err := run(10); !errors.Is(err, injected) {
		t.Fatalf("first attempt: %v", err)
	}
	if done, _ := r.RunDoneSerials(ctx, "fleet-1"); len(done) != 20 {
		t.Fatalf("after the kill, %d done, want 20 (two batches)", len(done))
	}
	if err := run(10); err != nil {
		t.Fatal(err)
	}
	results := collect(t, r.RunResults(ctx, "fleet-1"))
	if len(results) != 50 {
		t.Fatalf("%d results", len(results))
	}
	outcomes := map[Outcome]int{}
	for _, res := range results {
		outcomes[res.Outcome]++
	}
	if outcomes[OutcomeDecommissioned] != 49 || outcomes[OutcomeAlreadyDecommissioned] != 1 {
		t.Errorf("outcomes %v", outcomes)
	}
	if n, _ := r.CountRevocations(ctx, "ica-test"); n != 50 {
		t.Errorf("%d revocations, want one per device", n)
	}
	// The fleet's CRL, then the record.
	num, err := r.AllocateCRLNumber(ctx, "ica-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RecordRunCRL(ctx, "fleet-1", "ica-test", num); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordRunCRL before RecordCRL: %v", err)
	}
	if err := r.RecordCRL(ctx, CRL{IssuerID: "ica-test", Number: num, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 1, 0), Entries: 50, Path: "crl/ica-test.crl"}); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordRunCRL(ctx, "fleet-1", "ica-test", num); err != nil {
		t.Fatal(err)
	}
	if err := r.CompleteRun(ctx, "fleet-1", "records/fleet-1.pdf", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, res := range collect(t, r.RunResults(ctx, "fleet-1")) {
		wantCRL := num
		if res.Outcome != OutcomeDecommissioned {
			wantCRL = 0
		}
		if res.CRLNumber != wantCRL || res.RecordPath != "records/fleet-1.pdf" {
			t.Errorf("%s: CRL %d, record %q", res.DeviceSerial, res.CRLNumber, res.RecordPath)
		}
	}
	if unfinished, _ := r.UnfinishedRuns(ctx); len(unfinished) != 1 || unfinished[0].ID != "single-0" {
		t.Errorf("unfinished runs %v", unfinished)
	}
}

// newWorldOn registers the world's CAs in its registry (for registries opened with a hook).
func newWorldOn(t *testing.T, w *world) *world {
	t.Helper()
	ctx := context.Background()
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "acme-root-2026", Kind: IssuerRoot, Certificate: w.root.cert.Raw,
		CeremonyID: "acme-root-2026", Key: KeyLocation{TokenLabel: "acme-root-2026", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-test", Kind: IssuerIssuing, Certificate: w.ica.cert.Raw, ParentID: "acme-root-2026",
		CeremonyID: "acme-root-2026", Key: opsKey(1)}); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestDecommissionFailureThenRetry(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.register(t, "SN-1", t0)
	w.startRun(t, "run-1", "fleet")
	fail := Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "erase", Verification: "object 'dev-SN-1' still present"}
	if err := w.r.RecordDecommissionFailure(ctx, fail); err != nil {
		t.Fatal(err)
	}
	if done, _ := w.r.RunDoneSerials(ctx, "run-1"); done["SN-1"] {
		t.Fatal("a failed device counts as done")
	}
	if dev, _ := w.r.Device(ctx, "SN-1"); dev.Status != DeviceActive {
		t.Fatal("a failure changed the device")
	}
	res, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "reinit", Verification: "token empty",
		Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)})
	if err != nil || res.Outcome != OutcomeDecommissioned {
		t.Fatalf("retry: %+v %v", res, err)
	}
	all := collect(t, w.r.RunResults(ctx, "run-1"))
	if len(all) != 1 || all[0].Method != "reinit" {
		t.Fatalf("results %+v", all)
	}
	wantErr(t, w.r.RecordDecommissionFailure(ctx, fail), ErrConflict, `"SN-1"`, `"run-1"`, "decommissioned")
	fail.DeviceSerial = "SN-404"
	wantErr(t, w.r.RecordDecommissionFailure(ctx, fail), ErrNotFound, `"SN-404"`)
}

func TestDecommissionRunRecord(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.startRun(t, "fleet-1", "fleet")
	run, err := w.r.DecommissionRun(ctx, "fleet-1")
	if err != nil || run.Technician != "Tess Tech" || run.Witness != "Wes Witness" || run.ManifestPath != "fleet.csv" ||
		len(run.ManifestSHA256) != 32 || run.Kind != RunDecommission || run.Status != RunRunning || run.Operation != "fleet" {
		t.Fatalf("%+v %v", run, err)
	}
	tests := []struct {
		name string
		run  DecommissionRun
		want string
	}{
		{"no technician", DecommissionRun{Run: Run{ID: "r1", Operation: "single", JournalPath: "j"}}, "technician"},
		{"fleet without manifest", DecommissionRun{Run: Run{ID: "r2", Operation: "fleet", JournalPath: "j"}, Technician: "T"}, "manifest"},
		{"odd operation", DecommissionRun{Run: Run{ID: "r3", Operation: "bulk", JournalPath: "j"}, Technician: "T"}, `"bulk"`},
		{"no journal", DecommissionRun{Run: Run{ID: "r4", Operation: "single"}, Technician: "T"}, "journal"},
		{"same id", DecommissionRun{Run: Run{ID: "fleet-1", Operation: "single", JournalPath: "j"}, Technician: "T"}, "exists"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.r.StartDecommissionRun(ctx, tc.run)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) || !bytes.Contains([]byte(err.Error()), []byte(tc.run.ID)) {
				t.Errorf("error %v, want one naming %q and the run", err, tc.want)
			}
		})
	}
	if _, err := w.r.StartRun(ctx, Run{ID: "cer-1", Kind: RunCeremony, Operation: "root", JournalPath: "j"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.r.DecommissionRun(ctx, "cer-1")
	wantErr(t, err, ErrNotFound, `"cer-1"`, "not a decommission")
}
