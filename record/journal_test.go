package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/version"
)

var admin = Actor{Name: "Zoë Ångström", Role: "administrator"}

type slotPayload struct {
	Slot string `json:"slot"`
}

// writeJournal makes a journal of three steps and returns its path and bytes.
func writeJournal(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.jsonl")
	j, err := CreateJournal(path, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return j.Begin("token.init", admin, slotPayload{Slot: "1"}) },
		func() error { return j.Done("token.init", admin, nil) },
		func() error { return j.Begin("root.generate", System, nil) },
		func() error { return j.Fail("root.generate", System, errors.New("token removed")) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw
}

func TestJournalRoundTrip(t *testing.T) {
	path, raw := writeJournal(t)
	jf, err := ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(jf.Entries) != 5 {
		t.Fatalf("entries = %+v", jf.Entries)
	}
	if f, err := Decode[Failure](jf.Entries[4]); err != nil || f.Error != "token removed" {
		t.Fatalf("failure payload = %+v, %v", f, err)
	}
	if p, err := Decode[slotPayload](jf.Entries[1]); err != nil || p.Slot != "1" {
		t.Fatalf("begin payload = %+v, %v", p, err)
	}
	if jf.Entries[1].Actor != "Zoë Ångström" || jf.Entries[1].Run != "acme-root-2026" {
		t.Errorf("second entry = %+v", jf.Entries[1])
	}
	// The first entry names the build that began the run.
	if b := Builds(jf.Entries); jf.Entries[0].Step != StepStart || len(b) != 1 || !b[0].Same(version.Current()) {
		t.Errorf("first entry = %+v, builds %+v", jf.Entries[0], b)
	}
	if len(jf.FinalHash) != 64 {
		t.Errorf("final hash %q", jf.FinalHash)
	}
	if _, err := CreateJournal(path, "again"); err == nil {
		t.Error("CreateJournal overwrote an existing journal")
	}
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Error("journal does not end with a newline")
	}
}

func TestReadJournalDetectsTampering(t *testing.T) {
	_, raw := writeJournal(t)
	lines := strings.SplitAfter(string(raw), "\n")
	lines = lines[:len(lines)-1] // drop the empty tail
	tests := []struct {
		name   string
		edit   func() string
		line   int
		reason string
	}{
		{"edited data", func() string {
			l := append([]string(nil), lines...)
			l[1] = strings.Replace(l[1], `"slot":"1"`, `"slot":"2"`, 1)
			return strings.Join(l, "")
		}, 3, "prev hash"},
		{"removed entry", func() string {
			return lines[0] + lines[2] + lines[3]
		}, 2, "sequence number"},
		{"swapped entries", func() string {
			return lines[0] + lines[2] + lines[1] + lines[3]
		}, 2, "sequence number"},
		{"removed first", func() string {
			return strings.Join(lines[1:], "")
		}, 1, "sequence number"},
		{"truncated last", func() string {
			all := strings.Join(lines, "")
			return all[:len(all)-10]
		}, 5, "incomplete"},
		{"garbage line", func() string {
			return lines[0] + "not json\n" + lines[1]
		}, 2, "not a journal entry"},
		{"unknown field", func() string {
			return strings.Replace(lines[0], `{"seq"`, `{"x":1,"seq"`, 1)
		}, 1, "not a journal entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJournal(strings.NewReader(tt.edit()))
			var je *JournalError
			if !errors.As(err, &je) {
				t.Fatalf("err = %v, want a JournalError", err)
			}
			if je.Line != tt.line || !strings.Contains(je.Reason, tt.reason) {
				t.Errorf("got line %d %q, want line %d containing %q", je.Line, je.Reason, tt.line, tt.reason)
			}
		})
	}
}

