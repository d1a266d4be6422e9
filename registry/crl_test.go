package registry

import (
	"context"
	"crypto/sha256"
	"testing"
)

func TestCRLNumbersStrictlyIncrease(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	_, err := w.r.LatestCRL(ctx, "ica-test")
	wantErr(t, err, ErrNotFound, `"ica-test"`, "no CRL")
	var last int64
	for i := 0; i < 5; i++ {
		n, err := w.r.AllocateCRLNumber(ctx, "ica-test")
		if err != nil || n <= last {
			t.Fatalf("allocation %d: %d after %d, %v", i, n, last, err)
		}
		last = n
	}
	// Each issuer counts on its own.
	if n, _ := w.r.AllocateCRLNumber(ctx, "acme-root-2026"); n != 1 {
		t.Errorf("root's first number %d", n)
	}
	crl := func(n int64) CRL {
		return CRL{IssuerID: "ica-test", Number: n, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 30), Entries: n * 10,
			SHA256: sha256.Sum256([]byte{byte(n)}), Path: "crl/ica-test.crl"}
	}
	tests := []struct {
		name   string
		crl    CRL
		target error
		want   []string
	}{
		{"number 2 (1 burned)", crl(2), nil, nil},
		{"number 2 again", crl(2), ErrConflict, []string{"CRL 2", "number 2"}},
		{"number 1 after 2", crl(1), ErrConflict, []string{"CRL 1", `"ica-test"`}},
		{"never allocated", crl(6), ErrConflict, []string{"CRL 6", "never allocated", "last allocated: 5"}},
		{"zero", crl(0), ErrConflict, []string{"CRL 0"}},
		{"nextUpdate before thisUpdate", func() CRL { c := crl(3); c.NextUpdate = t0.AddDate(0, 0, -1); return c }(), ErrInvalid, []string{"nextUpdate"}},
		{"no path", func() CRL { c := crl(3); c.Path = ""; return c }(), ErrInvalid, []string{"path"}},
		{"unknown issuer", func() CRL { c := crl(3); c.IssuerID = "ica-none"; return c }(), ErrNotFound, []string{`"ica-none"`}},
		{"number 4 (3 burned)", crl(4), nil, nil},
		{"number 3 after 4", crl(3), ErrConflict, []string{"CRL 3", "number 4"}},
		{"number 5", crl(5), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, w.r.RecordCRL(ctx, tc.crl), tc.target, tc.want...) })
	}
	latest, err := w.r.LatestCRL(ctx, "ica-test")
	if err != nil || latest.Number != 5 || latest.Entries != 50 || latest.SHA256 != sha256.Sum256([]byte{5}) || !latest.NextUpdate.Equal(t0.AddDate(0, 0, 30)) {
		t.Errorf("latest %+v %v", latest, err)
	}
	all, err := w.r.CRLs(ctx, "ica-test")
	if err != nil || len(all) != 3 || all[0].Number != 2 || all[1].Number != 4 || all[2].Number != 5 {
		t.Errorf("CRLs %+v %v", all, err)
	}
	iss, _ := w.r.Issuer(ctx, "ica-test")
	if iss.LastCRLNumber != 5 {
		t.Errorf("LastCRLNumber %d", iss.LastCRLNumber)
	}
	// A destroyed CA signs no more CRLs.
	if err := w.r.DestroyIssuer(ctx, "ica-test", t0); err != nil {
		t.Fatal(err)
	}
	_, err = w.r.AllocateCRLNumber(ctx, "ica-test")
	wantErr(t, err, ErrConflict, `"ica-test"`, "destroyed")
	_, err = w.r.AllocateCRLNumber(ctx, "ica-none")
	wantErr(t, err, ErrNotFound, `"ica-none"`)
}
