package registry

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

func TestRevokeIsIdempotent(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, _ := w.register(t, "SN-1", t0)
	serial := nd.Certificate.Serial
	first := Revocation{IssuerID: "ica-test", Serial: serial, RevokedAt: t0.Add(time.Hour), Reason: pki.ReasonKeyCompromise, InvalidityDate: t0}

	tests := []struct {
		name    string
		rv      Revocation
		already bool
	}{
		{"first", first, false},
		{"same again", first, true},
		{"other reason and time", Revocation{IssuerID: "ica-test", Serial: serial, RevokedAt: t0.AddDate(0, 1, 0), Reason: pki.ReasonSuperseded}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stored, already, err := w.r.Revoke(ctx, tc.rv)
			if err != nil {
				t.Fatal(err)
			}
			if already != tc.already {
				t.Errorf("already = %v, want %v", already, tc.already)
			}
			// Whatever the call said, the stored revocation is the first one.
			if !stored.RevokedAt.Equal(first.RevokedAt) || stored.Reason != first.Reason || !stored.InvalidityDate.Equal(first.InvalidityDate) ||
				!bytes.Equal(stored.Serial, serial) || stored.IssuerID != "ica-test" {
				t.Errorf("stored %+v", stored)
			}
		})
	}
	if n, _ := w.r.CountRevocations(ctx, "ica-test"); n != 1 {
		t.Errorf("%d revocations after revoking one certificate three times", n)
	}
	got, err := w.r.RevocationOf(ctx, "ica-test", serial)
	if err != nil || got.Reason != pki.ReasonKeyCompromise {
		t.Errorf("RevocationOf: %+v %v", got, err)
	}
}

func TestRevokeRefusals(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, _ := w.register(t, "SN-1", t0)
	unknown, _ := SerialFromBig(big.NewInt(0x0badc0de))
	tests := []struct {
		name   string
		rv     Revocation
		target error
		want   []string
	}{
		{"unknown serial", Revocation{IssuerID: "ica-test", Serial: unknown, Reason: pki.ReasonSuperseded}, ErrNotFound,
			[]string{"0badc0de", `"ica-test"`, "no certificate"}},
		{"serial of another issuer", Revocation{IssuerID: "acme-root-2026", Serial: nd.Certificate.Serial, Reason: pki.ReasonSuperseded}, ErrNotFound,
			[]string{nd.Certificate.Serial.String(), `"acme-root-2026"`}},
		{"unknown issuer", Revocation{IssuerID: "ica-none", Serial: nd.Certificate.Serial}, ErrNotFound, []string{`"ica-none"`}},
		{"certificateHold", Revocation{IssuerID: "ica-test", Serial: nd.Certificate.Serial, Reason: 6}, ErrInvalid, []string{"reason 6"}},
		{"invalidity after revocation", Revocation{IssuerID: "ica-test", Serial: nd.Certificate.Serial, Reason: pki.ReasonKeyCompromise,
			RevokedAt: t0, InvalidityDate: t0.Add(time.Hour)}, ErrInvalid, []string{"invalidity date"}},
		{"non-canonical serial", Revocation{IssuerID: "ica-test", Serial: SerialNumber{0, 0x80}}, ErrInvalid, []string{"leading zero"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := w.r.Revoke(ctx, tc.rv)
			wantErr(t, err, tc.target, tc.want...)
		})
	}
	_, err := w.r.RevocationOf(ctx, "ica-test", nd.Certificate.Serial)
	wantErr(t, err, ErrNotFound, "not revoked", nd.Certificate.Serial.String())
}

