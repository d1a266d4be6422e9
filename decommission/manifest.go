package decommission

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/udi"
)

// Row is one device of a fleet manifest.
type Row struct {
	Line   int // line number in the file, for messages
	Serial string
	Method Method
	Reason pki.Reason
	Note   string
	// CompromisedAt is the compromised_at column: since when a keyCompromise revocation's key
	// may be known (its invalidity date); zero: the run's time.
	CompromisedAt time.Time
	// Destination is the destination column: where the device goes (reuse, return, recycle,
	// destroyed); NoDestination when not stated.
	Destination Destination
	// UDI is the udi column: the device's Unique Device Identifier, for a device the registry
	// has none of (one it has must match it); "" when not given.
	UDI string
}

// Manifest is a parsed fleet manifest.
type Manifest struct {
	Rows   []Row
	SHA256 [32]byte // of the file as read: the same manifest is the same run
}

// RowError is what is wrong with one line of a manifest. When it is a field of the request
// that the line needs (a witness, the device PIN), Err is that *run.FieldError.
type RowError struct {
	Line    int
	Problem string
	Err     error
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Problem) }

// Unwrap is the field error behind the line's problem, if any.
func (e RowError) Unwrap() error { return e.Err }

func fieldRowError(line int, field, format string, args ...any) RowError {
	fe := run.NewFieldError(field, format, args...)
	return RowError{Line: line, Problem: fe.Problem, Err: fe}
}

// ManifestError lists every bad line of a manifest.
type ManifestError []RowError

// Unwrap lists the lines' errors, so errors.As finds a field error among them.
func (e ManifestError) Unwrap() []error { return rowErrors(e) }

func (e ManifestError) Error() string { return "manifest: " + rowsText(e) }

// rowsText joins the first ten lines' errors, and says how many more there are.
func rowsText(rows []RowError) string {
	var parts []string
	for i, r := range rows {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rows)-10))
			break
		}
		parts = append(parts, r.Error())
	}
	return strings.Join(parts, "; ")
}

// rowErrors lists rows' errors for errors.As.
func rowErrors(rows []RowError) []error {
	out := make([]error, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}

// maxManifest bounds a manifest file: a million rows is about 40 MB.
const maxManifest = 256 << 20

// LoadManifest reads the manifest file at path and parses it as ParseManifest does. A path
// that is not a regular file of at most 256 MiB (a FIFO, a device, a larger file) is refused
// before a byte is read, and the read stops when ctx is cancelled; every error names the file.
func LoadManifest(ctx context.Context, path string) (*Manifest, error) {
	data, err := inputfile.Read(ctx, "manifest", path, maxManifest)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(data)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseManifest reads a fleet manifest: CSV with a header row naming the columns serial,
// method, reason and (optionally) note, compromised_at (see ParseCompromisedAt), destination
// (see ParseDestination) and udi (see package udi). Every bad line is reported, with its number, before
// anything is done: a *ManifestError lists them; Manifest holds the good rows.
func ParseManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("manifest: larger than %d MB", maxManifest>>20)
	}
	return parseManifest(data)
}

func parseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{SHA256: sha256.Sum256(data)}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("manifest: line 1: no header row (serial,method,reason,note): %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"serial", "method", "reason"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("manifest: line 1: the header has no %q column (it needs serial,method,reason and may have note, compromised_at, destination and udi)", need)
		}
	}
	var bad ManifestError
	// A line is a row at most: the rows are not grown, and copied, as 100,000 of them come.
	lines := bytes.Count(data, []byte{'\n'}) + 1
	m.Rows = make([]Row, 0, lines)
	seen := make(map[string]int, lines)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, RowError{Line: pe.Line, Problem: pe.Err.Error()})
				if pe.Err == csv.ErrQuote || pe.Err == csv.ErrBareQuote {
					continue
				}
			}
			return nil, fmt.Errorf("manifest: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		row := Row{Line: line, Serial: get("serial"), Note: get("note")}
		var problems []string
		if row.Serial == "" {
			problems = append(problems, "no serial")
		} else if prev, dup := seen[row.Serial]; dup {
			problems = append(problems, fmt.Sprintf("serial %s is also on line %d", row.Serial, prev))
		}
		if row.Method, err = ParseMethod(get("method")); err != nil {
			problems = append(problems, err.Error())
		}
		if reason := get("reason"); reason == "" {
			row.Reason = row.Method.DefaultReason()
		} else if row.Reason, err = pki.ParseReason(reason); err != nil {
			problems = append(problems, err.Error())
		} else if row.Reason == pki.ReasonUnspecified {
			row.Reason = row.Method.DefaultReason()
		} else if !validReason(row.Reason) {
			problems = append(problems, fmt.Sprintf("a device is not revoked for %s; use one of %s", row.Reason, pki.ReasonNames(reasons)))
		}
		if at := get("compromised_at"); at != "" {
			if row.CompromisedAt, err = ParseCompromisedAt(at); err != nil {
				problems = append(problems, "compromised_at: "+err.Error())
			} else if row.Method.reaches() || row.Reason != pki.ReasonKeyCompromise {
				problems = append(problems, "compromised_at is for an unreachable device revoked keyCompromise")
			}
		}
		if row.Destination, err = ParseDestination(get("destination")); err != nil {
			problems = append(problems, err.Error())
		} else if p := row.Destination.problem(row.Method); p != "" {
			problems = append(problems, p)
		}
		if row.UDI = get("udi"); row.UDI != "" {
			if _, err := udi.Check(row.UDI); err != nil {
				problems = append(problems, "udi: "+err.Error())
			}
		}
		if len(problems) > 0 {
			bad = append(bad, RowError{Line: line, Problem: strings.Join(problems, "; ")})
			continue
		}
		seen[row.Serial] = line
		m.Rows = append(m.Rows, row)
	}
	if len(bad) > 0 {
		return m, bad
	}
	if len(m.Rows) == 0 {
		return nil, errors.New("manifest: no devices listed")
	}
	return m, nil
}
