package pki

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/keyalg"
)

// TestCertificateNeverOutlivesIssuer: a certificate that would end after its issuer is
// refused, not shortened, with a *LimitError naming both dates; one ending with its issuer's
// last second is issued.
func TestCertificateNeverOutlivesIssuer(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256) // issuing CA: 20 years from testNow
	counting := &countingSigner{Signer: h.issuingKey}
	issuer := Issuer{Certificate: h.issuing, Signer: counting}
	_, _, err := Issue(DeviceIdentity{SerialNumber: "LONG-1", Manufacturer: "Acme", NotBefore: testNow.Add(time.Hour), ValidityYears: 20}, newSerial(t), newKey(t, keyalg.ECDSAP256).Public(), issuer)
	var limit *LimitError
	if !errors.As(err, &limit) {
		t.Fatalf("error = %v, want a *LimitError", err)
	}
	if !limit.Limit.Equal(h.issuing.NotAfter) || !limit.Value.Equal(testNow.Add(time.Hour).AddDate(20, 0, 0).Add(-time.Second)) {
		t.Errorf("limit %v, value %v", limit.Limit, limit.Value)
	}
	want := `issue device identity certificate: the certificate's notAfter would be 2046-03-01 12:59:59 UTC, after the notAfter of issuer "Acme Medical Devices CA 1" (2046-03-01 11:59:59 UTC): choose a shorter ValidityYears`
	if err.Error() != want {
		t.Errorf("error\n %s\nwant\n %s", err, want)
	}
	if counting.n != 0 {
		t.Errorf("the issuing CA signed %d times", counting.n)
	}
	// Ending exactly with the issuer is allowed.
	c, _, err := Issue(DeviceIdentity{SerialNumber: "LONG-2", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 20}, newSerial(t), newKey(t, keyalg.ECDSAP256).Public(), issuer)
	if err != nil || !c.NotAfter.Equal(h.issuing.NotAfter) {
		t.Fatalf("certificate ending with its issuer: %v", err)
	}
}

// TestCRLNextUpdateLimits: nextUpdate past the policy's maximum or past the issuer's
// notAfter is refused, before anything is signed, with a *LimitError naming the limit that
// binds; up to the limit is signed.
func TestCRLNextUpdateLimits(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256) // root 25 years, issuing CA 20 years from testNow
	this := testNow.Add(time.Hour)
	day := 24 * time.Hour
	issuingEnd := h.issuing.NotAfter
	tests := []struct {
		name      string
		issuer    Issuer
		next      time.Time
		max       time.Duration
		limit     time.Time // zero: signed
		bound     string
		wantError string
	}{
		{"a month", h.issuingIssuer(), this.AddDate(0, 1, 0), DefaultMaxNextUpdate, time.Time{}, "", ""},
		{"366 days exactly", h.issuingIssuer(), this.Add(366 * day), DefaultMaxNextUpdate, time.Time{}, "", ""},
		{"367 days", h.issuingIssuer(), this.Add(367 * day), DefaultMaxNextUpdate, this.Add(366 * day), "the policy's maximum of 366 days after thisUpdate", ""},
		{"4000 days", h.issuingIssuer(), this.Add(4000 * day), DefaultMaxNextUpdate, this.Add(366 * day), "the policy's maximum of 366 days", ""},
		{"year 2300", h.issuingIssuer(), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), DefaultMaxNextUpdate, this.Add(366 * day), "the policy's maximum of 366 days", ""},
		{"past the issuer under a loose policy", h.issuingIssuer(), issuingEnd.Add(time.Second), 100 * 366 * day, issuingEnd, `the notAfter of issuer "Acme Medical Devices CA 1"`, ""},
		{"the issuer's last second", h.issuingIssuer(), issuingEnd, 100 * 366 * day, time.Time{}, "", ""},
		{"root bound from a plan", h.rootIssuer(), this.Add(31 * day), 30 * day, this.Add(30 * day), "the policy's maximum of 30 days after thisUpdate", ""},
		{"odd policy", h.rootIssuer(), this.Add(13 * time.Hour), 12 * time.Hour, this.Add(12 * time.Hour), "the policy's maximum of 12h0m0s after thisUpdate", ""},
		{"no policy", h.issuingIssuer(), this.Add(day), 0, time.Time{}, "", "CRL.MaxNextUpdate is 0s: pass the policy's limit"},
	}
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-1", Count: 3}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counting := &countingSigner{Signer: tt.issuer.Signer}
			issuer := Issuer{Certificate: tt.issuer.Certificate, Signer: counting}
			crl := CRL{Number: big.NewInt(4), ThisUpdate: this, NextUpdate: tt.next, MaxNextUpdate: tt.max}
			got, _, err := SignCRL(crl, issuer)
			set, _, setErr := signSet(t, crl, shards, issuer)
			if tt.limit.IsZero() && tt.wantError == "" {
				if err != nil || setErr != nil {
					t.Fatalf("SignCRL: %v; SignCRLSet: %v", err, setErr)
				}
				if counting.n != 1+1+3 {
					t.Errorf("%d signatures, want 5", counting.n)
				}
				return
			}
			if got != nil || set != nil || counting.n != 0 {
				t.Fatalf("signed %d times though refused", counting.n)
			}
			for _, e := range []error{err, setErr} {
				if tt.wantError != "" {
					if e == nil || !strings.Contains(e.Error(), tt.wantError) {
						t.Errorf("error = %v, want %q", e, tt.wantError)
					}
					continue
				}
				var limit *LimitError
				if !errors.As(e, &limit) {
					t.Fatalf("error = %v, want a *LimitError", e)
				}
				if !limit.Limit.Equal(tt.limit) || !limit.Value.Equal(tt.next.Truncate(time.Second)) || !strings.Contains(limit.Bound, tt.bound) {
					t.Errorf("limit %v (%s), value %v; want %v (%s)", limit.Limit, limit.Bound, limit.Value, tt.limit, tt.bound)
				}
				if !strings.Contains(e.Error(), "the CRL's nextUpdate would be "+tt.next.UTC().Format(timeLayout)+", after "+tt.bound) ||
					!strings.Contains(e.Error(), tt.limit.UTC().Format(timeLayout)) {
					t.Errorf("error does not name both dates and the limit: %v", e)
				}
			}
		})
	}
}

func TestLatestNextUpdate(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	this := testNow.Add(90 * time.Minute)
	if got, bound := LatestNextUpdate(h.issuing, this, DefaultMaxNextUpdate); !got.Equal(this.Add(DefaultMaxNextUpdate)) || bound != "the policy's maximum of 366 days after thisUpdate" {
		t.Errorf("LatestNextUpdate = %v, %q", got, bound)
	}
	late := h.issuing.NotAfter.Add(-10 * 24 * time.Hour)
	if got, bound := LatestNextUpdate(h.issuing, late, DefaultMaxNextUpdate); !got.Equal(h.issuing.NotAfter) || !strings.Contains(bound, "Acme Medical Devices CA 1") {
		t.Errorf("near the issuer's end: %v, %q", got, bound)
	}
}
