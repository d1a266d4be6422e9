package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

func deviceProvision() command.Command {
	return command.Command{
		Name:    "device provision",
		Summary: "make a device identity on a token, as the factory does at key injection",
		Help: `Initialises a token (standing in for the device's secure element) with the device PIN as its
user and SO PIN, generates the device key on it, issues its certificate from the issuing CA
(key on the operations token), stores the certificate on the token and registers the device.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			df := addDeviceFlags(fs)
			req := decommission.ProvisionRequest{}
			fs.StringVar(&req.Issuer, "issuer", "", "issuing CA `ID` or common name")
			fs.StringVar(&req.Serial, "serial", "", "device `SERIAL` number")
			fs.StringVar(&req.Model, "model", "", "device `MODEL`")
			fs.StringVar(&req.UDI, "udi", "", "the device's Unique Device Identifier as its label prints it (GS1 (01)..., HIBCC +..., ICCBBA = or &...)")
			fs.StringVar(&req.Token, "token", "", "`LABEL` for the device token")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "issuer", "serial", "model", "token"); err != nil {
					return err
				}
				return df.withPINs(ctx, s, func(env run.Env, pins pins) error {
					req.OpsPIN, req.DevicePIN = pins.ops, pins.device
					p, err := decommission.Provision(ctx, env, req)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "device %s provisioned on token %q\n  certificate serial %s\n  sha256 %s\n",
						p.Serial, p.Token, pki.SerialHex(p.Certificate.SerialNumber), pki.CertificateFingerprint(p.Certificate))
					return nil
				})
			}
		},
	}
}

func deviceRekey() command.Command {
	return command.Command{
		Name:    "device rekey",
		Summary: "move a device to a new key on its token, revoking the old certificate",
		Help: `Proves possession of the device's current key (it signs a fresh challenge on the device's
token, checked under its certificate), generates a new key on the same token (made there, never
extractable), issues its certificate from the device's issuing CA or, with --issuer, a newer
active issuing CA under the same root (with that CA's CRL distribution point and policies),
stores it and proves the new key under it, revokes the old certificate (superseded), destroys
every object of the old identity on the token and verifies they are gone, signs the old
certificate's issuer's CRL and writes a signed record under records/. A run that stops half
way is finished by 'custos resume RUN'; before the new certificate is issued,
'custos abort RUN --device-pin-file F' removes the half-made key instead.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			df := addDeviceFlags(fs)
			req := decommission.RekeyRequest{}
			fs.StringVar(&req.Serial, "serial", "", "device `SERIAL` number")
			alg := fs.String("algorithm", "", "the new key's `ALGORITHM` ("+keyalg.List()+"); default: the current key's")
			fs.StringVar(&req.Issuer, "issuer", "", "issuing CA `ID` or common name of the new certificate; default: the device's")
			fs.StringVar(&req.Technician, "technician", "", "the technician's `NAME`; default: the login name")
			fs.IntVar(&req.ValidityYears, "validity-years", 0, "the new certificate's validity in `YEARS` (default 10, or what the CA has left)")
			days := fs.Int("next-update-days", 30, "the CRL's next update, in `DAYS` from now")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "serial"); err != nil {
					return err
				}
				if *alg != "" {
					a, err := keyalg.Parse(*alg)
					if err != nil {
						return command.Usagef("--algorithm: %v", err)
					}
					req.Algorithm = a
				}
				if *days < 1 {
					return command.Usagef("--next-update-days must be at least 1")
				}
				req.CRLNextUpdate = time.Duration(*days) * 24 * time.Hour
				if req.Technician == "" {
					if u, err := user.Current(); err == nil {
						req.Technician = u.Username
					}
				}
				return df.withPINs(ctx, s, func(env run.Env, pins pins) error {
					req.OpsPIN, req.DevicePIN = pins.ops, pins.device
					res, err := decommission.Rekey(ctx, env, req)
					if err != nil {
						if res != nil && res.RunID != "" {
							return fmt.Errorf("%w\nrun %s stopped: finish it with 'custos resume %s'", err, res.RunID, res.RunID)
						}
						return err
					}
					fmt.Fprintf(s.Out, "device %s re-keyed on token %q (run %s)\n", res.Serial, res.Token, res.RunID)
					fmt.Fprintf(s.Out, "  new key %x, certificate serial %s from %s, sha256 %s\n", res.NewKeyID,
						pki.SerialHex(res.NewCertificate.SerialNumber), res.Issuer, pki.CertificateFingerprint(res.NewCertificate))
					fmt.Fprintf(s.Out, "  old certificate %s revoked (superseded) on CRL %d: %s\n", pki.SerialHex(res.OldCertificate.SerialNumber),
						res.CRL.Number, res.CRL.DERPath)
					fmt.Fprintf(s.Out, "  old key %x: %s\n", res.OldKeyID, res.Verification)
					fmt.Fprintf(s.Out, "  record %s\n", res.RecordPath)
					return nil
				})
			}
		},
	}
}

