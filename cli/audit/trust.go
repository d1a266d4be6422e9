package audit

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// trust is what the auditor's commands check against: the root (given, or the workspace's
// only one), the newest CRL that root signed, and the workspace, opened read-only, when there
// is one.
type trust struct {
	roots   []*x509.Certificate
	from    string // where the roots came from, for the report
	rootID  string // the workspace's id of the root, when it came from there
	crl     *x509.RevocationList
	crlFrom string
	ws      *workspace.Workspace
	reg     *registry.Registry
	closeWS func()
}

func (t *trust) close() {
	if t.closeWS != nil {
		t.closeWS()
	}
}

// maxCRLFile bounds a root CRL read: a root revokes a handful of CAs and signers.
const maxCRLFile = 16 << 20

// openTrust reads the roots from rootFile, else from the workspace (which must hold exactly
// one: with several, it will not guess), and the root's newest CRL from crlFile, else from the
// workspace's crl folder. The workspace is opened read-only and only if it exists; nothing is
// created or changed.
func openTrust(ctx context.Context, rootFile, crlFile, wsDir string) (*trust, error) {
	t := &trust{}
	ws, reg, closeAll, err := registry.OpenWorkspaceReadOnly(ctx, wsDir)
	switch {
	case err == nil:
		t.ws, t.reg, t.closeWS = ws, reg, closeAll
	case errors.Is(err, registry.ErrEmptyWorkspace):
	case rootFile == "":
		return nil, err
	}
	fail := func(err error) (*trust, error) {
		t.close()
		return nil, err
	}
	if rootFile != "" {
		if t.roots, err = readRoots(ctx, rootFile); err != nil {
			return fail(err)
		}
		t.from = rootFile
	} else {
		if t.reg == nil {
			return fail(errors.New("the workspace has no root: give the root certificate with --root"))
		}
		issuers, err := t.reg.Issuers(ctx)
		if err != nil {
			return fail(err)
		}
		var names []string
		for _, i := range issuers {
			if i.Kind != registry.IssuerRoot {
				continue
			}
			c, err := x509.ParseCertificate(i.Certificate)
			if err != nil {
				return fail(fmt.Errorf("the workspace's root %s: %w", i.ID, err))
			}
			t.roots, t.rootID = append(t.roots, c), i.ID
			names = append(names, fmt.Sprintf("%s (%s, SHA-256 %s)", i.ID, c.Subject, fingerprint(c)))
		}
		switch {
		case len(t.roots) == 0:
			return fail(errors.New("the workspace has no root: give the root certificate with --root"))
		case len(t.roots) > 1:
			return fail(fmt.Errorf("the workspace %s has %d roots: %s; give the one to check against with --root, Custos will not guess",
				t.ws.Dir, len(t.roots), strings.Join(names, "; ")))
		}
		t.from = "the workspace " + t.ws.Dir
	}
	if crlFile != "" {
		if len(t.roots) != 1 {
			return fail(errors.New("--crl needs one root to check it against"))
		}
		b, err := inputfile.Read(ctx, "root CRL", crlFile, maxCRLFile)
		if err != nil {
			return fail(err)
		}
		crl, err := parseCRL(b)
		if err == nil {
			err = crl.CheckSignatureFrom(t.roots[0])
		}
		if err != nil {
			return fail(fmt.Errorf("%s is not a CRL of the root %s: %w", crlFile, t.roots[0].Subject, err))
		}
		t.crl, t.crlFrom = crl, crlFile
	} else if t.ws != nil && len(t.roots) == 1 {
		t.crl, t.crlFrom = newestCRL(t.ws, t.roots[0])
	}
	return t, nil
}

// parseCRL reads a CRL in DER or PEM.
func parseCRL(b []byte) (*x509.RevocationList, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	return x509.ParseRevocationList(b)
}

// newestCRL is the CRL with the highest number among the workspace's crl/*.crl files that the
// root signed (an issuing CA's CRLs are passed over), or nil.
func newestCRL(ws *workspace.Workspace, root *x509.Certificate) (*x509.RevocationList, string) {
	files, _ := filepath.Glob(ws.Path(workspace.CRLDir, "*.crl"))
	var best *x509.RevocationList
	var from string
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxCRLFile {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		crl, err := x509.ParseRevocationList(b)
		if err != nil || string(crl.RawIssuer) != string(root.RawSubject) || crl.CheckSignatureFrom(root) != nil {
			continue
		}
		if best == nil || crl.Number.Cmp(best.Number) > 0 {
			best, from = crl, f
		}
	}
	return best, from
}

// checkRevocation adds the check of the signer against the root's CRL to rep, when the record's
// signer chained to the root and a CRL of that root is at hand; without one it says that
// revocation was not checked, and why.
func (t *trust) checkRevocation(_ context.Context, rep *record.Report) {
	if rep.Signer == nil || rep.Root == nil {
		return
	}
	if t.crl == nil || !rep.Root.Equal(t.roots[0]) {
		rep.Notes = append(rep.Notes, "the signer's revocation was not checked: no CRL of the root is at hand (none in the workspace's crl folder, and none given)")
		return
	}
	detail, err := record.NotRevokedWhenSigned(rep.Signer, rep.Root, t.crl, rep.SignedAt)
	c := record.Check{Name: record.CheckNotRevoked, OK: err == nil, Detail: detail + " (" + t.crlFrom + ")"}
	if err != nil {
		c.Detail = err.Error() + " (" + t.crlFrom + ")"
	}
	rep.Checks = append(rep.Checks, c)
}
