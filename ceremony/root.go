package ceremony

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/internal/workstation"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// Participants are the people at the workstation, as the root ceremony asks them things.
// The GUI implements it with screens; the command line with the plan's names and files.
// Every method may block until a person acts, and must return when ctx is cancelled.
type Participants interface {
	// Confirm returns who confirmed that step st may go ahead.
	Confirm(ctx context.Context, st run.Step) (record.Actor, error)
	// AcknowledgeHorizon returns who acknowledged the algorithm horizon.
	AcknowledgeHorizon(ctx context.Context, h Horizon) (record.Actor, error)
	// DeliverShare hands a share to its custodian by the destination they chose (the
	// screen, their own token, or a file the command line was told to write). d.Text is
	// secret: show it or write it only where the custodian asked.
	DeliverShare(ctx context.Context, d ShareDelivery) (destination string, err error)
	// ReadBackShare returns the share as the custodian reads it back from where it went.
	ReadBackShare(ctx context.Context, d ShareDelivery) (string, error)
}

// ShareDelivery is one custodian's share on its way to them.
type ShareDelivery struct {
	CeremonyID string
	Epoch      int
	Custodian  string
	Number     int // 1..N
	Of         int // N
	Threshold  int
	Text       string // the encoded share: secret
	// Destination is where the plan sends the share; DeliverShare is asked only for the
	// default one (and an age file when no folder is known).
	Destination Destination
}

// Horizon is what NIST IR 8547 says about a certificate whose validity runs past 2030 or
// 2035 with a quantum-vulnerable algorithm.
type Horizon struct {
	Algorithm string
	NotAfter  time.Time
	Notices   []string
}

// RootSteps are the steps of a root key ceremony, in order, for a step list on screen.
var RootSteps = []run.Step{
	{ID: "root.preflight", Title: "Pre-flight checks", Script: "preflight", Confirmer: "witness"},
	{ID: "root.init-token", Title: "Initialise the root token", Script: "init-token", Confirmer: "witness"},
	{ID: "root.generate-key", Title: "Generate the root key", Script: "generate-key", Confirmer: "witness"},
	{ID: "root.certificate", Title: "Sign the root certificate", Script: "certificate", Confirmer: "witness"},
	{ID: "root.horizon", Title: "Acknowledge the algorithm horizon", Script: "horizon", Confirmer: "administrator"},
	{ID: "root.record-signer", Title: "Create the record signer", Script: "record-signer", Confirmer: "witness"},
	{ID: "root.split", Title: "Split and hand out the shares", Script: "split", Confirmer: "administrator"},
	{ID: "root.verify-shares", Title: "Verify every share", Script: "verify-shares", Confirmer: "witness"},
	{ID: "root.backup", Title: "Back up the root key", Script: "backup", Confirmer: "witness"},
	{ID: "root.statement", Title: "Sign the quorum statement", Script: "statement", Confirmer: "witness"},
	{ID: "root.close", Title: "Close the ceremony", Script: "close", Confirmer: "witness"},
}

func rootStep(id string) run.Step {
	for _, s := range RootSteps {
		if s.ID == "root."+id {
			return s
		}
	}
	panic("ceremony: unknown step " + id)
}

// RootResult is what a root ceremony made.
type RootResult struct {
	RunID            string // the run's own id; the root's id is the plan's
	Root             *x509.Certificate
	RootPath         string
	RecordSigner     *x509.Certificate
	RecordSignerPath string
	BackupPath       string
	BackupSHA256     string
	JournalPath      string
	JournalHash      string
	RecordPath       string
	Shares           []registry.QuorumShare // commitments, never shares
	Delivered        []ShareHandedOut       // where each share went
	// Warnings are what the people must act on, also journaled and in the record: plaintext
	// shares that rest together in one folder.
	Warnings []string
}

// Fingerprint is the root certificate's SHA-256 fingerprint.
func (r *RootResult) Fingerprint() pki.Fingerprint { return pki.CertificateFingerprint(r.Root) }

// rootRun holds the ceremony's state between steps; the secrets it makes are zeroed by wipe.
type rootRun struct {
	*run.Run
	plan   *Plan
	people Participants
	mod    *hsm.Module
	module hsm.ModuleFile // as hashed before it was loaded
	root   *hsm.Session
	ops    *hsm.Session
	token  quorum.TokenIdentity // the root token, as it describes itself

	opsPIN            []byte // the caller's
	s, soPIN, userPIN []byte // soPIN: the root token's SO PIN now (temporary until close)
	nextSOPIN         []byte // a PIN change that failed half way may have set it
	opsTmpSO          []byte // a new operations token's SO PIN until S exists
	opsCreated        bool   // this run initialised the operations token
	undoLabel         string // the data object on the operations token keeping soPIN (keepUndo)
	rootKey           *hsm.Signer
	signerKey         *hsm.Signer
	res               RootResult
	shares            []quorum.Share
	commits           []registry.QuorumShare
	statement         registry.Statement             // the quorum statement the root signed
	deliver           *shareDeliverer                // where each custodian's share goes
	made              []func(context.Context) string // undo actions, newest last
}

