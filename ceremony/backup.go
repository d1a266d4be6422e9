package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// The steps of the backup runs: no quorum, no token; a person's account of a copy.
var (
	stepBackupCopy   = run.Step{ID: "backup-copy.write", Title: "Copy the current backup to removable media"}
	stepBackupRetire = run.Step{ID: "backup-retire.retire", Title: "Record a backup copy destroyed"}
)

// Backup states, as backup list shows them.
const (
	StateBackupCurrent    = "current"    // the current epoch's: M custodians of today open it
	StateBackupSuperseded = "superseded" // an earlier epoch's, still there: old shares open it
	StateBackupRetired    = "retired"    // destroyed: by Custos in the workspace, or by a person (a copy)
)

// BackupEntry is a blob in the workspace or a copy of one, with its state.
type BackupEntry struct {
	Epoch  int
	SHA256 [32]byte
	Copy   int    // 0: the blob in the workspace; else the copy's number
	Where  string // the workspace path, or where the copy was written (and its media)
	State  string // StateBackupCurrent, StateBackupSuperseded or BackupRetired
	Detail string // who made it and when; for a retired one, who destroyed it, when, by which run
}

// ListBackups lists every blob of the root in the workspace and every copy of one, oldest
// first, each with its state.
func ListBackups(ctx context.Context, reg *registry.Registry, rootID string) ([]BackupEntry, error) {
	q, err := reg.Quorum(ctx, rootID)
	if err != nil {
		return nil, err
	}
	blobs, err := reg.BackupBlobs(ctx, rootID)
	if err != nil {
		return nil, err
	}
	copies, err := reg.BackupCopies(ctx, rootID)
	if err != nil {
		return nil, err
	}
	state := func(epoch int, retired bool) string {
		switch {
		case retired:
			return StateBackupRetired
		case epoch == q.Epoch && q.Status != registry.StatusDestroyed:
			return StateBackupCurrent
		}
		return StateBackupSuperseded
	}
	var out []BackupEntry
	for _, b := range blobs {
		e := BackupEntry{Epoch: b.Epoch, SHA256: b.SHA256, Where: b.Path, State: state(b.Epoch, !b.DestroyedAt.IsZero()),
			Detail: "written " + b.CreatedAt.UTC().Format(time.DateOnly) + runOf(b.RunID)}
		if !b.DestroyedAt.IsZero() {
			e.Detail = "overwritten and removed by Custos " + b.DestroyedAt.UTC().Format(time.DateOnly) + runOf(b.DestroyedRun)
		}
		out = append(out, e)
	}
	for _, c := range copies {
		e := BackupEntry{Epoch: c.Epoch, SHA256: c.SHA256, Copy: c.Copy, Where: c.Location, State: state(c.Epoch, c.Retired()),
			Detail: "copied by " + c.MadeBy + " " + c.MadeAt.UTC().Format(time.DateOnly) + runOf(c.RunID)}
		if c.Media != "" {
			e.Where += " on " + fmt.Sprintf("%q", c.Media)
		}
		if c.Retired() {
			e.Detail = fmt.Sprintf("destroyed by %s, witnessed by %s, %s%s", c.RetiredBy, c.RetiredWitness,
				c.RetiredAt.UTC().Format(time.DateOnly), runOf(c.RetiredRun))
		}
		out = append(out, e)
	}
	return out, nil
}

func runOf(id string) string {
	if id == "" {
		return ""
	}
	return " (run " + id + ")"
}

// BackupCopyRequest asks for a copy of the root's current backup on removable media.
type BackupCopyRequest struct {
	Root  string
	To    string // an existing folder, e.g. on a USB stick
	By    string // the person making the copy, who carries it away
	Media string // the medium's label, optional
}

// BackupCopied is the payload of backup-copy.write.
type BackupCopied struct {
	Copy     int    `json:"copy"`
	Epoch    int    `json:"epoch"`
	SHA256   string `json:"sha256"`
	From     string `json:"from"`
	Location string `json:"location"`
	Media    string `json:"media,omitempty"`
	By       string `json:"by"`
	Check    string `json:"check"`
}

