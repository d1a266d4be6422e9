package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

func TestRunsListsWhereARunStopped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	code, out, errs := custos(t, "runs", "--workspace", dir)
	if code != command.ExitOK || !strings.Contains(out, "no unfinished runs") {
		t.Fatalf("empty workspace: exit %d, %q %q", code, out, errs)
	}

	ctx := context.Background()
	ws, err := workspace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	jpath := ws.Path("journal", "acme-root-2026.jsonl")
	j, err := record.CreateJournal(jpath, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	j.Begin("token.init", record.System, nil)
	j.Done("token.init", record.System, nil)
	j.Begin("root.generate-key", record.System, nil)
	if _, err := reg.Journaled(run.JournalFacts(j)).StartRun(ctx, registry.Run{ID: "acme-root-2026", Kind: registry.RunCeremony,
		Operation: "root", Subject: "acme-root-2026", JournalPath: jpath}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	reg.Close()
	ws.Close()

	code, out, errs = custos(t, "runs", "--workspace", dir)
	if code != command.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"acme-root-2026  ceremony root", "running", "stopped in step Generate the root key (root.generate-key; journal line 4",
		"cannot resume: the quorum secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A fleet stopped part way (here cancelled after its first device is erased) is finished by
// `custos resume`, which needs the device PIN for the devices still to erase.
func TestResumeAStoppedFleet(t *testing.T) {
	b := newCeremonyBench(t)
	b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
	b.run(t, command.ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "Acme Devices CA 1", "--ops-pin-file", b.pin)
	devPIN := filepath.Join(b.dir, "device.pin")
	os.WriteFile(devPIN, []byte("device-pin-1234\n"), 0o600)
	for _, sn := range []string{"SN-1", "SN-2", "SN-3"} {
		b.run(t, command.ExitOK, "device", "provision", "--issuer", "Acme Devices CA 1", "--serial", sn, "--model", "Pump X2",
			"--token", "dev-"+sn, "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	}
	manifest := filepath.Join(b.dir, "fleet.csv")
	os.WriteFile(manifest, []byte("serial,method,reason,note\nSN-1,erase,,\nSN-2,erase,,\nSN-3,erase,,\n"), 0o644)

	// Start the fleet in-process and cancel it once the first device is verified erased.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := run.Open(ctx, b.ws)
	if err != nil {
		t.Fatal(err)
	}
	env.Progress = func(p run.Event) {
		if p.Step.ID == "verify" && p.Status == record.StatusDone {
			cancel()
		}
	}
	text, _ := os.ReadFile(manifest)
	m, err := decommission.ParseManifest(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = decommission.Fleet(ctx, env, m, decommission.FleetRequest{ManifestPath: manifest, Technician: "Tess Tech", Validator: "Vic Validator",
		Witness: "Wes Witness", OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1234")})
	if err == nil || !strings.Contains(err.Error(), "fleet stopped after") {
		t.Fatalf("the cancelled fleet: %v", err)
	}
	env.Close()
	runID := decommission.FleetRunID(m)
	if out := b.run(t, command.ExitOK, "runs"); !strings.Contains(out, runID) {
		t.Fatalf("runs does not list %s:\n%s", runID, out)
	}

	// Without the device PIN, resume names the flag; with it, the fleet finishes.
	if out := b.run(t, command.ExitFail, "resume", runID, "--ops-pin-file", b.pin); !strings.Contains(out, "--device-pin-file") {
		t.Errorf("resume without the device PIN: %s", out)
	}
	out := b.run(t, command.ExitOK, "resume", runID, "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	if !strings.Contains(out, "finished") || !strings.Contains(out, "0 failed") {
		t.Errorf("resume: %s", out)
	}
	for _, sn := range []string{"SN-1", "SN-2", "SN-3"} {
		if out := b.run(t, command.ExitOK, "device", "show", sn); !strings.Contains(out, "decommissioned") {
			t.Errorf("%s after resume:\n%s", sn, out)
		}
	}
	if out := b.run(t, command.ExitOK, "runs"); !strings.Contains(out, "no unfinished runs") {
		t.Errorf("runs after resume: %s", out)
	}
	checkNoSecretsLeaked(t, b, []string{b.shares})
}
