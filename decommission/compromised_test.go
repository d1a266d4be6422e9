package decommission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/run"
)

func TestParseCompromisedAt(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2026-03-01T14:30:00Z", want: time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)},
		{in: "2026-03-01T15:30:00+01:00", want: time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC)},
		{in: "2026-03-01", want: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "yesterday", bad: true},
		{in: "2026-13-01", bad: true},
		{in: "01/03/2026", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseCompromisedAt(tt.in)
		if tt.bad {
			if err == nil || !strings.Contains(err.Error(), "RFC 3339") {
				t.Errorf("%q: err = %v, want a refusal saying the format", tt.in, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%q = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	m, err := ParseManifest(strings.NewReader("serial,method,reason,compromised_at\nA,unreachable,,2026-03-01\nB,unreachable,,\n"))
	if err != nil || !m.Rows[0].CompromisedAt.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !m.Rows[1].CompromisedAt.IsZero() {
		t.Errorf("manifest rows %+v, %v", m, err)
	}
	for name, text := range map[string]string{
		"not a time":         "serial,method,reason,compromised_at\nA,unreachable,,soon\n",
		"erased device":      "serial,method,reason,compromised_at\nA,erase,,2026-03-01\n",
		"not keyCompromise":  "serial,method,reason,compromised_at\nA,unreachable,cessationOfOperation,2026-03-01\n",
		"physical destroyed": "serial,method,reason,compromised_at\nA,physical,,2026-03-01\n",
	} {
		if _, err := ParseManifest(strings.NewReader(text)); err == nil || !strings.Contains(err.Error(), "line 2: compromised_at") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// journalHas says whether the run's journal holds every one of the strings.
func journalHas(t *testing.T, path string, want ...string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(raw), w) {
			t.Errorf("journal %s lacks %s", filepath.Base(path), w)
		}
	}
}

func opensslTime(t time.Time) string { return t.UTC().Format("Jan _2 15:04:05 2006 GMT") }

// TestDecommissionCompromisedAt: the technician's compromise time is the invalidity date of
// the CRL entry (openssl crl -text), the journal and record say it was given; without one,
// the run's time, and they say so; a time in the future, or for another reason, is refused
// naming the field before anything changes.
func TestDecommissionCompromisedAt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	devs := registerMany(t, f, 4)
	lost := time.Now().UTC().Add(-40 * 24 * time.Hour).Truncate(time.Second)

	for name, req := range map[string]Request{
		"future":         {Serial: devs[2], Method: Unreachable, InvalidityDate: time.Now().Add(time.Hour)},
		"not compromise": {Serial: devs[2], Method: Unreachable, Reason: pki.ReasonCessationOfOperation, InvalidityDate: lost},
	} {
		req.Technician, req.Witness, req.OpsPIN = "Tess Tech", "Wes Witness", []byte(opsPIN)
		_, err := Decommission(ctx, f.env, req)
		if run.FieldOf(err) != "InvalidityDate" {
			t.Errorf("%s: err = %v, want a field error on InvalidityDate", name, err)
		}
	}
	if n, _ := f.env.Registry.CountRevocations(ctx, f.issuer); n != 0 {
		t.Fatalf("%d revocations after refused requests", n)
	}

	given, err := Decommission(ctx, f.env, Request{Serial: devs[0], Method: Unreachable, InvalidityDate: lost,
		Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if !given.InvalidityDate.Equal(lost) || given.InvalidityFrom != FromTechnician {
		t.Errorf("result invalidity %v from %q", given.InvalidityDate, given.InvalidityFrom)
	}
	crl := command(t, "openssl", "crl", "-in", given.CRL.PEMPath, "-noout", "-text")
	if !strings.Contains(crl, "Invalidity Date: \n                "+opensslTime(lost)) && !strings.Contains(crl, opensslTime(lost)) {
		t.Errorf("CRL lacks the invalidity date %s:\n%s", opensslTime(lost), crl)
	}
	journalHas(t, given.JournalPath, `"invalidity_date":"`+lost.Format(time.RFC3339)+`"`, `"invalidity_date_from":"the technician"`)
	if txt := strings.Join(strings.Fields(command(t, "pdftotext", given.RecordPath, "-")), ""); !strings.Contains(txt, "thetechnician") {
		t.Errorf("record does not say the technician gave the invalidity date")
	}

	before := time.Now().UTC().Truncate(time.Second)
	now, err := Decommission(ctx, f.env, Request{Serial: devs[1], Method: Unreachable,
		Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if now.InvalidityDate.Before(before) || now.InvalidityFrom != FromRunTime {
		t.Errorf("default invalidity %v from %q, want the run's time", now.InvalidityDate, now.InvalidityFrom)
	}
	journalHas(t, now.JournalPath, `"invalidity_date_from":"the run's time"`)
	if txt := strings.Join(strings.Fields(command(t, "pdftotext", now.RecordPath, "-")), ""); !strings.Contains(txt, "therun'stime") {
		t.Errorf("record does not say the invalidity date is the run's time")
	}
	// Both entries are in the latest CRL, each with its own invalidity date.
	crl = command(t, "openssl", "crl", "-in", now.CRL.PEMPath, "-noout", "-text")
	if strings.Count(crl, "Invalidity Date") != 2 || !strings.Contains(crl, opensslTime(lost)) {
		t.Errorf("CRL 2:\n%s", crl)
	}
}

// TestFleetCompromisedAt: a manifest's compromised_at column dates its row's revocation, the
// others keyCompromise rows are dated by the run; the journal's batch names the given ones and
// the results attached to the record say where each date came from.
func TestFleetCompromisedAt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	devs := registerMany(t, f, 3)
	lost := time.Now().UTC().Add(-3 * 24 * time.Hour).Truncate(time.Second)
	text := "serial,method,reason,note,compromised_at\n" +
		devs[0] + ",unreachable,,lost in transit," + lost.Format(time.RFC3339) + "\n" +
		devs[1] + ",unreachable,,,\n" +
		devs[2] + ",physical,,,\n"
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	req := FleetRequest{ManifestPath: path, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN)}

	future := "serial,method,reason,compromised_at\n" + devs[0] + ",unreachable,," + time.Now().Add(48*time.Hour).UTC().Format(time.DateOnly) + "\n"
	fm, err := ParseManifest(strings.NewReader(future))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fleet(ctx, f.env, fm, req); err == nil || !strings.Contains(err.Error(), "line 2: compromised_at") {
		t.Errorf("a compromise time in the future: err = %v", err)
	}

	res, err := Fleet(ctx, f.env, m, req)
	if err != nil {
		t.Fatal(err)
	}
	crl := command(t, "openssl", "crl", "-in", res.CRLs[0].PEMPath, "-noout", "-text")
	if strings.Count(crl, "Invalidity Date") != 2 || !strings.Contains(crl, opensslTime(lost)) {
		t.Errorf("CRL:\n%s", crl)
	}
	journalHas(t, res.JournalPath, `"compromised_at":[{"serial":"`+devs[0]+`","at":"`+lost.Format(time.RFC3339)+`"}]`)
	dir := t.TempDir()
	command(t, "pdfdetach", "-saveall", "-o", dir, res.RecordPath)
	csv, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		devs[0] + ",decommissioned,unreachable,keyCompromise,",
		"," + lost.Format(time.RFC3339) + ",the technician,",
		",the run's time,",
	} {
		if !strings.Contains(string(csv), want) {
			t.Errorf("results.csv lacks %q:\n%s", want, csv)
		}
	}
	if strings.Count(string(csv), "the technician") != 1 || strings.Count(string(csv), "the run's time") != 1 {
		t.Errorf("results.csv:\n%s", csv)
	}
}
