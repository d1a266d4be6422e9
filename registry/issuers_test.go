package registry

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestAddIssuerChecksCertificates(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	other := newRoot(t, "Someone Else Root")
	otherICA := newSubCA(t, other, "Foreign Device CA")
	device := leaf(t, w.ica, "SN-9", t0, t0.AddDate(1, 0, 0))
	tests := []struct {
		name   string
		iss    Issuer
		target error
		want   []string
	}{
		{"second issuing CA", Issuer{ID: "ica-two", Kind: IssuerIssuing, Certificate: newSubCA(t, w.root, "Acme Device CA 2").cert.Raw,
			ParentID: "acme-root-2026", CeremonyID: "acme-root-2026", Key: opsKey(2)}, nil, nil},
		{"duplicate id", Issuer{ID: "ica-test", Kind: IssuerIssuing, Certificate: newSubCA(t, w.root, "Dup").cert.Raw,
			ParentID: "acme-root-2026", CeremonyID: "acme-root-2026", Key: opsKey(3)}, ErrExists, []string{`"ica-test"`}},
		{"same certificate twice", Issuer{ID: "ica-again", Kind: IssuerIssuing, Certificate: w.ica.cert.Raw,
			ParentID: "acme-root-2026", CeremonyID: "acme-root-2026", Key: opsKey(1)}, ErrExists, []string{`"ica-again"`}},
		{"not signed by parent", Issuer{ID: "ica-foreign", Kind: IssuerIssuing, Certificate: otherICA.cert.Raw,
			ParentID: "acme-root-2026", CeremonyID: "acme-root-2026", Key: opsKey(4)}, ErrInvalid, []string{`"ica-foreign"`, "not signed by parent"}},
		{"unknown parent", Issuer{ID: "ica-orphan", Kind: IssuerIssuing, Certificate: otherICA.cert.Raw,
			ParentID: "no-such-root", CeremonyID: "x", Key: opsKey(5)}, ErrNotFound, []string{`"no-such-root"`}},
		{"issuing CA as parent", Issuer{ID: "ica-grandchild", Kind: IssuerIssuing, Certificate: newSubCA(t, w.ica, "Grandchild").cert.Raw,
			ParentID: "ica-test", CeremonyID: "acme-root-2026", Key: opsKey(6)}, ErrInvalid, []string{"parent is a root"}},
		{"root not self-signed", Issuer{ID: "fake-root", Kind: IssuerRoot, Certificate: otherICA.cert.Raw,
			CeremonyID: "fake-root", Key: opsKey(7)}, ErrInvalid, []string{`"fake-root"`, "self-signed"}},
		{"root with parent", Issuer{ID: "other-root", Kind: IssuerRoot, Certificate: other.cert.Raw, ParentID: "acme-root-2026",
			CeremonyID: "other-root", Key: opsKey(8)}, ErrInvalid, []string{"no parent"}},
		{"device certificate", Issuer{ID: "not-a-ca", Kind: IssuerIssuing, Certificate: device.Raw, ParentID: "acme-root-2026",
			CeremonyID: "acme-root-2026", Key: opsKey(9)}, ErrInvalid, []string{"not a CA certificate"}},
		{"garbage DER", Issuer{ID: "garbage", Kind: IssuerRoot, Certificate: []byte("not DER"), CeremonyID: "g", Key: opsKey(10)},
			ErrInvalid, []string{`"garbage"`, "certificate"}},
		{"missing key location", Issuer{ID: "nokey", Kind: IssuerRoot, Certificate: other.cert.Raw, CeremonyID: "nokey"},
			ErrInvalid, []string{"key location"}},
		{"id with a slash", Issuer{ID: "a/b", Kind: IssuerRoot, Certificate: other.cert.Raw, CeremonyID: "a", Key: opsKey(11)},
			ErrInvalid, []string{"slash"}},
		{"unknown kind", Issuer{ID: "odd", Kind: "intermediate", Certificate: other.cert.Raw, CeremonyID: "odd", Key: opsKey(12)},
			ErrInvalid, []string{`"intermediate"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.r.AddIssuer(ctx, tc.iss)
			wantErr(t, err, tc.target, tc.want...)
			if tc.target != nil {
				return
			}
			cert, _ := x509.ParseCertificate(tc.iss.Certificate)
			if got.CommonName != cert.Subject.CommonName || got.SHA256 != sha256.Sum256(tc.iss.Certificate) ||
				got.Serial.Big().Cmp(cert.SerialNumber) != 0 || got.Status != StatusActive {
				t.Errorf("stored issuer %+v", got)
			}
			back, err := w.r.Issuer(ctx, tc.iss.ID)
			if err != nil || back.CommonName != got.CommonName || back.ParentID != tc.iss.ParentID ||
				string(back.Key.KeyID) != string(tc.iss.Key.KeyID) || back.SHA256 != got.SHA256 {
				t.Errorf("read back %+v, %v", back, err)
			}
		})
	}
}

func TestIssuerLookupByIDOrName(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// Two issuing CAs share a common name: the name alone is ambiguous until one is destroyed.
	for _, id := range []string{"ica-a", "ica-b"} {
		if _, err := w.r.AddIssuer(ctx, Issuer{ID: id, Kind: IssuerIssuing, Certificate: newSubCA(t, w.root, "Acme Twin CA").cert.Raw,
			ParentID: "acme-root-2026", CeremonyID: "acme-root-2026", Key: opsKey(id[4])}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ref    string
		wantID string
		target error
		want   []string
	}{
		{"ica-test", "ica-test", nil, nil},
		{"acme-root-2026", "acme-root-2026", nil, nil},
		{"Acme Medical Device CA 1", "ica-test", nil, nil},
		{"acme medical device ca 1", "ica-test", nil, nil},
		{"Acme Medical Root CA 2026", "acme-root-2026", nil, nil},
		{"Acme Twin CA", "", ErrAmbiguous, []string{`"Acme Twin CA"`, "ica-a", "ica-b", "give the id"}},
		{"ica-b", "ica-b", nil, nil},
		{"Nobody's CA", "", ErrNotFound, []string{`"Nobody's CA"`}},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := w.r.Issuer(ctx, tc.ref)
			wantErr(t, err, tc.target, tc.want...)
			if err == nil && got.ID != tc.wantID {
				t.Errorf("Issuer(%q) = %s, want %s", tc.ref, got.ID, tc.wantID)
			}
		})
	}
	if err := w.r.DestroyIssuer(ctx, "ica-a", t0); err != nil {
		t.Fatal(err)
	}
	got, err := w.r.Issuer(ctx, "Acme Twin CA")
	if err != nil || got.ID != "ica-b" {
		t.Errorf("with ica-a destroyed, the name means the active one: %s, %v", got.ID, err)
	}
	wantErr(t, w.r.DestroyIssuer(ctx, "ica-a", t0), ErrConflict, `"ica-a"`, "already")
	wantErr(t, w.r.DestroyIssuer(ctx, "ica-zzz", t0), ErrNotFound, `"ica-zzz"`)

	all, err := w.r.Issuers(ctx)
	if err != nil || len(all) != 4 || all[0].Kind != IssuerRoot {
		t.Fatalf("Issuers: %d, %v", len(all), err)
	}
	destroyed, _ := w.r.Issuer(ctx, "ica-a")
	if destroyed.Status != StatusDestroyed || !destroyed.DestroyedAt.Equal(t0) {
		t.Errorf("destroyed issuer: %s at %v", destroyed.Status, destroyed.DestroyedAt)
	}
}

func TestNewIssuerID(t *testing.T) {
	root := newRoot(t, "R")
	ica := newSubCA(t, root, "I")
	if got := NewIssuerID(IssuerRoot, "acme-root-2026", root.cert); got != "acme-root-2026" {
		t.Errorf("root id %q", got)
	}
	got := NewIssuerID(IssuerIssuing, "acme-root-2026", ica.cert)
	if want := "ica-" + hex.EncodeToString(ica.cert.SubjectKeyId[:5]); got != want {
		t.Errorf("issuing id %q, want %q (from the subject key identifier)", got, want)
	}
	noSKI := *ica.cert
	noSKI.SubjectKeyId = nil
	spki := sha256.Sum256(ica.cert.RawSubjectPublicKeyInfo)
	if got, want := NewIssuerID(IssuerIssuing, "x", &noSKI), "ica-"+hex.EncodeToString(spki[:5]); got != want {
		t.Errorf("issuing id without SKI %q, want %q", got, want)
	}
	if got != NewIssuerID(IssuerIssuing, "other", ica.cert) {
		t.Error("the id of an issuing CA depends on its key only")
	}
	if checkID("issuer id", got) != nil {
		t.Errorf("proposed id %q is not a valid id", got)
	}
}

func TestRoleCerts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	signer := leaf(t, w.root, "Acme Record Signer", t0, t0.AddDate(5, 0, 0))
	loc := KeyLocation{TokenLabel: "acme-ops", KeyID: []byte{0x5e}, Algorithm: "ecdsa-p256"}
	_, err := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026")
	wantErr(t, err, ErrNotFound, "record-signer", `"acme-root-2026"`)

	rc, err := w.r.AddRoleCert(ctx, RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026",
		Certificate: signer.Raw, Key: loc, CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026")
	if err != nil || got.SHA256 != rc.SHA256 || got.CommonName != "Acme Record Signer" || got.Key.String() != loc.String() {
		t.Fatalf("ActiveRoleCert: %+v, %v", got, err)
	}
	// A newer signer replaces it as the active one.
	signer2 := leaf(t, w.root, "Acme Record Signer 2", t0, t0.AddDate(5, 0, 0))
	if _, err := w.r.AddRoleCert(ctx, RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026",
		Certificate: signer2.Raw, Key: loc, CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	newest, _ := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026")
	if newest.CommonName != "Acme Record Signer 2" {
		t.Errorf("newest signer: %s", newest.CommonName)
	}
	if err := w.r.DestroyRoleCert(ctx, "acme-root-2026", newest.Serial, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026"); got.CommonName != "Acme Record Signer" {
		t.Errorf("after destroying the newest: %s", got.CommonName)
	}
	wantErr(t, w.r.DestroyRoleCert(ctx, "acme-root-2026", newest.Serial, t0), ErrNotFound, newest.Serial.String())
	all, err := w.r.RoleCerts(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("RoleCerts: %d %v", len(all), err)
	}

	tests := []struct {
		name string
		rc   RoleCert
		want []string
	}{
		{"not signed by issuer", RoleCert{Role: RoleRecordSigner, IssuerID: "ica-test", CeremonyID: "acme-root-2026", Certificate: signer.Raw, Key: loc},
			[]string{`"ica-test"`, "not signed"}},
		{"unknown role", RoleCert{Role: "ocsp", IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026", Certificate: signer.Raw, Key: loc},
			[]string{`"ocsp"`}},
		{"twice", RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026", Certificate: signer.Raw, Key: loc},
			[]string{signer.SerialNumber.Text(16)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.r.AddRoleCert(ctx, tc.rc)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestMoveIssuerKey(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	to := KeyLocation{TokenLabel: "acme-root-2026-restored", KeyID: []byte{9, 9}, Algorithm: "ecdsa-p256"}
	if err := w.r.MoveIssuerKey(ctx, "acme-root-2026", to); err != nil {
		t.Fatal(err)
	}
	root, _ := w.r.Issuer(ctx, "acme-root-2026")
	if root.Key.String() != to.String() {
		t.Errorf("key location %s, want %s", root.Key, to)
	}
	wantErr(t, w.r.MoveIssuerKey(ctx, "acme-root-2026", KeyLocation{TokenLabel: "x"}), ErrInvalid, `"acme-root-2026"`, "key location")
	wantErr(t, w.r.MoveIssuerKey(ctx, "ica-none", to), ErrNotFound, `"ica-none"`)
	if err := w.r.DestroyIssuer(ctx, "ica-test", t0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, w.r.MoveIssuerKey(ctx, "ica-test", to), ErrConflict, `"ica-test"`, "destroyed")
}
