package registry

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Two registries are compared table by table as canonical dumps: every row of every table with
// what can be derived from the journals, the rows that refer to others naming them by what
// they are (an issuer by its id, a device by its serial, a key by its device and public key)
// instead of by row number.
//
// What a dump leaves out, because no journal can give it:
//   - the row numbers (issuers.num, role_certs.num, devices.num, certificates.num,
//     device_keys.num, record_log_checkpoints.id, root_holders.num, backup_blobs.num): SQLite's rowids, handed out in the order rows
//     are inserted. A rebuild inserts in the journals' order, so they come out the same, but
//     they are no fact of the PKI: rows that refer to them are compared by what they point to.
//   - schema_version, whose applied_at is when this database file's schema was made.
//
// A table that canonicalQueries does not know is compared whole (SELECT *), row numbers and
// all: a helper adding a table should add its canonical query here.

// canonicalQueries select each known table's canonical rows from the schema named by %[1]s.
var canonicalQueries = map[string]string{
	"settings":          `SELECT key, value, updated_at FROM %[1]s.settings`,
	"runs":              `SELECT id, kind, operation, subject, status, journal_path, record_path, note, started_at, finished_at FROM %[1]s.runs`,
	"decommission_runs": `SELECT run_id, manifest_path, manifest_sha256, technician, witness FROM %[1]s.decommission_runs`,
	"issuers": `SELECT i.id, i.kind, i.common_name, i.serial, i.cert_der, i.cert_sha256, p.id AS parent, i.ceremony_id,
		i.token_label, i.key_id, i.key_algorithm, i.status, i.created_at, i.destroyed_at, i.last_crl_number,
		i.crl_base_url, i.crl_shards, i.state, i.state_at, i.state_reason, i.state_run_id
		FROM %[1]s.issuers i LEFT JOIN %[1]s.issuers p ON p.num = i.parent_num`,
	"role_certs": `SELECT c.role, i.id AS issuer, c.ceremony_id, c.common_name, c.serial, c.cert_der, c.cert_sha256, c.token_label,
		c.key_id, c.key_algorithm, c.status, c.created_at, c.destroyed_at, c.state, c.state_at, c.state_reason, c.state_run_id
		FROM %[1]s.role_certs c JOIN %[1]s.issuers i ON i.num = c.issuer_num`,
	"quorums": `SELECT ceremony_id, module_path, ops_token, plan, plan_sha256, threshold, epoch, secret_digest, backup_path,
		backup_sha256, status, created_at, updated_at, destroyed_at FROM %[1]s.quorums`,
	"quorum_shares":     `SELECT ceremony_id, number, position, custodian, commitment, destination FROM %[1]s.quorum_shares`,
	"quorum_statements": `SELECT ceremony_id, seq, statement, signature, run_id, created_at FROM %[1]s.quorum_statements`,
	"root_holders": `SELECT i.id AS root, h.token_label, h.token_serial, h.token_model, h.key_id, h.origin, h.origin_run_id,
		h.pin_epoch, h.state, h.state_at, h.state_run_id, h.state_note FROM %[1]s.root_holders h JOIN %[1]s.issuers i ON i.num = h.issuer_num`,
	"backup_blobs": `SELECT ceremony_id, epoch, sha256, path, run_id, created_at, destroyed_at, destroyed_run_id FROM %[1]s.backup_blobs`,
	"backup_copies": `SELECT c.ceremony_id, c.copy, b.epoch AS blob_epoch, c.location, c.media, c.made_by, c.made_at, c.run_id,
		c.retired_at, c.retired_by, c.retired_witness, c.retired_run_id
		FROM %[1]s.backup_copies c JOIN %[1]s.backup_blobs b ON b.num = c.blob_num`,
	"crls": `SELECT i.id AS issuer, c.number, c.this_update, c.next_update, c.entries, c.sha256, c.path, c.recorded_at
		FROM %[1]s.crls c JOIN %[1]s.issuers i ON i.num = c.issuer_num`,
	"devices": `SELECT d.serial, d.model, d.owner, d.site, d.udi, i.id AS issuer, d.status, d.registered_at, d.decommissioned_at
		FROM %[1]s.devices d JOIN %[1]s.issuers i ON i.num = d.issuer_num`,
	"certificates": `SELECT i.id AS issuer, c.serial, d.serial AS device, c.subject, c.not_before, c.not_after, c.der, c.sha256
		FROM %[1]s.certificates c JOIN %[1]s.issuers i ON i.num = c.issuer_num JOIN %[1]s.devices d ON d.num = c.device_num`,
	"device_keys": `SELECT d.serial AS device, k.key_id, k.public_key_sha256, k.token_label, ci.id AS cert_issuer, c.serial AS cert_serial,
		k.state, k.state_at, k.state_run_id, k.state_note FROM %[1]s.device_keys k JOIN %[1]s.devices d ON d.num = k.device_num
		LEFT JOIN %[1]s.certificates c ON c.num = k.certificate_num LEFT JOIN %[1]s.issuers ci ON ci.num = c.issuer_num`,
	"key_states": `SELECT d.serial AS device, k.public_key_sha256, s.state, s.at, s.run_id, s.note FROM %[1]s.key_states s
		JOIN %[1]s.device_keys k ON k.num = s.key_num JOIN %[1]s.devices d ON d.num = k.device_num`,
	"revocations": `SELECT i.id AS issuer, v.serial, v.serial_len, v.revoked_at, v.reason, v.invalidity_at FROM %[1]s.revocations v
		JOIN %[1]s.issuers i ON i.num = v.issuer_num`,
	"decommission_results": `SELECT x.run_id, d.serial AS device, i.id AS issuer, x.outcome, x.method, x.verification, x.reason, x.note,
		x.key_state, x.revoked_at, x.invalidity_at, x.revoked_serials, x.key_ids, x.crl_number, x.record_path, x.at
		FROM %[1]s.decommission_results x JOIN %[1]s.devices d ON d.num = x.device_num JOIN %[1]s.issuers i ON i.num = x.issuer_num`,
	"record_log":             `SELECT idx, run_id, kind, journal_sha256, leaf, logged_at FROM %[1]s.record_log`,
	"record_log_hashes":      `SELECT idx, hash FROM %[1]s.record_log_hashes`,
	"record_log_checkpoints": `SELECT size, root_hash, note, run_id, root_signed, signed_at FROM %[1]s.record_log_checkpoints`,
}

