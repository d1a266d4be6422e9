package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
)

// decomEnv opens the workspace and registry for a device, decommission or CRL command.
func decomEnv(ctx context.Context, dir, module string) (decommission.Env, func(), error) {
	ws, err := openWorkspace(dir)
	if err != nil {
		return decommission.Env{}, nil, err
	}
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		ws.Close()
		return decommission.Env{}, nil, err
	}
	return decommission.Env{Workspace: ws, Registry: reg, Module: module}, func() { reg.Close(); ws.Close() }, nil
}

// pinFlag reads a PIN file flag when given; required says whether it must be.
func pinFlag(name, path string, required bool) ([]byte, error) {
	if path == "" {
		if required {
			return nil, usagef("--%s is required", name)
		}
		return nil, nil
	}
	if err := existingFile(path); err != nil {
		return nil, err
	}
	return secret.ReadPINFile(path)
}

func deviceCommands() []command {
	return []command{
		{
			name:    "device provision",
			summary: "make a device identity on a token, as the factory does at key injection",
			help: `Initialises a token (standing in for the device's secure element) with the device PIN as its
user and SO PIN, generates the device key on it, issues its certificate from the issuing CA
(key on the operations token), stores the certificate on the token and registers the device.`,
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				module := fs.String("module", "", "PKCS#11 module `PATH` (default: the workspace's)")
				issuer := fs.String("issuer", "", "issuing CA `ID` or common name")
				serial := fs.String("serial", "", "device `SERIAL` number")
				model := fs.String("model", "", "device `MODEL`")
				token := fs.String("token", "", "`LABEL` for the device token")
				opsPIN := fs.String("ops-pin-file", "", "`FILE` with the operations token's operator PIN")
				devPIN := fs.String("device-pin-file", "", "`FILE` with the device token's PIN")
				return func(ctx context.Context, s Streams, args []string) error {
					if len(args) > 0 {
						return usagef("unexpected argument %q", args[0])
					}
					for _, f := range []struct{ n, v string }{{"issuer", *issuer}, {"serial", *serial}, {"model", *model}, {"token", *token}} {
						if err := requireValue(f.n, f.v); err != nil {
							return err
						}
					}
					ops, err := pinFlag("ops-pin-file", *opsPIN, true)
					if err != nil {
						return err
					}
					defer secret.Zero(ops)
					dev, err := pinFlag("device-pin-file", *devPIN, true)
					if err != nil {
						return err
					}
					defer secret.Zero(dev)
					env, done, err := decomEnv(ctx, *ws, *module)
					if err != nil {
						return err
					}
					defer done()
					p, err := decommission.Provision(ctx, env, decommission.ProvisionRequest{Issuer: *issuer, Serial: *serial,
						Model: *model, Token: *token, OpsPIN: ops, DevicePIN: dev})
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "device %s provisioned on token %q\n  certificate serial %s\n  sha256 %s\n",
						p.Serial, p.Token, pki.SerialHex(p.Certificate.SerialNumber), pki.CertificateFingerprint(p.Certificate))
					return nil
				}
			},
		},
		{
			name:    "device import",
			args:    "PATH...",
			summary: "register devices from their certificates (PEM or DER files, or folders)",
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				issuer := fs.String("issuer", "", "issuing CA `ID` or common name that signed them")
				return func(ctx context.Context, s Streams, args []string) error {
					if err := requireValue("issuer", *issuer); err != nil {
						return err
					}
					if len(args) == 0 {
						return usagef("name the certificate files or folders to import")
					}
					for _, a := range args {
						if _, err := os.Stat(a); err != nil {
							return usagef("%s: no such file or folder", a)
						}
					}
					env, done, err := decomEnv(ctx, *ws, "")
					if err != nil {
						return err
					}
					defer done()
					n, err := decommission.Import(ctx, env, *issuer, args)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "%d devices registered under %s\n", n, *issuer)
					return nil
				}
			},
		},
		{
			name:    "device list",
			summary: "list the registered devices",
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				status := fs.String("status", "", "only devices that are `active` or decommissioned")
				return func(ctx context.Context, s Streams, args []string) error {
					st := registry.DeviceStatus(*status)
					if st != "" && st != registry.DeviceActive && st != registry.DeviceDecommissioned {
						return usagef("--status %q: use active or decommissioned", *status)
					}
					env, done, err := decomEnv(ctx, *ws, "")
					if err != nil {
						return err
					}
					defer done()
					tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "SERIAL\tMODEL\tISSUER\tSTATUS\tSINCE")
					n := 0
					for d, err := range env.Registry.ListDevices(ctx, registry.DeviceQuery{Status: st}) {
						if err != nil {
							return err
						}
						since := d.RegisteredAt
						if d.Status == registry.DeviceDecommissioned {
							since = d.DecommissionedAt
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Serial, d.Model, d.IssuerID, d.Status, since.UTC().Format(time.DateOnly))
						n++
					}
					tw.Flush()
					fmt.Fprintf(s.Err, "%d devices\n", n)
					return nil
				}
			},
		},
		{
			name:    "device show",
			args:    "SERIAL",
			summary: "a device's certificates, key history and decommissioning, for forensics",
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				return func(ctx context.Context, s Streams, args []string) error {
					if len(args) != 1 {
						return usagef("name one device serial")
					}
					env, done, err := decomEnv(ctx, *ws, "")
					if err != nil {
						return err
					}
					defer done()
					h, err := env.Registry.DeviceHistory(ctx, args[0])
					if errors.Is(err, registry.ErrNotFound) {
						return fmt.Errorf("device %s is not registered in this workspace", args[0])
					}
					if err != nil {
						return err
					}
					printHistory(s, h)
					return nil
				}
			},
		},
		{
			name:    "decommission",
			summary: "retire a device (--serial) or a fleet (--manifest): erase, verify, revoke, CRL, record",
			help: `One device: --serial SN --method erase|reinit|physical|unreachable. erase destroys the device's
key and certificate on its token; reinit re-initialises the whole token (the device PIN is its
SO PIN); physical and unreachable erase nothing and need a witness. The reason defaults to
cessationOfOperation, or keyCompromise for unreachable. A fleet: --manifest FILE.csv with
columns serial,method,reason[,note]; every bad line is reported before anything changes, and
running the same manifest again resumes it or, once complete, changes nothing.`,
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				module := fs.String("module", "", "PKCS#11 module `PATH` (default: the workspace's)")
				serial := fs.String("serial", "", "the device `SERIAL`")
				manifest := fs.String("manifest", "", "a fleet manifest `FILE.csv`")
				method := fs.String("method", "", "erase, reinit, physical or unreachable")
				reason := fs.String("reason", "", "RFC 5280 `REASON`: cessationOfOperation, keyCompromise, superseded, affiliationChanged")
				tech := fs.String("technician", "", "the technician's `NAME`")
				witness := fs.String("witness", "", "the witness's `NAME`")
				opsPIN := fs.String("ops-pin-file", "", "`FILE` with the operations token's operator PIN")
				devPIN := fs.String("device-pin-file", "", "`FILE` with the device token's PIN")
				return func(ctx context.Context, s Streams, args []string) error {
					if len(args) > 0 {
						return usagef("unexpected argument %q", args[0])
					}
					if (*serial == "") == (*manifest == "") {
						return usagef("give either --serial or --manifest")
					}
					if err := requireValue("technician", *tech); err != nil {
						return err
					}
					ops, err := pinFlag("ops-pin-file", *opsPIN, true)
					if err != nil {
						return err
					}
					defer secret.Zero(ops)
					dev, err := pinFlag("device-pin-file", *devPIN, false)
					if err != nil {
						return err
					}
					defer secret.Zero(dev)
					if *manifest != "" {
						return runFleet(ctx, s, *ws, *module, *manifest, *tech, *witness, ops, dev)
					}
					m, err := decommission.ParseMethod(*method)
					if err != nil {
						return usagef("--method: %v", err)
					}
					req := decommission.Request{Serial: *serial, Method: m, Technician: *tech, Witness: *witness, OpsPIN: ops, DevicePIN: dev}
					if *reason != "" {
						if req.Reason, err = pki.ParseReason(*reason); err != nil {
							return usagef("--reason: %v", err)
						}
					}
					env, done, err := decomEnv(ctx, *ws, *module)
					if err != nil {
						return err
					}
					defer done()
					env.Progress = stepPrinter(s)
					res, err := decommission.Decommission(ctx, env, req)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "device %s decommissioned (%s)\n  verification %s\n  revoked      %s\n  CRL          %d: %s\n  record       %s\n  journal      %s\n",
						res.Serial, m, res.Verification, res.Reason, res.CRL.Number, res.CRL.DERPath, res.RecordPath, res.JournalPath)
					return nil
				}
			},
		},
		{
			name:    "crl publish",
			summary: "sign a full CRL for an issuing CA",
			setup: func(fs *flag.FlagSet) runFunc {
				ws := workspaceFlag(fs)
				module := fs.String("module", "", "PKCS#11 module `PATH` (default: the workspace's)")
				issuer := fs.String("issuer", "", "issuing CA `ID` or common name")
				opsPIN := fs.String("ops-pin-file", "", "`FILE` with the operations token's operator PIN")
				days := fs.Int("next-update-days", 30, "`DAYS` until the next CRL is due")
				return func(ctx context.Context, s Streams, args []string) error {
					if err := requireValue("issuer", *issuer); err != nil {
						return err
					}
					if *days <= 0 {
						return usagef("--next-update-days must be positive")
					}
					ops, err := pinFlag("ops-pin-file", *opsPIN, true)
					if err != nil {
						return err
					}
					defer secret.Zero(ops)
					env, done, err := decomEnv(ctx, *ws, *module)
					if err != nil {
						return err
					}
					defer done()
					c, err := decommission.PublishCRL(ctx, env, *issuer, ops, time.Duration(*days)*24*time.Hour)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "CRL %d of %s: %d entries, next update %s\n  DER    %s\n  PEM    %s\n  sha256 %s\n",
						c.Number, *issuer, c.Entries, c.NextUpdate.Format(time.DateOnly), c.DERPath, c.PEMPath, c.Fingerprint)
					return nil
				}
			},
		},
	}
}

