// Package registry is the workspace database, custos.db: the CAs that ceremonies made and where
// their keys live, the public side of each root's quorum, devices with their certificates and
// key histories, revocations, CRLs, and the runs that changed any of them.
//
// It is SQLite (modernc.org/sqlite, pure Go) in WAL mode with foreign keys on, and every state
// change is one transaction, so a crash leaves either all of a change or none of it. The
// schema is versioned: Open applies the migrations a database lacks and refuses one that a
// newer Custos wrote.
//
// Nothing secret is ever stored here: no PIN, share, quorum secret or key-encryption key. The
// quorum is kept only as its public parameters, share commitments and a digest of the secret.
package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors a caller can test for with errors.Is. Each is wrapped in a message naming the
// operation and the thing concerned.
var (
	// ErrNotFound: no issuer, device, run, CRL, quorum or setting of that name.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an issuer common name matches more than one CA; use its id.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrExists: something with that id or serial is already registered.
	ErrExists = errors.New("already registered")
	// ErrSchemaTooNew: the database was written by a newer Custos.
	ErrSchemaTooNew = errors.New("database schema is newer than this Custos")
	// ErrConflict: the change does not fit the registry's current state (a stale reshare epoch,
	// a finished run, a forbidden key state transition, a CRL number out of order).
	ErrConflict = errors.New("conflicts with the registry's state")
	// ErrInvalid: an argument is missing or malformed.
	ErrInvalid = errors.New("invalid")
)

// busyTimeout is how long a statement waits for another connection's write lock. One Custos
// process is the workspace's only writer, so waits are short; a reader in another process
// never blocks a writer under WAL.
const busyTimeout = 10 * time.Second

// Registry is an open custos.db. Its methods are safe for concurrent use; writes are
// serialised by SQLite's write lock (each write transaction begins IMMEDIATE).
//
// Every write is journaled: before it commits, the change is written as a Fact to the journal
// the registry is bound to (Journaled), so that the registry can be rebuilt from the journals;
// a registry with no journal refuses to change. And before it commits, the database file is
// checked to be the one opened (the same file, by device and inode, with the same application
// id and identity in its header), so a registry deleted or replaced under a running process
// fails the next change instead of writing into a file nobody will read.
type Registry struct {
	db   *sql.DB
	path string
	file *fileIdentity // nil while migrating, and for a read-only registry

	journal Journal // where each change's fact is written before it commits
	replay  bool    // a registry being rebuilt: facts are applied, not journaled again

	// testHookBeforeCommit, when set (tests only), runs inside a write transaction just
	// before it commits; an error it returns rolls the transaction back. It injects faults.
	testHookBeforeCommit func(op string) error
	// testDeviceByDevice, when set (tests only), makes DecommissionDevices record every batch
	// device by device, as the batch statements must match.
	testDeviceByDevice bool
}

// Open opens or creates the database at path and brings its schema up to date. A database
// whose schema is newer than this code knows is refused with ErrSchemaTooNew.
func Open(ctx context.Context, path string) (*Registry, error) {
	return open(ctx, path, nil)
}

// open is Open with a fault-injecting hook for tests.
func open(ctx context.Context, path string, hook func(op string) error) (*Registry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", abs, err)
	}
	db.SetMaxIdleConns(4)
	r := &Registry{db: db, path: abs, testHookBeforeCommit: hook}
	if err := r.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", abs, err)
	}
	if r.file, err = r.identify(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry %s: %w", abs, err)
	}
	return r, nil
}

// dsn builds the connection string. Every connection gets the same pragmas: WAL so that
// readers never block the writer, synchronous=FULL so that a committed change (a CRL number
// above all) survives a power cut, foreign keys, and a busy timeout. _txlock=immediate makes
// write transactions take the write lock at BEGIN, so two writers queue instead of failing
// with SQLITE_BUSY on upgrade; read-only transactions still begin DEFERRED.
func dsn(abs string) string {
	u := url.URL{Scheme: "file", Path: abs}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	// A checkpoint after a large import leaves a large -wal file behind; this truncates it.
	q.Add("_pragma", "journal_size_limit(67108864)")
	q.Add("_txlock", "immediate")
	return u.String() + "?" + q.Encode()
}