// referenceColumns are the columns a canonical dump gives by what they point to rather than as
// they are (row numbers: see above), so a dump covers every column but these and the row
// numbers themselves.
var referenceColumns = map[string][]string{
	"issuers":                {"num", "parent_num"},
	"role_certs":             {"num", "issuer_num"},
	"crls":                   {"issuer_num"},
	"devices":                {"num", "issuer_num"},
	"certificates":           {"num", "issuer_num", "device_num"},
	"device_keys":            {"num", "device_num", "certificate_num"},
	"key_states":             {"key_num"},
	"revocations":            {"issuer_num"},
	"decommission_results":   {"device_num", "issuer_num"},
	"record_log_checkpoints": {"id"},
	"root_holders":           {"num", "issuer_num"},
	"backup_blobs":           {"num"},
	"backup_copies":          {"blob_num"},
}

// notCompared are the tables a comparison leaves out, each with why.
var notCompared = map[string]string{
	"schema_version": "when this database file's schema was made, not a fact of the PKI",
}

// TableDiff is how one table differs between two registries.
type TableDiff struct {
	Table     string
	OnlyLeft  int64    // rows only in the first registry
	OnlyRight int64    // rows only in the second
	Left      []string // up to MaxDiffRows of them, each as "column=value, ..."
	Right     []string
	Missing   string // "left" or "right" when the table exists in one registry only
}

// MaxDiffRows is how many differing rows a TableDiff shows from each side.
const MaxDiffRows = 10