func runFleet(ctx context.Context, s Streams, ws, module, path, tech, witness string, ops, dev []byte) error {
	if err := existingFile(path); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	m, err := decommission.ParseManifest(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	env, done, err := decomEnv(ctx, ws, module)
	if err != nil {
		return err
	}
	defer done()
	last := time.Time{}
	env.Progress = func(p decommission.Progress) {
		if p.Step == "fleet" && (time.Since(last) > time.Second || p.Done == p.Total) {
			fmt.Fprintf(s.Err, "%d of %d devices\n", p.Done, p.Total)
			last = time.Now()
		}
	}
	res, err := decommission.Fleet(ctx, env, m, decommission.FleetRequest{ManifestPath: path, Technician: tech, Witness: witness, OpsPIN: ops, DevicePIN: dev})
	if err != nil {
		return err
	}
	if res.AlreadyCompleted {
		fmt.Fprintf(s.Out, "fleet run %s for this manifest is already complete; nothing changed\n  record %s\n", res.RunID, res.RecordPath)
		return nil
	}
	fmt.Fprintf(s.Out, "fleet run %s: %d devices: %d decommissioned, %d already decommissioned, %d failed\n", res.RunID, res.Devices, res.Decommissioned, res.AlreadyDone, res.Failed)
	for _, c := range res.CRLs {
		fmt.Fprintf(s.Out, "  CRL %d: %d entries, %s\n", c.Number, c.Entries, c.DERPath)
	}
	fmt.Fprintf(s.Out, "  record  %s\n  journal %s\n", res.RecordPath, res.JournalPath)
	if res.Failed > 0 {
		return fmt.Errorf("%d devices failed; see the record and journal, fix them and run the manifest again", res.Failed)
	}
	return nil
}

func stepPrinter(s Streams) func(decommission.Progress) {
	return func(p decommission.Progress) {
		switch {
		case p.Err != nil:
			fmt.Fprintf(s.Err, "✗ %s: %v\n", p.Step, p.Err)
		case p.Status == "done":
			fmt.Fprintf(s.Err, "✓ %s\n", p.Step)
		case p.Status == "begin":
			fmt.Fprintf(s.Err, "… %s\n", p.Step)
		}
	}
}

func printHistory(s Streams, h registry.DeviceHistory) {
	d := h.Device
	fmt.Fprintf(s.Out, "device %s\n  model    %s\n  issuer   %s\n  status   %s\n  since    %s\n", d.Serial, d.Model, d.IssuerID, d.Status, d.RegisteredAt.UTC().Format(time.RFC3339))
	for _, c := range h.Certificates {
		fmt.Fprintf(s.Out, "  certificate %s  %s  valid %s to %s\n", c.Serial, c.Subject, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
	}
	for _, k := range h.Keys {
		id := fmt.Sprintf("%x", k.KeyID)
		if id == "" {
			id = fmt.Sprintf("sha256:%x", k.PublicKeySHA256[:8])
		}
		fmt.Fprintf(s.Out, "  key %s on %q, certified by %s\n", id, k.TokenLabel, k.CertSerial)
		for _, ch := range k.History {
			fmt.Fprintf(s.Out, "    %s  %s\n", ch.At.UTC().Format(time.RFC3339), ch.State)
		}
	}
	for _, r := range h.Revocations {
		fmt.Fprintf(s.Out, "  revoked %s at %s: %s\n", r.Serial, r.RevokedAt.UTC().Format(time.RFC3339), r.Reason)
	}
	for _, r := range h.Results {
		fmt.Fprintf(s.Out, "  run %s: %s by %s (%s)\n", r.RunID, r.Outcome, r.Method, strings.TrimSpace(r.Verification))
	}
}
