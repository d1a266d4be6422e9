package ceremony

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// Env is what every ceremony operation works in: the locked workspace, its registry, and how
// to reach the HSM.
type Env struct {
	Workspace *workspace.Workspace
	Registry  *registry.Registry
	// Module overrides the PKCS#11 module the plan or the registry names.
	Module string
	// HSMOptions are passed to hsm.Open; tests inject faults with them.
	HSMOptions []hsm.Option
	// Progress, when set, hears each step begin and end (the GUI's step list).
	Progress func(Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Event is a step starting, finishing or failing.
type Event struct {
	Step   Step
	Status record.Status
	Err    error
}

// Step is one step of an operation as the people at the workstation see it.
type Step struct {
	ID     string // journal step name, e.g. "root.generate-key"
	Title  string
	Script string // what the administrator reads aloud and what people must check
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// run is one operation in progress: its journal, its registry run, and its steps.
type run struct {
	env     Env
	id      string
	journal *record.Journal
}

// startRun checks the workspace can take the run's files, creates its journal and registers
// the run, before anything on a token changes.
func startRun(ctx context.Context, env Env, id, op, subject string) (*run, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	path := env.Workspace.Path("journal", id+".jsonl")
	j, err := record.CreateJournal(path, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := env.Registry.StartRun(ctx, registry.Run{ID: id, Kind: registry.RunCeremony,
		Operation: op, Subject: subject, JournalPath: path}); err != nil {
		j.Close()
		os.Remove(path)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &run{env: env, id: id, journal: j}, nil
}

// step journals st as begun, runs fn, and journals it done with fn's data or failed with its
// error. The journal entry is written before fn acts: a run killed inside fn shows the step
// as open.
func (r *run) step(st Step, who record.Actor, fn func() (map[string]string, error)) error {
	if err := r.journal.Begin(st.ID, who, nil); err != nil {
		return err
	}
	r.progress(Event{Step: st, Status: record.StatusBegin})
	data, err := fn()
	if err != nil {
		r.journal.Fail(st.ID, who, err)
		r.progress(Event{Step: st, Status: record.StatusFailed, Err: err})
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	if err := r.journal.Done(st.ID, who, data); err != nil {
		return err
	}
	r.progress(Event{Step: st, Status: record.StatusDone})
	return nil
}

func (r *run) progress(e Event) {
	if r.env.Progress != nil {
		r.env.Progress(e)
	}
}

// finish closes the run in the registry: completed, or failed with the error.
func (r *run) finish(ctx context.Context, err error, recordPath string) {
	if err != nil {
		r.env.Registry.FailRun(ctx, r.id, err.Error())
	} else {
		r.env.Registry.CompleteRun(ctx, r.id, recordPath)
	}
	r.journal.Close()
}

// newRunID names a run: subject, operation, time and a random suffix, so it sorts by time
// and two runs in the same second still differ.
func newRunID(env Env, op, subject string) string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s-%x", subject, op, env.now().Format("20060102T150405Z"), b)
}

// writeCertPEM writes a certificate under certs/, never overwriting.
func writeCertPEM(ws *workspace.Workspace, name string, c *x509.Certificate) (string, error) {
	path := ws.Path("certs", name)
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	if err := workspace.CreateExclusive(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return path, nil
}

// tokenRand reads the token's RNG as an io.Reader (serial numbers, key ids).
type tokenRand struct {
	ctx context.Context
	s   *hsm.Session
}

func (t tokenRand) Read(p []byte) (int, error) {
	b, err := t.s.Random(t.ctx, len(p))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

// openModule opens the PKCS#11 module: env.Module if set, else path.
func openModule(env Env, path string) (*hsm.Module, error) {
	if env.Module != "" {
		path = env.Module
	}
	return hsm.Open(path, env.HSMOptions...)
}
