package registry

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PeriodKind says what a Period is of.
type PeriodKind string

const (
	PeriodCertificate PeriodKind = "certificate"
	PeriodKey         PeriodKind = "key"
)

// Period is one certificate or key a device had, and when it served: a certificate from its
// notBefore until it was revoked or expired; a key from when it came into use (active) until
// it left that state. A device's forensic history is the list of them (DeviceHistory.Periods).
type Period struct {
	Kind      PeriodKind
	Issuer    string       // the certificate's issuer, or the issuer of the key's certificate
	Serial    SerialNumber // the certificate's serial, or the serial of the key's certificate
	KeyID     []byte       // the key's CKA_ID (for a certificate, the key it certifies), if known
	KeySHA256 [32]byte     // the key's public key fingerprint, zero if not known
	From      time.Time
	Until     time.Time // a certificate's notAfter: when it ends unless revoked first; zero for a key
	EndedAt   time.Time // when it ended, zero while it has not
	Ended     string    // how it ended: "revoked (keyCompromise), invalid since …", "expired", "compromised", "destroyed"; "" while current
	RunID     string    // the run that ended it, if one did
}

// Contains says whether the period covers the moment at.
func (p Period) Contains(at time.Time) bool {
	return !at.Before(p.From) && (p.EndedAt.IsZero() || at.Before(p.EndedAt))
}

// Periods lists every certificate and key of the device with when it served and how it
// ended, as of now (a certificate past its notAfter by now has expired): certificates first,
// oldest first, then keys.
func (h DeviceHistory) Periods(now time.Time) []Period {
	var out []Period
	keyOf := func(issuer string, serial SerialNumber) *DeviceKey {
		for i := range h.Keys {
			if h.Keys[i].CertIssuerID == issuer && bytes.Equal(h.Keys[i].CertSerial, serial) {
				return &h.Keys[i]
			}
		}
		return nil
	}
	runOf := func(issuer string, serial SerialNumber) string {
		for _, r := range h.Results {
			if r.IssuerID == issuer && slices.ContainsFunc(r.RevokedSerials, func(s SerialNumber) bool { return bytes.Equal(s, serial) }) {
				return r.RunID
			}
		}
		return ""
	}
	for _, c := range h.Certificates {
		p := Period{Kind: PeriodCertificate, Issuer: c.IssuerID, Serial: c.Serial, From: c.NotBefore, Until: c.NotAfter}
		if k := keyOf(c.IssuerID, c.Serial); k != nil {
			p.KeyID, p.KeySHA256 = k.KeyID, k.PublicKeySHA256
		}
		var rv *Revocation
		for i := range h.Revocations {
			if h.Revocations[i].IssuerID == c.IssuerID && bytes.Equal(h.Revocations[i].Serial, c.Serial) {
				rv = &h.Revocations[i]
			}
		}
		switch {
		case rv != nil && rv.RevokedAt.Before(c.NotAfter):
			p.EndedAt, p.Ended, p.RunID = rv.RevokedAt, "revoked ("+rv.Reason.String()+")", runOf(c.IssuerID, c.Serial)
			if !rv.InvalidityDate.IsZero() {
				p.Ended += ", invalid since " + rv.InvalidityDate.UTC().Format(time.RFC3339)
			}
		case !now.Before(c.NotAfter):
			p.EndedAt, p.Ended = c.NotAfter, "expired"
			if rv != nil {
				p.Ended += fmt.Sprintf(", then revoked (%s) on %s", rv.Reason, rv.RevokedAt.UTC().Format(time.RFC3339))
			}
		}
		out = append(out, p)
	}
	for _, k := range h.Keys {
		p := Period{Kind: PeriodKey, Issuer: k.CertIssuerID, Serial: k.CertSerial, KeyID: k.KeyID, KeySHA256: k.PublicKeySHA256}
		var ends []string
		for _, ch := range k.History {
			switch {
			case ch.State == KeyPreActivation:
				if p.From.IsZero() {
					p.From = ch.At
				}
			case ch.State == KeyActive:
				p.From = ch.At
			case p.EndedAt.IsZero():
				if p.From.IsZero() {
					p.From = ch.At
				}
				p.EndedAt, p.RunID = ch.At, ch.RunID
				ends = append(ends, string(ch.State))
			default:
				ends = append(ends, fmt.Sprintf("%s on %s", ch.State, ch.At.UTC().Format(time.RFC3339)))
			}
		}
		p.Ended = strings.Join(ends, ", then ")
		out = append(out, p)
	}
	return out
}

// FindQuery names a certificate serial or a key fingerprint to look for across devices.
type FindQuery struct {
	CertSerial SerialNumber // a device certificate's serial, of any issuer
	KeySHA256  []byte       // a device key's public key fingerprint (see PublicKeySHA256), 32 bytes
}

// FindDevices returns the serials of the devices that have (or had) the certificate or key
// of q, oldest first: usually one; a serial reused by two issuers names both devices.
func (r *Registry) FindDevices(ctx context.Context, q FindQuery) ([]string, error) {
	if (len(q.CertSerial) == 0) == (len(q.KeySHA256) == 0) {
		return nil, fmt.Errorf("%w: find a device by a certificate serial or by a key fingerprint, one of them", ErrInvalid)
	}
	if len(q.KeySHA256) != 0 && len(q.KeySHA256) != 32 {
		return nil, fmt.Errorf("%w: a key fingerprint is a SHA-256, 32 bytes (64 hex digits), not %d bytes", ErrInvalid, len(q.KeySHA256))
	}
	var out []string
	err := r.read(ctx, func(tx *sql.Tx) error {
		// The certificates' (issuer_num, serial) index serves a serial of any issuer: there
		// are few issuers, each looked up in it.
		query, arg := `SELECT DISTINCT d.num, d.serial FROM certificates c JOIN devices d ON d.num = c.device_num
			WHERE c.issuer_num IN (SELECT num FROM issuers) AND c.serial = ? ORDER BY d.num`, any([]byte(q.CertSerial))
		if len(q.KeySHA256) != 0 {
			query, arg = `SELECT DISTINCT d.num, d.serial FROM device_keys k JOIN devices d ON d.num = k.device_num
				WHERE k.public_key_sha256 = ? ORDER BY d.num`, q.KeySHA256
		}
		rows, err := tx.QueryContext(ctx, query, arg)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var num int64
			var serial string
			if err := rows.Scan(&num, &serial); err != nil {
				return err
			}
			out = append(out, serial)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("find devices: %w", err)
	}
	return out, nil
}