func TestOpenJournalResumesAndReportsTornTail(t *testing.T) {
	path, raw := writeJournal(t)
	// A crash mid-write leaves half a line.
	if err := os.WriteFile(path, append(raw, []byte(`{"seq":5,"time":"2026`)...), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Begin("root.generate", System, nil); err != nil {
		t.Fatal(err)
	}
	j.Close()
	jf, err := ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(jf.Entries) != 7 {
		t.Fatalf("%d entries, want 7", len(jf.Entries))
	}
	torn := jf.Entries[5]
	if tt, err := Decode[TornTail](torn); torn.Step != StepTornTail || err != nil || tt.Bytes != 21 || len(tt.SHA256) != 64 {
		t.Errorf("torn-tail note = %+v", torn)
	}
	if open := OpenSteps(jf.Entries); len(open) != 1 || open[0].Seq != 7 {
		t.Errorf("open steps = %+v", open)
	}
}

func TestOpenSteps(t *testing.T) {
	e := func(step string, s Status) Entry { return Entry{Step: step, Status: s} }
	tests := []struct {
		name    string
		entries []Entry
		want    []string
	}{
		{"none", nil, nil},
		{"all closed", []Entry{e("a", StatusBegin), e("a", StatusDone), e("b", StatusBegin), e("b", StatusFailed)}, nil},
		{"one open", []Entry{e("a", StatusBegin), e("a", StatusDone), e("b", StatusBegin)}, []string{"b"}},
		{"notes ignored", []Entry{e("a", StatusNote), e("b", StatusBegin), e("c", StatusBegin), e("b", StatusDone)}, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, o := range OpenSteps(tt.entries) {
				got = append(got, o.Step)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("open = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJournalConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.jsonl")
	j, err := CreateJournal(path, "fleet-1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 10; k++ {
				if err := j.Note("batch", System, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	want := j.FinalHash()
	j.Close()
	jf, err := ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(jf.Entries) != 81 || jf.FinalHash != want {
		t.Errorf("%d entries, final %s want %s", len(jf.Entries), jf.FinalHash, want)
	}
}

// A crash between creating a journal and writing its first entry leaves an empty file: it
// reopens as the run's journal from the start. A journal of another run is refused.
func TestOpenJournalEmptyAndForeign(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path, "fleet-1")
	if err != nil {
		t.Fatal(err)
	}
	j.Begin("fleet.start", System, nil)
	j.Close()
	jf, err := ReadJournalFile(path)
	if err != nil || len(jf.Entries) != 2 || jf.Entries[0].Step != StepStart || jf.Entries[1].Run != "fleet-1" || jf.Entries[1].Seq != 2 {
		t.Fatalf("entries %+v, %v", jf, err)
	}
	if _, err := OpenJournal(path, "fleet-2"); err == nil || !strings.Contains(err.Error(), "journal of run fleet-1, not of fleet-2") {
		t.Errorf("a foreign journal: %v", err)
	}
}

// A run continued by another build (a resume after an upgrade) says so; the same build adds
// nothing.
func TestOpenJournalNotesAnotherBuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	old := version.Info{Version: "0.1.0", Revision: "1111111111111111111111111111111111111111", GoVersion: "go1.26.1", SHA256: "ab12"}
	j := &Journal{f: f, path: path, run: "run-1", last: genesis, now: time.Now}
	if err := j.Note(StepStart, System, old.JournalData()); err != nil {
		t.Fatal(err)
	}
	j.Close()
	for range 2 {
		j, err := OpenJournal(path, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
	}
	jf, err := ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := Builds(jf.Entries)
	if len(jf.Entries) != 2 || jf.Entries[1].Step != StepBuild || len(b) != 2 || !b[0].Same(old) || !b[1].Same(version.Current()) {
		t.Errorf("entries %+v, builds %+v", jf.Entries, b)
	}
}

// After a write fails, the journal refuses every later entry with that failure: nothing is
// chained onto a line that may be torn, and the file holds nothing after it.
func TestJournalLatchesTheFirstWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	j, err := CreateJournal(path, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Begin("a", System, nil); err != nil {
		t.Fatal(err)
	}
	// The file goes away under the journal: its next write fails.
	j.f.Close()
	first := j.Done("a", System, nil)
	if first == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	// The file works again, but the journal must not write after the failed line.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.f = f
	later := j.Note("b", System, nil)
	if later == nil || !strings.Contains(later.Error(), "an earlier entry could not be written") || !strings.Contains(later.Error(), "write a") {
		t.Fatalf("append after a failed write: %v", later)
	}
	j.Close()
	jf, err := ReadJournalFile(path)
	if err != nil || len(jf.Entries) != 2 || jf.Entries[1].Step != "a" {
		t.Fatalf("journal after the failure (its start entry and a's begin): %+v, %v", jf, err)
	}
}

// A payload is a struct, so every entry kind has a Go type its readers decode; a map or a
// plain value is refused before anything is written.
func TestEncodeTakesStructsOnly(t *testing.T) {
	tests := []struct {
		name    string
		payload any
		want    string
		wantErr bool
	}{
		{"nil", nil, "", false},
		{"struct", slotPayload{Slot: "3"}, `{"slot":"3"}`, false},
		{"pointer", &slotPayload{Slot: "4"}, `{"slot":"4"}`, false},
		{"nil pointer", (*slotPayload)(nil), "", false},
		{"map", map[string]string{"slot": "1"}, "", true},
		{"string", "slot 1", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.payload)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Errorf("Encode = %s, %v; want %s, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	j, err := CreateJournal(filepath.Join(t.TempDir(), "j.jsonl"), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Note("x", System, map[string]string{"a": "b"}); err == nil {
		t.Error("a map payload was journaled")
	}
	if n := len(j.Entries()); n != 1 {
		t.Errorf("a refused payload left an entry: %d entries besides the start", n-1)
	}
}

func TestFlatten(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"none", ``, ``},
		{"in written order", `{"token":"ops","key_id":"ab","count":3,"created":true}`, `token: ops; key_id: ab; count: 3; created: true`},
		{"empty and null left out", `{"a":"","b":null,"c":"x"}`, `c: x`},
		{"nested object", `{"token":{"label":"ops","serial":"42"}}`, `token.label: ops; token.serial: 42`},
		{"plain list", `{"custodians":["Ann","Bo"]}`, `custodians: Ann, Bo`},
		{"list of objects", `{"shares":[{"n":1,"c":"Ann"},{"n":2,"c":"Bo"}]}`, `shares.1.n: 1; shares.1.c: Ann; shares.2.n: 2; shares.2.c: Bo`},
		{"not an object", `"just text"`, `just text`},
		{"broken", `{"a":`, `data: {"a":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parts []string
			for _, f := range Flatten(json.RawMessage(tt.data)) {
				if f.Name == "" {
					parts = append(parts, f.Value)
					continue
				}
				parts = append(parts, f.Name+": "+f.Value)
			}
			if got := strings.Join(parts, "; "); got != tt.want {
				t.Errorf("Flatten(%s) = %q, want %q", tt.data, got, tt.want)
			}
		})
	}
}

// TestFlattenMatchesTheDecoder compares Flatten with the same walk over encoding/json's
// tokens, on payloads of every shape the journal holds and some it should not.
func TestFlattenMatchesTheDecoder(t *testing.T) {
	payloads := []string{
		`{"token":"ops","key_id":"ab","count":3,"created":true,"gone":false}`,
		`{"a":"","b":null,"c":"x","d":[],"e":{},"f":[null,""],"g":[[1,2],[3]]}`,
		`{"shares":[{"n":1,"c":"Ann"},{"n":2,"c":"Bo"}],"mixed":[1,{"x":"y"},"z"]}`,
		`{"esc":"a\"b\\c\/d\n\u00e9\ud83d\ude00","utf8":"Zoë 李雷","num":-1.5e+3,"big":12345678901234567890}`,
		` { "spaced" : [ 1 , 2 ] , "x" : { "y" : null } } `,
		`"just text"`, `42`, `true`, `null`, `[1,"a"]`,
		`{"a":`, `{"a" 1}`, `{"a":1,}`, `[1 2]`, `{"a":tru}`, `{"a":"unterminated}`, `{"a":01}`, `{"a":"\x01"}`,
		"{\"bad\":\"\xff\xfe\"}",
	}
	var devices []string
	for i := range 50 {
		devices = append(devices, fmt.Sprintf(`"DEV-%06d",0,1,2,1,3,4,1796130212,1796130212`, i))
	}
	payloads = append(payloads, `{"texts":["fleet-1","unreachable","attested by W"],"devices":[`+strings.Join(devices, ",")+`]}`)
	for _, p := range payloads {
		if got, want := Flatten(json.RawMessage(p)), flattenByDecoder(json.RawMessage(p)); !reflect.DeepEqual(got, want) {
			t.Errorf("Flatten(%s)\n = %q\nwant %q", p, got, want)
		}
	}
}

// flattenByDecoder is Flatten as it was first written, over json.Decoder's tokens.
func flattenByDecoder(data json.RawMessage) []Field {
	if len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []Field
	var walk func(name string, out *[]Field) error
	walk = func(name string, out *[]Field) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if err := walk(joinName(name, fmt.Sprint(k)), out); err != nil {
						return err
					}
				}
			case '[':
				var plain []string
				var nested []Field
				for i := 1; dec.More(); i++ {
					var item []Field
					if err := walk(joinName(name, fmt.Sprint(i)), &item); err != nil {
						return err
					}
					if len(item) == 1 && item[0].Name == joinName(name, fmt.Sprint(i)) {
						plain = append(plain, item[0].Value)
					}
					nested = append(nested, item...)
				}
				if len(plain) == len(nested) {
					if len(plain) > 0 {
						*out = append(*out, Field{Name: name, Value: strings.Join(plain, ", ")})
					}
				} else {
					*out = append(*out, nested...)
				}
			}
			_, err := dec.Token()
			return err
		case nil:
			return nil
		case string:
			if t != "" {
				*out = append(*out, Field{Name: name, Value: t})
			}
		default:
			*out = append(*out, Field{Name: name, Value: fmt.Sprint(t)})
		}
		return nil
	}
	if err := walk("", &out); err != nil {
		return []Field{{Name: "data", Value: string(data)}}
	}
	return out
}