// Path is the database file.
func (r *Registry) Path() string { return r.path }

// Close closes the database.
func (r *Registry) Close() error {
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("close registry %s: %w", r.path, err)
	}
	return nil
}

// write runs fn in one IMMEDIATE transaction and commits it. f is the change as the journal
// carries it (fn may fill in what it finds, such as an allocated number): after fn, the file
// is checked to be the one opened and f is journaled, then the transaction commits. f is nil
// only for the schema's own migrations.
func (r *Registry) write(ctx context.Context, f Fact, fn func(tx *sql.Tx) error) error {
	return r.writeFacts(ctx, factOp(f), func(tx *sql.Tx, journal func(Fact) error) error {
		if err := fn(tx); err != nil {
			return err
		}
		if f == nil {
			return nil
		}
		return journal(f)
	})
}

func factOp(f Fact) string {
	if f == nil {
		return "migrate"
	}
	return f.FactKind()
}

// writeFacts is write for a change whose facts fn journals itself, in parts, as it goes (a
// large import): journal checks the file and writes one fact. op names the change for the
// test hook and in errors.
func (r *Registry) writeFacts(ctx context.Context, op string, fn func(tx *sql.Tx, journal func(Fact) error) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var seqs []int64
	checked := false
	check := func() error {
		if checked {
			return nil
		}
		checked = true
		return r.checkFile()
	}
	journal := func(f Fact) error {
		// The file is checked before the first fact is journaled, so a registry that is gone
		// does not journal a change it cannot commit.
		if err := check(); err != nil {
			return err
		}
		if r.replay {
			return nil
		}
		if c, ok := f.(*RunCompletion); ok && c.fromRecord() {
			// Derived from the run's record when rebuilding (see RunCompletion), and shown only
			// to a journal that asks to see such changes.
			if d, ok := r.journal.(derivedJournal); ok {
				d.DerivedFact(f)
			}
			return nil
		}
		if r.journal == nil {
			return fmt.Errorf("%w: %s", ErrUnjournaled, op)
		}
		seq, err := r.journal.JournalFact(f)
		if err != nil {
			return fmt.Errorf("journal the change before committing it: %w", err)
		}
		seqs = append(seqs, seq)
		return nil
	}
	if err := fn(tx, journal); err != nil {
		return r.uncommitted(op, seqs, err)
	}
	if err := check(); err != nil {
		return err
	}
	if r.testHookBeforeCommit != nil {
		if err := r.testHookBeforeCommit(op); err != nil {
			return r.uncommitted(op, seqs, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return r.uncommitted(op, seqs, fmt.Errorf("commit: %w", err))
	}
	return nil
}

// uncommitted journals that the facts seqs were not committed, because of err, and returns
// err. Best effort: the journal may be what failed; a rebuild that finds the facts without
// this note applies them, as if the commit had happened.
func (r *Registry) uncommitted(op string, seqs []int64, err error) error {
	if len(seqs) > 0 {
		r.journal.JournalFact(&Uncommitted{Kind: op, Seqs: seqs, Error: err.Error()})
	}
	return err
}

// read runs fn in one read-only transaction, so that what it reads from several tables is
// one consistent snapshot.
func (r *Registry) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// isConstraint reports whether err is a SQLite constraint violation (unique, check, foreign key).
func isConstraint(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT // whatever the extended code
	}
	return false
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// stmtCache prepares each statement of a transaction once, however often it runs: a
// decommission batch runs the same few statements for a thousand devices.
type stmtCache struct {
	tx *sql.Tx
	m  map[string]*sql.Stmt
}

func newStmtCache(tx *sql.Tx) *stmtCache { return &stmtCache{tx: tx, m: map[string]*sql.Stmt{}} }

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		// A Row carrying the error: QueryRowContext on the transaction reports it at Scan.
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() {
	for _, st := range c.m {
		st.Close()
	}
}
