package registry

import (
	"context"
	"testing"
	"time"
)

// A rekey run is stored and read back as one, and RekeyDevice registers the new key and
// certificate once: the old key deactivated by the run with its note, the device moved to the
// new issuer; again (a resumed run) it changes nothing; an issuer under another root, a run
// that is not a running rekey, and a decommissioned device are refused.
func TestRekeyDevice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	at := t0.Add(time.Hour)
	_, old := w.register(t, "SN-1", at)
	ica2 := newSubCA(t, w.root, "Acme Medical Device CA 2")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-two", Kind: IssuerIssuing, Certificate: ica2.cert.Raw, ParentID: "acme-root-2026",
		CeremonyID: "acme-root-2026", Key: opsKey(2), CreatedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.StartRun(ctx, Run{ID: "rk-1", Kind: RunRekey, Operation: "rekey", Subject: "SN-1", JournalPath: "journal/rk-1.jsonl"}); err != nil {
		t.Fatal(err)
	}
	rr, err := w.r.Run(ctx, "rk-1")
	if err != nil || rr.Kind != RunRekey || rr.Operation != "rekey" {
		t.Fatalf("the rekey run reads back as %+v, %v", rr, err)
	}
	if _, err := w.r.StartRun(ctx, Run{ID: "rk-bad", Kind: RunRekey, Operation: "single", JournalPath: "j"}); err == nil {
		t.Error("a rekey run with operation single was accepted")
	}
	when := at.Add(48 * time.Hour)
	c := leaf(t, ica2, "SN-1", when, when.AddDate(5, 0, 0))
	cert, err := CertificateFromX509("ica-two", c)
	if err != nil {
		t.Fatal(err)
	}
	rk := DeviceRekey{RunID: "rk-1", DeviceSerial: "SN-1", Certificate: cert,
		Key: DeviceKey{KeyID: []byte("new"), PublicKeySHA256: PublicKeySHA256(c), TokenLabel: "SN-1", GeneratedAt: when}}
	w.startRun(t, "dec-1", "single")
	bad := rk
	bad.RunID = "dec-1"
	_, err = w.r.RekeyDevice(ctx, bad)
	wantErr(t, err, ErrConflict, "running rekey run")
	if already, err := w.r.RekeyDevice(ctx, rk); err != nil || already {
		t.Fatalf("rekey: %v %v", already, err)
	}
	if already, err := w.r.RekeyDevice(ctx, rk); err != nil || !already {
		t.Fatalf("the same rekey again: %v %v", already, err)
	}
	h, err := w.r.DeviceHistory(ctx, "SN-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Device.IssuerID != "ica-two" || len(h.Certificates) != 2 || len(h.Keys) != 2 {
		t.Fatalf("history %+v", h)
	}
	if k := h.Keys[0]; k.State != KeyDeactivated || k.PublicKeySHA256 != PublicKeySHA256(old) {
		t.Errorf("old key %+v", k)
	}
	last := h.Keys[0].History[len(h.Keys[0].History)-1]
	if last.RunID != "rk-1" || last.Note != RekeyNote("rk-1") || !last.At.Equal(when) {
		t.Errorf("the old key's deactivation: %+v", last)
	}
	if k := h.Keys[1]; k.State != KeyActive || k.CertIssuerID != "ica-two" {
		t.Errorf("new key %+v", k)
	}
	if err := w.r.SetKeyStateInRun(ctx, "rk-1", "SN-1", PublicKeySHA256(old), KeyDestroyed, when.Add(time.Minute), "destroyed"); err != nil {
		t.Fatal(err)
	}
	h, _ = w.r.DeviceHistory(ctx, "SN-1")
	if last := h.Keys[0].History[len(h.Keys[0].History)-1]; last.State != KeyDestroyed || last.RunID != "rk-1" {
		t.Errorf("the old key's destruction: %+v", last)
	}

	// Another root's issuing CA is refused.
	other := newRoot(t, "Other Root")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "other-root", Kind: IssuerRoot, Certificate: other.cert.Raw,
		CeremonyID: "other-root", Key: KeyLocation{TokenLabel: "other-root", KeyID: []byte{9}, Algorithm: "ecdsa-p256"}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	oca := newSubCA(t, other, "Other CA")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-other", Kind: IssuerIssuing, Certificate: oca.cert.Raw, ParentID: "other-root",
		CeremonyID: "other-root", Key: opsKey(3), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	c3 := leaf(t, oca, "SN-1", when, when.AddDate(5, 0, 0))
	cert3, _ := CertificateFromX509("ica-other", c3)
	_, err = w.r.RekeyDevice(ctx, DeviceRekey{RunID: "rk-1", DeviceSerial: "SN-1", Certificate: cert3,
		Key: DeviceKey{KeyID: []byte("x"), PublicKeySHA256: PublicKeySHA256(c3)}})
	wantErr(t, err, ErrInvalid, "under the device's root")
}
