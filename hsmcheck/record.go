package hsmcheck

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// ErrNoRecordSigner is the cause when a check cannot be signed: the workspace has no root, so
// no record signer exists. The check's printed table is then all there is.
var ErrNoRecordSigner = errors.New("this workspace has no active root, so no record signer to sign the check")

// SaveRequest is what a saved check's record says besides the report, and the operator PIN
// that opens the record signer (it stays the caller's).
type SaveRequest struct {
	OpsPIN   []byte
	PlanName string // the plan file and its SHA-256, as the record names it; "" for none
	Started  time.Time
}

// Save journals the report and writes it as a record signed by the record signer of the
// workspace's newest active root (on the operations token of env's module), and returns the
// record's path. With no root it returns ErrNoRecordSigner before writing anything.
func Save(ctx context.Context, env run.Env, req SaveRequest, rep *Report) (string, error) {
	issuers, err := env.Registry.Issuers(ctx)
	if err != nil {
		return "", err
	}
	var root *registry.Issuer
	for i := range issuers {
		if issuers[i].Kind == registry.IssuerRoot && issuers[i].Standing.State == registry.StateActive {
			root = &issuers[i]
		}
	}
	if root == nil {
		return "", ErrNoRecordSigner
	}
	rootCert, err := x509.ParseCertificate(root.Certificate)
	if err != nil {
		return "", err
	}
	if _, err := run.CheckRecordSigner(ctx, env.Registry, root.CeremonyID); err != nil {
		return "", fmt.Errorf("save the check: %w", err)
	}
	mod, err := env.OpenModule(ctx, "")
	if err != nil {
		return "", fmt.Errorf("save the check: the operations token's module: %w", err)
	}
	defer mod.Close()
	signer, err := run.OpenRecordSigner(ctx, env.Registry, mod, root.CeremonyID, rootCert, req.OpsPIN)
	if err != nil {
		return "", fmt.Errorf("save the check: %w", err)
	}
	defer signer.Close()

	if err := env.Workspace.CheckWritable(); err != nil {
		return "", err
	}
	now := env.Clock()
	id := run.NewID(env, "check", "hsm")
	j, err := record.CreateJournal(env.JournalPath(id), id)
	if err != nil {
		return "", err
	}
	defer j.Close()
	if err := journal(j, req, rep); err != nil {
		return "", err
	}
	log, err := run.EnterLog(ctx, env, j, run.LogSeal{Kind: "hsm-check", RootID: root.CeremonyID, Root: rootCert}, signer.Signer)
	if err != nil {
		return "", fmt.Errorf("save the check: %w", err)
	}
	jb, err := j.Bytes()
	if err != nil {
		return "", err
	}
	mc := &record.ModuleCheck{Log: log, ID: id, Plan: req.PlanName, Problems: rep.PlanProblems, Cleared: rep.Cleared,
		Started: req.Started, Finished: now,
		Module: []record.Field{field("Path", rep.Module), field("SHA-256", rep.ModuleSHA256),
			field("Library", fmt.Sprintf("%s, %s, version %s (PKCS#11 %s)", rep.Info.Manufacturer, rep.Info.Description, rep.Info.LibraryVersion, rep.Info.CryptokiVersion))},
		Token: []record.Field{field("Label", rep.Token), field("Manufacturer", rep.TokenInfo.Manufacturer), field("Model", rep.TokenInfo.Model),
			field("Serial", rep.TokenInfo.SerialOrNone()), field("Firmware", rep.TokenInfo.FirmwareVersion.String())}}
	if mc.Started.IsZero() {
		mc.Started = now
	}
	for _, c := range rep.Checks {
		mc.Checks = append(mc.Checks, record.CheckRow{Check: c.Name, Result: c.Result(), Code: c.CodeName(), Detail: c.Detail})
	}
	out := env.RecordPath(id)
	if err := record.WriteModuleCheck(ctx, out, mc, jb, signer.Signer); err != nil {
		return "", err
	}
	return out, nil
}

// The entries of a check's journal, and their payloads.
const (
	stepModule    = "hsm-check.module"
	stepOperation = "hsm-check.operation"
	stepPlan      = "hsm-check.plan"
	stepTokenLeft = "hsm-check.token-left"
)

// ModuleChecked is the payload of hsm-check.module: the module and the spare token.
type ModuleChecked struct {
	Module         string `json:"module"`
	SHA256         string `json:"sha256"`
	Manufacturer   string `json:"manufacturer"`
	Description    string `json:"description"`
	LibraryVersion string `json:"library_version"`
	Token          string `json:"token"`
	TokenModel     string `json:"token_model"`
	TokenSerial    string `json:"token_serial"`
}

// OperationChecked is the payload of hsm-check.operation: one thing the module was asked.
type OperationChecked struct {
	Operation string `json:"operation"`
	Result    string `json:"result"`
	Code      string `json:"code"`
	Detail    string `json:"detail,omitempty"`
}

// PlanChecked is the payload of hsm-check.plan: what of the plan the module cannot do.
type PlanChecked struct {
	Plan     string   `json:"plan"`
	Problems []string `json:"problems,omitempty"`
}

// TokenLeft is the payload of hsm-check.token-left: how the spare token was left.
type TokenLeft struct {
	Token string `json:"token"`
	State string `json:"state"`
}

// journal writes the report into the check's journal: the module, each operation, the plan's
// problems, how the token was left.
func journal(j *record.Journal, req SaveRequest, rep *Report) error {
	if err := j.Note(stepModule, record.System, ModuleChecked{Module: rep.Module, SHA256: rep.ModuleSHA256,
		Manufacturer: rep.Info.Manufacturer, Description: rep.Info.Description, LibraryVersion: rep.Info.LibraryVersion.String(),
		Token: rep.Token, TokenModel: rep.TokenInfo.Model, TokenSerial: rep.TokenInfo.SerialOrNone()}); err != nil {
		return err
	}
	for _, c := range rep.Checks {
		if err := j.Note(stepOperation, record.System, OperationChecked{Operation: c.Name, Result: c.Result(),
			Code: c.CodeName(), Detail: c.Detail}); err != nil {
			return err
		}
	}
	if req.PlanName != "" {
		if err := j.Note(stepPlan, record.System, PlanChecked{Plan: req.PlanName, Problems: rep.PlanProblems}); err != nil {
			return err
		}
	}
	return j.Note(stepTokenLeft, record.System, TokenLeft{Token: rep.Token, State: rep.Cleared})
}

func field(name, value string) record.Field { return record.Field{Name: name, Value: value} }