func TestRevokeIssuingCAUnderRoot(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	serial, _ := SerialFromBig(w.ica.cert.SerialNumber)
	stored, already, err := w.r.Revoke(ctx, Revocation{IssuerID: "acme-root-2026", Serial: serial, RevokedAt: t0, Reason: pki.ReasonCACompromise})
	if err != nil || already || stored.Reason != pki.ReasonCACompromise {
		t.Fatalf("revoke the issuing CA: %+v %v %v", stored, already, err)
	}
	// Its record signer, a role certificate, can be revoked by the root too.
	signer := leaf(t, w.root, "Signer", t0, t0.AddDate(1, 0, 0))
	rc, err := w.r.AddRoleCert(ctx, RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026",
		Certificate: signer.Raw, Key: opsKey(9)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.r.Revoke(ctx, Revocation{IssuerID: "acme-root-2026", Serial: rc.Serial, Reason: pki.ReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.r.CountRevocations(ctx, "acme-root-2026"); n != 2 {
		t.Errorf("root revocations: %d", n)
	}
}

func TestRevocationsStream(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var want []Revocation
	for i := 0; i < 20; i++ {
		nd, _ := w.register(t, "SN-"+string(rune('A'+i)), t0)
		rv := Revocation{IssuerID: "ica-test", Serial: nd.Certificate.Serial, RevokedAt: t0.Add(time.Duration(i) * time.Minute),
			Reason: []pki.Reason{pki.ReasonCessationOfOperation, pki.ReasonKeyCompromise, pki.ReasonSuperseded, pki.ReasonAffiliationChanged}[i%4]}
		if rv.Reason == pki.ReasonKeyCompromise {
			rv.InvalidityDate = t0.Add(-time.Hour)
		}
		if i%5 == 4 {
			continue // not every device is revoked
		}
		if _, _, err := w.r.Revoke(ctx, rv); err != nil {
			t.Fatal(err)
		}
		want = append(want, rv)
	}
	sort.Slice(want, func(i, j int) bool { return bytes.Compare(want[i].Serial, want[j].Serial) < 0 })
	var got []Revocation
	for rv, err := range w.r.Revocations(ctx, "ica-test") {
		if err != nil {
			t.Fatal(err)
		}
		rv.IssuerID = "ica-test"
		rv.Serial = append(SerialNumber(nil), rv.Serial...)
		got = append(got, rv)
	}
	if len(got) != len(want) {
		t.Fatalf("%d revocations streamed, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Serial, w.Serial) || !g.RevokedAt.Equal(w.RevokedAt) || g.Reason != w.Reason || !g.InvalidityDate.Equal(w.InvalidityDate) {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
	// The root has none; an unknown issuer is an error naming it.
	if n := len(collect(t, w.r.Revocations(ctx, "acme-root-2026"))); n != 0 {
		t.Errorf("root has %d revocations", n)
	}
	for _, err := range w.r.Revocations(ctx, "ica-none") {
		wantErr(t, err, ErrNotFound, `"ica-none"`)
	}
	// Stopping early gives the connection back.
	n := 0
	for range w.r.Revocations(ctx, "ica-test") {
		n++
		if n == 3 {
			break
		}
	}
	if err := w.r.SetSetting(ctx, "after-break", "ok"); err != nil {
		t.Fatal(err)
	}
	// A cancelled context ends the stream with an error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var sawErr bool
	for _, err := range w.r.Revocations(cctx, "ica-test") {
		sawErr = sawErr || err != nil
	}
	if !sawErr {
		t.Error("a cancelled stream reported no error")
	}
}

func TestSerialNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bad  bool
	}{
		{"01:A2:ff", "01a2ff", false},
		{"0x1a2ff", "01a2ff", false},
		{"00ff", "ff", false},
		{"0", "00", false},
		{"", "", true},
		{"xyz", "", true},
		{"-5", "", true},
	}
	for _, tc := range tests {
		got, err := ParseSerial(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got.String() != tc.want) {
			t.Errorf("ParseSerial(%q) = %s, %v", tc.in, got, err)
		}
	}
	if _, err := SerialFromBig(big.NewInt(-1)); err == nil {
		t.Error("negative serial accepted")
	}
	long, _ := SerialFromBig(new(big.Int).Lsh(big.NewInt(1), 165))
	if long.canonical() == nil {
		t.Error("a 21-byte serial is canonical")
	}
}

// TestRevocationsInNumericOrder uses serials of different lengths, whose byte order is not
// their numeric order (0x0100 sorts before 0x02 as bytes): the stream must be numeric, as the
// CRL encoder requires strictly increasing serials.
func TestRevocationsInNumericOrder(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	values := []int64{0x0100, 0x02, 0xff, 0x01000000, 0x7f, 0x010000, 0x03, 0x8000}
	for i, v := range values {
		s := fmt.Sprintf("SN-%d", i)
		c := leafWithSerial(t, w.ica, s, big.NewInt(v), t0, t0.AddDate(1, 0, 0))
		cert, _ := CertificateFromX509("ica-test", c)
		if err := w.r.RegisterDevice(ctx, NewDevice{Device: Device{Serial: s, Model: "m", IssuerID: "ica-test"}, Certificate: cert,
			Key: DeviceKey{PublicKeySHA256: PublicKeySHA256(c)}, Revoked: &Revocation{RevokedAt: t0, Reason: pki.ReasonSuperseded}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for rv, err := range w.r.Revocations(ctx, "ica-test") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rv.Serial.Big().Int64())
	}
	want := append([]int64(nil), values...)
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stream order %x, want %x", got, want)
	}
	// The serial's length is part of the key, so lookups and the joins still find each one.
	for _, v := range values {
		s, _ := SerialFromBig(big.NewInt(v))
		if _, err := w.r.RevocationOf(ctx, "ica-test", s); err != nil {
			t.Error(err)
		}
	}
	if h, _ := w.r.DeviceHistory(ctx, "SN-0"); len(h.Revocations) != 1 {
		t.Errorf("history of SN-0 has %d revocations", len(h.Revocations))
	}
}

// TestRevocationScanNeedsNoSort checks SQLite's plan for the CRL read: a range of the primary
// key, with no temporary b-tree to sort a million rows.
func TestRevocationScanNeedsNoSort(t *testing.T) {
	r := openTemp(t)
	rows, err := r.db.Query(`EXPLAIN QUERY PLAN `+revocationScan, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	t.Log(joined)
	if strings.Contains(joined, "TEMP B-TREE") || !strings.Contains(joined, "PRIMARY KEY") {
		t.Errorf("plan: %s", joined)
	}
}
