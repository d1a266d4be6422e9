package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Setting reads a setting the GUI or CLI keeps (such as the PKCS#11 module path); ok is
// false when it was never set. Settings are never secrets: no PIN or key material goes here.
func (r *Registry) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = r.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %q: %w", key, err)
	}
	return value, true, nil
}

// SetSetting stores a setting, replacing its value.
func (r *Registry) SetSetting(ctx context.Context, key, value string) error {
	return r.setSetting(ctx, key, value, time.Now())
}

func (r *Registry) setSetting(ctx context.Context, key, value string, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &SettingSet{Key: key, Value: value, At: at}, func(tx *sql.Tx) error {
		if key == "" {
			return fmt.Errorf("%w: empty setting name", ErrInvalid)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, unix(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("store setting %q: %w", key, err)
	}
	return nil
}

// DeleteSetting removes a setting; removing one that is not set is not an error.
func (r *Registry) DeleteSetting(ctx context.Context, key string) error {
	err := r.write(ctx, &SettingDeleted{Key: key}, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete setting %q: %w", key, err)
	}
	return nil
}