// Root runs a root key ceremony for plan. opsPIN is the operator PIN of the operations token
// (which is initialised with it if it does not exist yet); it stays the caller's. The run has
// its own id: the plan's id names the root, its token and its quorum, so a plan whose run
// failed or was aborted can run again. On failure, what the run made on tokens is destroyed
// and journaled, and the error names the step.
func Root(ctx context.Context, env run.Env, plan *Plan, opsPIN []byte, people Participants) (res *RootResult, err error) {
	r := &rootRun{plan: plan, people: people, opsPIN: opsPIN}
	defer r.wipe()
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if len(opsPIN) < 4 {
		return nil, run.NewFieldError("OpsPIN", "root ceremony: the operator PIN is shorter than 4 characters")
	}
	if _, err := env.Registry.Issuer(ctx, plan.ID); err == nil {
		return nil, fmt.Errorf("root ceremony: the workspace already has a root %q; choose another ceremony id", plan.ID)
	}
	if err := checkStart(ctx, env, plan, opsPIN); err != nil {
		return nil, err
	}
	r.Run, err = run.StartRun(ctx, env, registry.Run{ID: run.NewID(env, "root", plan.ID), Kind: registry.RunCeremony,
		Operation: "root", Subject: plan.ID})
	if err != nil {
		return nil, fmt.Errorf("root ceremony: %w", err)
	}
	r.res.RunID, r.res.JournalPath = r.ID, r.Journal.Path()
	defer func() {
		if err != nil {
			err = r.rollback(ctx, err)
		}
		r.closeSessions(ctx)
		err = r.Finish(ctx, err, r.res.RecordPath)
		if err == nil {
			res = &r.res
		}
	}()
	h := plan.SHA256()
	if err := r.Note(stepPlan, record.Actor{Name: plan.Administrator, Role: "administrator"}, PlanNote{
		Ceremony: plan.ID, PlanSHA256: hex.EncodeToString(h[:]), PlanWords: plan.HashWords(),
		Administrator: plan.Administrator, Witnesses: plan.Witnesses, Custodians: plan.Custodians,
		Threshold: plan.Threshold, Algorithm: plan.Key.Algorithm, Backup: plan.Backup,
	}); err != nil {
		return nil, err
	}
	for _, st := range []func(context.Context) error{
		r.preflight, r.initToken, r.generateKey, r.certificate, r.horizon,
		r.recordSigner, r.split, r.verifyShares, r.backup, r.signStatement, r.close,
	} {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("root ceremony stopped: %w", err)
		}
		if err := st(ctx); err != nil {
			return nil, err
		}
	}
	path, err := writeRecord(ctx, r.Run, r.ceremonyRecord(), record.Signer{Key: r.signerKey, Certificate: r.res.RecordSigner,
		Chain: []*x509.Certificate{r.res.Root}}, r.rootKey)
	if err != nil {
		return nil, r.Fail("root.record", record.System, fmt.Errorf("root ceremony done, but its record could not be written: %w", err))
	}
	r.res.RecordPath = path
	r.res.JournalHash = r.Journal.FinalHash()
	return &r.res, nil
}

func (r *rootRun) ceremonyRecord() *record.Ceremony {
	people := []record.Actor{{Name: r.plan.Administrator, Role: "administrator"}}
	for _, w := range r.plan.Witnesses {
		people = append(people, record.Actor{Name: w, Role: "witness"})
	}
	for _, c := range r.plan.Custodians {
		people = append(people, record.Actor{Name: c, Role: "custodian"})
	}
	return &record.Ceremony{ID: r.ID, Kind: "root", Root: r.plan.ID, Outcome: "completed: root created, shares verified",
		Threshold: r.plan.Threshold, Custodians: len(r.plan.Custodians), Participants: people}
}

// confirmed runs a step once its participant confirms it may go ahead, and has its result
// confirmed after when the people do that (ResultConfirmer).
func (r *rootRun) confirmed(ctx context.Context, id string, fn func() (any, error)) error {
	st := rootStep(id)
	who, err := r.people.Confirm(ctx, st)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	return stepConfirmed(ctx, r.Run, r.people, st, who, fn)
}

