package record

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/version"
)

// Status says where an entry stands in its step: a step that changes a token or the registry
// is journaled as begun before it acts and as done (or failed) after, so a run that stops in
// between is found on the next start.
type Status string

const (
	StatusBegin  Status = "begin"
	StatusDone   Status = "done"
	StatusFailed Status = "failed"
	StatusNote   Status = "note"
)

// Actor is a person, or Custos itself, with the role they hold in a procedure: who did or
// confirmed a step in a journal, and a participant a record lists and asks to sign.
type Actor struct {
	Name string
	Role string // administrator, witness, custodian, technician, operator, auditor, system
}

// System is Custos itself, for steps no person confirms.
var System = Actor{Name: "custos", Role: "system"}

// Entry is one line of a journal. Prev chains it to the line before, so removing,
// reordering or editing any entry breaks the chain. Data is the entry's payload: a JSON object
// encoded from the Go struct of its kind of entry (see Decode), which any JSON tool reads.
type Entry struct {
	Seq    int64           `json:"seq"`
	Time   time.Time       `json:"time"`
	Run    string          `json:"run"`
	Actor  string          `json:"actor,omitempty"`
	Role   string          `json:"role,omitempty"`
	Step   string          `json:"step"`
	Status Status          `json:"status"`
	Data   json.RawMessage `json:"data,omitempty"`
	Prev   string          `json:"prev"`
}

// Failure is the payload of a failed entry: the error a person saw.
type Failure struct {
	Error string `json:"error"`
}

