package decommission

import (
	"context"
	"crypto"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// tokenGone signs left times, then fails as a token pulled out mid-run does.
type tokenGone struct {
	crypto.Signer
	left int
}

func (s *tokenGone) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if s.left == 0 {
		return nil, errors.New("token removed")
	}
	s.left--
	return s.Signer.Sign(r, digest, opts)
}

// A CRL set whose signing fails half way, after the full CRL and some shards were written,
// leaves nothing in crl/: no set folder, no hidden partial one, no spool. Its CRL number is
// burned, and the next set, under the next number, is whole: openssl finds every revoked
// certificate in the full CRL and each in exactly one shard.
func TestCRLSetFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	w := newCRLWorld(t, t.TempDir(), 3000)
	defer w.reg.Close()
	defer w.ws.Close()
	op, err := run.StartOperation(ctx, run.Env{Registry: w.reg, Workspace: w.ws}, "crl-publish", "ica-bench")
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	sharded := registry.Issuer{ID: "ica-bench", CRLBaseURL: "http://pki.bench.example/crl", CRLShards: 10}
	req := run.CRLRequest{NextUpdate: 30 * 24 * time.Hour}

	gone := pki.Issuer{Certificate: w.issuer.Certificate, Signer: &tokenGone{Signer: w.issuer.Signer, left: 4}}
	_, err = run.SignCRL(ctx, op, sharded, gone, req)
	if err == nil || !strings.Contains(err.Error(), "sign CRL 1 for ica-bench: sign CRL set: shard 3: sign: token removed") {
		t.Fatalf("error = %v", err)
	}
	crlDir := w.ws.Path(workspace.CRLDir)
	if left, _ := os.ReadDir(crlDir); len(left) != 0 {
		t.Fatalf("crl/ holds %d entries after the failure, such as %s", len(left), left[0].Name())
	}

	c, err := run.SignCRL(ctx, op, sharded, w.issuer, req)
	if err != nil {
		t.Fatal(err)
	}
	if c.Number != 2 || c.Entries != 3000 || c.Shards != 10 {
		t.Fatalf("the next set: number %d, %d entries, %d shards", c.Number, c.Entries, c.Shards)
	}
	if left, _ := os.ReadDir(crlDir); len(left) != 1 || left[0].Name() != filepath.Base(c.SetDir) {
		t.Errorf("crl/ holds %v, want only %s", left, filepath.Base(c.SetDir))
	}
	serials := func(path string) []string {
		out := command(t, "openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-text")
		var s []string
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Serial Number: "); ok {
				s = append(s, v)
			}
		}
		return s
	}
	full := serials(c.DERPath)
	seen := map[string]int{}
	for i := range 10 {
		for _, s := range serials(filepath.Join(c.ShardDir, strconv.Itoa(i)+".crl")) {
			seen[s]++
		}
	}
	if len(full) != 3000 || len(seen) != 3000 {
		t.Fatalf("openssl lists %d entries in the full CRL and %d across the shards, want 3000", len(full), len(seen))
	}
	for _, s := range full {
		if seen[s] != 1 {
			t.Errorf("serial %s is in %d shards", s, seen[s])
		}
	}
}