// BackupCopyResult is a copy written and recorded.
type BackupCopyResult struct {
	RunID string
	Copy  registry.BackupCopy
}

// CopyBackup copies the root's current blob into req.To (mode 0600, never over a file), reads
// it back and checks its SHA-256 against the registry's, and records the copy as a run: from
// then on it is listed, and outstanding until backup retire records it destroyed.
func CopyBackup(ctx context.Context, env run.Env, req BackupCopyRequest) (*BackupCopyResult, error) {
	if strings.TrimSpace(req.By) == "" {
		return nil, fmt.Errorf("backup copy: %w", run.NewFieldError("By", "name the person who makes the copy"))
	}
	if info, err := os.Stat(req.To); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("backup copy: %w", run.NewFieldError("To", "%s is not a folder: give the folder on the removable media", req.To))
	}
	q, err := env.Registry.Quorum(ctx, req.Root)
	if err != nil {
		return nil, fmt.Errorf("backup copy: %w", err)
	}
	if q.Status == registry.StatusDestroyed {
		return nil, fmt.Errorf("backup copy: root %s was destroyed%s: its backups are retired", req.Root, destroyedBy(ctx, env.Registry, req.Root))
	}
	if q.BackupPath == "" {
		return nil, fmt.Errorf("backup copy: root %s has no backup (its plan chose none)", req.Root)
	}
	blob, err := inputfile.Read(ctx, "backup", q.BackupPath, maxBackupFile)
	if err != nil {
		return nil, fmt.Errorf("backup copy: %w", err)
	}
	if sum := sha256.Sum256(blob); !bytes.Equal(sum[:], q.BackupSHA256) {
		return nil, fmt.Errorf("backup copy: %s is not the backup the registry recorded (its SHA-256 differs): copy nothing, and find out who changed it", q.BackupPath)
	}
	r, err := run.StartRun(ctx, env, registry.Run{ID: run.NewID(env, "backup-copy", req.Root), Kind: registry.RunCeremony,
		Operation: "backup-copy", Subject: req.Root})
	if err != nil {
		return nil, fmt.Errorf("backup copy: %w", err)
	}
	res := &BackupCopyResult{RunID: r.ID}
	err = r.Step(stepBackupCopy, record.Actor{Name: req.By, Role: "backup holder"}, func() (any, error) {
		dst := filepath.Join(req.To, filepath.Base(q.BackupPath))
		if err := workspace.CreateExclusive(dst, blob, 0o600); err != nil {
			return nil, err
		}
		back, err := inputfile.Read(ctx, "backup copy", dst, maxBackupFile)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(back, blob) {
			os.Remove(dst)
			return nil, fmt.Errorf("%s reads back different from what was written: the media is faulty; the copy was removed", dst)
		}
		c, err := r.Registry().AddBackupCopy(ctx, registry.BackupCopy{RootID: req.Root, Epoch: q.Epoch, Location: dst,
			Media: strings.TrimSpace(req.Media), MadeBy: strings.TrimSpace(req.By), MadeAt: env.Clock(), RunID: r.ID})
		if err != nil {
			os.Remove(dst)
			return nil, err
		}
		res.Copy = c
		return BackupCopied{Copy: c.Copy, Epoch: c.Epoch, SHA256: fmt.Sprintf("%x", c.SHA256), From: q.BackupPath,
			Location: dst, Media: c.Media, By: c.MadeBy, Check: "read back from the media and equal to the blob"}, nil
	})
	if err = r.Finish(ctx, err, ""); err != nil {
		return nil, fmt.Errorf("backup copy: %w", err)
	}
	return res, nil
}

// BackupRetireRequest records that a person destroyed a copy Custos cannot reach.
type BackupRetireRequest struct {
	Root    string
	Copy    int
	By      string // who destroyed it
	Witness string // another person who saw it destroyed
}

