package record

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeviceTableAheadOfItsRecord lays out a fleet's table first, in volumes of three pages,
// then the record around it, and reads the signed file with tools that know nothing of how
// it was made: every row once and in order, after the summary; on every page its number, the
// number of pages and the journal's hash, though the table's pages were drawn before either
// was known; qpdf, pdfsig and Verify accept it.
func TestDeviceTableAheadOfItsRecord(t *testing.T) {
	const rows = 120
	journal := testJournal(t, 3)
	_, hash, err := journalOf(journal)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	table := NewDeviceTable("fleet-ahead", rows, dir)
	defer table.Stop()
	table.d.volumePages = 3
	for i := range rows {
		table.Add(fleetRow(i))
	}
	s, root := testSigner(t, "Acme")
	path := filepath.Join(dir, "fleet.pdf")
	r := &Destruction{ID: "fleet-ahead", Outcome: fmt.Sprintf("%d decommissioned", rows), Technician: "Tess Tech", Witness: "Wes Witness",
		Issuer: "ica-1 (Acme Devices CA 1)", Manufacturer: "Acme Medical", Table: table, Results: ready(Pack([]byte("serial\n")))}
	if err := WriteDestruction(context.Background(), path, r, journal, s); err != nil {
		t.Fatal(err)
	}
	checkSignedFile(t, path, root)
	out, err := exec.Command("pdftotext", "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, out)
	}
	text := string(out)
	pages := strings.Split(strings.TrimRight(text, "\f"), "\f")
	if len(pages) < 10 {
		t.Fatalf("%d pages, want the table over several volumes", len(pages))
	}
	for i, p := range pages {
		for _, want := range []string{fmt.Sprintf("fleet-ahead · page %d of %d", i+1, len(pages)), "journal sha256 " + hash[:16] + "…",
			"Certificate of sanitization: fleet of 120 devices"} {
			if !strings.Contains(p, want) {
				t.Errorf("page %d lacks %q", i+1, want)
			}
		}
	}
	summary, devices := strings.Index(text, "Journal SHA-256"), strings.Index(text, "Serial, model")
	if summary < 0 || devices < summary {
		t.Errorf("the Devices table does not follow the summary (at %d and %d)", summary, devices)
	}
	at := 0
	for i := range rows {
		serial := fmt.Sprintf("DEV-%07d", i)
		if n := strings.Count(text, serial); n != 1 {
			t.Errorf("%s appears %d times", serial, n)
		}
		next := strings.Index(text, serial)
		if next < at {
			t.Errorf("%s is out of order", serial)
		}
		at = next
	}
	if last := strings.LastIndex(text, "Signatures"); last < at {
		t.Errorf("the signatures do not follow the table")
	}
}

// TestDeviceTableShortOfItsFleet refuses a record whose table lacks some of the fleet's
// devices, and writes nothing.
func TestDeviceTableShortOfItsFleet(t *testing.T) {
	dir := t.TempDir()
	table := NewDeviceTable("fleet-short", 5, dir)
	defer table.Stop()
	for i := range 3 {
		table.Add(fleetRow(i))
	}
	s, _ := testSigner(t, "Acme")
	path := filepath.Join(dir, "fleet.pdf")
	err := WriteDestruction(context.Background(), path, &Destruction{ID: "fleet-short", Table: table}, testJournal(t, 2), s)
	if err == nil || !strings.Contains(err.Error(), "the fleet's table has 3 of its 5 devices") {
		t.Fatalf("err = %v, want the table's 3 of 5 devices named", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a record was written: %v", err)
	}
}

// checkSignedFile checks a signed record with tools that know nothing of how it was made:
// qpdf finds it sound, pdfsig finds its signature valid over the whole file, and every check
// of Verify passes under root (but the record log's, a test's record being in none).
func checkSignedFile(t *testing.T, path string, root *x509.Certificate) {
	t.Helper()
	if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
	sig, _ := exec.Command("pdfsig", path).CombinedOutput()
	if !strings.Contains(string(sig), "Signature is Valid.") || !strings.Contains(string(sig), "Total document signed") {
		t.Errorf("pdfsig:\n%s", sig)
	}
	b, _ := os.ReadFile(path)
	for _, c := range Verify(b, []*x509.Certificate{root}).Checks {
		if !c.OK && c.Name != CheckLogEntry && c.Name != CheckLogInclusion {
			t.Errorf("verify: %s: %s", c.Name, c.Detail)
		}
	}
}