func (r *rootRun) preflight(ctx context.Context) error {
	return r.confirmed(ctx, "preflight", func() (any, error) {
		id := workstation.Inspect()
		path, err := r.Env.ModulePath(ctx, r.plan.Module)
		if err != nil {
			return nil, err
		}
		// Hashed before it is loaded: the quorum statement pins this file, and every quorum
		// operation refuses another.
		mod, file, err := openModule(ctx, r.Env, path, "")
		if err != nil {
			return nil, err
		}
		r.mod, r.module = mod, file
		known, err := r.Env.Registry.KnownKeys(ctx)
		if err != nil {
			return nil, err
		}
		r.deliver = &shareDeliverer{people: r.people, mod: mod, known: known, ceremonyID: r.plan.ID, epoch: 1,
			threshold: r.plan.Threshold, custodians: r.plan.Custodians, dests: r.plan.Deliveries}
		if r.res.Warnings, err = r.deliver.check(ctx); err != nil {
			return nil, err
		}
		info, err := mod.Info(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := mod.TokenByLabel(ctx, r.plan.ID); err == nil {
			return nil, fmt.Errorf("a token labelled %q already exists on %s: a root ceremony needs a new token; choose another ceremony id or clear that token with the HSM vendor's tools", r.plan.ID, mod.Path())
		} else if !errors.Is(err, hsm.ErrTokenNotFound) {
			return nil, err
		}
		slot, err := mod.FreeSlot(ctx)
		if err != nil {
			return nil, err
		}
		t := slot.Token
		h := r.plan.SHA256()
		return Preflight{PlanSHA256: hex.EncodeToString(h[:]), PlanWords: r.plan.HashWords(), Host: id.Host, OS: id.OS, Custos: id.Custos, Build: id.Build,
			Clock: r.Clock.UTC, ClockReading: r.Clock, Network: id.Network.Summary(), AirGapped: id.Network.AirGapped(),
			Module: mod.Path(), ModuleSHA256: file.SHA256, ModuleInfo: fmt.Sprintf("%s, %s, %s", info.Manufacturer, info.Description, info.LibraryVersion),
			TokenManufacturer: t.Manufacturer, TokenModel: t.Model, TokenSerial: t.SerialOrNone(),
			TokenFirmware: t.FirmwareVersion.String(), Slot: slot.ID,
		}, nil
	})
}

// initToken opens the operations token (initialising it when new), keeps a temporary SO PIN
// for the root token there (keepUndo), initialises the root token with it, draws S from
// crypto/rand and the token's RNG, and sets the user PIN derived from S: S must exist before
// its PINs, and the token's RNG is reachable only once the token is initialised. The SO PIN
// becomes the one derived from S when the ceremony closes; until then an abort of a killed run
// can re-initialise the root token empty.
func (r *rootRun) initToken(ctx context.Context) error {
	return r.confirmed(ctx, "init-token", func() (any, error) {
		if err := r.openOps(ctx); err != nil {
			return nil, err
		}
		slot, err := r.mod.FreeSlot(ctx)
		if err != nil {
			return nil, err
		}
		r.soPIN = randomPIN()
		tmpUser := randomPIN()
		defer secret.Zero(tmpUser)
		if err := r.keepUndo(ctx); err != nil {
			return nil, err
		}
		// The undo is in place before C_InitToken: a failure inside InitToken can leave the
		// token initialised.
		r.made = append(r.made, r.voidRootToken)
		if _, err := r.mod.InitToken(ctx, slot.ID, r.plan.ID, r.soPIN, tmpUser); err != nil {
			return nil, err
		}
		r.root, err = r.mod.OpenSession(ctx, r.plan.ID)
		if err != nil {
			return nil, err
		}
		rnd, err := r.root.Random(ctx, quorum.SecretLen)
		if err != nil {
			return nil, err
		}
		r.s, err = quorum.NewSecret(rnd)
		secret.Zero(rnd)
		if err != nil {
			return nil, err
		}
		r.userPIN = quorum.RootUserPIN.Derive(r.s, r.plan.ID)
		if err := r.root.InitUserPIN(ctx, r.soPIN, r.userPIN); err != nil {
			return nil, err
		}
		if err := r.root.Login(ctx, hsm.User, r.userPIN); err != nil {
			return nil, err
		}
		info, err := r.root.TokenInfo(ctx)
		if err != nil {
			return nil, err
		}
		r.token = tokenIdentity(info)
		return TokenInitialised{Token: r.plan.ID, TokenSerial: info.SerialOrNone(),
			PINs: "user PIN derived from the quorum secret with HKDF-SHA256; SO PIN a random one until the ceremony closes, then derived from the secret too; nobody saw them"}, nil
	})
}

// openOps opens the operations token and logs in with the operator PIN. A new token is
// initialised with a random SO PIN, which recordSigner changes to the one derived from S.
func (r *rootRun) openOps(ctx context.Context) error {
	if _, err := r.mod.TokenByLabel(ctx, r.plan.OperationsToken); errors.Is(err, hsm.ErrTokenNotFound) {
		slot, err := r.mod.FreeSlot(ctx)
		if err != nil {
			return err
		}
		// Journaled first: a run killed from here on leaves a token whose SO PIN only the
		// stopped process knew, and abort must say so.
		if err := r.Note(run.StepTokenIntent, record.System, run.TokenIntent{Token: r.plan.OperationsToken, Role: "operations"}); err != nil {
			return err
		}
		r.opsTmpSO = randomPIN()
		if _, err := r.mod.InitToken(ctx, slot.ID, r.plan.OperationsToken, r.opsTmpSO, r.opsPIN); err != nil {
			return err
		}
		r.opsCreated = true
	} else if err != nil {
		return err
	}
	var err error
	if r.ops, err = r.mod.OpenSession(ctx, r.plan.OperationsToken); err != nil {
		return err
	}
	if err := r.ops.Login(ctx, hsm.User, r.opsPIN); err != nil {
		return fmt.Errorf("operations token %q: %w", r.plan.OperationsToken, err)
	}
	return nil
}

// keepUndo keeps the root token's temporary SO PIN (r.soPIN) as a private data object on the
// operations token, readable only with the operator PIN, until the ceremony closes: the
// abort of a run killed before then re-initialises the root token empty with it. Its label is
// journaled first; the PIN never is.
func (r *rootRun) keepUndo(ctx context.Context) error {
	r.undoLabel = undoLabel(r.ID)
	if err := r.Note(stepUndo, record.System, UndoKept{Token: r.plan.OperationsToken, Label: r.undoLabel, Root: r.plan.ID}); err != nil {
		return err
	}
	r.made = append(r.made, r.dropUndo)
	return r.ops.StoreData(ctx, hsm.DataObject{Application: "custos", Label: r.undoLabel, Value: r.soPIN, Private: true})
}

// dropUndo destroys the data object keepUndo made.
func (r *rootRun) dropUndo(ctx context.Context) string {
	if err := r.ops.Login(ctx, hsm.User, r.opsPIN); err != nil {
		return fmt.Sprintf("destroy %q on %s: %v", r.undoLabel, r.plan.OperationsToken, err)
	}
	n, err := r.ops.Destroy(ctx, hsm.Match{Class: hsm.ClassData, Label: r.undoLabel})
	if err != nil {
		return fmt.Sprintf("destroy %q on %s: %v", r.undoLabel, r.plan.OperationsToken, err)
	}
	return fmt.Sprintf("destroyed %q on %s (%d object)", r.undoLabel, r.plan.OperationsToken, n)
}

// undoLabel names the data object keeping run id's temporary root SO PIN.
func undoLabel(runID string) string { return "custos undo " + runID }

func (r *rootRun) generateKey(ctx context.Context) error {
	return r.confirmed(ctx, "generate-key", func() (any, error) {
		id, err := r.root.Random(ctx, 16)
		if err != nil {
			return nil, err
		}
		r.rootKey, err = r.root.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: r.plan.Algorithm(), ID: id,
			Label: "root " + r.plan.ID, Wrappable: r.plan.Backup})
		if err != nil {
			return nil, err
		}
		if err := pki.CheckPublicKey(r.rootKey.Public(), r.plan.Algorithm()); err != nil {
			return nil, fmt.Errorf("the token made a different key than asked: %w", err)
		}
		fp, err := pki.PublicKeyFingerprint(r.rootKey.Public())
		if err != nil {
			return nil, err
		}
		return KeyGenerated{Token: r.plan.ID, KeyID: id, Algorithm: string(r.plan.Algorithm()),
			PublicKeySHA256: fp.String(), PublicKeyWords: fp.Words(),
			Extractable: fmt.Sprintf("only wrapped under a trusted KEK: %v", r.plan.Backup)}, nil
	})
}

