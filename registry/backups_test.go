package registry

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"
)

func TestBackupCopiesAreAccountedFor(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := w.r.AddQuorum(ctx, testQuorum()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"run-copy-1", "run-copy-2", "run-retire", "run-reshare"} {
		w.startRun(t, id, "single")
	}
	blobs, err := w.r.BackupBlobs(ctx, "acme-root-2026")
	if err != nil || len(blobs) != 1 || blobs[0].Epoch != 1 || blobs[0].SHA256 != sha256.Sum256([]byte("blob 1")) {
		t.Fatalf("the ceremony's blob: %+v %v", blobs, err)
	}
	c1, err := w.r.AddBackupCopy(ctx, BackupCopy{RootID: "acme-root-2026", Epoch: 1, Location: "/media/usb1/b.wrapped",
		Media: "USB 1", MadeBy: "Ada Admin", MadeAt: t0, RunID: "run-copy-1"})
	if err != nil || c1.Copy != 1 || c1.SHA256 != blobs[0].SHA256 {
		t.Fatalf("first copy: %+v %v", c1, err)
	}
	c2, err := w.r.AddBackupCopy(ctx, BackupCopy{RootID: "acme-root-2026", Epoch: 1, Location: "/media/usb2/b.wrapped",
		MadeBy: "Ada Admin", MadeAt: t0, RunID: "run-copy-2"})
	if err != nil || c2.Copy != 2 {
		t.Fatalf("second copy: %+v %v", c2, err)
	}
	_, err = w.r.AddBackupCopy(ctx, BackupCopy{RootID: "acme-root-2026", Epoch: 2, Location: "x", MadeBy: "A", RunID: "run-copy-2"})
	wantErr(t, err, ErrNotFound, "epoch 2")
	_, err = w.r.AddBackupCopy(ctx, BackupCopy{RootID: "acme-root-2026", Epoch: 1, Location: "x", RunID: "run-copy-2"})
	wantErr(t, err, ErrInvalid)

	_, err = w.r.RetireBackupCopy(ctx, "acme-root-2026", 2, "Ada Admin", "Ada Admin", t0, "run-retire")
	wantErr(t, err, ErrInvalid, "another person")
	got, err := w.r.RetireBackupCopy(ctx, "acme-root-2026", 2, "Ada Admin", "Wes Witness", t0.Add(time.Hour), "run-retire")
	if err != nil || !got.Retired() || got.RetiredWitness != "Wes Witness" || got.RetiredRun != "run-retire" {
		t.Fatalf("retired: %+v %v", got, err)
	}
	_, err = w.r.RetireBackupCopy(ctx, "acme-root-2026", 2, "Ada Admin", "Wes Witness", t0, "run-retire")
	wantErr(t, err, ErrConflict, "was retired", "run-retire")
	_, err = w.r.RetireBackupCopy(ctx, "acme-root-2026", 9, "Ada Admin", "Wes Witness", t0, "run-retire")
	wantErr(t, err, ErrNotFound, "copy 9")
	copies, err := w.r.BackupCopies(ctx, "acme-root-2026")
	if err != nil || len(copies) != 2 || copies[0].Retired() || !copies[1].Retired() || copies[0].Media != "USB 1" {
		t.Errorf("copies: %+v %v", copies, err)
	}

	// Found by its hash, whatever root the caller meant; destroyed once.
	b, err := w.r.BackupBlobBySHA256(ctx, sha256.Sum256([]byte("blob 1")))
	if err != nil || b.RootID != "acme-root-2026" || b.Epoch != 1 {
		t.Errorf("by SHA-256: %+v %v", b, err)
	}
	_, err = w.r.BackupBlobBySHA256(ctx, sha256.Sum256([]byte("no blob")))
	wantErr(t, err, ErrNotFound)
	if err := w.r.DestroyBackupBlob(ctx, "acme-root-2026", 1, t0.Add(2*time.Hour), "run-reshare"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, w.r.DestroyBackupBlob(ctx, "acme-root-2026", 1, t0, "run-reshare"), ErrNotFound)
	if blobs, _ := w.r.BackupBlobs(ctx, "acme-root-2026"); !blobs[0].DestroyedAt.Equal(t0.Add(2*time.Hour)) || blobs[0].DestroyedRun != "run-reshare" {
		t.Errorf("destroyed blob: %+v", blobs[0])
	}
	_, err = w.r.AddBackupCopy(ctx, BackupCopy{RootID: "acme-root-2026", Epoch: 1, Location: "x", MadeBy: "A", RunID: "run-copy-2"})
	wantErr(t, err, ErrNotFound, "epoch 1")
}
