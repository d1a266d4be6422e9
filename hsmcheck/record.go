package hsmcheck

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/opstoken"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// ErrNoRecordSigner is the cause when a check cannot be signed: the workspace has no root, so
// no record signer exists. The check's printed table is then all there is.
var ErrNoRecordSigner = errors.New("this workspace has no active root, so no record signer to sign the check")

// SaveEnv is where a check's record goes, and what signs it: the record signer on the
// operations token, under the operator PIN.
type SaveEnv struct {
	Workspace *workspace.Workspace
	Registry  *registry.Registry
	// Module is the operations token's module; empty means the workspace's setting.
	Module     string
	HSMOptions []hsm.Option
	OpsPIN     []byte // zeroed
	PlanName   string // the plan file and its SHA-256, as the record names it; "" for none
	Started    time.Time
}

// Save journals the report and writes it as a record signed by the record signer of the
// workspace's newest active root, and returns the record's path. With no root it returns
// ErrNoRecordSigner before writing anything.
func Save(ctx context.Context, env SaveEnv, rep *Report) (string, error) {
	defer secret.ZeroAll(env.OpsPIN)
	issuers, err := env.Registry.Issuers(ctx)
	if err != nil {
		return "", err
	}
	var root *registry.Issuer
	for i := range issuers {
		if issuers[i].Kind == registry.IssuerRoot && issuers[i].Status == registry.StatusActive {
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
	path := env.Module
	if path == "" {
		v, ok, err := env.Registry.Setting(ctx, "pkcs11.module")
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errors.New("save the check: the workspace names no PKCS#11 module for its operations token: pass its --module")
		}
		path = v
	}
	mod, err := hsm.Open(path, env.HSMOptions...)
	if err != nil {
		return "", err
	}
	defer mod.Close()
	signer, key, err := opstoken.RecordSigner(ctx, env.Registry, mod, root.CeremonyID, rootCert, env.OpsPIN)
	if err != nil {
		return "", fmt.Errorf("save the check: %w", err)
	}
	defer key.Close()

	if err := env.Workspace.CheckWritable(); err != nil {
		return "", err
	}
	var b [3]byte
	rand.Read(b[:])
	now := time.Now().UTC()
	id := fmt.Sprintf("hsm-check-%s-%x", now.Format("20060102T150405Z"), b)
	j, err := record.CreateJournal(env.Workspace.Path("journal", id+".jsonl"), id)
	if err != nil {
		return "", err
	}
	defer j.Close()
	if err := journal(j, env, rep); err != nil {
		return "", err
	}
	jb, err := j.Bytes()
	if err != nil {
		return "", err
	}
	mc := &record.ModuleCheck{ID: id, Plan: env.PlanName, Problems: rep.PlanProblems, Cleared: rep.Cleared,
		Started: env.Started, Finished: now,
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
	out := env.Workspace.Path("records", id+".pdf")
	if err := record.WriteModuleCheck(ctx, out, mc, jb, signer); err != nil {
		return "", err
	}
	return out, nil
}

// journal writes the report into the check's journal: the module, each operation, the plan's
// problems, how the token was left.
func journal(j *record.Journal, env SaveEnv, rep *Report) error {
	if err := j.Note("hsm-check.module", record.System, map[string]string{"module": rep.Module, "sha256": rep.ModuleSHA256,
		"manufacturer": rep.Info.Manufacturer, "description": rep.Info.Description, "library_version": rep.Info.LibraryVersion.String(),
		"token": rep.Token, "token_model": rep.TokenInfo.Model, "token_serial": rep.TokenInfo.SerialOrNone()}); err != nil {
		return err
	}
	for _, c := range rep.Checks {
		if err := j.Note("hsm-check.operation", record.System, map[string]string{"operation": c.Name, "result": c.Result(),
			"code": c.CodeName(), "detail": c.Detail}); err != nil {
			return err
		}
	}
	if env.PlanName != "" {
		d := map[string]string{"plan": env.PlanName, "problems": fmt.Sprint(len(rep.PlanProblems))}
		for i, p := range rep.PlanProblems {
			d[fmt.Sprintf("problem_%d", i+1)] = p
		}
		if err := j.Note("hsm-check.plan", record.System, d); err != nil {
			return err
		}
	}
	return j.Note("hsm-check.token-left", record.System, map[string]string{"token": rep.Token, "state": rep.Cleared})
}

func field(name, value string) record.Field { return record.Field{Name: name, Value: value} }
