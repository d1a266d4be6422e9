package registry

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// TestDevicePeriods follows a device re-keyed after a year, a third device certificate left
// to expire, and a lost device whose revocation is dated back: every certificate and key is
// listed with when it served and how it ended, and each can be found by its serial or key.
func TestDevicePeriods(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	t1, t2 := t0.AddDate(1, 0, 0), t0.AddDate(2, 0, 0)
	nd, c1 := w.register(t, "SN-1", t0)
	key1 := nd.Key.PublicKeySHA256
	c2 := leaf(t, w.ica, "SN-1", t1, t1.AddDate(5, 0, 0))
	cert2, _ := CertificateFromX509("", c2)
	key2 := PublicKeySHA256(c2)
	if err := w.r.AddDeviceCertificate(ctx, "SN-1", cert2, DeviceKey{KeyID: []byte("k2"), PublicKeySHA256: key2, TokenLabel: "SN-1",
		GeneratedAt: t1.Add(-time.Hour), ActivatedAt: t1}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "run-1", "single")
	lostAt := t2.Add(-72 * time.Hour)
	if _, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "unreachable",
		Verification: "attested", Reason: pki.ReasonKeyCompromise, KeyState: KeyCompromised, At: t2, InvalidityDate: lostAt}); err != nil {
		t.Fatal(err)
	}
	h, err := w.r.DeviceHistory(ctx, "SN-1")
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := SerialFromBig(c1.SerialNumber)
	s2, _ := SerialFromBig(c2.SerialNumber)
	revoked := "revoked (keyCompromise), invalid since " + lostAt.Format(time.RFC3339)
	want := []Period{
		{Kind: PeriodCertificate, Issuer: "ica-test", Serial: s1, KeyID: []byte("dev-SN-1"), KeySHA256: key1, From: t0, Until: c1.NotAfter,
			EndedAt: t2, Ended: revoked, RunID: "run-1"},
		{Kind: PeriodCertificate, Issuer: "ica-test", Serial: s2, KeyID: []byte("k2"), KeySHA256: key2, From: t1, Until: c2.NotAfter,
			EndedAt: t2, Ended: revoked, RunID: "run-1"},
		{Kind: PeriodKey, Issuer: "ica-test", Serial: s1, KeyID: []byte("dev-SN-1"), KeySHA256: key1, From: t0, EndedAt: t1,
			Ended: "deactivated, then compromised on " + t2.Format(time.RFC3339)},
		{Kind: PeriodKey, Issuer: "ica-test", Serial: s2, KeyID: []byte("k2"), KeySHA256: key2, From: t1, EndedAt: t2,
			Ended: "compromised", RunID: "run-1"},
	}
	got := h.Periods(t0.AddDate(3, 0, 0))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("periods:\n got %+v\nwant %+v", got, want)
	}
	if !got[0].Contains(t0) || got[0].Contains(t2) || !got[3].Contains(t2.Add(-time.Second)) {
		t.Error("Contains is wrong at the ends of a period")
	}

	// A certificate past its notAfter has expired; one still current has no end.
	_, c3 := w.register(t, "SN-3", t0)
	h3, err := w.r.DeviceHistory(ctx, "SN-3")
	if err != nil {
		t.Fatal(err)
	}
	if p := h3.Periods(t0.AddDate(1, 0, 0)); !p[0].EndedAt.IsZero() || p[0].Ended != "" || !p[1].EndedAt.IsZero() {
		t.Errorf("current periods: %+v", p)
	}
	if p := h3.Periods(t0.AddDate(9, 0, 0)); !p[0].EndedAt.Equal(c3.NotAfter) || p[0].Ended != "expired" {
		t.Errorf("expired period: %+v", p[0])
	}

	for _, tc := range []struct {
		name string
		q    FindQuery
		want []string
	}{
		{"first certificate", FindQuery{CertSerial: s1}, []string{"SN-1"}},
		{"second key", FindQuery{KeySHA256: key2[:]}, []string{"SN-1"}},
		{"other device", FindQuery{KeySHA256: func() []byte { k := PublicKeySHA256(c3); return k[:] }()}, []string{"SN-3"}},
		{"nothing", FindQuery{CertSerial: SerialNumber{0x7f, 1, 2}}, nil},
	} {
		got, err := w.r.FindDevices(ctx, tc.q)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	for _, q := range []FindQuery{{}, {CertSerial: s1, KeySHA256: key1[:]}, {KeySHA256: key1[:8]}} {
		if _, err := w.r.FindDevices(ctx, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("FindDevices(%+v) = %v, want ErrInvalid", q, err)
		}
	}
}
