package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// ApplicationID is the application id Custos writes into the header of every custos.db it
// creates (SQLite's PRAGMA application_id, bytes 68 to 71): "CuSt".
const ApplicationID = 0x43755374

// The header of a SQLite database file, as far as the identity check reads it.
const (
	headerLen         = 100
	userVersionOffset = 60
	appIDOffset       = 68
)

var sqliteMagic = []byte("SQLite format 3\x00")

// fileIdentity is the database file a writable registry opened: the file itself (device and
// inode, through os.SameFile) and its header's application id and identity, a random number
// each registry gets when it is created (kept in SQLite's user_version, which the schema does
// not otherwise use).
type fileIdentity struct {
	info     os.FileInfo
	identity uint32

	mu sync.Mutex
	// headerSeen is whether the file's own header has been seen to carry the identity. A new
	// database's header reaches the file when the write-ahead log is first checkpointed, which
	// Open asks for; until it is seen there, the check is of the file and its magic alone.
	headerSeen bool
}

// identify gives a database its application id and identity when it has none (a new one, or
// one an older Custos made), makes sure they reach the file, and notes the file's identity.
func (r *Registry) identify(ctx context.Context) (*fileIdentity, error) {
	var appID int64
	var identity uint32
	if err := r.db.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID); err != nil {
		return nil, fmt.Errorf("read the application id: %w", err)
	}
	if err := r.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&identity); err != nil {
		return nil, fmt.Errorf("read the registry's identity: %w", err)
	}
	switch {
	case appID == 0 && identity == 0:
		var b [4]byte
		for identity == 0 || identity > 1<<31-1 {
			if _, err := rand.Read(b[:]); err != nil {
				return nil, err
			}
			identity = binary.BigEndian.Uint32(b[:]) & (1<<31 - 1) // user_version is signed
		}
		// One connection for both pragmas and the checkpoint, so the header is written by the
		// checkpoint of the very log that holds the change.
		conn, err := r.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		for _, q := range []string{fmt.Sprintf(`PRAGMA application_id = %d`, ApplicationID),
			fmt.Sprintf(`PRAGMA user_version = %d`, identity), `PRAGMA wal_checkpoint(TRUNCATE)`} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("give the registry its identity: %w", err)
			}
		}
	case appID != ApplicationID:
		return nil, fmt.Errorf("%w: it is not a Custos registry (its application id is %#x, not %#x)", ErrInvalid, appID, ApplicationID)
	}
	info, err := os.Lstat(r.path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: it is not a regular file", ErrInvalid)
	}
	id := &fileIdentity{info: info, identity: identity}
	id.headerSeen, _ = id.header(r.path)
	return id, nil
}

// Identity is the registry's identity: a random number it was given when created, and that a
// rebuilt registry does not share.
func (r *Registry) Identity() uint32 {
	if r.file == nil {
		return 0
	}
	return r.file.identity
}

// header reads the header of the file at path and reports whether it carries the identity.
// It is an error when the file is not a SQLite database or carries another identity.
func (id *fileIdentity) header(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(f, h); err != nil {
		return false, fmt.Errorf("its header cannot be read: %w", err)
	}
	if !bytes.Equal(h[:len(sqliteMagic)], sqliteMagic) {
		return false, errors.New("it is no longer a SQLite database")
	}
	app, ident := binary.BigEndian.Uint32(h[appIDOffset:]), binary.BigEndian.Uint32(h[userVersionOffset:])
	switch {
	case app == ApplicationID && ident == id.identity:
		return true, nil
	case app == 0 && ident == 0:
		return false, nil // the header has not been checkpointed yet
	}
	return false, fmt.Errorf("it is another registry now (identity %d, application id %#x; this one is %d)", ident, app, id.identity)
}

// checkFile refuses a write when the database file is no longer the one opened: deleted,
// moved away, replaced by another file, or overwritten by another database.
func (r *Registry) checkFile() error {
	id := r.file
	if id == nil {
		return nil
	}
	gone := func(why string) error {
		return fmt.Errorf("%w: %s %s; nothing more is written to it, and what was committed before is in the journals", ErrRegistryGone, r.path, why)
	}
	info, err := os.Lstat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return gone("was deleted or moved away")
	}
	if err != nil {
		return gone(fmt.Sprintf("cannot be checked (%v)", err))
	}
	if !os.SameFile(info, id.info) {
		return gone("was replaced by another file")
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	seen, err := id.header(r.path)
	if err != nil {
		return gone(err.Error())
	}
	if id.headerSeen && !seen {
		return gone("had its header overwritten")
	}
	id.headerSeen = id.headerSeen || seen
	return nil
}
