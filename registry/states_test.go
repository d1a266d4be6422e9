package registry

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

func TestIssuerStates(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.startRun(t, "run-revoke", "single")
	got, _ := w.r.Issuer(ctx, "ica-test")
	if got.Standing.State != StateActive || got.Status != StatusActive {
		t.Fatalf("a new issuing CA: %+v", got.Standing)
	}
	// The root revoking the issuing CA's certificate revokes the issuing CA.
	serial, _ := SerialFromBig(w.ica.cert.SerialNumber)
	if _, _, err := w.r.Revoke(ctx, Revocation{IssuerID: "acme-root-2026", Serial: serial, RevokedAt: t0.Add(time.Hour),
		Reason: pki.ReasonKeyCompromise, RunID: "run-revoke"}); err != nil {
		t.Fatal(err)
	}
	got, _ = w.r.Issuer(ctx, "ica-test")
	want := Standing{State: StateRevoked, At: t0.Add(time.Hour), Reason: pki.ReasonKeyCompromise, RunID: "run-revoke"}
	if got.Standing != want || got.Status != StatusActive {
		t.Fatalf("after the root revoked it: %+v, key %s", got.Standing, got.Status)
	}
	if s := got.Standing.String(); s != "revoked (keyCompromise) on 2026-03-01 by run run-revoke" {
		t.Errorf("Standing.String() = %q", s)
	}
	wantErr(t, w.r.SetIssuerState(ctx, "ica-test", Standing{State: StateRetired}), ErrConflict, "revoked", "retired")
	wantErr(t, w.r.SetIssuerState(ctx, "ica-test", Standing{State: StateActive}), ErrInvalid)
	wantErr(t, w.r.SetIssuerState(ctx, "ica-none", Standing{State: StateRetired}), ErrNotFound)
	if err := w.r.SetIssuerState(ctx, "ica-test", Standing{State: StateDestroyed, At: t0.Add(2 * time.Hour), RunID: "run-revoke"}); err != nil {
		t.Fatal(err)
	}
	got, _ = w.r.Issuer(ctx, "ica-test")
	if got.Standing.State != StateDestroyed || got.Status != StatusDestroyed || !got.DestroyedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("destroyed: %+v, key %s at %v", got.Standing, got.Status, got.DestroyedAt)
	}
	wantErr(t, w.r.SetIssuerState(ctx, "ica-test", Standing{State: StateRevoked, Reason: pki.ReasonSuperseded}), ErrConflict, "destroyed")

	// A retired CA can still be revoked; a revocation of a retired one says so.
	ica2 := newSubCA(t, w.root, "Acme Medical Device CA 2")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-two", Kind: IssuerIssuing, Certificate: ica2.cert.Raw, ParentID: "acme-root-2026",
		CeremonyID: "acme-root-2026", Key: opsKey(2), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := w.r.SetIssuerState(ctx, "ica-two", Standing{State: StateRetired, At: t0}); err != nil {
		t.Fatal(err)
	}
	s2, _ := SerialFromBig(ica2.cert.SerialNumber)
	if _, _, err := w.r.Revoke(ctx, Revocation{IssuerID: "acme-root-2026", Serial: s2, RevokedAt: t0, Reason: pki.ReasonCessationOfOperation}); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.r.Issuer(ctx, "ica-two"); got.Standing.State != StateRevoked || got.Standing.Reason != pki.ReasonCessationOfOperation {
		t.Errorf("a retired CA revoked: %+v", got.Standing)
	}
}

