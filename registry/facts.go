package registry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/pki"
)

// The registry is derived data: every change to it is a Fact, written to the journal of the
// run or operation that makes it (Journal) before the change is committed, and a registry is
// rebuilt by applying the facts of every journal in order (Replay). A fact is what a write
// method was asked, with every value the method would otherwise take from the clock or from
// the registry's state filled in, so that applying it to the same registry makes the same
// change. One struct per kind of change, each named after the write it records; its journal
// entry is a note whose step is FactStep(f).
//
// Adding a write to the registry: give it a Fact type here (every value it stores, or what
// makes them), its kind in factKinds, and an apply that calls the write with the fact's
// values; the write passes the fact to r.write. TestRebuildEqualsLive (rebuild package) runs
// every workflow and fails, naming the table, when a write stores something its fact lacks.

// Fact is one change to the registry as its journal entry carries it.
type Fact interface {
	// FactKind names the kind of change; its journal entry's step is "registry." + kind.
	FactKind() string
	// apply makes the change on r (a registry being rebuilt).
	apply(ctx context.Context, r *Registry) error
}

// FactPrefix begins the step of every journal entry that carries a Fact.
const FactPrefix = "registry."

// FactStep is the journal step of f's entry.
func FactStep(f Fact) string { return FactPrefix + f.FactKind() }

// Journal is where a registry writes each fact before committing it: the journal of the run or
// operation making the change. JournalFact writes f, synced, and returns the entry's number in
// its journal. When it fails the change is not committed; when the commit fails after it, an
// Uncommitted fact says so in the same journal.
type Journal interface {
	JournalFact(f Fact) (seq int64, err error)
}

// derivedJournal is a Journal that also hears of the changes that are not journaled because a
// rebuild derives them from elsewhere (a run's completion, from its record): a test that replays
// facts from memory has no records to derive them from.
type derivedJournal interface {
	DerivedFact(f Fact)
}

// ErrUnjournaled is a write refused because the registry has no journal to write its fact to:
// every change is journaled first, so the registry can be rebuilt (bind one with Journaled).
var ErrUnjournaled = errors.New("no journal to record the change in")

// ErrRegistryGone is a commit refused because the database file is no longer the one opened:
// it was deleted, moved, or replaced by another file, so what this process writes would be
// lost. The journals keep every committed change: rebuild the registry from them.
var ErrRegistryGone = errors.New("the registry file was deleted or replaced while in use")

// Journaled is r writing its facts to j: the registry a run or operation works with. It shares
// r's database; close only r.
func (r *Registry) Journaled(j Journal) *Registry {
	c := *r
	c.journal = j
	return &c
}

// factKinds makes an empty fact of each kind, for DecodeFact.
var factKinds = map[string]func() Fact{}

func init() {
	for _, f := range []func() Fact{
		func() Fact { return new(IssuerAdded) }, func() Fact { return new(IssuerDestroyed) },
		func() Fact { return new(IssuerKeyMoved) }, func() Fact { return new(RoleCertAdded) },
		func() Fact { return new(RoleCertDestroyed) }, func() Fact { return new(QuorumAdded) },
		func() Fact { return new(QuorumReshared) }, func() Fact { return new(RootDestroyed) },
		func() Fact { return new(SettingSet) }, func() Fact { return new(SettingDeleted) },
		func() Fact { return new(RunStarted) }, func() Fact { return new(DecommissionRunStarted) },
		func() Fact { return new(RunResumed) }, func() Fact { return new(RunFailure) },
		func() Fact { return new(RunAbort) }, func() Fact { return new(RunCompletion) },
		func() Fact { return new(CRLNumberAllocated) }, func() Fact { return new(CRLRecorded) },
		func() Fact { return new(Revoked) }, func() Fact { return new(DevicesRegistered) },
		func() Fact { return new(DeviceCertificateAdded) }, func() Fact { return new(KeyStateSet) },
		func() Fact { return new(DeviceRekeyed) },
		func() Fact { return new(DevicesDecommissioned) }, func() Fact { return new(DecommissionFailed) },
		func() Fact { return new(RunCRLRecorded) }, func() Fact { return new(LogAppended) },
		func() Fact { return new(LogCheckpointAdded) }, func() Fact { return new(Uncommitted) },
		func() Fact { return new(QuorumModuleSet) }, func() Fact { return new(RootKeyMoved) },
		func() Fact { return new(RootHolderAdded) }, func() Fact { return new(RootRestored) },
		func() Fact { return new(RootHolderDestroyed) }, func() Fact { return new(BackupBlobDestroyed) },
		func() Fact { return new(BackupCopyAdded) }, func() Fact { return new(BackupCopyRetired) },
		func() Fact { return new(IssuerStateSet) }, func() Fact { return new(RoleCertStateSet) },
	} {
		factKinds[f().FactKind()] = f
	}
}

