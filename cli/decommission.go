package cli

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/run"
)

func decommissionCmd() command.Command {
	return command.Command{
		Name:    "decommission",
		Summary: "retire a device (--serial) or a fleet (--manifest): erase, verify, revoke, CRL, record",
		Help: `One device: --serial SN --method erase|reinit|physical|unreachable. erase destroys the device's
key and certificate on its token; reinit re-initialises the whole token (the device PIN is its
SO PIN); physical and unreachable erase nothing and need a witness. The reason defaults to
cessationOfOperation, or keyCompromise for unreachable; --compromised-at TIME (RFC 3339, or a
date) says since when a keyCompromise key may be known (its invalidity date; default: the time
of the run). --validator NAME names another person than the technician, who checks the
sanitization (required unless custos settings set validator-required false); --destination
says where the device goes: reuse, return, recycle or destroyed. A fleet: --manifest FILE.csv
with columns serial,method,reason[,note][,compromised_at][,destination][,udi]; every bad line
is reported before anything changes, and running the same manifest again resumes it or, once
complete, changes nothing.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			df := addDeviceFlags(fs)
			req := decommission.Request{}
			fs.StringVar(&req.Serial, "serial", "", "the device `SERIAL`")
			manifest := fs.String("manifest", "", "a fleet manifest `FILE.csv`")
			method := fs.String("method", "", "erase, reinit, physical or unreachable")
			reason := fs.String("reason", "", "RFC 5280 `REASON`: "+pki.ReasonNames(decommission.Reasons(decommission.Erase))+" (default: the method's)")
			fs.StringVar(&req.Technician, "technician", "", "the technician's `NAME`")
			fs.StringVar(&req.Witness, "witness", "", "the witness's `NAME`")
			fs.StringVar(&req.Validator, "validator", "", "the validator's `NAME`: another person than the technician, who checks the sanitization")
			destination := fs.String("destination", "", "where the device goes: reuse, return, recycle or destroyed (a manifest has a destination column)")
			compromisedAt := fs.String("compromised-at", "", "keyCompromise: since when the key may be known, `TIME` (2026-03-01T14:30:00Z or 2026-03-01; default: now)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if (req.Serial == "") == (*manifest == "") {
					return command.Usagef("give either --serial or --manifest")
				}
				if *compromisedAt != "" {
					if *manifest != "" {
						return command.Usagef("--compromised-at is for one device; a manifest has a compromised_at column")
					}
					var err error
					if req.InvalidityDate, err = decommission.ParseCompromisedAt(*compromisedAt); err != nil {
						return command.Usagef("--compromised-at: %v", err)
					}
				}
				if err := command.Require(fs, "technician"); err != nil {
					return err
				}
				if *manifest != "" && *destination != "" {
					return command.Usagef("--destination is for one device; a manifest has a destination column")
				}
				var err error
				if req.Destination, err = decommission.ParseDestination(*destination); err != nil {
					return command.Usagef("--destination: %v", err)
				}
				pins, err := df.pins.read(true, false)
				if err != nil {
					return err
				}
				defer pins.zero()
				if *manifest != "" {
					return runFleet(ctx, s, df, *manifest, decommission.FleetRequest{ManifestPath: *manifest,
						Technician: req.Technician, Witness: req.Witness, Validator: req.Validator, OpsPIN: pins.ops, DevicePIN: pins.device})
				}

				if req.Method, err = decommission.ParseMethod(*method); err != nil {
					return command.Usagef("--method: %v", err)
				}
				if *reason != "" {
					if req.Reason, err = pki.ParseReason(*reason); err != nil {
						return command.Usagef("--reason: %v", err)
					}
				}
				env, err := df.open(ctx, s)
				if err != nil {
					return err
				}
				defer env.Close()
				env.Progress = stepPrinter(s)
				req.OpsPIN, req.DevicePIN = pins.ops, pins.device
				res, err := decommission.Decommission(ctx, env, req)
				if err != nil {
					return err
				}
				revoked := res.Reason.String()
				if !res.InvalidityDate.IsZero() {
					revoked += fmt.Sprintf(", compromised at %s (%s)", res.InvalidityDate.UTC().Format(time.RFC3339), res.InvalidityFrom)
				}
				fmt.Fprintf(s.Out, "device %s decommissioned (%s)\n  verification %s\n  revoked      %s\n  CRL          %d: %s\n  record       %s\n  journal      %s\n",
					res.Serial, req.Method, res.Verification, revoked, res.CRL.Number, res.CRL.DERPath, res.RecordPath, res.JournalPath)
				return nil
			}
		},
	}
}

// runFleet retires the devices of a manifest, printing the count done about once a second.
func runFleet(ctx context.Context, s command.Streams, df deviceFlags, path string, req decommission.FleetRequest) error {
	if err := command.ExistingFile(path); err != nil {
		return err
	}
	m, err := decommission.LoadManifest(ctx, path)
	if err != nil {
		return err
	}
	env, err := df.open(ctx, s)
	if err != nil {
		return err
	}
	defer env.Close()
	last := time.Time{}
	env.Progress = func(p run.Event) {
		if p.Total > 0 && (time.Since(last) > time.Second || p.Done == p.Total) {
			fmt.Fprintf(s.Err, "%d of %d devices\n", p.Done, p.Total)
			last = time.Now()
		}
	}
	res, err := decommission.Fleet(ctx, env, m, req)
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
