package audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
)

// signedRecord writes a record signed by a software record signer under a software root, as
// a ceremony would on tokens, and the root as PEM and DER files. It needs no cgo, as the
// auditor's custos-verify does not.
func signedRecord(t *testing.T, dir, name string) (recordPath, rootPEM, rootDER string) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: name + " Root CA", Organization: "Acme Medical", Country: "US", ValidityYears: 20}, serial, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ = pki.NewSerial(rand.Reader)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: name + " Ceremony Records", Organization: "Acme Medical", ValidityYears: 5},
		serial, key.Public(), pki.Issuer{Certificate: root, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	j, err := record.CreateJournal(filepath.Join(dir, name+".jsonl"), "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	j.Begin("root.generate-key", record.System, nil)
	j.Done("root.generate-key", record.System, map[string]string{"sha256": strings.Repeat("ab", 32)})
	journal, _ := j.Bytes()
	j.Close()
	c := &record.Ceremony{ID: "acme-root-2026", Kind: "root", Root: "acme-root-2026", Outcome: "completed",
		Threshold: 2, Custodians: 3, Started: time.Now().Add(-time.Hour), Finished: time.Now()}
	recordPath = filepath.Join(dir, name+".pdf")
	s := record.Signer{Key: key, Certificate: cert, Chain: []*x509.Certificate{root}}
	if err := record.WriteCeremony(context.Background(), recordPath, c, journal, s); err != nil {
		t.Fatal(err)
	}
	rootPEM, rootDER = filepath.Join(dir, name+"-root.pem"), filepath.Join(dir, name+"-root.der")
	os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644)
	os.WriteFile(rootDER, root.Raw, 0o644)
	return recordPath, rootPEM, rootDER
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