// DecodeFact reads the fact of a journal entry with step and data. ok is false when the step is
// not a registry fact; an unknown kind of fact, or data that is not its kind's, is an error.
func DecodeFact(step string, data []byte) (f Fact, ok bool, err error) {
	kind, isFact := strings.CutPrefix(step, FactPrefix)
	if !isFact {
		return nil, false, nil
	}
	mk, known := factKinds[kind]
	if !known {
		return nil, true, fmt.Errorf("registry fact %q is unknown to this Custos (a newer Custos wrote it)", kind)
	}
	f = mk()
	if err := json.Unmarshal(data, f); err != nil {
		return nil, true, fmt.Errorf("registry fact %q: %w", kind, err)
	}
	return f, true, nil
}

// hexBytes are bytes a fact shows in hexadecimal (key ids, hashes, serials), as the journal's
// other payloads and the token tools print them.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("not hexadecimal: %.40q", b)
	}
	*h = v
	return nil
}

// factKey is a KeyLocation as facts carry it.
type factKey struct {
	Token     string   `json:"token"`
	KeyID     hexBytes `json:"key_id"`
	Algorithm string   `json:"algorithm"`
}

func keyOf(k KeyLocation) factKey {
	return factKey{Token: k.TokenLabel, KeyID: k.KeyID, Algorithm: k.Algorithm}
}

func (k factKey) location() KeyLocation {
	return KeyLocation{TokenLabel: k.Token, KeyID: k.KeyID, Algorithm: k.Algorithm}
}

// IssuerAdded is AddIssuer: a CA with its certificate and where its key lives.
type IssuerAdded struct {
	ID          string     `json:"id"`
	Kind        IssuerKind `json:"kind"`
	Certificate []byte     `json:"certificate"` // DER
	Parent      string     `json:"parent,omitempty"`
	Ceremony    string     `json:"ceremony"`
	Key         factKey    `json:"key"`
	CreatedAt   time.Time  `json:"created_at"`
	CRLBaseURL  string     `json:"crl_base_url,omitempty"`
	CRLShards   int        `json:"crl_shards,omitempty"`
}

func (*IssuerAdded) FactKind() string { return "add-issuer" }
func (f *IssuerAdded) apply(ctx context.Context, r *Registry) error {
	_, err := r.AddIssuer(ctx, Issuer{ID: f.ID, Kind: f.Kind, Certificate: f.Certificate, ParentID: f.Parent,
		CeremonyID: f.Ceremony, Key: f.Key.location(), CreatedAt: f.CreatedAt, CRLBaseURL: f.CRLBaseURL, CRLShards: f.CRLShards})
	return err
}

// IssuerDestroyed is DestroyIssuer.
type IssuerDestroyed struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

func (*IssuerDestroyed) FactKind() string { return "destroy-issuer" }
func (f *IssuerDestroyed) apply(ctx context.Context, r *Registry) error {
	return r.DestroyIssuer(ctx, f.ID, f.At)
}

// IssuerKeyMoved is MoveIssuerKey.
type IssuerKeyMoved struct {
	ID string  `json:"id"`
	To factKey `json:"to"`
}

func (*IssuerKeyMoved) FactKind() string { return "move-issuer-key" }
func (f *IssuerKeyMoved) apply(ctx context.Context, r *Registry) error {
	return r.MoveIssuerKey(ctx, f.ID, f.To.location())
}

// RoleCertAdded is AddRoleCert: a certificate with a role (the record signer) and its key.
type RoleCertAdded struct {
	Role        Role      `json:"role"`
	Issuer      string    `json:"issuer"`
	Ceremony    string    `json:"ceremony"`
	Certificate []byte    `json:"certificate"` // DER
	Key         factKey   `json:"key"`
	CreatedAt   time.Time `json:"created_at"`
}

func (*RoleCertAdded) FactKind() string { return "add-role-cert" }
func (f *RoleCertAdded) apply(ctx context.Context, r *Registry) error {
	_, err := r.AddRoleCert(ctx, RoleCert{Role: f.Role, IssuerID: f.Issuer, CeremonyID: f.Ceremony,
		Certificate: f.Certificate, Key: f.Key.location(), CreatedAt: f.CreatedAt})
	return err
}

// RoleCertDestroyed is DestroyRoleCert.
type RoleCertDestroyed struct {
	Issuer string    `json:"issuer"`
	Serial hexBytes  `json:"serial"`
	At     time.Time `json:"at"`
}

func (*RoleCertDestroyed) FactKind() string { return "destroy-role-cert" }
func (f *RoleCertDestroyed) apply(ctx context.Context, r *Registry) error {
	return r.DestroyRoleCert(ctx, f.Issuer, SerialNumber(f.Serial), f.At)
}

// factShare is a QuorumShare as facts carry it.
type factShare struct {
	Number      int      `json:"number"`
	Custodian   string   `json:"custodian"`
	Commitment  hexBytes `json:"commitment"`
	Destination string   `json:"destination,omitempty"`
}

func sharesOf(s []QuorumShare) []factShare {
	out := make([]factShare, len(s))
	for i, x := range s {
		out[i] = factShare{Number: x.Number, Custodian: x.Custodian, Commitment: x.Commitment, Destination: x.Destination}
	}
	return out
}

func quorumShares(s []factShare) []QuorumShare {
	out := make([]QuorumShare, len(s))
	for i, x := range s {
		out[i] = QuorumShare{Number: x.Number, Custodian: x.Custodian, Commitment: x.Commitment, Destination: x.Destination}
	}
	return out
}

