package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BackupBlob is a root's wrapped backup of one epoch, as written under the workspace's
// backup/ folder. M custodians of that epoch with the blob, or any copy of it, recover the
// root's key.
type BackupBlob struct {
	RootID       string
	Epoch        int
	SHA256       [32]byte
	Path         string    // in the workspace
	RunID        string    // the run that wrote it, "" when not known
	CreatedAt    time.Time //
	DestroyedAt  time.Time // when Custos overwrote and removed it; zero while it is there
	DestroyedRun string
}

// BackupCopy is a copy of a blob a person carried out of the workspace, numbered per root.
type BackupCopy struct {
	RootID         string
	Copy           int // N, from 1 for each root
	Epoch          int // the epoch of the blob copied
	SHA256         [32]byte
	Location       string // the file it was written to
	Media          string // the medium's label, as the person gave it
	MadeBy         string
	MadeAt         time.Time
	RunID          string
	RetiredAt      time.Time // when a person said it was destroyed; zero while outstanding
	RetiredBy      string
	RetiredWitness string
	RetiredRun     string
}

// Retired says whether a person recorded the copy destroyed.
func (c BackupCopy) Retired() bool { return !c.RetiredAt.IsZero() }

// addBackupBlob records the blob of the root rootID at b.Epoch.
func addBackupBlob(ctx context.Context, tx *sql.Tx, rootID string, b BackupBlob, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO backup_blobs (ceremony_id, epoch, sha256, path, run_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, rootID, b.Epoch, b.SHA256[:], b.Path, nullString(b.RunID), unix(nowOr(at)))
	if isUnique(err) {
		return fmt.Errorf("%w: root %q has a backup of epoch %d", ErrExists, rootID, b.Epoch)
	}
	return err
}

const blobColumns = `ceremony_id, epoch, sha256, path, coalesce(run_id, ''), created_at, destroyed_at, coalesce(destroyed_run_id, '')`

func scanBlob(s rowScanner) (BackupBlob, error) {
	var b BackupBlob
	var sum []byte
	var created int64
	if err := s.Scan(&b.RootID, &b.Epoch, &sum, &b.Path, &b.RunID, &created, nullTime{&b.DestroyedAt}, &b.DestroyedRun); err != nil {
		return BackupBlob{}, err
	}
	copy(b.SHA256[:], sum)
	b.CreatedAt = fromUnix(created)
	return b, nil
}

