package registry

import (
	"context"
	"fmt"
)

// KnownKey is a private key the registry knows, by the token that holds it and its CKA_ID:
// a root's, an issuing CA's, a role certificate's (the record signer), a device's.
type KnownKey struct {
	What       string // "root acme-root-2026", "issuing CA ica-…", "record signer …", "device SN-1"
	TokenLabel string // may be empty for a device key registered without one
	KeyID      []byte // may be empty for a device key registered from its certificate alone
}

// KnownKeys lists every key the registry knows, whatever its state: a token holding one of
// them is a CA's or a device's, never a place for a custodian's share.
func (r *Registry) KnownKeys(ctx context.Context) ([]KnownKey, error) {
	rows, err := r.db.QueryContext(ctx, `
		SELECT kind || ' ' || id, token_label, key_id FROM issuers
		UNION ALL SELECT role || ' of ' || ceremony_id, token_label, key_id FROM role_certs
		UNION ALL SELECT 'device ' || d.serial, k.token_label, k.key_id FROM device_keys k JOIN devices d ON d.num = k.device_num`)
	if err != nil {
		return nil, fmt.Errorf("list known keys: %w", err)
	}
	defer rows.Close()
	var out []KnownKey
	for rows.Next() {
		var k KnownKey
		if err := rows.Scan(&k.What, &k.TokenLabel, &k.KeyID); err != nil {
			return nil, fmt.Errorf("list known keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list known keys: %w", err)
	}
	return out, nil
}