func deviceImport() command.Command {
	return command.Command{
		Name:    "device import",
		Args:    "PATH...",
		Summary: "register devices from their certificates (PEM or DER files, or folders)",
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			issuer := fs.String("issuer", "", "issuing CA `ID` or common name that signed them")
			udiList := fs.String("udi-list", "", "`FILE.csv` with columns serial,udi: the devices' Unique Device Identifiers")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "issuer"); err != nil {
					return err
				}
				var udis map[string]string
				if *udiList != "" {
					if err := command.ExistingFile(*udiList); err != nil {
						return err
					}
					var err error
					if udis, err = decommission.LoadUDIList(ctx, *udiList); err != nil {
						return err
					}
				}
				if len(args) == 0 {
					return command.Usagef("name the certificate files or folders to import")
				}
				for _, a := range args {
					info, err := os.Stat(a)
					if err != nil {
						return command.Usagef("%s: no such file or folder", a)
					}
					if !info.IsDir() {
						if err := command.ExistingFile(a); err != nil {
							return err
						}
					}
				}
				env, err := envFlags{workspace: ws}.open(ctx, s)
				if err != nil {
					return err
				}
				defer env.Close()
				n, err := decommission.Import(ctx, env, *issuer, args, udis)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "%d devices registered under %s\n", n, *issuer)
				return nil
			}
		},
	}
}

func deviceList() command.Command {
	return command.Command{
		Name:    "device list",
		Summary: "list the registered devices",
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			status := fs.String("status", "", "only devices that are `active` or decommissioned")
			return func(ctx context.Context, s command.Streams, args []string) error {
				st := registry.DeviceStatus(*status)
				if st != "" && st != registry.DeviceActive && st != registry.DeviceDecommissioned {
					return command.Usagef("--status %q: use active or decommissioned", *status)
				}
				_, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, *ws)
				empty := errors.Is(err, registry.ErrEmptyWorkspace)
				if err != nil && !empty {
					return err
				}
				tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SERIAL\tMODEL\tISSUER\tSTATUS\tSINCE")
				if empty {
					tw.Flush()
					fmt.Fprintln(s.Err, "0 devices")
					return nil
				}
				defer done()
				n := 0
				for d, err := range reg.ListDevices(ctx, registry.DeviceQuery{Status: st}) {
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
	}
}

func crlPublish() command.Command {
	return command.Command{
		Name:    "crl publish",
		Summary: "sign an issuing CA's full CRL, and every shard of it under the same number when it has shards",
		Setup: func(fs *flag.FlagSet) command.Func {
			env := addEnvFlags(fs, "the workspace's")
			issuer := fs.String("issuer", "", "issuing CA `ID` or common name")
			opsPIN := opsPINFile(fs, "")
			days := fs.Int("next-update-days", 30, "`DAYS` until the next CRL is due: at most 366, and never past the CA's notAfter")
			budget := fs.Int("shard-budget", pki.DefaultShardBudget, "`BYTES` a CRL shard should stay within (default 64 KiB): larger shards are signed, and named")
			operator := fs.String("operator", "", "who publishes the CRL, as the record names them (`NAME`)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "issuer"); err != nil {
					return err
				}
				if *days <= 0 {
					return command.Usagef("--next-update-days must be positive")
				}
				if *budget <= 0 {
					return command.Usagef("--shard-budget must be positive")
				}
				pin, err := opsPIN.read(true)
				if err != nil {
					return err
				}
				defer secret.Zero(pin)
				e, err := env.open(ctx, s)
				if err != nil {
					return err
				}
				defer e.Close()
				c, err := decommission.PublishCRL(ctx, e, decommission.PublishRequest{Issuer: *issuer, Operator: *operator, OpsPIN: pin,
					CRL: run.CRLRequest{NextUpdate: time.Duration(*days) * 24 * time.Hour, ShardBudget: *budget}})
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "CRL %d of %s: %d entries, next update %s\n  DER    %s\n  PEM    %s\n  sha256 %s\n  record %s\n",
					c.Number, c.Issuer, c.Entries, c.NextUpdate.Format(time.DateOnly), c.DERPath, c.PEMPath, c.Fingerprint, c.RecordPath)
				printShards(s, c.CRL)
				return nil
			}
		},
	}
}

// printShards reports a CRL set's shards: where, how many, the largest, and a warning for each
// over the budget.
func printShards(s command.Streams, c run.CRL) {
	if c.Shards == 0 {
		return
	}
	fmt.Fprintf(s.Out, "  shards %d, in %s (publish it as <base URL>/%s/)\n  largest shard %d: %d bytes\n",
		c.Shards, c.ShardDir, filepath.Base(c.ShardDir), c.LargestShard, c.LargestSize)
	for _, i := range c.OverBudget {
		fmt.Fprintf(s.Err, "warning: shard %d passes the budget of %d bytes: devices may not hold it; an issuing CA with more shards would keep new devices' shards smaller\n", i, c.ShardBudget)
	}
}
