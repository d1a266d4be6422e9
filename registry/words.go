package registry

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// The device history in words, as `custos device show` and `device find` print it and the
// window's Devices screen shows it: one wording for both front ends.

// ParseMoment reads a moment as a person gives it: RFC 3339 (2026-03-01T14:30:00Z), or a date
// (2026-03-01, midnight UTC).
func ParseMoment(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give one as 2026-03-01T14:30:00Z (RFC 3339) or a date, 2026-03-01", s)
}

// ParseFindQuery reads what a person looks a device up by: a key's public key SHA-256 (64
// hex digits) or a certificate's serial (hex as openssl prints it, colons allowed).
func ParseFindQuery(s string) (FindQuery, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	if len(h) == 64 {
		if sum, err := hex.DecodeString(h); err == nil {
			return FindQuery{KeySHA256: sum}, nil
		}
	}
	serial, err := ParseSerial(s)
	if err != nil {
		return FindQuery{}, fmt.Errorf("%q is neither a certificate serial nor a key's SHA-256 (64 hex digits): %w", s, err)
	}
	return FindQuery{CertSerial: serial}, nil
}

// Matches says whether period p is of the certificate or key q looks for.
func (q FindQuery) Matches(p Period) bool {
	if len(q.CertSerial) != 0 {
		return bytes.Equal(p.Serial, q.CertSerial)
	}
	return bytes.Equal(p.KeySHA256[:], q.KeySHA256)
}

// Stamp is a moment as the history prints it (RFC 3339, UTC), or "" for none.
func Stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// KeyName names a device key: its CKA_ID in hex, or the start of its public key's SHA-256.
func KeyName(id []byte, sha [32]byte) string {
	if len(id) > 0 {
		return hex.EncodeToString(id)
	}
	return "sha256:" + hex.EncodeToString(sha[:8])
}

// Describe is the period in one line: what it is, when it served, how it ended, by which run.
func (p Period) Describe() string {
	var what string
	if p.Kind == PeriodCertificate {
		what = fmt.Sprintf("certificate %s of %s", p.Serial, p.Issuer)
	} else {
		what = "key " + KeyName(p.KeyID, p.KeySHA256)
		if len(p.Serial) > 0 {
			what += ", certified by " + p.Serial.String()
		}
	}
	switch {
	case p.EndedAt.IsZero() && !p.Until.IsZero():
		what += fmt.Sprintf("  valid %s until %s: current", Stamp(p.From), Stamp(p.Until))
	case p.EndedAt.IsZero():
		what += fmt.Sprintf("  in use since %s: current", Stamp(p.From))
	default:
		what += fmt.Sprintf("  valid %s to %s: %s", Stamp(p.From), Stamp(p.EndedAt), p.Ended)
	}
	if p.RunID != "" {
		what += " (run " + p.RunID + ")"
	}
	return what
}

// Describe says which certificates and keys the device had at d.At, and whether each
// certificate had been revoked as of then; a revocation made later whose invalidity date
// reaches back before the moment (among revocations, the device's) is named too. The first
// line names the device, the moment and its status then.
func (d DeviceAt) Describe(revocations []Revocation) []string {
	status := string(d.Status)
	if status == "" {
		status = "not yet registered"
	}
	out := []string{fmt.Sprintf("device %s at %s: %s", d.Device.Serial, Stamp(d.At), status)}
	if len(d.Certificates) == 0 {
		out = append(out, "no certificate yet")
	}
	for _, c := range d.Certificates {
		var standing string
		switch {
		case c.Revocation != nil:
			standing = fmt.Sprintf("revoked as of then (%s, on %s)", c.Revocation.Reason, Stamp(c.Revocation.RevokedAt))
		case c.Certificate.NotAfter.Before(d.At):
			standing = "expired then (" + Stamp(c.Certificate.NotAfter) + ")"
		default:
			standing = "valid then, not revoked as of then"
			for _, rv := range revocations {
				if rv.IssuerID == c.Certificate.IssuerID && bytes.Equal(rv.Serial, c.Certificate.Serial) {
					standing += fmt.Sprintf("; revoked later, on %s (%s)", Stamp(rv.RevokedAt), rv.Reason)
					if !rv.InvalidityDate.IsZero() && !rv.InvalidityDate.After(d.At) {
						standing += ", with the key compromised since " + Stamp(rv.InvalidityDate) + ", before this moment"
					}
				}
			}
		}
		out = append(out, fmt.Sprintf("certificate %s of %s: %s", c.Certificate.Serial, c.Certificate.IssuerID, standing))
	}
	for _, k := range d.Keys {
		out = append(out, fmt.Sprintf("key %s: %s then (since %s)", KeyName(k.Key.KeyID, k.Key.PublicKeySHA256), k.State, Stamp(k.Since)))
	}
	return out
}

// Describe is the device's whole history as of now: the device, each certificate and key with
// the period it served (Period.Describe), each key's state changes (indented), and each
// decommission run's result. The first line names the device.
func (h DeviceHistory) Describe(now time.Time) []string {
	d := h.Device
	out := []string{"device " + d.Serial, "model    " + d.Model}
	if d.UDI != "" {
		out = append(out, "udi      "+d.UDI)
	}
	out = append(out, "issuer   "+d.IssuerID, "status   "+string(d.Status), "since    "+Stamp(d.RegisteredAt))
	if !d.DecommissionedAt.IsZero() {
		out = append(out, "retired  "+Stamp(d.DecommissionedAt))
	}
	for _, p := range h.Periods(now) {
		out = append(out, p.Describe())
	}
	for _, k := range h.Keys {
		out = append(out, fmt.Sprintf("key %s on %q, public key SHA-256 %x", KeyName(k.KeyID, k.PublicKeySHA256), k.TokenLabel, k.PublicKeySHA256))
		for _, ch := range k.History {
			line := fmt.Sprintf("  %s  %s", Stamp(ch.At), ch.State)
			if ch.RunID != "" {
				line += "  run " + ch.RunID
			}
			if ch.Note != "" {
				line += "  (" + ch.Note + ")"
			}
			out = append(out, line)
		}
	}
	for _, r := range h.Results {
		out = append(out, fmt.Sprintf("run %s: %s by %s (%s)", r.RunID, r.Outcome, r.Method, strings.TrimSpace(r.Verification)))
	}
	return out
}