func (r *rootRun) certificate(ctx context.Context) error {
	return r.confirmed(ctx, "certificate", func() (any, error) {
		serial, err := pki.NewSerial(run.TokenRand(ctx, r.root))
		if err != nil {
			return nil, err
		}
		c := r.plan.Certificate
		cert, lint, err := pki.IssueRoot(pki.RootCA{CommonName: c.CommonName, Organization: c.Organization,
			Country: c.Country, NotBefore: r.Env.Clock(), ValidityYears: c.ValidityYears}, serial, r.rootKey)
		if err != nil {
			return nil, err
		}
		if err := r.root.StoreCertificate(ctx, cert, r.rootKey.ID(), "root "+r.plan.ID); err != nil {
			return nil, err
		}
		path, err := writeCertPEM(r.Env.Workspace, r.plan.ID+"-root.pem", cert)
		if err != nil {
			return nil, err
		}
		r.made = append(r.made, removeFile(path))
		r.res.Root, r.res.RootPath = cert, path
		return RootCertified{Certificate: certificatePayload(cert, string(r.plan.Algorithm()), path),
			LintWarnings: len(lint.Warnings())}, nil
	})
}

// HorizonOf says what NIST IR 8547 means for a certificate of alg valid until notAfter; no
// notices when it ends before 2031.
func HorizonOf(alg string, notAfter time.Time) Horizon {
	h := Horizon{Algorithm: alg, NotAfter: notAfter}
	if notAfter.Year() > 2030 {
		h.Notices = append(h.Notices, fmt.Sprintf("%s is quantum-vulnerable: NIST IR 8547 deprecates it after 2030, and this certificate is valid until %s.", alg, notAfter.Format("2006-01-02")))
	}
	if notAfter.Year() > 2035 {
		h.Notices = append(h.Notices, fmt.Sprintf("NIST IR 8547 disallows %s after 2035: plan to replace this root with a post-quantum one before then; devices must be able to trust a new root.", alg))
	}
	return h
}

