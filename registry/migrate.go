package registry

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// migrations are the schema's steps, migrations/NNNN_name.sql, applied in order, each in its
// own transaction together with its row in schema_version. A step is never edited once
// released: a change to the schema is a new step.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migration is one numbered step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded steps and checks they are numbered 1, 2, 3... without gaps.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", name)
		}
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d (steps must be numbered without gaps)", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this code writes: the number of its newest migration.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		panic("registry: embedded migrations: " + err.Error())
	}
	return len(ms)
}

// migrate brings the schema up to date. Each missing step runs in its own IMMEDIATE
// transaction that first re-reads the version, so two processes opening a fresh database at
// once apply each step exactly once.
func (r *Registry) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	// A database at the current version needs no write lock to open: check with a read first.
	v, err := r.currentVersion(ctx, r.db)
	if err != nil {
		return err
	}
	if v > len(ms) {
		return fmt.Errorf("%w: it has schema version %d, this Custos knows up to %d; open it with a newer Custos", ErrSchemaTooNew, v, len(ms))
	}
	for _, m := range ms {
		if m.version <= v {
			continue
		}
		err := r.write(ctx, nil, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
				version    INTEGER PRIMARY KEY,
				name       TEXT    NOT NULL,
				applied_at INTEGER NOT NULL)`); err != nil {
				return err
			}
			var have int
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&have); err != nil {
				return err
			}
			if have >= m.version {
				return nil // another process applied it meanwhile
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("apply schema migration %s: %w", m.name, err)
		}
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// currentVersion is the highest applied step, 0 for a new database.
func (r *Registry) currentVersion(ctx context.Context, q querier) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Version is the schema version of the open database.
func (r *Registry) Version(ctx context.Context) (int, error) {
	return r.currentVersion(ctx, r.db)
}