// TornTail is the payload of the note OpenJournal writes when it cuts off a half-written last
// line: how long the line was and its hash, so nothing is dropped unsaid.
type TornTail struct {
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

// StepTornTail is the step of a TornTail note.
const StepTornTail = "journal.torn-tail"

// genesis is the Prev of a journal's first entry.
var genesis = strings.Repeat("0", 64)

// maxLine bounds one journal line; a fleet batch entry with thousands of serials fits easily.
const maxLine = 16 << 20

// Journal is an append-only, hash-chained JSON-lines file for one run. Every entry is
// written and synced before Append returns, so a crash loses at most the entry being
// written. The first write or sync that fails is remembered: every later Append returns that
// error, so no entry is ever chained onto a line that may be torn. It is safe for concurrent
// use.
type Journal struct {
	mu      sync.Mutex
	f       *os.File
	path    string
	run     string
	entries []Entry
	last    string // hex SHA-256 of the last line, or genesis
	now     func() time.Time
	err     error // the first failed write or sync; latched
}

// CreateJournal starts the journal of run at path with its start entry, which names this
// build of Custos. It refuses to overwrite an existing file: a journal is evidence.
func CreateJournal(path, run string) (*Journal, error) {
	if run == "" {
		return nil, errors.New("create journal: empty run id")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	j := &Journal{f: f, path: path, run: run, last: genesis, now: time.Now}
	if err := j.Note(StepStart, System, version.Current().JournalData()); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// StepStart is the first entry of every journal: which build of Custos began the run
// (version, commit, whether the tree was modified, Go version, SHA-256 of the binary).
// StepBuild is noted when another build continues the run (a resume after an upgrade).
const (
	StepStart = "journal.start"
	StepBuild = "journal.build"
)

// Builds lists the builds of Custos that wrote a journal, in the order they first appear.
func Builds(entries []Entry) []version.Info {
	var out []version.Info
	for _, e := range entries {
		if e.Step != StepStart && e.Step != StepBuild {
			continue
		}
		p, err := Decode[version.JournalBuild](e)
		if err != nil {
			continue
		}
		if b, ok := version.FromJournalData(p); ok && (len(out) == 0 || !out[len(out)-1].Same(b)) {
			out = append(out, b)
		}
	}
	return out
}

// noteBuild writes the start entry into an empty journal, and a build entry when the
// running binary is not the last one the journal names.
func (j *Journal) noteBuild() error {
	cur := version.Current()
	if len(j.entries) == 0 {
		return j.Note(StepStart, System, cur.JournalData())
	}
	if b := Builds(j.entries); len(b) > 0 && b[len(b)-1].Same(cur) {
		return nil
	}
	return j.Note(StepBuild, System, cur.JournalData())
}

// OpenJournal reopens run's journal to resume it. The chain is verified first; a broken
// chain is an error naming the line, and a journal of another run is refused. A half-written
// last line (a crash mid-write) is cut off and reported in a note entry with its length and
// hash, never silently dropped. An empty file (a crash between creating the journal and its
// first entry, so nothing was done) is continued as run's journal from its start entry. When
// the running build is not the one the journal last names, a build entry says so.
func OpenJournal(path, run string) (*Journal, error) {
	if run == "" {
		return nil, errors.New("open journal: empty run id")
	}
	// Through inputfile: a FIFO or device put in the journal's place is refused, never waited on.
	raw, err := inputfile.Read(context.Background(), "journal", path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	jf, err := ReadJournal(bytes.NewReader(raw))
	var torn []byte
	var je *JournalError
	if errors.As(err, &je) && je.Truncated {
		cut := bytes.LastIndexByte(raw, '\n') + 1
		torn = raw[cut:]
		raw = raw[:cut]
		jf, err = ReadJournal(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if n := len(jf.Entries); n > 0 && jf.Entries[n-1].Run != run {
		return nil, fmt.Errorf("open journal %s: it is the journal of run %s, not of %s", path, jf.Entries[n-1].Run, run)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if torn != nil {
		if err := f.Truncate(int64(len(raw))); err != nil {
			f.Close()
			return nil, fmt.Errorf("open journal: cut the torn last line: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &Journal{f: f, path: path, run: run, entries: jf.Entries, last: genesis, now: time.Now}
	if len(jf.Entries) > 0 {
		j.last = jf.FinalHash
	}
	if torn != nil {
		sum := sha256.Sum256(torn)
		if err := j.Note(StepTornTail, System, TornTail{Bytes: len(torn), SHA256: hex.EncodeToString(sum[:]),
			Reason: "the previous run stopped while writing this line; it was cut off here"}); err != nil {
			j.Close()
			return nil, err
		}
	}
	if err := j.noteBuild(); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// Begin journals that step is about to act. payload, like every payload below, is a struct
// (or a pointer to one) encoded as the entry's JSON object, or nil for none.
func (j *Journal) Begin(step string, who Actor, payload any) error {
	return j.add(step, StatusBegin, who, payload)
}

// Done journals that step finished, with what it did.
func (j *Journal) Done(step string, who Actor, payload any) error {
	return j.add(step, StatusDone, who, payload)
}

// Note journals a fact that is not a step of its own: a reading, an acknowledgement.
func (j *Journal) Note(step string, who Actor, payload any) error {
	return j.add(step, StatusNote, who, payload)
}

// Fail journals that step failed, with the error a person saw (a Failure payload).
func (j *Journal) Fail(step string, who Actor, cause error) error {
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	return j.add(step, StatusFailed, who, Failure{Error: msg})
}

func (j *Journal) add(step string, status Status, who Actor, payload any) error {
	data, err := Encode(payload)
	if err != nil {
		return fmt.Errorf("journal %s: %s: %w", j.path, step, err)
	}
	_, err = j.Append(Entry{Step: step, Status: status, Actor: who.Name, Role: who.Role, Data: data})
	return err
}

// Encode is payload as an entry's data: nil for none, else the JSON object of a struct (or a
// pointer to one). Anything else is refused, so every entry kind has a Go type a reader
// decodes with Decode.
func Encode(payload any) (json.RawMessage, error) {
	if payload == nil {
		return nil, nil
	}
	v := reflect.ValueOf(payload)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("a journal payload is a struct, not a %T", payload)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode the payload: %w", err)
	}
	return b, nil
}

// Decode reads an entry's payload as a T, the struct its writer encoded. An entry without
// data decodes as T's zero value.
func Decode[T any](e Entry) (T, error) {
	var v T
	if len(e.Data) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return v, fmt.Errorf("journal entry %d (%s): %w", e.Seq, e.Step, err)
	}
	return v, nil
}

// Append writes e with the next sequence number, the current time (unless e has one), the
// run id and the previous entry's hash, and syncs it to disk before returning. After a write
// or sync failed, it returns that failure and writes nothing.
func (j *Journal) Append(e Entry) (Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return Entry{}, fmt.Errorf("journal %s: append %s: an earlier entry could not be written, so no entry may follow it: %w", j.path, e.Step, j.err)
	}
	if j.f == nil {
		return Entry{}, fmt.Errorf("journal %s: append %s: journal is closed", j.path, e.Step)
	}
	if e.Step == "" {
		return Entry{}, fmt.Errorf("journal %s: append: entry has no step", j.path)
	}
	e.Seq = int64(len(j.entries)) + 1
	if e.Time.IsZero() {
		e.Time = j.now()
	}
	e.Time = e.Time.UTC()
	e.Run = j.run
	e.Prev = j.last
	line, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("journal %s: encode %s: %w", j.path, e.Step, err)
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		j.err = fmt.Errorf("write %s: %w", e.Step, err)
		return Entry{}, fmt.Errorf("journal %s: %w", j.path, j.err)
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("sync %s: %w", e.Step, err)
		return Entry{}, fmt.Errorf("journal %s: %w", j.path, j.err)
	}
	sum := sha256.Sum256(line)
	j.last = hex.EncodeToString(sum[:])
	j.entries = append(j.entries, e)
	return e, nil
}

// Entries returns a copy of the entries written so far.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.entries...)
}

// FinalHash is the hex SHA-256 of the last line: the value a record prints and signs. It is
// empty while the journal has no entry.
func (j *Journal) FinalHash() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) == 0 {
		return ""
	}
	return j.last
}

// Run is the id of the run this journal belongs to.
func (j *Journal) Run() string { return j.run }

// Path is where the journal is on disk.
func (j *Journal) Path() string { return j.path }

// Bytes returns the journal file as written, for attaching to a record.
func (j *Journal) Bytes() ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, err := inputfile.Read(context.Background(), "journal", j.path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return b, nil
}

// Close closes the file; the journal can be reopened with OpenJournal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// JournalFile is a journal read back and verified.
type JournalFile struct {
	Entries   []Entry
	FinalHash string // hex SHA-256 of the last line; empty for an empty file
}

// JournalError says which line of a journal is wrong and why.
type JournalError struct {
	Line      int // 1-based
	Reason    string
	Truncated bool // the last line is incomplete: the writer stopped mid-line
}

func (e *JournalError) Error() string { return fmt.Sprintf("journal line %d: %s", e.Line, e.Reason) }

// ReadJournal parses a journal and verifies its chain: sequence numbers 1, 2, 3..., each
// entry's prev equal to the hash of the line before, one run id throughout. The first
// problem is returned as a *JournalError naming the line.
func ReadJournal(r io.Reader) (*JournalFile, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	jf := &JournalFile{}
	prev := genesis
	run := ""
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return nil, &JournalError{Line: n, Reason: err.Error()}
		}
		if err == io.EOF {
			return nil, &JournalError{Line: n, Truncated: true,
				Reason: "the last line is incomplete (no newline): the run stopped while writing it"}
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, &JournalError{Line: n, Reason: "not a journal entry: " + err.Error()}
		}
		if dec.More() {
			return nil, &JournalError{Line: n, Reason: "more than one entry on the line"}
		}
		switch {
		case e.Seq != int64(n):
			return nil, &JournalError{Line: n, Reason: fmt.Sprintf("sequence number %d where %d belongs: an entry was removed, added or moved", e.Seq, n)}
		case e.Prev != prev:
			return nil, &JournalError{Line: n, Reason: "its prev hash does not match the line before: an entry before it was edited, removed or reordered"}
		case e.Step == "":
			return nil, &JournalError{Line: n, Reason: "entry has no step"}
		case n > 1 && e.Run != run:
			return nil, &JournalError{Line: n, Reason: fmt.Sprintf("run %q in a journal of run %q", e.Run, run)}
		}
		switch e.Status {
		case StatusBegin, StatusDone, StatusFailed, StatusNote:
		default:
			return nil, &JournalError{Line: n, Reason: fmt.Sprintf("unknown status %q", e.Status)}
		}
		run = e.Run
		sum := sha256.Sum256(line)
		prev = hex.EncodeToString(sum[:])
		jf.Entries = append(jf.Entries, e)
	}
	if len(jf.Entries) > 0 {
		jf.FinalHash = prev
	}
	return jf, nil
}

// readLine returns one line without its newline; io.EOF with a non-empty line means the
// line had no newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return line, err
		}
		return line[:len(line)-1], nil
	}
}

