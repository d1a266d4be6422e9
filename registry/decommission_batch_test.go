package registry

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// TestDecommissionBatchMatchesDeviceByDevice records one batch of every kind of device a fleet
// meets in two copies of the same registry, once with the batch's statements and once device
// by device: the results and every table must come out the same.
func TestDecommissionBatchMatchesDeviceByDevice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	year := t0.AddDate(1, 0, 0)
	plain, _ := w.register(t, "SN-PLAIN", t0)
	w.register(t, "SN-RENEWED", t0)
	// A new key and certificate half a year on: the old key deactivated, both certificates valid.
	renewed := leaf(t, w.ica, "SN-RENEWED", t0.AddDate(0, 6, 0), t0.AddDate(5, 0, 0))
	rc, err := CertificateFromX509("ica-test", renewed)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.r.AddDeviceCertificate(ctx, "SN-RENEWED", rc, DeviceKey{KeyID: []byte("dev-SN-RENEWED-2"),
		PublicKeySHA256: PublicKeySHA256(renewed), TokenLabel: "SN-RENEWED", ActivatedAt: t0.AddDate(0, 6, 0)}); err != nil {
		t.Fatal(err)
	}
	w.register(t, "SN-EXPIRED", t0) // retired after its certificate expired: nothing to revoke
	revoked, _ := w.register(t, "SN-REVOKED", t0)
	if _, _, err := w.r.Revoke(ctx, Revocation{IssuerID: "ica-test", Serial: revoked.Certificate.Serial, RevokedAt: t0.AddDate(0, 3, 0),
		Reason: pki.ReasonAffiliationChanged}); err != nil {
		t.Fatal(err)
	}
	w.register(t, "SN-EARLIER", t0)
	w.register(t, "SN-FAILED", t0)
	w.startRun(t, "run-1", "single")
	if _, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-EARLIER", Method: "erase",
		Verification: "erased", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(0, 9, 0)}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "fleet-1", "fleet")
	if err := w.r.RecordDecommissionFailure(ctx, Decommission{RunID: "fleet-1", DeviceSerial: "SN-FAILED", Method: "erase",
		Verification: "token not found", At: year}); err != nil {
		t.Fatal(err)
	}
	batch := []Decommission{
		{RunID: "fleet-1", DeviceSerial: "SN-RENEWED", Method: "unreachable", Verification: "lost in transit, attested by W",
			Reason: pki.ReasonKeyCompromise, KeyState: KeyCompromised, At: year, InvalidityDate: t0.AddDate(0, 11, 0), Note: "lost"},
		{RunID: "fleet-1", DeviceSerial: "SN-PLAIN", Method: "erase", Verification: "0 of 3 objects remain",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: year.Add(time.Second)},
		{RunID: "fleet-1", DeviceSerial: "SN-EXPIRED", Method: "physical", Verification: "shredded, attested by W",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(6, 0, 0)},
		{RunID: "fleet-1", DeviceSerial: "SN-EARLIER", Method: "unreachable", Verification: "already decommissioned",
			Reason: pki.ReasonKeyCompromise, KeyState: KeyCompromised, At: year, Note: "in the manifest again"},
		{RunID: "fleet-1", DeviceSerial: "SN-REVOKED", Method: "physical", Verification: "shredded, attested by W",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: year},
		{RunID: "fleet-1", DeviceSerial: "SN-FAILED", Method: "erase", Verification: "0 of 2 objects remain, erased on a second try",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: year.Add(2 * time.Second)},
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if _, err := w.r.db.ExecContext(ctx, `VACUUM INTO ?`, copyPath); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other = journaled(other)
	other.testDeviceByDevice = true

	// The batch's statements take this batch themselves (a failure there would only send it
	// device by device, and the comparison below would prove nothing).
	tx, err := w.r.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &batchState{sc: newStmtCache(tx), issuerIDs: map[int64]string{}}
	err = decommissionBatch(ctx, b, batch, make([]DeviceResult, len(batch)))
	b.sc.close()
	tx.Rollback()
	if err != nil {
		t.Fatalf("the batch statements failed: %v", err)
	}
	got, err := w.r.DecommissionDevices(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want, err := other.DecommissionDevices(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch results\n%+v\ndevice by device\n%+v", got, want)
	}
	// What each device's result says is right in itself, not only the same both ways.
	outcomes := map[string]Outcome{}
	revokedBy := map[string]int{}
	keys := map[string]int{}
	for _, r := range got {
		outcomes[r.DeviceSerial], revokedBy[r.DeviceSerial], keys[r.DeviceSerial] = r.Outcome, len(r.RevokedSerials), len(r.KeyIDs)
	}
	wantOutcomes := map[string]Outcome{"SN-RENEWED": OutcomeDecommissioned, "SN-PLAIN": OutcomeDecommissioned, "SN-EXPIRED": OutcomeDecommissioned,
		"SN-EARLIER": OutcomeAlreadyDecommissioned, "SN-REVOKED": OutcomeDecommissioned, "SN-FAILED": OutcomeDecommissioned}
	wantRevoked := map[string]int{"SN-RENEWED": 2, "SN-PLAIN": 1, "SN-FAILED": 1}
	wantKeys := map[string]int{"SN-RENEWED": 2, "SN-PLAIN": 1, "SN-EXPIRED": 1, "SN-REVOKED": 1, "SN-FAILED": 1}
	for s := range wantOutcomes {
		if outcomes[s] != wantOutcomes[s] || revokedBy[s] != wantRevoked[s] || keys[s] != wantKeys[s] {
			t.Errorf("%s: %s, %d revoked, %d keys; want %s, %d, %d", s, outcomes[s], revokedBy[s], keys[s], wantOutcomes[s], wantRevoked[s], wantKeys[s])
		}
	}
	if got[1].RevokedSerials[0].String() != plain.Certificate.Serial.String() || string(got[1].KeyIDs[0]) != "dev-SN-PLAIN" {
		t.Errorf("SN-PLAIN: revoked %v, keys %q", got[1].RevokedSerials, got[1].KeyIDs)
	}
	diffs, err := Compare(ctx, w.r.Path(), other.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("the batch and device by device differ: %s", d)
	}
	// What the batch returned is what the registry gives back for the devices (a fleet's
	// record lists the one or the other).
	serials := make([]string, len(batch))
	for i, d := range batch {
		serials[i] = d.DeviceSerial
	}
	if read, err := w.r.RunResultsOf(ctx, "fleet-1", serials); err != nil || !reflect.DeepEqual(read, got) {
		t.Fatalf("read back: %v\n%+v\nwant\n%+v", err, read, got)
	}
	// And the same batch again (a resumed run): the stored results, both ways.
	again, err := w.r.DecommissionDevices(ctx, batch)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("the batch again: %v\n%+v\nwant\n%+v", err, again, got)
	}
}