func (r *rootRun) horizon(ctx context.Context) error {
	h := HorizonOf(r.plan.Key.Algorithm, r.res.Root.NotAfter)
	st := rootStep("horizon")
	if len(h.Notices) == 0 {
		return r.Step(st, record.System, func() (any, error) {
			return HorizonNoted{Notice: "validity ends before 2031: no horizon notice"}, nil
		})
	}
	who, err := r.people.AcknowledgeHorizon(ctx, h)
	if err != nil {
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	return r.Step(st, who, func() (any, error) {
		return HorizonNoted{Notices: h.Notices, AcknowledgedBy: who.Name}, nil
	})
}

// recordSigner makes the key that signs PDF records on the operations token, and its
// certificate from the root.
func (r *rootRun) recordSigner(ctx context.Context) error {
	return r.confirmed(ctx, "record-signer", func() (any, error) {
		if r.opsCreated { // its SO PIN is random until now: the quorum's from here on
			opsSO := quorum.OpsSOPIN.Derive(r.s, r.plan.ID)
			err := r.ops.ChangePIN(ctx, hsm.SO, r.opsTmpSO, opsSO)
			secret.Zero(opsSO)
			if err != nil {
				return nil, err
			}
			if err := r.ops.Login(ctx, hsm.User, r.opsPIN); err != nil {
				return nil, fmt.Errorf("operations token %q: %w", r.plan.OperationsToken, err)
			}
		}
		id, err := r.ops.Random(ctx, 16)
		if err != nil {
			return nil, err
		}
		if err := r.Note(run.StepKeyIntent, record.System, run.KeyIntent{Token: r.plan.OperationsToken, KeyID: id}); err != nil {
			return nil, err
		}
		// Undo first: a generation that fails half way can leave the key behind.
		r.made = append(r.made, destroyObjects(r.ops, id, "record-signer key on "+r.plan.OperationsToken))
		var cert *x509.Certificate
		r.signerKey, cert, err = issueRecordSigner(ctx, r.ops, r.plan, pki.Issuer{Certificate: r.res.Root, Signer: r.rootKey},
			run.TokenRand(ctx, r.root), r.Env.Clock(), id)
		if err != nil {
			return nil, err
		}
		path, err := writeCertPEM(r.Env.Workspace, r.plan.ID+"-record-signer.pem", cert)
		if err != nil {
			return nil, err
		}
		r.made = append(r.made, removeFile(path))
		r.res.RecordSigner, r.res.RecordSignerPath = cert, path
		return RecordSignerMade{Token: r.plan.OperationsToken, TokenCreated: r.opsCreated, KeyID: id,
			Certificate: certificatePayload(cert, string(keyalg.ECDSAP384), path)}, nil
	})
}

func (r *rootRun) split(ctx context.Context) error {
	return r.confirmed(ctx, "split", func() (any, error) {
		var err error
		n := len(r.plan.Custodians)
		r.shares, err = quorum.Split(r.s, r.plan.ID, r.rootSHA256(), 1, n, r.plan.Threshold)
		if err != nil {
			return nil, err
		}
		data := Split{Epoch: 1, Threshold: r.plan.Threshold, SecretDigest: quorum.Digest(r.s, r.plan.ID, 1), Warnings: r.res.Warnings}
		for i, sh := range r.shares {
			c := sh.Commitment()
			r.commits = append(r.commits, registry.QuorumShare{Number: sh.Number, Custodian: r.plan.Custodians[i], Commitment: c,
				Destination: r.plan.Destination(i).String()})
			dest, err := r.deliver.deliver(ctx, i, sh, n)
			if err != nil {
				return nil, fmt.Errorf("share #%d for %s: %w", sh.Number, r.plan.Custodians[i], err)
			}
			data.Shares = append(data.Shares, ShareHandedOut{Number: sh.Number, Custodian: r.plan.Custodians[i],
				Commitment: c, Destination: dest})
		}
		r.res.Shares, r.res.Delivered = r.commits, data.Shares
		return data, nil
	})
}

// verifyShares reads every share back from where it went, checks each against its
// commitment, reconstructs S from a quorum and checks it before logging in with the PIN
// derived from the reconstruction, and has the root key sign.
func (r *rootRun) verifyShares(ctx context.Context) error {
	return r.confirmed(ctx, "verify-shares", func() (any, error) {
		p := r.params()
		// Every share as read back must match its commitment; the first M must rebuild S.
		all, q := quorum.NewCollector(p), quorum.NewCollector(p)
		defer all.Wipe()
		defer q.Wipe()
		n := len(r.plan.Custodians)
		for i, c := range r.plan.Custodians {
			text, err := r.deliver.readBack(ctx, i, r.shares[i], n)
			if err != nil {
				return nil, fmt.Errorf("read back share #%d of %s: %w", i+1, c, err)
			}
			got, err := all.Add(text)
			if err != nil {
				return nil, fmt.Errorf("share #%d of %s as read back: %w", i+1, c, err)
			}
			if got != i+1 {
				return nil, fmt.Errorf("%s read back share #%d, but theirs is #%d", c, got, i+1)
			}
			if i < r.plan.Threshold {
				if _, err := q.Add(text); err != nil {
					return nil, err
				}
			}
		}
		s, err := q.Secret()
		if err != nil {
			return nil, err
		}
		defer secret.Zero(s)
		pin := quorum.RootUserPIN.Derive(s, r.plan.ID)
		defer secret.Zero(pin)
		if err := r.root.Logout(ctx); err != nil {
			return nil, err
		}
		if err := r.root.Login(ctx, hsm.User, pin); err != nil {
			return nil, fmt.Errorf("log in with the PIN derived from the reconstructed secret: %w", err)
		}
		if err := signs(r.rootKey, r.res.Root); err != nil {
			return nil, err
		}
		return SharesVerified{ReadBack: fmt.Sprintf("%d of %d shares match their commitments", n, n),
			Reconstruction: fmt.Sprintf("shares 1 to %d reconstruct the secret; it matches its digest; login succeeded; the root key signs", r.plan.Threshold)}, nil
	})
}

// signs checks that key signs a fresh message that verifies under cert.
func signs(key crypto.Signer, cert *x509.Certificate) error {
	msg := []byte("custos sign check " + time.Now().String())
	digest := sha256.Sum256(msg)
	var opts crypto.SignerOpts = crypto.SHA256
	var in []byte = digest[:]
	if k, ok := key.(*hsm.Signer); ok && k.Algorithm() == keyalg.Ed25519 {
		opts, in = crypto.Hash(0), msg
	}
	sig, err := key.Sign(nil, in, opts)
	if err != nil {
		return fmt.Errorf("sign check: %w", err)
	}
	alg := map[x509.PublicKeyAlgorithm]x509.SignatureAlgorithm{x509.ECDSA: x509.ECDSAWithSHA256,
		x509.RSA: x509.SHA256WithRSA, x509.Ed25519: x509.PureEd25519}[cert.PublicKeyAlgorithm]
	if err := cert.CheckSignature(alg, msg, sig); err != nil {
		return fmt.Errorf("sign check: the key's signature does not verify under %s: %w", cert.Subject.CommonName, err)
	}
	return nil
}

// rootSHA256 is the SHA-256 of the root certificate, which the shares' commitments cover.
func (r *rootRun) rootSHA256() []byte {
	fp := r.res.Fingerprint()
	return fp[:]
}

// params is the quorum the split made.
func (r *rootRun) params() quorum.Params {
	return quorumParams(registry.Quorum{CeremonyID: r.plan.ID, Threshold: r.plan.Threshold, Shares: r.commits,
		Epoch: 1, SecretDigest: quorum.Digest(r.s, r.plan.ID, 1)}, r.rootSHA256())
}

// signStatement has the root sign the first quorum statement: the quorum the split made, the
// plan, the operations token, the module as hashed before it was loaded, and the root token.
func (r *rootRun) signStatement(ctx context.Context) error {
	return r.confirmed(ctx, "statement", func() (any, error) {
		if err := r.root.Login(ctx, hsm.User, r.userPIN); err != nil {
			return nil, err
		}
		s := quorum.StatementOf(r.params())
		h := r.plan.SHA256()
		s.Seq, s.PlanSHA256, s.OperationsToken = 1, hex.EncodeToString(h[:]), r.plan.OperationsToken
		s.Module = quorum.Module{Path: r.module.Path, SHA256: r.module.SHA256}
		s.RootToken, s.RootKeyID = r.token, hex.EncodeToString(r.rootKey.ID())
		s.Holders = []quorum.Holder{{Token: r.token, KeyID: s.RootKeyID}}
		s.Run, s.SignedAt = r.ID, r.Env.Clock()
		kept, signed, err := signStatement(r.rootKey, r.res.Root, s, r.ID)
		if err != nil {
			return nil, err
		}
		r.statement = kept
		return signed, nil
	})
}

func (r *rootRun) backup(ctx context.Context) error {
	st := rootStep("backup")
	if !r.plan.Backup {
		return r.Step(st, record.System, func() (any, error) {
			return BackupWritten{None: "the plan chose no backup; the key never leaves the token"}, nil
		})
	}
	return r.confirmed(ctx, "backup", func() (any, error) {
		path, sum, err := writeBackup(ctx, r.Env.Workspace, r.root, r.plan.ID, 1, r.s, r.soPIN, r.userPIN, r.rootKey.ID())
		if err != nil {
			return nil, err
		}
		r.made = append(r.made, removeFile(path))
		r.res.BackupPath, r.res.BackupSHA256 = path, sum
		if err := r.root.Login(ctx, hsm.User, r.userPIN); err != nil {
			return nil, err
		}
		return BackupWritten{File: path, SHA256: sum,
			Method: "CKM_AES_KEY_WRAP_PAD under a KEK derived from the quorum secret, trusted only for the wrap"}, nil
	})
}

// writeBackup wraps the root key under the KEK of S and writes the blob under backup/.
func writeBackup(ctx context.Context, ws *workspace.Workspace, s *hsm.Session, id string, epoch int, qs, soPIN, userPIN, keyID []byte) (string, string, error) {
	kek := quorum.KEK(qs, id)
	defer secret.Zero(kek)
	blob, err := s.BackupKey(ctx, soPIN, userPIN, kek, keyID)
	if err != nil {
		return "", "", err
	}
	path := ws.Path(workspace.BackupDir, fmt.Sprintf("%s-epoch%d.wrapped", id, epoch))
	// 0600: M custodians of the epoch with this file recover the root key, also outside an HSM.
	if err := workspace.CreateExclusive(path, blob, 0o600); err != nil {
		return "", "", fmt.Errorf("write backup: %w", err)
	}
	sum := sha256.Sum256(blob)
	return path, hex.EncodeToString(sum[:]), nil
}

func (r *rootRun) close(ctx context.Context) error {
	return r.confirmed(ctx, "close", func() (any, error) {
		so := quorum.RootSOPIN.Derive(r.s, r.plan.ID)
		if err := r.root.ChangePIN(ctx, hsm.SO, r.soPIN, so); err != nil {
			r.nextSOPIN = so // the token may have taken it before failing
			return nil, err
		}
		secret.Zero(r.soPIN)
		r.soPIN = so
		// At once: until it is gone, an abort would try the temporary PIN (see voidFromUndo).
		undone := r.dropUndo(ctx)
		// ChangePIN logged the session out: the root logs in again to attest the ceremony's
		// record (writeRecord, after this step).
		if err := r.root.Login(ctx, hsm.User, r.userPIN); err != nil {
			return nil, err
		}
		reg := r.Registry()
		info, err := r.root.TokenInfo(ctx) // before the registry changes: the token's identity as holder
		if err != nil {
			return nil, err
		}
		key := registry.KeyLocation{TokenLabel: r.plan.ID, KeyID: r.rootKey.ID(), Algorithm: r.plan.Key.Algorithm}
		if _, err := reg.AddIssuer(ctx, registry.Issuer{ID: r.plan.ID, Kind: registry.IssuerRoot, Certificate: r.res.Root.Raw,
			CeremonyID: r.plan.ID, Key: key}); err != nil {
			return nil, err
		}
		q := registry.Quorum{CeremonyID: r.plan.ID, ModulePath: r.mod.Path(), OperationsToken: r.plan.OperationsToken,
			Plan: r.plan.Raw(), Threshold: r.plan.Threshold, Shares: r.commits, Epoch: 1,
			SecretDigest: quorum.Digest(r.s, r.plan.ID, 1), BackupPath: r.res.BackupPath, Statement: r.statement}
		if r.res.BackupSHA256 != "" {
			q.BackupSHA256, _ = hex.DecodeString(r.res.BackupSHA256)
		}
		if _, err := reg.AddQuorum(ctx, q); err != nil {
			return nil, err
		}
		if err := reg.AddRootHolder(ctx, r.plan.ID, registry.RootHolder{Token: r.plan.ID, Serial: info.SerialOrNone(),
			Model: info.Manufacturer + " " + info.Model, KeyID: r.rootKey.ID(), Origin: registry.OriginCeremony,
			OriginRun: r.ID, PINEpoch: 1}, r.Env.Clock()); err != nil {
			return nil, err
		}
		if _, err := reg.AddRoleCert(ctx, registry.RoleCert{Role: registry.RoleRecordSigner, IssuerID: r.plan.ID,
			CeremonyID: r.plan.ID, Certificate: r.res.RecordSigner.Raw,
			Key: registry.KeyLocation{TokenLabel: r.plan.OperationsToken, KeyID: r.signerKey.ID(), Algorithm: string(keyalg.ECDSAP384)}}); err != nil {
			return nil, err
		}
		if err := r.SaveModule(ctx, r.mod.Path()); err != nil {
			return nil, err
		}
		r.made = nil // from here on the run's objects are the registry's
		fp := r.res.Fingerprint()
		return Closed{RootSHA256: fp.String(), RootWords: fp.Words(), Module: r.mod.Path(), OperationsToken: r.plan.OperationsToken,
			SOPIN:   "the root token's SO PIN is now derived from the quorum secret; the temporary one: " + undone,
			Secrets: "quorum secret, PINs and KEK zeroed in memory; the root token's session is logged out when the root has attested the ceremony's record"}, nil
	})
}

// voidRootToken re-initialises a half-made root token empty under another label, so the
// ceremony id is free for a new attempt and no key of this run survives.
func (r *rootRun) voidRootToken(ctx context.Context) string {
	if _, err := r.mod.TokenByLabel(ctx, r.plan.ID); errors.Is(err, hsm.ErrTokenNotFound) {
		return fmt.Sprintf("root token %q is not present: either its initialisation failed, or it was removed; if it was removed, its PINs existed only in this run, so nobody can use it or any key on it: clear it with the HSM vendor's tools", r.plan.ID)
	}
	if r.root != nil { // a token with open sessions cannot be re-initialised
		r.root.Logout(ctx)
		r.root.Close()
		r.root = nil
	}
	void := voidLabel(r.plan.ID)
	var err error
	for _, pin := range [][]byte{r.soPIN, r.nextSOPIN} {
		if pin == nil {
			continue
		}
		if _, err = r.mod.ReinitToken(ctx, r.plan.ID, pin, void, nil); err == nil {
			return fmt.Sprintf("root token %q re-initialised empty as %q; no key of this run remains", r.plan.ID, void)
		}
	}
	return fmt.Sprintf("could not re-initialise root token %q (%v); its PINs existed only in this run, so nobody can use it or any key on it: clear it with the HSM vendor's tools", r.plan.ID, err)
}

// voidLabel is the label a root token re-initialised empty takes, so the root's id is free.
func voidLabel(id string) string {
	void := "void-" + id
	if len(void) > 32 {
		void = void[:32]
	}
	return void
}

// rollback undoes what a failed run made on tokens and in the workspace, newest first, and
// journals each. It returns the run's error cause, with the journal's failure if the journal
// could not record what was undone.
func (r *rootRun) rollback(ctx context.Context, cause error) error {
	ctx = context.WithoutCancel(ctx)
	var unjournaled []string
	for i := len(r.made) - 1; i >= 0; i-- {
		what := r.made[i](ctx)
		if err := r.Note(stepRollback, record.System, run.RolledBack{Undone: what}); err != nil {
			unjournaled = append(unjournaled, what)
		}
	}
	r.made = nil
	if len(unjournaled) > 0 {
		return fmt.Errorf("%w; undone, but the journal could not record it: %s", cause, strings.Join(unjournaled, "; "))
	}
	return cause
}

func (r *rootRun) closeSessions(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	r.deliver.close(ctx)
	for _, s := range []*hsm.Session{r.root, r.ops} {
		if s != nil {
			s.Logout(ctx)
			s.Close()
		}
	}
	if r.mod != nil {
		r.mod.Close()
	}
}

func (r *rootRun) wipe() {
	secret.ZeroAll(r.s, r.soPIN, r.nextSOPIN, r.userPIN, r.opsTmpSO)
	for i := range r.shares {
		r.shares[i].Wipe()
	}
}

func removeFile(path string) func(context.Context) string {
	return func(context.Context) string {
		if err := os.Remove(path); err != nil {
			return fmt.Sprintf("remove %s: %v", path, err)
		}
		return "removed " + path
	}
}

func destroyObjects(s *hsm.Session, id []byte, what string) func(context.Context) string {
	what = fmt.Sprintf("%s (id %x)", what, id)
	return func(ctx context.Context) string {
		n, err := s.Destroy(ctx, hsm.Match{ID: id})
		if err != nil {
			return fmt.Sprintf("destroy %s: %v", what, err)
		}
		left, err := s.Remaining(ctx, id, "")
		if err != nil || len(left) > 0 {
			return fmt.Sprintf("destroyed %d objects of %s, but %d remain (%v)", n, what, len(left), err)
		}
		return fmt.Sprintf("destroyed %s (%d objects); none remain", what, n)
	}
}

// randomPIN is a throwaway PIN from crypto/rand, for the moment before S exists.
func randomPIN() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	pin := []byte(hex.EncodeToString(b))
	secret.Zero(b)
	return pin
}
