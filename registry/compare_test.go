package registry

import (
	"context"
	"regexp"
	"slices"
	"testing"
)

// Every column of every table is compared when a rebuilt registry is held against the live
// one: named in its table's canonical query, or a row number the query replaces by what it
// points to. A column added to the schema and to neither fails here, so that a registry fact
// nobody derives from the journals cannot pass the rebuild's comparison unseen.
func TestEveryColumnIsCompared(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	rows, err := r.db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("tables: %v", tables)
	}
	for _, table := range tables {
		q, known := canonicalQueries[table]
		if _, skipped := notCompared[table]; skipped || !known {
			continue // left out with its reason, or compared whole (SELECT *)
		}
		cols, err := r.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for cols.Next() {
			var col string
			if err := cols.Scan(&col); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(referenceColumns[table], col) {
				continue
			}
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(col) + `\b`).MatchString(q) {
				t.Errorf("column %s.%s is not compared when a rebuilt registry is held against the live one: add it to the table's "+
					"canonical query (registry/compare.go, canonicalQueries), or to referenceColumns if it is a row number; and make "+
					"sure the Fact of every write that stores it carries it (registry/facts.go), so a rebuild from the journals gives it", table, col)
			}
		}
		cols.Close()
	}
}