func TestRoleCertStates(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	loc := KeyLocation{TokenLabel: "acme-ops", KeyID: []byte{0x5e}, Algorithm: "ecdsa-p256"}
	signer := leaf(t, w.root, "Acme Record Signer", t0, t0.AddDate(5, 0, 0))
	if _, err := w.r.AddRoleCert(ctx, RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026",
		Certificate: signer.Raw, Key: loc, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	serial, _ := SerialFromBig(signer.SerialNumber)
	if _, _, err := w.r.Revoke(ctx, Revocation{IssuerID: "acme-root-2026", Serial: serial, RevokedAt: t0, Reason: pki.ReasonKeyCompromise}); err != nil {
		t.Fatal(err)
	}
	_, err := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026")
	wantErr(t, err, ErrNotFound)
	newest, err := w.r.NewestRoleCert(ctx, RoleRecordSigner, "acme-root-2026")
	if err != nil || newest.Standing.State != StateRevoked || newest.Standing.Reason != pki.ReasonKeyCompromise {
		t.Fatalf("the revoked signer: %+v %v", newest.Standing, err)
	}
	// Its key destroyed, it stays revoked.
	if err := w.r.DestroyRoleCert(ctx, "acme-root-2026", serial, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if newest, _ = w.r.NewestRoleCert(ctx, RoleRecordSigner, "acme-root-2026"); newest.Standing.State != StateRevoked || newest.Status != StatusDestroyed {
		t.Errorf("revoked, key destroyed: %+v, key %s", newest.Standing, newest.Status)
	}
	// A new one signs; retiring it leaves none.
	signer2 := leaf(t, w.root, "Acme Record Signer 2", t0, t0.AddDate(5, 0, 0))
	rc2, err := w.r.AddRoleCert(ctx, RoleCert{Role: RoleRecordSigner, IssuerID: "acme-root-2026", CeremonyID: "acme-root-2026",
		Certificate: signer2.Raw, Key: KeyLocation{TokenLabel: "acme-ops", KeyID: []byte{0x5f}, Algorithm: "ecdsa-p256"}, CreatedAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026"); err != nil || got.SHA256 != rc2.SHA256 {
		t.Fatalf("the new signer: %v", err)
	}
	if err := w.r.SetRoleCertState(ctx, "acme-root-2026", rc2.Serial, Standing{State: StateRetired, At: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.ActiveRoleCert(ctx, RoleRecordSigner, "acme-root-2026"); err == nil {
		t.Error("a retired record signer is still the active one")
	}
	wantErr(t, w.r.SetRoleCertState(ctx, "acme-root-2026", SerialNumber{9}, Standing{State: StateRetired}), ErrNotFound)
}

// A workspace made before the root's life was tracked keeps what it knew: the destroyed and
// revoked CAs get those states, the root its token as holder, the quorum's backup its blob.
func TestMigrationToRootLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(t, "Old Root")
	ica := newSubCA(t, root, "Old Device CA")
	rootSerial, _ := SerialFromBig(root.cert.SerialNumber)
	icaSerial, _ := SerialFromBig(ica.cert.SerialNumber)
	for _, q := range []string{ms[0].sql,
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_version VALUES (1, '0001_initial.sql', 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO issuers (num, id, kind, common_name, serial, cert_der, cert_sha256, ceremony_id, token_label, key_id, key_algorithm, status, created_at)
		VALUES (1, 'old-root', 'root', 'Old Root', ?, ?, X'01', 'old-root', 'old-root-b', X'AA', 'ecdsa-p256', 'active', 100)`, []byte(rootSerial), root.cert.Raw)
	exec(`INSERT INTO issuers (num, id, kind, common_name, serial, cert_der, cert_sha256, parent_num, ceremony_id, token_label, key_id, key_algorithm, status, created_at)
		VALUES (2, 'ica-old', 'issuing', 'Old Device CA', ?, ?, X'02', 1, 'old-root', 'ops', X'BB', 'ecdsa-p256', 'active', 100)`, []byte(icaSerial), ica.cert.Raw)
	exec(`INSERT INTO revocations VALUES (1, ?, ?, 200, 1, NULL)`, len(icaSerial), []byte(icaSerial))
	exec(`INSERT INTO quorums VALUES ('old-root', '/m.so', 'ops', X'00', X'00', 2, 3, X'00', '/ws/backup/old-root-epoch3.wrapped', ?, 'active', 100, 300, NULL)`,
		make([]byte, 32))
	db.Close()

	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	iss, err := r.Issuer(ctx, "ica-old")
	if err != nil || iss.Standing.State != StateRevoked || iss.Standing.Reason != pki.ReasonKeyCompromise || iss.Standing.At.Unix() != 200 {
		t.Errorf("the revoked issuing CA: %+v %v", iss.Standing, err)
	}
	holders, err := r.RootHolders(ctx, "old-root")
	if err != nil || len(holders) != 2 || holders[0].Token != "old-root-b" || holders[0].PINEpoch != 3 ||
		holders[1].Token != "old-root" || holders[1].PINEpoch != 0 {
		t.Errorf("holders: %+v %v", holders, err)
	}
	blobs, err := r.BackupBlobs(ctx, "old-root")
	if err != nil || len(blobs) != 1 || blobs[0].Epoch != 3 || blobs[0].Path != "/ws/backup/old-root-epoch3.wrapped" {
		t.Errorf("backup blobs: %+v %v", blobs, err)
	}
}