// Compare compares the registry files left and right table by table, by their canonical
// dumps (see canonicalQueries), and returns the tables that differ. Neither file is changed:
// right is attached read-only to a read-only connection to left.
func Compare(ctx context.Context, left, right string) ([]TableDiff, error) {
	l, err := filepath.Abs(left)
	if err != nil {
		return nil, err
	}
	rt, err := filepath.Abs(right)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", readOnlyURI(l))
	if err != nil {
		return nil, fmt.Errorf("compare registries: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the attachment belongs to one connection
	if _, err := db.ExecContext(ctx, `ATTACH DATABASE ? AS rt`, readOnlyURI(rt)); err != nil {
		return nil, fmt.Errorf("compare registries: attach %s: %w", rt, err)
	}
	lt, err := tables(ctx, db, "main")
	if err != nil {
		return nil, err
	}
	rtt, err := tables(ctx, db, "rt")
	if err != nil {
		return nil, err
	}
	all := slices.Clone(lt)
	for _, t := range rtt {
		if !slices.Contains(all, t) {
			all = append(all, t)
		}
	}
	slices.Sort(all)
	var out []TableDiff
	for _, t := range all {
		if _, skip := notCompared[t]; skip {
			continue
		}
		inL, inR := slices.Contains(lt, t), slices.Contains(rtt, t)
		if !inL || !inR {
			d := TableDiff{Table: t, Missing: "left"}
			if !inR {
				d.Missing = "right"
			}
			out = append(out, d)
			continue
		}
		d := TableDiff{Table: t}
		q := canonicalQueries[t]
		if q == "" {
			q = `SELECT * FROM %[1]s.` + quoteIdent(t)
		}
		lq, rq := fmt.Sprintf(q, "main"), fmt.Sprintf(q, "rt")
		if d.OnlyLeft, d.Left, err = except(ctx, db, lq, rq); err != nil {
			return nil, fmt.Errorf("compare table %s: %w", t, err)
		}
		if d.OnlyRight, d.Right, err = except(ctx, db, rq, lq); err != nil {
			return nil, fmt.Errorf("compare table %s: %w", t, err)
		}
		if d.OnlyLeft > 0 || d.OnlyRight > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

func readOnlyURI(abs string) string {
	return (&url.URL{Scheme: "file", Path: abs}).String() + "?mode=ro&_pragma=query_only(1)"
}

// tables lists the tables of schema s.
func tables(ctx context.Context, db *sql.DB, s string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM `+s+`.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", s, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// except counts the rows of query a that query b lacks (SQLite compares them column by
// column, NULLs equal), and renders the first MaxDiffRows, in order.
func except(ctx context.Context, db *sql.DB, a, b string) (int64, []string, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (`+a+` EXCEPT `+b+`)`).Scan(&n); err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, nil
	}
	rows, err := db.QueryContext(ctx, a+` EXCEPT `+b+` ORDER BY 1 LIMIT `+strconv.Itoa(MaxDiffRows))
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, nil, err
		}
		parts := make([]string, len(cols))
		for i, c := range cols {
			parts[i] = c + "=" + render(vals[i])
		}
		out = append(out, strings.Join(parts, ", "))
	}
	return n, out, rows.Err()
}

// render is a value as a dump shows it: blobs in hex, a long one by its length and SHA-256.
func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		if len(x) <= 32 {
			return hex.EncodeToString(x)
		}
		sum := sha256.Sum256(x)
		return fmt.Sprintf("<%d bytes, SHA-256 %x>", len(x), sum[:8])
	case string:
		if len(x) > 120 {
			return strconv.Quote(x[:120] + "…")
		}
		return strconv.Quote(x)
	}
	return fmt.Sprint(v)
}

// String says how the table differs, for a person.
func (d TableDiff) String() string {
	var b strings.Builder
	switch d.Missing {
	case "left":
		fmt.Fprintf(&b, "table %s: only in the second registry", d.Table)
		return b.String()
	case "right":
		fmt.Fprintf(&b, "table %s: only in the first registry", d.Table)
		return b.String()
	}
	fmt.Fprintf(&b, "table %s: %d rows only in the first, %d only in the second", d.Table, d.OnlyLeft, d.OnlyRight)
	for _, r := range d.Left {
		fmt.Fprintf(&b, "\n  - %s", r)
	}
	for _, r := range d.Right {
		fmt.Fprintf(&b, "\n  + %s", r)
	}
	return b.String()
}
