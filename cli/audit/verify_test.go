package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
	"github.com/custos-pki/custos/record"
)

// signedRecord writes a root ceremony's record in a workspace of its own, logged and
// attested as a ceremony does, with software keys (the auditor's custos-verify needs no cgo),
// and the root as PEM and DER files.
func signedRecord(t *testing.T, dir, name string) (recordPath, rootPEM, rootDER string) {
	t.Helper()
	w := newWorld(t, name)
	recordPath = w.record("root")
	journal, _ := os.ReadFile(filepath.Join(w.dir, "journal", strings.TrimSuffix(filepath.Base(recordPath), ".pdf")+".jsonl"))
	os.WriteFile(filepath.Join(dir, name+".jsonl"), journal, 0o644)
	rootDER = filepath.Join(dir, name+"-root.der")
	os.WriteFile(rootDER, w.root.Raw, 0o644)
	return recordPath, w.rootPEM, rootDER
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	rec, rootPEM, rootDER := signedRecord(t, dir, "acme")
	_, otherRoot, _ := signedRecord(t, dir, "other")
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout
		errs string // in stderr
	}{
		{"root as PEM", []string{"verify", rec, "--root", rootPEM}, command.ExitOK, "PASS  signer chains to the root", ""},
		{"root as DER", []string{"verify", "--root", rootDER, rec}, command.ExitOK, rec + " verifies", ""},
		{"another root", []string{"verify", rec, "--root", otherRoot}, command.ExitFail, "FAIL  signer chains to the root", "does not verify"},
		{"a workspace without a root", []string{"verify", rec, "--workspace", filepath.Join(dir, "ws")}, command.ExitFail, "",
			"the workspace has no root: give the root certificate with --root"},
		{"a journal", []string{"verify", filepath.Join(dir, "acme.jsonl")}, command.ExitOK, "PASS  journal's hash chain is intact", ""},
		{"a root file without a certificate", []string{"verify", rec, "--root", filepath.Join(dir, "acme.jsonl")}, command.ExitUsage, "",
			"holds no certificate (PEM or DER)"},
		{"two files", []string{"verify", rec, rec}, command.ExitUsage, "", "name one record or journal file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := Program().Run(context.Background(), tt.args, command.Streams{Out: &out, Err: &errs})
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errs.String(), tt.errs) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errs.String())
			}
			if tt.code == command.ExitOK && strings.Contains(out.String(), "FAIL") {
				t.Errorf("a check failed:\n%s", out.String())
			}
		})
	}
}

// TestVerifyRefusesHostileInputs gives verify, as the record and as --root, a device that
// never ends, a FIFO nobody writes to, a socket, a folder and a file one byte over the limit:
// each is refused at once, naming the file, without reading it.
func TestVerifyRefusesHostileInputs(t *testing.T) {
	rec, _, _ := signedRecord(t, t.TempDir(), "acme")
	run := func(args ...string) error {
		var out, errs bytes.Buffer
		if code := Program().Run(context.Background(), args, command.Streams{Out: &out, Err: &errs}); code == command.ExitOK {
			return nil
		}
		return errors.New(errs.String())
	}
	for _, h := range inputfiletest.Inputs(t, "record or journal", record.MaxFileSize) {
		t.Run("record/"+h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error { return run("verify", path) })
		})
	}
	for _, h := range inputfiletest.Inputs(t, "root certificate file", maxRootFile) {
		t.Run("root/"+h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error { return run("verify", rec, "--root", path) })
		})
	}
}

// TestVerifyStopsWhenCancelled: SIGINT or SIGTERM (a cancelled context) ends verify before it
// reads the record.
func TestVerifyStopsWhenCancelled(t *testing.T) {
	rec, rootPEM, _ := signedRecord(t, t.TempDir(), "acme")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errs bytes.Buffer
	code := Program().Run(ctx, []string{"verify", rec, "--root", rootPEM}, command.Streams{Out: &out, Err: &errs})
	if code != command.ExitFail || !strings.Contains(errs.String(), "context canceled") || strings.Contains(out.String(), "PASS") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errs.String())
	}
}
