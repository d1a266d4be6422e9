package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
)

// quorumFlags are the flags every operation under quorum takes.
type quorumFlags struct {
	ws, root, shares, module, pinFile *string
}

func addQuorumFlags(fs *flag.FlagSet) quorumFlags {
	return quorumFlags{
		ws:      workspaceFlag(fs),
		root:    fs.String("root", "", "the root's `ID` (its ceremony id)"),
		shares:  fs.String("shares", "", "comma-separated share `FILES`, at least the threshold, from different custodians"),
		module:  fs.String("module", "", "PKCS#11 module `PATH` (default: the one the root ceremony used)"),
		pinFile: fs.String("ops-pin-file", "", "`FILE` holding the operations token's operator PIN, to sign the record (without it, only the journal is kept)"),
	}
}

// opsPIN reads the operator PIN when --ops-pin-file was given.
func (f quorumFlags) opsPIN() ([]byte, error) {
	if *f.pinFile == "" {
		return nil, nil
	}
	if err := existingFile(*f.pinFile); err != nil {
		return nil, err
	}
	return secret.ReadPINFile(*f.pinFile)
}

// quorumSession is a quorum operation's workspace, collected shares and operator PIN.
type quorumSession struct {
	env  ceremony.Env
	q    *quorum.Collector
	pin  []byte // nil without --ops-pin-file
	done func()
}

// start reads the operator PIN (when given) and opens the workspace with the shares.
func (f quorumFlags) start(ctx context.Context, s Streams, files []string) (*quorumSession, error) {
	pin, err := f.opsPIN()
	if err != nil {
		return nil, err
	}
	env, q, done, err := f.open(ctx, s, files)
	if err != nil {
		secret.Zero(pin)
		return nil, err
	}
	return &quorumSession{env: env, q: q, pin: pin, done: done}, nil
}

// close zeroes the PIN and the shares and closes the workspace.
func (qs *quorumSession) close() {
	secret.Zero(qs.pin)
	qs.done()
}

// printRecord names the run's record, or says there is none.
func printRecord(s Streams, env ceremony.Env, runID string) {
	path := ceremony.RecordPath(env, runID)
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(s.Out, "  record      %s\n", path)
		return
	}
	fmt.Fprintf(s.Out, "  record      none (no --ops-pin-file); journal %s\n", env.Workspace.Path("journal", runID+".jsonl"))
}

