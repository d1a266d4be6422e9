package decommission

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// stepPublish is the one step of a CRL publication: the issuing CA's key signs its CRLs.
var stepPublish = run.Step{ID: "crl-publish", Title: "Sign the issuing CA's CRLs"}

// PublishRequest is a CRL publication: which issuing CA, who publishes, the operator PIN that
// opens its key and the record signer (it stays the caller's), and how long the CRLs stay
// current.
type PublishRequest struct {
	Issuer   string // issuing CA id or common name
	Operator string // who publishes; "" names the operator by role alone
	OpsPIN   []byte
	CRL      run.CRLRequest
}

// Published is a CRL publication: the CRL set, and the journal and signed record of its run.
type Published struct {
	run.CRL
	Issuer      string
	RunID       string
	JournalPath string
	RecordPath  string
}

// PublishCRL signs an issuing CA's CRLs (its full CRL, and every shard when it splits its CRL)
// with its key on the operations token, opened with the operator PIN, as a run of its own like
// every other use of an issuing CA key: its journal says who asked and what was signed, it is
// entered in the record log, and the record signer signs a short record naming the set (the
// full CRL and each shard with its SHA-256). A root, or a CA whose state forbids it to sign
// CRLs, is refused before any module is loaded; a nextUpdate past the CA's notAfter or the
// policy's bound is refused with a *pki.LimitError before the token is opened.
func PublishCRL(ctx context.Context, env run.Env, req PublishRequest) (*Published, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	// Before the module is loaded: a root, or a CA that may not sign, is refused before any
	// login, so no PIN try of the root token is ever spent by an operator.
	entry, err := run.CheckIssuer(ctx, env.Registry, req.Issuer, run.SignCRLs)
	if err != nil {
		return nil, issuerError(err)
	}
	// The dates are checked before the token is opened: a refusal spends no PIN try.
	if cert, err := x509.ParseCertificate(entry.Certificate); err == nil {
		if err := run.CheckCRLRequest(cert, env.Clock(), req.CRL); err != nil {
			return nil, fmt.Errorf("CRL of %s: %w", entry.ID, err)
		}
	}
	mod, err := env.OpenModule(ctx, "")
	if err != nil {
		return nil, err
	}
	defer mod.Close()
	iss, err := run.OpenIssuer(ctx, env.Registry, mod, req.Issuer, req.OpsPIN, run.SignCRLs)
	if err != nil {
		return nil, err
	}
	defer iss.Close()
	signer, err := openRecordSigner(ctx, env, mod, iss.Entry, req.OpsPIN)
	if err != nil {
		return nil, fmt.Errorf("publish the CRL of %s: %w", iss.Entry.ID, err)
	}
	defer signer.Close()
	who := record.Actor{Name: strings.TrimSpace(req.Operator), Role: "operator"}
	if who.Name == "" {
		who.Name = "the holder of the operator PIN"
	}
	// Not a run the registry lists as unfinished (an operation): a publication that fails is
	// journaled as failed, has nothing to resume or undo (a CRL number it allocated stays
	// burnt), and is simply made again.
	r, err := run.StartOperation(ctx, env, "crl-publish", iss.Entry.ID)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := &Published{Issuer: iss.Entry.ID, RunID: r.ID, JournalPath: r.Journal.Path()}
	err = r.Step(stepPublish, who, func() (any, error) {
		c, err := run.SignCRL(ctx, r, iss.Entry, iss.Signer(), req.CRL)
		if err != nil {
			return nil, err
		}
		out.CRL = c
		return c.Payload(iss.Entry.ID), nil
	})
	if err == nil {
		if err = writeCRLRecord(ctx, r, iss, who, signer, out); err != nil {
			err = r.Fail(stepRecord.ID, who, fmt.Errorf("the CRL is signed, but its record could not be written: %w", err))
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// setSumsName is the attachment of a CRL set's record listing every file of the set with its
// SHA-256, as sha256sum writes them.
const setSumsName = "crl-set.sha256"

func writeCRLRecord(ctx context.Context, r *run.Run, iss *run.Issuer, who record.Actor, signer *run.RecordSigner, out *Published) error {
	c := &record.CRLPublication{ID: out.RunID, Operator: who.Name, Issuer: iss.Entry.ID + " (" + iss.Certificate.Subject.CommonName + ")",
		Number: out.Number, Entries: out.Entries, ThisUpdate: out.ThisUpdate, NextUpdate: out.NextUpdate,
		File: out.DERPath, SHA256: out.Fingerprint.String()}
	if out.Shards > 0 {
		sums := out.SetSums()
		c.Set = &record.CRLSet{Folder: out.SetDir, ShardFolder: out.ShardDir, Shards: out.Shards,
			Largest: fmt.Sprintf("shard %d, %d bytes", out.LargestShard, out.LargestSize), Budget: out.ShardBudget,
			OverBudget: out.OverBudget, SumsFile: setSumsName, SumsSHA256: pki.FingerprintOf(sums).String()}
		for i, f := range out.ShardSHA256 {
			c.Set.ShardSHA256 = append(c.Set.ShardSHA256, record.Field{Name: fmt.Sprintf("%s/%d.crl", iss.Entry.ID, i), Value: f.String()})
		}
		c.Attachments = append(c.Attachments, record.Attachment{Name: setSumsName, MIME: "text/plain", Relationship: record.RelData,
			Description: "the SHA-256 of every file of the CRL set (sha256sum -c, in the set's folder)", Content: sums})
	}
	if entries := r.Journal.Entries(); len(entries) > 0 {
		c.Started, c.Finished = entries[0].Time, entries[len(entries)-1].Time
	}
	root := signer.Chain[len(signer.Chain)-1]
	seal := run.LogSeal{Kind: "crl-publish", RootID: signer.RootID, Root: root}
	var err error
	out.RecordPath, err = r.WriteRecord(ctx, stepRecord, seal, signer.Signer, func(path string, journal []byte, log *record.LogProof) error {
		c.Log = log
		return record.WriteCRLPublication(ctx, path, c, journal, signer.Signer)
	})
	return err
}

// issuerError is a refusal of the issuing CA a request named, as an error of its Issuer
// field: a root, or a CA whose state forbids what was asked.
func issuerError(err error) error {
	if errors.Is(err, run.ErrRootUnderQuorum) || errors.Is(err, run.ErrCannotSign) {
		return &run.FieldError{Name: "Issuer", Problem: err.Error(), Err: err}
	}
	return err
}