// ReadJournalFile reads and verifies the journal at path, a regular file of at most
// MaxFileSize bytes (a FIFO or device put in its place is refused, never waited on).
func ReadJournalFile(path string) (*JournalFile, error) {
	f, err := inputfile.Open("journal", path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	jf, err := ReadJournal(f.Reader(context.Background()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jf, nil
}

// OpenSteps returns the begin entries that no later done or failed entry of the same step
// closes: the steps a run was in the middle of when it stopped.
func OpenSteps(entries []Entry) []Entry {
	open := map[string]int{} // step → index in out
	var out []Entry
	for _, e := range entries {
		switch e.Status {
		case StatusBegin:
			open[e.Step] = len(out)
			out = append(out, e)
		case StatusDone, StatusFailed:
			if i, ok := open[e.Step]; ok {
				out[i].Step = "" // closed
				delete(open, e.Step)
			}
		}
	}
	kept := out[:0]
	for _, e := range out {
		if e.Step != "" {
			kept = append(kept, e)
		}
	}
	return kept
}

// Hex is bytes a payload shows in hexadecimal (key ids, digests), so the journal reads as the
// token tools and records print them.
type Hex []byte

// MarshalText writes the bytes in lower-case hexadecimal.
func (h Hex) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText reads hexadecimal.
func (h *Hex) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("not hexadecimal: %q", b)
	}
	*h = v
	return nil
}

func (h Hex) String() string { return hex.EncodeToString(h) }

// LastEntryTime is the time of the last whole entry of the journal at path, read from its end
// without reading the rest (a journal is appended in time order: its last entry is its newest).
// A torn last line is passed over; a journal with no whole entry gives the zero time.
func LastEntryTime(path string) (time.Time, error) {
	f, err := inputfile.Open("journal", path, MaxFileSize)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	size := f.Info().Size()
	for n := int64(64 << 10); ; n *= 4 {
		tail, err := f.Tail(n)
		if err != nil {
			return time.Time{}, err
		}
		end := bytes.LastIndexByte(tail, '\n') // the end of the last whole line
		if end < 0 {
			if int64(len(tail)) >= size {
				return time.Time{}, nil
			}
			continue
		}
		start := bytes.LastIndexByte(tail[:end], '\n') + 1
		if start == 0 && int64(len(tail)) < size {
			continue // the line began before this tail: read more of it
		}
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(tail[start:end], &e); err != nil {
			return time.Time{}, fmt.Errorf("journal %s: its last entry: %w", path, err)
		}
		return e.Time, nil
	}
}