// QuorumAdded is AddQuorum: a root ceremony's quorum, with the plan's text in full.
type QuorumAdded struct {
	Ceremony        string        `json:"ceremony"`
	Module          string        `json:"module"`
	OperationsToken string        `json:"operations_token"`
	Plan            string        `json:"plan"`
	Threshold       int           `json:"threshold"`
	Shares          []factShare   `json:"shares"`
	SecretDigest    hexBytes      `json:"secret_digest"`
	BackupPath      string        `json:"backup_path,omitempty"`
	BackupSHA256    hexBytes      `json:"backup_sha256,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	Statement       factStatement `json:"statement"`
}

func (*QuorumAdded) FactKind() string { return "add-quorum" }
func (f *QuorumAdded) apply(ctx context.Context, r *Registry) error {
	_, err := r.AddQuorum(ctx, Quorum{CeremonyID: f.Ceremony, ModulePath: f.Module, OperationsToken: f.OperationsToken,
		Plan: []byte(f.Plan), Threshold: f.Threshold, Shares: quorumShares(f.Shares), SecretDigest: f.SecretDigest,
		BackupPath: f.BackupPath, BackupSHA256: f.BackupSHA256, CreatedAt: f.CreatedAt, Statement: f.Statement.statement()})
	return err
}

// QuorumReshared is Reshare.
type QuorumReshared struct {
	Ceremony     string      `json:"ceremony"`
	FromEpoch    int         `json:"from_epoch"`
	Threshold    int         `json:"threshold"`
	Shares       []factShare `json:"shares"`
	SecretDigest hexBytes    `json:"secret_digest"`
	BackupPath   string      `json:"backup_path,omitempty"`
	BackupSHA256 hexBytes    `json:"backup_sha256,omitempty"`
	At           time.Time   `json:"at"`
	// Rotated are the holders given the new epoch's PINs, Lost those recorded lost.
	Rotated   []string      `json:"rotated,omitempty"`
	Lost      []factLost    `json:"lost,omitempty"`
	Run       string        `json:"run,omitempty"`
	Statement factStatement `json:"statement"`
}

func (*QuorumReshared) FactKind() string { return "reshare" }
func (f *QuorumReshared) apply(ctx context.Context, r *Registry) error {
	lost := make([]LostHolder, len(f.Lost))
	for i, l := range f.Lost {
		lost[i] = LostHolder{Token: l.Token, Note: l.Note}
	}
	_, err := r.Reshare(ctx, f.Ceremony, f.FromEpoch, QuorumUpdate{Threshold: f.Threshold, Shares: quorumShares(f.Shares),
		SecretDigest: f.SecretDigest, BackupPath: f.BackupPath, BackupSHA256: f.BackupSHA256, At: f.At,
		Rotated: f.Rotated, Lost: lost, RunID: f.Run, Statement: f.Statement.statement()})
	return err
}

// factLost is a LostHolder as facts carry it.
type factLost struct {
	Token string `json:"token"`
	Note  string `json:"note"`
}

func lostOf(l []LostHolder) []factLost {
	out := make([]factLost, len(l))
	for i, x := range l {
		out[i] = factLost{Token: x.Token, Note: x.Note}
	}
	return out
}

// factStatement is a quorum statement as facts carry it: the canonical text and the root's
// signature exactly as signed, so a rebuilt registry holds the same evidence.
type factStatement struct {
	Seq       int       `json:"seq"`
	Text      string    `json:"text"`
	Signature hexBytes  `json:"signature"`
	Run       string    `json:"run"`
	CreatedAt time.Time `json:"created_at"`
}

func statementOf(s Statement) factStatement {
	return factStatement{Seq: s.Seq, Text: string(s.Text), Signature: s.Signature, Run: s.RunID, CreatedAt: s.CreatedAt}
}

func (s factStatement) statement() Statement {
	return Statement{Seq: s.Seq, Text: []byte(s.Text), Signature: s.Signature, RunID: s.Run, CreatedAt: s.CreatedAt}
}

// QuorumModuleSet is SetQuorumModule: the quorum's module, and the root's statement naming it.
type QuorumModuleSet struct {
	Ceremony  string        `json:"ceremony"`
	Module    string        `json:"module"`
	Statement factStatement `json:"statement"`
}

func (*QuorumModuleSet) FactKind() string { return "set-quorum-module" }
func (f *QuorumModuleSet) apply(ctx context.Context, r *Registry) error {
	_, err := r.SetQuorumModule(ctx, f.Ceremony, f.Module, f.Statement.statement())
	return err
}

// RootKeyMoved is MoveRootKey.
type RootKeyMoved struct {
	Ceremony  string        `json:"ceremony"`
	To        factKey       `json:"to"`
	Statement factStatement `json:"statement"`
}

func (*RootKeyMoved) FactKind() string { return "move-root-key" }
func (f *RootKeyMoved) apply(ctx context.Context, r *Registry) error {
	return r.MoveRootKey(ctx, f.Ceremony, f.To.location(), f.Statement.statement())
}

// factHolder is a RootHolder being added, as facts carry it.
type factHolder struct {
	Token     string   `json:"token"`
	Serial    string   `json:"serial,omitempty"`
	Model     string   `json:"model,omitempty"`
	KeyID     hexBytes `json:"key_id"`
	Origin    string   `json:"origin"`
	OriginRun string   `json:"origin_run,omitempty"`
	PINEpoch  int      `json:"pin_epoch"`
}

func holderOf(h RootHolder) factHolder {
	return factHolder{Token: h.Token, Serial: h.Serial, Model: h.Model, KeyID: h.KeyID, Origin: h.Origin, OriginRun: h.OriginRun, PINEpoch: h.PINEpoch}
}

func (h factHolder) holder() RootHolder {
	return RootHolder{Token: h.Token, Serial: h.Serial, Model: h.Model, KeyID: h.KeyID, Origin: h.Origin, OriginRun: h.OriginRun, PINEpoch: h.PINEpoch}
}

// RootHolderAdded is AddRootHolder: a token that holds the root's key.
type RootHolderAdded struct {
	Root   string     `json:"root"`
	Holder factHolder `json:"holder"`
	At     time.Time  `json:"at"`
}

func (*RootHolderAdded) FactKind() string { return "add-root-holder" }
func (f *RootHolderAdded) apply(ctx context.Context, r *Registry) error {
	return r.AddRootHolder(ctx, f.Root, f.Holder.holder(), f.At)
}

// RootRestored is RestoreRoot: the new holder, the root's key moved to it, and the root's
// statement naming it.
type RootRestored struct {
	Root      string        `json:"root"`
	Holder    factHolder    `json:"holder"`
	At        time.Time     `json:"at"`
	Statement factStatement `json:"statement"`
}

func (*RootRestored) FactKind() string { return "restore-root" }
func (f *RootRestored) apply(ctx context.Context, r *Registry) error {
	return r.RestoreRoot(ctx, f.Root, f.Holder.holder(), f.At, f.Statement.statement())
}

// RootHolderDestroyed is DestroyRootHolder.
type RootHolderDestroyed struct {
	Root  string    `json:"root"`
	Token string    `json:"token"`
	At    time.Time `json:"at"`
	Run   string    `json:"run,omitempty"`
}

func (*RootHolderDestroyed) FactKind() string { return "destroy-root-holder" }
func (f *RootHolderDestroyed) apply(ctx context.Context, r *Registry) error {
	return r.DestroyRootHolder(ctx, f.Root, f.Token, f.At, f.Run)
}

// BackupBlobDestroyed is DestroyBackupBlob.
type BackupBlobDestroyed struct {
	Root  string    `json:"root"`
	Epoch int       `json:"epoch"`
	At    time.Time `json:"at"`
	Run   string    `json:"run,omitempty"`
}

func (*BackupBlobDestroyed) FactKind() string { return "destroy-backup-blob" }
func (f *BackupBlobDestroyed) apply(ctx context.Context, r *Registry) error {
	return r.DestroyBackupBlob(ctx, f.Root, f.Epoch, f.At, f.Run)
}

// BackupCopyAdded is AddBackupCopy: copy number Copy of the root's blob of Epoch.
type BackupCopyAdded struct {
	Root     string    `json:"root"`
	Copy     int       `json:"copy"`
	Epoch    int       `json:"epoch"`
	Location string    `json:"location"`
	Media    string    `json:"media,omitempty"`
	MadeBy   string    `json:"made_by"`
	MadeAt   time.Time `json:"made_at"`
	Run      string    `json:"run"`
}

func (*BackupCopyAdded) FactKind() string { return "add-backup-copy" }
func (f *BackupCopyAdded) apply(ctx context.Context, r *Registry) error {
	c, err := r.AddBackupCopy(ctx, BackupCopy{RootID: f.Root, Epoch: f.Epoch, Location: f.Location, Media: f.Media,
		MadeBy: f.MadeBy, MadeAt: f.MadeAt, RunID: f.Run})
	if err == nil && c.Copy != f.Copy {
		err = fmt.Errorf("%w: backup copy %d of root %q was numbered %d by the replay (a journal is missing, or its facts are out of order)",
			ErrConflict, f.Copy, f.Root, c.Copy)
	}
	return err
}

// BackupCopyRetired is RetireBackupCopy.
type BackupCopyRetired struct {
	Root    string    `json:"root"`
	Copy    int       `json:"copy"`
	By      string    `json:"by"`
	Witness string    `json:"witness"`
	At      time.Time `json:"at"`
	Run     string    `json:"run"`
}

func (*BackupCopyRetired) FactKind() string { return "retire-backup-copy" }
func (f *BackupCopyRetired) apply(ctx context.Context, r *Registry) error {
	_, err := r.RetireBackupCopy(ctx, f.Root, f.Copy, f.By, f.Witness, f.At, f.Run)
	return err
}

// factStanding is a Standing as facts carry it.
type factStanding struct {
	State  State      `json:"state"`
	At     time.Time  `json:"at"`
	Reason pki.Reason `json:"reason,omitempty"`
	Run    string     `json:"run,omitempty"`
}

func standingOf(s Standing) factStanding {
	return factStanding{State: s.State, At: s.At, Reason: s.Reason, Run: s.RunID}
}

func (s factStanding) standing() Standing {
	return Standing{State: s.State, At: s.At, Reason: s.Reason, RunID: s.Run}
}

// IssuerStateSet is SetIssuerState.
type IssuerStateSet struct {
	ID string       `json:"id"`
	To factStanding `json:"to"`
}

func (*IssuerStateSet) FactKind() string { return "set-issuer-state" }
func (f *IssuerStateSet) apply(ctx context.Context, r *Registry) error {
	return r.SetIssuerState(ctx, f.ID, f.To.standing())
}

// RoleCertStateSet is SetRoleCertState.
type RoleCertStateSet struct {
	Issuer string       `json:"issuer"`
	Serial hexBytes     `json:"serial"`
	To     factStanding `json:"to"`
}

func (*RoleCertStateSet) FactKind() string { return "set-role-cert-state" }
func (f *RoleCertStateSet) apply(ctx context.Context, r *Registry) error {
	return r.SetRoleCertState(ctx, f.Issuer, SerialNumber(f.Serial), f.To.standing())
}

// RootDestroyed is DestroyRoot.
type RootDestroyed struct {
	Ceremony string    `json:"ceremony"`
	At       time.Time `json:"at"`
	Run      string    `json:"run,omitempty"`
}

func (*RootDestroyed) FactKind() string { return "destroy-root" }
func (f *RootDestroyed) apply(ctx context.Context, r *Registry) error {
	return r.DestroyRoot(ctx, f.Ceremony, f.At, f.Run)
}

// SettingSet is SetSetting.
type SettingSet struct {
	Key   string    `json:"key"`
	Value string    `json:"value"`
	At    time.Time `json:"at"`
}

func (*SettingSet) FactKind() string { return "set-setting" }
func (f *SettingSet) apply(ctx context.Context, r *Registry) error {
	return r.setSetting(ctx, f.Key, f.Value, f.At)
}

// SettingDeleted is DeleteSetting.
type SettingDeleted struct {
	Key string `json:"key"`
}

func (*SettingDeleted) FactKind() string { return "delete-setting" }
func (f *SettingDeleted) apply(ctx context.Context, r *Registry) error {
	return r.DeleteSetting(ctx, f.Key)
}

// RunStarted is StartRun. Its journal's path is where the journal is found when rebuilding.
type RunStarted struct {
	ID          string    `json:"id"`
	Kind        RunKind   `json:"kind"`
	Operation   string    `json:"operation"`
	Subject     string    `json:"subject,omitempty"`
	JournalPath string    `json:"journal_path"`
	StartedAt   time.Time `json:"started_at"`
}

func (*RunStarted) FactKind() string { return "start-run" }
func (f *RunStarted) apply(ctx context.Context, r *Registry) error {
	_, err := r.StartRun(ctx, f.run())
	return err
}

func (f *RunStarted) run() Run {
	return Run{ID: f.ID, Kind: f.Kind, Operation: f.Operation, Subject: f.Subject, JournalPath: f.JournalPath, StartedAt: f.StartedAt}
}

// SetJournalPath is where the run's journal is now: a rebuild takes it from the file it read.
func (f *RunStarted) SetJournalPath(p string) { f.JournalPath = p }

// DecommissionRunStarted is StartDecommissionRun.
type DecommissionRunStarted struct {
	RunStarted
	ManifestPath   string   `json:"manifest_path,omitempty"`
	ManifestSHA256 hexBytes `json:"manifest_sha256,omitempty"`
	Technician     string   `json:"technician"`
	Witness        string   `json:"witness,omitempty"`
}

func (*DecommissionRunStarted) FactKind() string { return "start-decommission-run" }
func (f *DecommissionRunStarted) apply(ctx context.Context, r *Registry) error {
	_, err := r.StartDecommissionRun(ctx, DecommissionRun{Run: f.run(), ManifestPath: f.ManifestPath,
		ManifestSHA256: f.ManifestSHA256, Technician: f.Technician, Witness: f.Witness})
	return err
}

// RunResumed is ResumeRun.
type RunResumed struct {
	ID string `json:"id"`
}

func (*RunResumed) FactKind() string                               { return "resume-run" }
func (f *RunResumed) apply(ctx context.Context, r *Registry) error { return r.ResumeRun(ctx, f.ID) }

// RunFailure is FailRun.
type RunFailure struct {
	ID   string `json:"id"`
	Note string `json:"note"`
}

func (*RunFailure) FactKind() string { return "fail-run" }
func (f *RunFailure) apply(ctx context.Context, r *Registry) error {
	return r.FailRun(ctx, f.ID, f.Note)
}

// RunAbort is AbortRun.
type RunAbort struct {
	ID   string    `json:"id"`
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

func (*RunAbort) FactKind() string { return "abort-run" }
func (f *RunAbort) apply(ctx context.Context, r *Registry) error {
	return r.abortRun(ctx, f.ID, f.Note, f.At)
}

// RunCompletion is CompleteRun. A run that ends with a signed record is not journaled as
// completed (its record carries the journal, so nothing may follow it): a rebuild derives the
// completion from the record, whose path is the run's by convention, dated by the journal's
// last entry. A run that ends without a record (an operation under quorum without an operator
// PIN) journals this fact.
type RunCompletion struct {
	ID         string    `json:"id"`
	RecordPath string    `json:"record_path,omitempty"`
	At         time.Time `json:"at"`
}

func (*RunCompletion) FactKind() string { return "complete-run" }
func (f *RunCompletion) apply(ctx context.Context, r *Registry) error {
	return r.CompleteRun(ctx, f.ID, f.RecordPath, f.At)
}

// fromRecord says the completion is derived from the run's record, so it is not journaled.
func (f *RunCompletion) fromRecord() bool { return f.RecordPath != "" }

// CRLNumberAllocated is AllocateCRLNumber: the number handed out, burned if no CRL follows.
type CRLNumberAllocated struct {
	Issuer string `json:"issuer"`
	Number int64  `json:"number"`
}

func (*CRLNumberAllocated) FactKind() string { return "allocate-crl-number" }
func (f *CRLNumberAllocated) apply(ctx context.Context, r *Registry) error {
	n, err := r.AllocateCRLNumber(ctx, f.Issuer)
	if err == nil && n != f.Number {
		err = fmt.Errorf("%w: CRL number %d of issuer %q was allocated as %d (a journal is missing, or its facts are out of order)",
			ErrConflict, f.Number, f.Issuer, n)
	}
	return err
}

// CRLRecorded is RecordCRL.
type CRLRecorded struct {
	Issuer     string    `json:"issuer"`
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Entries    int64     `json:"entries"`
	SHA256     hexBytes  `json:"sha256"`
	Path       string    `json:"path"`
	RecordedAt time.Time `json:"recorded_at"`
}

func (*CRLRecorded) FactKind() string { return "record-crl" }
func (f *CRLRecorded) apply(ctx context.Context, r *Registry) error {
	c := CRL{IssuerID: f.Issuer, Number: f.Number, ThisUpdate: f.ThisUpdate, NextUpdate: f.NextUpdate, Entries: f.Entries,
		Path: f.Path, RecordedAt: f.RecordedAt}
	copy(c.SHA256[:], f.SHA256)
	return r.RecordCRL(ctx, c)
}

// Revoked is Revoke.
type Revoked struct {
	Issuer         string     `json:"issuer"`
	Serial         hexBytes   `json:"serial"`
	RevokedAt      time.Time  `json:"revoked_at"`
	Reason         pki.Reason `json:"reason"`
	InvalidityDate time.Time  `json:"invalidity_date,omitzero"`
	// Run is the run that revoked it: the state's run of a revoked CA or role certificate.
	Run string `json:"run,omitempty"`
}

func (*Revoked) FactKind() string { return "revoke" }
func (f *Revoked) apply(ctx context.Context, r *Registry) error {
	_, _, err := r.Revoke(ctx, Revocation{IssuerID: f.Issuer, Serial: SerialNumber(f.Serial), RevokedAt: f.RevokedAt,
		Reason: f.Reason, InvalidityDate: f.InvalidityDate, RunID: f.Run})
	return err
}

// factCert is a device Certificate as facts carry it.
type factCert struct {
	Issuer    string    `json:"issuer"`
	Serial    hexBytes  `json:"serial"`
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DER       []byte    `json:"der"`
}

func certOf(c Certificate) factCert {
	return factCert{Issuer: c.IssuerID, Serial: hexBytes(c.Serial), Subject: c.Subject, NotBefore: c.NotBefore, NotAfter: c.NotAfter, DER: c.DER}
}

func (c factCert) certificate() Certificate {
	return Certificate{IssuerID: c.Issuer, Serial: SerialNumber(c.Serial), Subject: c.Subject, NotBefore: c.NotBefore,
		NotAfter: c.NotAfter, DER: c.DER}
}

// factDeviceKey is a DeviceKey being registered, as facts carry it.
type factDeviceKey struct {
	KeyID           hexBytes  `json:"key_id,omitempty"`
	PublicKeySHA256 hexBytes  `json:"public_key_sha256"`
	Token           string    `json:"token,omitempty"`
	GeneratedAt     time.Time `json:"generated_at,omitzero"`
	ActivatedAt     time.Time `json:"activated_at,omitzero"`
}

func deviceKeyOf(k DeviceKey) factDeviceKey {
	return factDeviceKey{KeyID: k.KeyID, PublicKeySHA256: k.PublicKeySHA256[:], Token: k.TokenLabel,
		GeneratedAt: k.GeneratedAt, ActivatedAt: k.ActivatedAt}
}

func (k factDeviceKey) key() DeviceKey {
	dk := DeviceKey{KeyID: k.KeyID, TokenLabel: k.Token, GeneratedAt: k.GeneratedAt, ActivatedAt: k.ActivatedAt}
	copy(dk.PublicKeySHA256[:], k.PublicKeySHA256)
	return dk
}

// RegisteredDevice is one device of DevicesRegistered: the device, its certificate, its key,
// and a revocation when it came revoked.
type RegisteredDevice struct {
	Serial       string        `json:"serial"`
	Model        string        `json:"model,omitempty"`
	Owner        string        `json:"owner,omitempty"`
	Site         string        `json:"site,omitempty"`
	UDI          string        `json:"udi,omitempty"`
	Issuer       string        `json:"issuer"`
	RegisteredAt time.Time     `json:"registered_at"`
	Certificate  factCert      `json:"certificate"`
	Key          factDeviceKey `json:"key"`
	Revoked      *Revoked      `json:"revoked,omitempty"`
}

// DevicesRegistered is ImportDevices (and RegisterDevice): devices registered in one
// transaction, journaled in entries of at most importChunk devices.
type DevicesRegistered struct {
	Devices []RegisteredDevice `json:"devices"`
}

func (*DevicesRegistered) FactKind() string { return "register-devices" }
func (f *DevicesRegistered) apply(ctx context.Context, r *Registry) error {
	_, err := r.ImportDevices(ctx, func(yield func(NewDevice, error) bool) {
		for _, d := range f.Devices {
			nd := NewDevice{Device: Device{Serial: d.Serial, Model: d.Model, Owner: d.Owner, Site: d.Site, UDI: d.UDI, IssuerID: d.Issuer,
				RegisteredAt: d.RegisteredAt}, Certificate: d.Certificate.certificate(), Key: d.Key.key()}
			if d.Revoked != nil {
				var serial SerialNumber // nil: the certificate's, as when it was registered
				if len(d.Revoked.Serial) > 0 {
					serial = SerialNumber(d.Revoked.Serial)
				}
				nd.Revoked = &Revocation{IssuerID: d.Revoked.Issuer, Serial: serial,
					RevokedAt: d.Revoked.RevokedAt, Reason: d.Revoked.Reason, InvalidityDate: d.Revoked.InvalidityDate}
			}
			if !yield(nd, nil) {
				return
			}
		}
	})
	return err
}

// DeviceCertificateAdded is AddDeviceCertificate: a renewed certificate, and its key.
type DeviceCertificateAdded struct {
	Device      string        `json:"device"`
	Certificate factCert      `json:"certificate"`
	Key         factDeviceKey `json:"key"`
}

func (*DeviceCertificateAdded) FactKind() string { return "add-device-certificate" }
func (f *DeviceCertificateAdded) apply(ctx context.Context, r *Registry) error {
	return r.AddDeviceCertificate(ctx, f.Device, f.Certificate.certificate(), f.Key.key())
}

// KeyStateSet is SetKeyState, or SetKeyStateInRun for a change a run made.
type KeyStateSet struct {
	RunID           string    `json:"run_id,omitempty"`
	Device          string    `json:"device"`
	PublicKeySHA256 hexBytes  `json:"public_key_sha256"`
	State           KeyState  `json:"state"`
	At              time.Time `json:"at"`
	Note            string    `json:"note,omitempty"`
}

func (*KeyStateSet) FactKind() string { return "set-key-state" }
func (f *KeyStateSet) apply(ctx context.Context, r *Registry) error {
	var fpr [32]byte
	copy(fpr[:], f.PublicKeySHA256)
	return r.SetKeyStateInRun(ctx, f.RunID, f.Device, fpr, f.State, f.At, f.Note)
}

// DeviceRekeyed is RekeyDevice: a device's new key and certificate, made by a rekey run.
type DeviceRekeyed struct {
	RunID       string        `json:"run_id"`
	Device      string        `json:"device"`
	Certificate factCert      `json:"certificate"`
	Key         factDeviceKey `json:"key"`
}

func (*DeviceRekeyed) FactKind() string { return "rekey-device" }
func (f *DeviceRekeyed) apply(ctx context.Context, r *Registry) error {
	_, err := r.RekeyDevice(ctx, DeviceRekey{RunID: f.RunID, DeviceSerial: f.Device, Certificate: f.Certificate.certificate(), Key: f.Key.key()})
	return err
}

// DevicesDecommissioned is DecommissionDevices: a batch of devices decommissioned together, a
// fleet's thousand at a time. It is written compactly (see MarshalJSON): the texts a batch
// repeats (run, method, verification, note, key state) once each, and one short array per
// device, so a fleet of 100,000 devices adds a few megabytes to its journal.
type DevicesDecommissioned struct {
	Devices []Decommission
}

func (*DevicesDecommissioned) FactKind() string { return "decommission" }
func (f *DevicesDecommissioned) apply(ctx context.Context, r *Registry) error {
	_, err := r.DecommissionDevices(ctx, f.Devices)
	return err
}

// compactBatch is DevicesDecommissioned as written: each device is
// [serial, run, method, verification, reason, note, key state, at, invalidity date], its
// texts as indexes into Texts and its times as Unix seconds (0: none).
type compactBatch struct {
	Texts   []string          `json:"texts"`
	Devices []json.RawMessage `json:"devices"`
}

// MarshalJSON writes the batch compactly.
func (f DevicesDecommissioned) MarshalJSON() ([]byte, error) {
	var b compactBatch
	index := map[string]int{}
	text := func(s string) int {
		i, ok := index[s]
		if !ok {
			i = len(b.Texts)
			index[s] = i
			b.Texts = append(b.Texts, s)
		}
		return i
	}
	for _, d := range f.Devices {
		row, err := json.Marshal([]any{d.DeviceSerial, text(d.RunID), text(d.Method), text(d.Verification), int(d.Reason),
			text(d.Note), text(string(d.KeyState)), unixOrZero(d.At), unixOrZero(d.InvalidityDate)})
		if err != nil {
			return nil, err
		}
		b.Devices = append(b.Devices, row)
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (f *DevicesDecommissioned) UnmarshalJSON(data []byte) error {
	var b compactBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	text := func(i int) (string, error) {
		if i < 0 || i >= len(b.Texts) {
			return "", fmt.Errorf("text %d of %d", i, len(b.Texts))
		}
		return b.Texts[i], nil
	}
	f.Devices = make([]Decommission, 0, len(b.Devices))
	for n, raw := range b.Devices {
		var serial string
		var run, method, verification, reason, note, state int
		var at, inval int64
		row := []any{&serial, &run, &method, &verification, &reason, &note, &state, &at, &inval}
		if err := json.Unmarshal(raw, &row); err != nil {
			return fmt.Errorf("device %d of the batch: %w", n+1, err)
		}
		d := Decommission{DeviceSerial: serial, Reason: pki.Reason(reason), At: fromUnixOrZero(at), InvalidityDate: fromUnixOrZero(inval)}
		var err error
		var ks string
		for _, t := range []struct {
			dst *string
			i   int
		}{{&d.RunID, run}, {&d.Method, method}, {&d.Verification, verification}, {&d.Note, note}, {&ks, state}} {
			if *t.dst, err = text(t.i); err != nil {
				return fmt.Errorf("device %d of the batch: %w", n+1, err)
			}
		}
		d.KeyState = KeyState(ks)
		f.Devices = append(f.Devices, d)
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return fromUnix(s)
}

// DecommissionFailed is RecordDecommissionFailure.
type DecommissionFailed struct {
	Run          string    `json:"run"`
	Device       string    `json:"device"`
	Method       string    `json:"method"`
	Verification string    `json:"verification,omitempty"`
	Note         string    `json:"note,omitempty"`
	At           time.Time `json:"at"`
}

func (*DecommissionFailed) FactKind() string { return "decommission-failure" }
func (f *DecommissionFailed) apply(ctx context.Context, r *Registry) error {
	return r.RecordDecommissionFailure(ctx, Decommission{RunID: f.Run, DeviceSerial: f.Device, Method: f.Method,
		Verification: f.Verification, Note: f.Note, At: f.At})
}

// RunCRLRecorded is RecordRunCRL.
type RunCRLRecorded struct {
	Run    string `json:"run"`
	Issuer string `json:"issuer"`
	Number int64  `json:"number"`
}

func (*RunCRLRecorded) FactKind() string { return "record-run-crl" }
func (f *RunCRLRecorded) apply(ctx context.Context, r *Registry) error {
	return r.RecordRunCRL(ctx, f.Run, f.Issuer, f.Number)
}

// LogAppended is AppendLog: a run's leaf in the record log, at its index.
type LogAppended struct {
	Origin        string    `json:"origin"`
	Index         int64     `json:"index"`
	RunID         string    `json:"run"`
	Kind          string    `json:"kind"`
	JournalSHA256 string    `json:"journal_sha256"`
	Leaf          string    `json:"leaf"`
	LoggedAt      time.Time `json:"logged_at"`
}

func (*LogAppended) FactKind() string { return "append-log" }
func (f *LogAppended) apply(ctx context.Context, r *Registry) error {
	got, _, _, err := r.AppendLog(ctx, f.Origin, LogLeaf{RunID: f.RunID, Kind: f.Kind, JournalSHA256: f.JournalSHA256,
		Leaf: []byte(f.Leaf), LoggedAt: f.LoggedAt})
	if err == nil && got.Index != f.Index {
		err = fmt.Errorf("%w: run %s was logged at index %d, the replay put it at %d (a journal is missing, or its facts are out of order)",
			ErrConflict, f.RunID, f.Index, got.Index)
	}
	return err
}

// LogCheckpointAdded is AddLogCheckpoint.
type LogCheckpointAdded struct {
	Size       int64     `json:"size"`
	RootHash   hexBytes  `json:"root_hash"`
	Note       string    `json:"note"`
	RunID      string    `json:"run"`
	RootSigned bool      `json:"root_signed"`
	SignedAt   time.Time `json:"signed_at"`
}

func (*LogCheckpointAdded) FactKind() string { return "add-log-checkpoint" }
func (f *LogCheckpointAdded) apply(ctx context.Context, r *Registry) error {
	c := LogCheckpoint{Size: f.Size, Note: []byte(f.Note), RunID: f.RunID, RootSigned: f.RootSigned, SignedAt: f.SignedAt}
	copy(c.RootHash[:], f.RootHash)
	return r.AddLogCheckpoint(ctx, c)
}

// Uncommitted says that the facts journaled as entries Seqs of the same journal were not
// committed (the commit failed after they were written): a rebuild leaves them out.
type Uncommitted struct {
	Kind  string  `json:"kind"`
	Seqs  []int64 `json:"seqs"`
	Error string  `json:"error"`
}

func (*Uncommitted) FactKind() string                             { return "uncommitted" }
func (*Uncommitted) apply(ctx context.Context, r *Registry) error { return nil }