// BackupBlobs lists the root's backup blobs, oldest epoch first.
func (r *Registry) BackupBlobs(ctx context.Context, rootID string) ([]BackupBlob, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+blobColumns+` FROM backup_blobs WHERE ceremony_id = ? ORDER BY epoch`, rootID)
	if err != nil {
		return nil, fmt.Errorf("list the backups of root %q: %w", rootID, err)
	}
	defer rows.Close()
	var out []BackupBlob
	for rows.Next() {
		b, err := scanBlob(rows)
		if err != nil {
			return nil, fmt.Errorf("list the backups of root %q: %w", rootID, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BackupBlobBySHA256 is the blob, of any root in the workspace, whose SHA-256 is sum.
func (r *Registry) BackupBlobBySHA256(ctx context.Context, sum [32]byte) (BackupBlob, error) {
	b, err := scanBlob(r.db.QueryRowContext(ctx, `SELECT `+blobColumns+` FROM backup_blobs WHERE sha256 = ? ORDER BY num DESC LIMIT 1`, sum[:]))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%w: no backup of any root in this workspace has that SHA-256", ErrNotFound)
	}
	if err != nil {
		return BackupBlob{}, fmt.Errorf("find the backup with SHA-256 %x: %w", sum, err)
	}
	return b, nil
}

// DestroyBackupBlob records that Custos overwrote and removed the root's blob of epoch.
func (r *Registry) DestroyBackupBlob(ctx context.Context, rootID string, epoch int, at time.Time, runID string) error {
	at = nowOr(at)
	err := r.write(ctx, &BackupBlobDestroyed{Root: rootID, Epoch: epoch, At: at, Run: runID}, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE backup_blobs SET destroyed_at = ?, destroyed_run_id = ?
			WHERE ceremony_id = ? AND epoch = ? AND destroyed_at IS NULL`, unix(at), nullString(runID), rootID, epoch)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no backup of that epoch in the workspace", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the backup of root %q at epoch %d destroyed: %w", rootID, epoch, err)
	}
	return nil
}

// AddBackupCopy records a copy of the root's blob of c.Epoch, numbered after the root's
// last copy, and returns it as stored. The blob must still be in the workspace.
func (r *Registry) AddBackupCopy(ctx context.Context, c BackupCopy) (BackupCopy, error) {
	c.MadeAt = nowOr(c.MadeAt)
	fact := &BackupCopyAdded{Root: c.RootID, Epoch: c.Epoch, Location: c.Location, Media: c.Media, MadeBy: c.MadeBy,
		MadeAt: c.MadeAt, Run: c.RunID}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if c.Location == "" || c.MadeBy == "" || c.RunID == "" {
			return fmt.Errorf("%w: a copy needs where it went, who made it and the run", ErrInvalid)
		}
		var blob int64
		var sum []byte
		err := tx.QueryRowContext(ctx, `SELECT num, sha256 FROM backup_blobs WHERE ceremony_id = ? AND epoch = ? AND destroyed_at IS NULL`,
			c.RootID, c.Epoch).Scan(&blob, &sum)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no backup of epoch %d in the workspace", ErrNotFound, c.Epoch)
		}
		if err != nil {
			return err
		}
		copy(c.SHA256[:], sum)
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(copy), 0) + 1 FROM backup_copies WHERE ceremony_id = ?`, c.RootID).Scan(&c.Copy); err != nil {
			return err
		}
		fact.Copy = c.Copy
		_, err = tx.ExecContext(ctx, `INSERT INTO backup_copies (ceremony_id, copy, blob_num, location, media, made_by, made_at, run_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.RootID, c.Copy, blob, c.Location, c.Media, c.MadeBy, unix(c.MadeAt), c.RunID)
		return err
	})
	if err != nil {
		return BackupCopy{}, fmt.Errorf("record a copy of the backup of root %q: %w", c.RootID, err)
	}
	return c, nil
}

const copyColumns = `c.ceremony_id, c.copy, b.epoch, b.sha256, c.location, c.media, c.made_by, c.made_at, c.run_id,
	c.retired_at, c.retired_by, c.retired_witness, coalesce(c.retired_run_id, '')
	FROM backup_copies c JOIN backup_blobs b ON b.num = c.blob_num `

func scanCopy(s rowScanner) (BackupCopy, error) {
	var c BackupCopy
	var sum []byte
	var made int64
	if err := s.Scan(&c.RootID, &c.Copy, &c.Epoch, &sum, &c.Location, &c.Media, &c.MadeBy, &made, &c.RunID,
		nullTime{&c.RetiredAt}, &c.RetiredBy, &c.RetiredWitness, &c.RetiredRun); err != nil {
		return BackupCopy{}, err
	}
	copy(c.SHA256[:], sum)
	c.MadeAt = fromUnix(made)
	return c, nil
}

// BackupCopies lists the copies of the root's blobs, in the order they were made.
func (r *Registry) BackupCopies(ctx context.Context, rootID string) ([]BackupCopy, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+copyColumns+`WHERE c.ceremony_id = ? ORDER BY c.copy`, rootID)
	if err != nil {
		return nil, fmt.Errorf("list the backup copies of root %q: %w", rootID, err)
	}
	defer rows.Close()
	var out []BackupCopy
	for rows.Next() {
		c, err := scanCopy(rows)
		if err != nil {
			return nil, fmt.Errorf("list the backup copies of root %q: %w", rootID, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RetireBackupCopy records that by destroyed copy n of the root's backup, witnessed by
// witness, in the run runID. A copy retired before is ErrConflict.
func (r *Registry) RetireBackupCopy(ctx context.Context, rootID string, n int, by, witness string, at time.Time, runID string) (BackupCopy, error) {
	var c BackupCopy
	at = nowOr(at)
	fact := &BackupCopyRetired{Root: rootID, Copy: n, By: by, Witness: witness, At: at, Run: runID}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if by == "" || witness == "" || by == witness || runID == "" {
			return fmt.Errorf("%w: retiring a copy needs who destroyed it, another person who witnessed it, and the run", ErrInvalid)
		}
		var err error
		c, err = scanCopy(tx.QueryRowContext(ctx, `SELECT `+copyColumns+`WHERE c.ceremony_id = ? AND c.copy = ?`, rootID, n))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: root %q has no backup copy %d", ErrNotFound, rootID, n)
		}
		if err != nil {
			return err
		}
		if c.Retired() {
			return fmt.Errorf("%w: copy %d was retired on %s by %s (run %s)", ErrConflict, n, c.RetiredAt.Format(time.DateOnly), c.RetiredBy, c.RetiredRun)
		}
		c.RetiredAt, c.RetiredBy, c.RetiredWitness, c.RetiredRun = at, by, witness, runID
		_, err = tx.ExecContext(ctx, `UPDATE backup_copies SET retired_at = ?, retired_by = ?, retired_witness = ?, retired_run_id = ?
			WHERE ceremony_id = ? AND copy = ?`, unix(c.RetiredAt), by, witness, runID, rootID, n)
		return err
	})
	if err != nil {
		return BackupCopy{}, fmt.Errorf("retire backup copy %d of root %q: %w", n, rootID, err)
	}
	return c, nil
}