// BackupRetired is the payload of backup-retire.retire.
type BackupRetired struct {
	Copy     int    `json:"copy"`
	Epoch    int    `json:"epoch"`
	SHA256   string `json:"sha256"`
	Location string `json:"location"`
	By       string `json:"by"`
	Witness  string `json:"witness"`
}

// RetireBackup records, as a run, that req.By destroyed copy req.Copy of the root's backup
// and req.Witness saw it. The copy is listed retired from then on.
func RetireBackup(ctx context.Context, env run.Env, req BackupRetireRequest) (string, error) {
	by, witness := strings.TrimSpace(req.By), strings.TrimSpace(req.Witness)
	switch {
	case by == "":
		return "", fmt.Errorf("backup retire: %w", run.NewFieldError("By", "name the person who destroyed the copy"))
	case witness == "":
		return "", fmt.Errorf("backup retire: %w", run.NewFieldError("Witness", "name the person who saw the copy destroyed"))
	case by == witness:
		return "", fmt.Errorf("backup retire: %w", run.NewFieldError("Witness", "the witness must be another person than %s", by))
	}
	copies, err := env.Registry.BackupCopies(ctx, req.Root)
	if err != nil {
		return "", fmt.Errorf("backup retire: %w", err)
	}
	var c *registry.BackupCopy
	for i := range copies {
		if copies[i].Copy == req.Copy {
			c = &copies[i]
		}
	}
	if c == nil {
		return "", fmt.Errorf("backup retire: %w", run.NewFieldError("Copy", "root %s has no backup copy %d (backup list shows them)", req.Root, req.Copy))
	}
	if c.Retired() {
		return "", fmt.Errorf("backup retire: %w", run.NewFieldError("Copy", "copy %d was retired on %s by %s (run %s)", c.Copy, c.RetiredAt.UTC().Format(time.DateOnly), c.RetiredBy, c.RetiredRun))
	}
	r, err := run.StartRun(ctx, env, registry.Run{ID: run.NewID(env, "backup-retire", req.Root), Kind: registry.RunCeremony,
		Operation: "backup-retire", Subject: req.Root})
	if err != nil {
		return "", fmt.Errorf("backup retire: %w", err)
	}
	err = r.Step(stepBackupRetire, record.Actor{Name: by + "; witness " + witness, Role: "backup holder"}, func() (any, error) {
		if _, err := r.Registry().RetireBackupCopy(ctx, req.Root, req.Copy, by, witness, env.Clock(), r.ID); err != nil {
			return nil, err
		}
		return BackupRetired{Copy: c.Copy, Epoch: c.Epoch, SHA256: fmt.Sprintf("%x", c.SHA256), Location: c.Location, By: by, Witness: witness}, nil
	})
	if err = r.Finish(ctx, err, ""); err != nil {
		return r.ID, fmt.Errorf("backup retire: %w", err)
	}
	return r.ID, nil
}

// BackupAccount is noted in every quorum operation's journal, and so its record, while the
// root has copies: each copy, and whether it is outstanding or retired.
type BackupAccount struct {
	Copies []string `json:"copies"`
}

// backupAccount is the root's account of copies for a quorum operation's journal, nil when
// none was ever made.
func backupAccount(ctx context.Context, reg *registry.Registry, rootID string) (*BackupAccount, error) {
	copies, err := reg.BackupCopies(ctx, rootID)
	if err != nil || len(copies) == 0 {
		return nil, err
	}
	a := &BackupAccount{}
	for _, c := range copies {
		line := fmt.Sprintf("copy %d of epoch %d (SHA-256 %x) at %s, made by %s on %s (run %s): ", c.Copy, c.Epoch, c.SHA256,
			c.Location, c.MadeBy, c.MadeAt.UTC().Format(time.DateOnly), c.RunID)
		if c.Retired() {
			line += fmt.Sprintf("retired, destroyed by %s witnessed by %s on %s (run %s)", c.RetiredBy, c.RetiredWitness,
				c.RetiredAt.UTC().Format(time.DateOnly), c.RetiredRun)
		} else {
			line += "outstanding"
		}
		a.Copies = append(a.Copies, line)
	}
	return a, nil
}
