package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CRL is a signed CRL as the registry records it: which issuer, which number, its window and
// where the file is.
type CRL struct {
	IssuerID   string
	Number     int64 // the CRL number extension; allocated by AllocateCRLNumber
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int64     // revoked certificates listed
	SHA256     [32]byte  // of the DER file
	Path       string    // the DER file under crl/
	RecordedAt time.Time // set by the registry
}

// AllocateCRLNumber hands out the issuer's next CRL number in a transaction of its own,
// committed before it returns: call it before signing. A number is never handed out twice,
// even after a crash between allocation and RecordCRL; such a crash burns the number, and the
// numbers of the CRLs actually published still strictly increase.
func (r *Registry) AllocateCRLNumber(ctx context.Context, issuerID string) (int64, error) {
	var n int64
	fact := &CRLNumberAllocated{Issuer: issuerID}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE issuers SET last_crl_number = last_crl_number + 1
			WHERE id = ? AND status = 'active' RETURNING last_crl_number`, issuerID).Scan(&n)
		fact.Number = n
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := issuerNum(ctx, tx, issuerID); err != nil {
				return err
			}
			return fmt.Errorf("%w: the issuer's key is destroyed; it signs no more CRLs", ErrConflict)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("allocate a CRL number for issuer %q: %w", issuerID, err)
	}
	return n, nil
}

// RecordCRL records a CRL signed with a number from AllocateCRLNumber. The number must have
// been allocated and must be above every CRL recorded for the issuer, so the latest CRL is
// always the one with the highest number. RecordedAt is when (zero: now).
func (r *Registry) RecordCRL(ctx context.Context, c CRL) error {
	c.ThisUpdate, c.NextUpdate, c.RecordedAt = c.ThisUpdate.UTC(), c.NextUpdate.UTC(), nowOr(c.RecordedAt)
	fact := &CRLRecorded{Issuer: c.IssuerID, Number: c.Number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate,
		Entries: c.Entries, SHA256: c.SHA256[:], Path: c.Path, RecordedAt: c.RecordedAt}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		var num, last int64
		err := tx.QueryRowContext(ctx, `SELECT num, last_crl_number FROM issuers WHERE id = ?`, c.IssuerID).Scan(&num, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no issuer has id %q", ErrNotFound, c.IssuerID)
		}
		if err != nil {
			return err
		}
		if c.Number < 1 || c.Number > last {
			return fmt.Errorf("%w: number %d was never allocated (last allocated: %d)", ErrConflict, c.Number, last)
		}
		var newest int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(number), 0) FROM crls WHERE issuer_num = ?`, num).Scan(&newest); err != nil {
			return err
		}
		if c.Number <= newest {
			return fmt.Errorf("%w: the newest recorded CRL already has number %d", ErrConflict, newest)
		}
		if c.Path == "" || c.Entries < 0 || !c.NextUpdate.After(c.ThisUpdate) {
			return fmt.Errorf("%w: a CRL needs a path, a count of entries and nextUpdate after thisUpdate", ErrInvalid)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO crls (issuer_num, number, this_update, next_update, entries, sha256, path, recorded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, num, c.Number, unix(c.ThisUpdate), unix(c.NextUpdate), c.Entries,
			c.SHA256[:], c.Path, unix(c.RecordedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("record CRL %d of issuer %q: %w", c.Number, c.IssuerID, err)
	}
	return nil
}

const crlColumns = `i.id, c.number, c.this_update, c.next_update, c.entries, c.sha256, c.path, c.recorded_at
	FROM crls c JOIN issuers i ON i.num = c.issuer_num `

func scanCRL(s rowScanner) (CRL, error) {
	var c CRL
	var this, next, rec int64
	var sum []byte
	if err := s.Scan(&c.IssuerID, &c.Number, &this, &next, &c.Entries, &sum, &c.Path, &rec); err != nil {
		return CRL{}, err
	}
	c.ThisUpdate, c.NextUpdate, c.RecordedAt = fromUnix(this), fromUnix(next), fromUnix(rec)
	copy(c.SHA256[:], sum)
	return c, nil
}

// LatestCRL is the issuer's CRL with the highest number; ErrNotFound before the first.
func (r *Registry) LatestCRL(ctx context.Context, issuerID string) (CRL, error) {
	c, err := scanCRL(r.db.QueryRowContext(ctx, `SELECT `+crlColumns+`WHERE i.id = ? ORDER BY c.number DESC LIMIT 1`, issuerID))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err2 := issuerNum(ctx, r.db, issuerID); err2 != nil {
			err = err2
		} else {
			err = fmt.Errorf("%w: no CRL has been recorded", ErrNotFound)
		}
	}
	if err != nil {
		return CRL{}, fmt.Errorf("find the latest CRL of issuer %q: %w", issuerID, err)
	}
	return c, nil
}

// CRLs lists an issuer's recorded CRLs, lowest number first.
func (r *Registry) CRLs(ctx context.Context, issuerID string) ([]CRL, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+crlColumns+`WHERE i.id = ? ORDER BY c.number`, issuerID)
	if err != nil {
		return nil, fmt.Errorf("list CRLs of issuer %q: %w", issuerID, err)
	}
	defer rows.Close()
	var out []CRL
	for rows.Next() {
		c, err := scanCRL(rows)
		if err != nil {
			return nil, fmt.Errorf("list CRLs of issuer %q: %w", issuerID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list CRLs of issuer %q: %w", issuerID, err)
	}
	return out, nil
}