// check validates the flags before anything is opened.
func (f quorumFlags) check() ([]string, error) {
	if err := requireValue("root", *f.root); err != nil {
		return nil, err
	}
	if err := requireValue("shares", *f.shares); err != nil {
		return nil, err
	}
	var files []string
	for _, p := range strings.Split(*f.shares, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := existingFile(p); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	return files, nil
}

// open opens the workspace and collects the shares, each checked against its commitment.
func (f quorumFlags) open(ctx context.Context, s Streams, files []string) (ceremony.Env, *quorum.Collector, func(), error) {
	env, done, err := ceremonyEnv(ctx, *f.ws, *f.module)
	if err != nil {
		return ceremony.Env{}, nil, nil, err
	}
	q, err := ceremony.LoadQuorum(ctx, env.Registry, *f.root)
	if err != nil {
		done()
		return ceremony.Env{}, nil, nil, err
	}
	for _, p := range files {
		b, err := secret.ReadShareFile(p)
		if err != nil {
			q.Wipe()
			done()
			return ceremony.Env{}, nil, nil, err
		}
		n, err := q.Add(stripComments(string(b)))
		secret.Zero(b)
		if err != nil {
			q.Wipe()
			done()
			return ceremony.Env{}, nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(s.Err, "share #%d accepted (%d of %d present)\n", n, q.Present(), q.Needed())
	}
	env.Progress = progressPrinter(s)
	return env, q, func() { q.Wipe(); done() }, nil
}

func quorumCommands() []command {
	return []command{
		{
			name:    "ceremony issue-ca",
			summary: "make an issuing CA on the operations token, signed by the root under quorum",
			help: `Needs at least the threshold of custodians' share files. Each share is checked against
its commitment, the quorum secret is reconstructed and checked, then the root signs the
issuing CA's certificate (lint-then-sign). Prints the issuing CA's id for --issuer.`,
			setup: func(fs *flag.FlagSet) runFunc {
				qf := addQuorumFlags(fs)
				name := fs.String("name", "", "the issuing CA's common `NAME`")
				years := fs.Int("validity-years", 10, "validity in `YEARS`")
				return func(ctx context.Context, s Streams, args []string) error {
					files, err := qf.check()
					if err != nil {
						return err
					}
					if err := requireValue("name", *name); err != nil {
						return err
					}
					if err := requireFile("ops-pin-file", *qf.pinFile); err != nil {
						return err
					}
					qs, err := qf.start(ctx, s, files)
					if err != nil {
						return err
					}
					defer qs.close()
					env, q, pin := qs.env, qs.q, qs.pin
					res, err := ceremony.IssueCA(ctx, env, q, ceremony.IssueCARequest{CommonName: *name, ValidityYears: *years, OpsPIN: pin})
					if err != nil {
						return err
					}
					fp := pki.CertificateFingerprint(res.Certificate)
					fmt.Fprintf(s.Out, "issuing CA %s: %s\n  certificate %s\n  serial      %s\n  sha256      %s\n  words       %s\n  key         on token %q\n  journal     %s\n",
						res.IssuerID, res.Certificate.Subject.CommonName, res.Path, pki.SerialHex(res.Certificate.SerialNumber), fp, fp.Words(), res.Token, res.JournalPath)
					printRecord(s, env, res.RunID)
					return nil
				}
			},
		},
		{
			name:    "ceremony crl",
			summary: "sign the root's CRL under quorum, optionally revoking an issuing CA",
			setup: func(fs *flag.FlagSet) runFunc {
				qf := addQuorumFlags(fs)
				revoke := fs.String("revoke", "", "`SERIAL` (hex) of an issuing CA certificate to revoke")
				reason := fs.String("reason", "", "revocation `REASON`: keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation")
				days := fs.Int("next-update-days", 0, "`DAYS` until the next CRL is due (default: the plan's, else 365)")
				return func(ctx context.Context, s Streams, args []string) error {
					files, err := qf.check()
					if err != nil {
						return err
					}
					req := ceremony.RootCRLRequest{Revoke: *revoke, NextUpdateDays: *days}
					if *reason != "" {
						if *revoke == "" {
							return usagef("--reason needs --revoke")
						}
						if req.Reason, err = pki.ParseReason(*reason); err != nil {
							return usagef("--reason: %v", err)
						}
					} else if *revoke != "" {
						req.Reason = pki.ReasonCessationOfOperation
					}
					if *days < 0 {
						return usagef("--next-update-days must be positive")
					}
					qs, err := qf.start(ctx, s, files)
					if err != nil {
						return err
					}
					defer qs.close()
					env, q, pin := qs.env, qs.q, qs.pin
					req.OpsPIN = pin
					res, err := ceremony.RootCRL(ctx, env, q, req)
					if err != nil {
						return err
					}
					c := res.CRL
					fmt.Fprintf(s.Out, "root CRL %d of %s: %d entries, next update %s\n  DER    %s\n  PEM    %s\n  sha256 %s\n",
						c.Number, *qf.root, c.Entries, c.NextUpdate.Format("2006-01-02"), c.DERPath, c.PEMPath, c.Fingerprint)
					printRecord(s, env, res.RunID)
					return nil
				}
			},
		},
		{
			name:    "ceremony reshare",
			summary: "move the root's quorum to new custodians and a new secret; old shares stop working",
			setup: func(fs *flag.FlagSet) runFunc {
				qf := addQuorumFlags(fs)
				custodians := fs.String("custodians", "", "the new custodians, comma-separated `\"A,B,C\"`")
				threshold := fs.Int("threshold", 0, "shares `M` needed from now on")
				sharesDir := fs.String("shares-dir", "", "`DIR` to write the new share files into")
				return func(ctx context.Context, s Streams, args []string) error {
					files, err := qf.check()
					if err != nil {
						return err
					}
					if err := requireValue("custodians", *custodians); err != nil {
						return err
					}
					if *threshold == 0 {
						return usagef("--threshold is required")
					}
					if err := requireValue("shares-dir", *sharesDir); err != nil {
						return err
					}
					var names []string
					for _, c := range strings.Split(*custodians, ",") {
						names = append(names, strings.TrimSpace(c))
					}
					out, err := shareFiles(*sharesDir, names)
					if err != nil {
						return err
					}
					qs, err := qf.start(ctx, s, files)
					if err != nil {
						return err
					}
					defer qs.close()
					env, q, pin := qs.env, qs.q, qs.pin
					people := &fileParticipants{files: out, err: s, admin: record.Actor{Name: "command line", Role: "custodians"}}
					res, err := ceremony.Reshare(ctx, env, q, ceremony.ReshareRequest{Custodians: names, Threshold: *threshold, OpsPIN: pin}, people)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "root %s re-shared: epoch %d, %d of %d needed; new shares in %s; the old shares no longer work\n",
						*qf.root, res.Epoch, *threshold, len(names), *sharesDir)
					if res.BackupPath != "" {
						fmt.Fprintf(s.Out, "  backup re-wrapped: %s\n", res.BackupPath)
					}
					printRecord(s, env, res.RunID)
					return nil
				}
			},
		},
		{
			name:    "ceremony restore",
			summary: "restore the root key from its backup into a new token, under quorum",
			setup: func(fs *flag.FlagSet) runFunc {
				qf := addQuorumFlags(fs)
				backup := fs.String("backup", "", "the wrapped root key `FILE` from backup/")
				token := fs.String("token", "", "`LABEL` for the new token (initialised on a free slot)")
				return func(ctx context.Context, s Streams, args []string) error {
					files, err := qf.check()
					if err != nil {
						return err
					}
					if err := requireFile("backup", *backup); err != nil {
						return err
					}
					if err := requireValue("token", *token); err != nil {
						return err
					}
					qs, err := qf.start(ctx, s, files)
					if err != nil {
						return err
					}
					defer qs.close()
					env, q, pin := qs.env, qs.q, qs.pin
					res, err := ceremony.Restore(ctx, env, q, ceremony.RestoreRequest{Backup: *backup, Token: *token, OpsPIN: pin})
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "root %s restored into token %q; the restored key signs for the root certificate\n", *qf.root, res.Token)
					printRecord(s, env, res.RunID)
					return nil
				}
			},
		},
		{
			name:    "ceremony destroy",
			summary: "destroy the root key and every object of the ceremony on its token, under quorum",
			setup: func(fs *flag.FlagSet) runFunc {
				qf := addQuorumFlags(fs)
				return func(ctx context.Context, s Streams, args []string) error {
					files, err := qf.check()
					if err != nil {
						return err
					}
					qs, err := qf.start(ctx, s, files)
					if err != nil {
						return err
					}
					defer qs.close()
					env, q, pin := qs.env, qs.q, qs.pin
					res, err := ceremony.Destroy(ctx, env, q, pin)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "root %s destroyed: %d objects destroyed on token %q, none remain\n", *qf.root, res.Destroyed, res.Token)
					printRecord(s, env, res.RunID)
					return nil
				}
			},
		},
	}
}