// TestLookupDevices looks up a page of serials in one query: one answer per serial in the
// order asked, unknown ones said, the run that retired a device and what a run recorded.
func TestLookupDevices(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for _, s := range []string{"SN-A", "SN-B", "SN-C"} {
		w.register(t, s, t0)
	}
	w.startRun(t, "run-1", "single")
	if _, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-B", Method: "erase",
		Verification: "erased", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "fleet-1", "fleet")
	if err := w.r.RecordDecommissionFailure(ctx, Decommission{RunID: "fleet-1", DeviceSerial: "SN-C", Method: "erase",
		Verification: "token not found", At: t0.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	got, err := w.r.LookupDevices(ctx, "run-1", []string{"SN-C", "SN-GHOST", "SN-B", "SN-A", `"; DROP TABLE devices; --`})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d answers for 5 serials", len(got))
	}
	want := []struct {
		serial string
		status DeviceStatus
		by     string
		inRun  Outcome
		done   bool
	}{{"SN-C", DeviceActive, "", "", false}, {"", "", "", "", false}, {"SN-B", DeviceDecommissioned, "run-1", OutcomeDecommissioned, true},
		{"SN-A", DeviceActive, "", "", false}, {"", "", "", "", false}}
	for i, w := range want {
		g := got[i]
		if g.Serial != w.serial || g.Registered != (w.serial != "") || g.Status != w.status || g.DecommissionedBy != w.by || g.InRun != w.inRun || g.Done() != w.done {
			t.Errorf("answer %d: %+v, want %+v", i, g, w)
		}
	}
	if got[0].IssuerID != "ica-test" || got[0].Model != "InfusionPump X2" || !got[2].DecommissionedAt.Equal(t0.AddDate(1, 0, 0)) {
		t.Errorf("devices: %+v, %+v", got[0].Device, got[2].Device)
	}
	// A failure is recorded but not done; another run's result is not this run's.
	fleet, err := w.r.LookupDevices(ctx, "fleet-1", []string{"SN-C", "SN-B"})
	if err != nil {
		t.Fatal(err)
	}
	if fleet[0].InRun != OutcomeFailed || fleet[0].Done() || fleet[1].InRun != "" || fleet[1].DecommissionedBy != "run-1" {
		t.Errorf("in fleet-1: %+v, %+v", fleet[0], fleet[1])
	}
	if none, err := w.r.LookupDevices(ctx, "", nil); err != nil || len(none) != 0 {
		t.Errorf("no serials: %v, %v", none, err)
	}
}

// TestRunResultsOf reads a run's results of a page of devices in the order asked, and names
// a device the run has no result for.
func TestRunResultsOf(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	for _, s := range []string{"SN-A", "SN-B", "SN-C"} {
		w.register(t, s, t0)
	}
	w.startRun(t, "fleet-1", "fleet")
	if _, err := w.r.DecommissionDevices(ctx, []Decommission{
		{RunID: "fleet-1", DeviceSerial: "SN-A", Method: "physical", Verification: "shredded", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)},
		{RunID: "fleet-1", DeviceSerial: "SN-B", Method: "physical", Verification: "shredded", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.r.RecordDecommissionFailure(ctx, Decommission{RunID: "fleet-1", DeviceSerial: "SN-C", Method: "erase",
		Verification: "token not found", At: t0.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	got, err := w.r.RunResultsOf(ctx, "fleet-1", []string{"SN-C", "SN-A", "SN-B"})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range got {
		order = append(order, r.DeviceSerial+" "+string(r.Outcome))
	}
	if want := []string{"SN-C failed", "SN-A decommissioned", "SN-B decommissioned"}; !reflect.DeepEqual(order, want) {
		t.Errorf("results %q, want %q", order, want)
	}
	for _, serials := range [][]string{{"SN-A", "SN-GHOST"}, {`"; DROP TABLE devices; --`}} {
		if _, err := w.r.RunResultsOf(ctx, "fleet-1", serials); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), serials[len(serials)-1]) {
			t.Errorf("%q: err = %v, want the device without a result named", serials, err)
		}
	}
	if _, err := w.r.RunResultsOf(ctx, "run-other", []string{"SN-A"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("another run: err = %v, want not found", err)
	}
}
