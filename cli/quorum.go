package cli

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// quorumFlags are the flags every operation under quorum takes.
type quorumFlags struct {
	env        envFlags
	root       *string
	shares     *string
	opsPIN     *pinFile
	identities *identityFiles
	pins       custodianPINFiles
	sources    []ceremony.ShareSource // once check has read --shares
}

func addQuorumFlags(fs *flag.FlagSet) *quorumFlags {
	return &quorumFlags{
		env:  addEnvFlags(fs, "the one the root's quorum statement names; another file is refused unless its SHA-256 is the one the quorum accepted"),
		root: fs.String("root", "", "the root's `ID` (its ceremony id)"),
		shares: fs.String("shares", "", "comma-separated share `SOURCES`, at least the threshold, from different custodians: a share file, "+
			"a .share.age file (with --identity), or token:LABEL for a share on a custodian's token (with --custodian-pin-file)"),
		opsPIN:     opsPINFile(fs, ", to sign the record (without it, only the journal is kept)"),
		identities: addIdentityFiles(fs),
		pins:       addCustodianPINFiles(fs),
	}
}

// check validates --root, --shares, --identity and --custodian-pin-file before anything is
// opened: every share file exists.
// checkWithOpsPIN is check for the operations whose record or keys need the operations
// token, so the operator PIN file is required too.
func (f *quorumFlags) checkWithOpsPIN(fs *flag.FlagSet) error {
	if err := f.check(fs); err != nil {
		return err
	}
	return command.RequireFile("ops-pin-file", f.opsPIN.path)
}

func (f *quorumFlags) check(fs *flag.FlagSet) error {
	if err := command.Require(fs, "root", "shares"); err != nil {
		return err
	}
	srcs, err := ceremony.ParseShareSources(*f.shares)
	if err != nil {
		return command.Usagef("--shares: %v", err)
	}
	for _, src := range srcs {
		if src.File == "" {
			continue
		}
		if err := command.ExistingFile(src.File); err != nil {
			return err
		}
		if src.Encrypted() && len(*f.identities) == 0 {
			return command.Usagef("--shares: %s is encrypted: give the custodian's age identity with --identity FILE", src.File)
		}
	}
	f.sources = srcs
	return f.pins.check()
}

// quorumOp is an operation under quorum, given the workspace, the quorum of checked shares and
// the operator PIN (nil without --ops-pin-file); it returns its run id.
type quorumOp func(env run.Env, q *quorum.Collector, opsPIN []byte) (runID string, err error)

// run reads the operator PIN (when given), opens the workspace, collects the shares, runs op,
// and names the run's record. The PIN and the shares are zeroed after.
func (f *quorumFlags) run(ctx context.Context, s command.Streams, op quorumOp) error {
	pin, err := f.opsPIN.read(false)
	if err != nil {
		return err
	}
	defer secret.Zero(pin)
	env, err := f.env.open(ctx, s)
	if err != nil {
		return err
	}
	defer env.Close()
	q, err := f.collect(ctx, s, env)
	if err != nil {
		return err
	}
	defer q.Wipe()
	env.Progress = stepPrinter(s)
	runID, err := op(env, q, pin)
	if err != nil {
		return err
	}
	printRecord(s, env, runID, pin)
	return nil
}

// collect loads the root's quorum as its statement states it, prints what the custodians
// compare with their ceremony record, and adds each share file, each checked against its
// commitment as it is read.
func (f *quorumFlags) collect(ctx context.Context, s command.Streams, env run.Env) (*quorum.Collector, error) {
	v, err := ceremony.VerifyQuorum(ctx, env.Registry, *f.root)
	if err != nil {
		return nil, err
	}
	printVerified(s, v)
	ids, err := f.identities.read(s)
	if err != nil {
		return nil, err
	}
	q := v.Collector()
	in := readSources(ctx, s, env, v, f.sources, ids, f.pins)
	defer zeroInputs(in)
	for _, share := range in {
		if share.Err != nil {
			q.Wipe()
			return nil, fmt.Errorf("%s: %w", share.Source, share.Err)
		}
		n, err := q.Add(string(share.Text))
		if err != nil {
			q.Wipe()
			return nil, fmt.Errorf("%s: %w", share.Source, err)
		}
		fmt.Fprintf(s.Err, "share #%d accepted (%d of %d present)\n", n, q.Present(), q.Needed())
	}
	return q, nil
}

// printVerified says what a quorum operation relies on, for the custodians to compare with
// their ceremony record before their shares are read: the statement, the root's fingerprint
// in words, the module and the root token.
func printVerified(s command.Streams, v *ceremony.VerifiedQuorum) {
	st := v.Statement
	fmt.Fprintf(s.Err, "root %s: quorum statement %d, signed by the root in run %s on %s\n", st.Root, v.Seq, st.Run, st.SignedAt.Format("2006-01-02"))
	fmt.Fprintf(s.Err, "  root sha256  %s\n  root words   %s\n", v.Fingerprint, v.Fingerprint.Words())
	fmt.Fprintf(s.Err, "  module       %s\n  its sha256   %s\n  root token   %s\n", st.Module.Path, st.Module.SHA256, st.RootToken)
	fmt.Fprintf(s.Err, "  quorum       %d of %d, epoch %d: compare these with your ceremony record\n", st.Threshold, len(st.Custodians), st.Epoch)
}

// printRecord names the run's record, or says there is none and why.
func printRecord(s command.Streams, env run.Env, runID string, opsPIN []byte) {
	path := env.RecordPath(runID)
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(s.Out, "  record      %s\n", path)
		return
	}
	why := "no --ops-pin-file"
	if len(opsPIN) > 0 {
		why = "the run revoked the record signer, which signs no record after"
	}
	fmt.Fprintf(s.Out, "  record      none (%s); journal %s\n", why, env.JournalPath(runID))
}

// printCertificate prints what a quorum operation certified, "WHAT: common name", then where
// its certificate is, its serial and its SHA-256, aligned as the operation's further lines.
func printCertificate(w io.Writer, what, path string, c *x509.Certificate) pki.Fingerprint {
	fp := pki.CertificateFingerprint(c)
	fmt.Fprintf(w, "%s: %s\n  certificate %s\n  serial      %s\n  sha256      %s\n", what, c.Subject.CommonName, path, pki.SerialHex(c.SerialNumber), fp)
	return fp
}

func ceremonyIssueCA() command.Command {
	return command.Command{
		Name:    "ceremony issue-ca",
		Summary: "make an issuing CA on the operations token, signed by the root under quorum",
		Help: `Needs at least the threshold of custodians' share files. Each share is checked against
its commitment, the quorum secret is reconstructed and checked, then the root signs the
issuing CA's certificate (lint-then-sign). Prints the issuing CA's id for --issuer.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			req := ceremony.IssueCARequest{}
			fs.StringVar(&req.CommonName, "name", "", "the issuing CA's common `NAME`")
			fs.IntVar(&req.ValidityYears, "validity-years", 10, "validity in `YEARS`")
			eku := fs.String("eku", "clientAuth", "what the CA may certify: `clientAuth` or clientAuth,serverAuth (never anyExtendedKeyUsage)")
			fs.Func("policy", "a certificate policy `OID` the CA and its devices assert (repeatable)", func(v string) error {
				o, err := pki.ParsePolicy(v)
				if err == nil {
					req.Policies = append(req.Policies, o)
				}
				return err
			})
			fs.StringVar(&req.CAIssuersURL, "ca-issuers-url", "", "http `URL` where the root certificate is published (AIA caIssuers)")
			fs.StringVar(&req.CRLBaseURL, "crl-base-url", "", "http `URL` under which the CRL shards are published: each device names URL/<issuer>/<shard>.crl")
			shards := fs.Int("crl-shards", 1, "how many CRL `N` shards, 1 to 65536, with --crl-base-url; fixed for the CA's life")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				if err := command.Require(fs, "name"); err != nil {
					return err
				}
				var err error
				if req.ExtKeyUsages, err = pki.ParseExtKeyUsages(*eku); err != nil {
					return command.Usagef("--eku: %v", err)
				}
				switch {
				case req.CRLBaseURL == "" && flagSet(fs, "crl-shards"):
					return command.Usagef("--crl-shards needs --crl-base-url: the URL the shards are published under")
				case req.CRLBaseURL != "" && (*shards < 1 || *shards > pki.MaxCRLShards):
					return command.Usagef("--crl-shards %d: give 1 to %d", *shards, pki.MaxCRLShards)
				case req.CRLBaseURL != "":
					req.CRLShards = *shards
				}
				if err := command.RequireFile("ops-pin-file", qf.opsPIN.path); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					req.OpsPIN = pin
					res, err := ceremony.IssueCA(ctx, env, q, req)
					if err != nil {
						return "", err
					}
					fp := printCertificate(s.Out, "issuing CA "+res.IssuerID, res.Path, res.Certificate)
					fmt.Fprintf(s.Out, "  words       %s\n  key         on token %q\n  certifies   %s\n", fp.Words(), res.Token,
						strings.Join(pki.ExtKeyUsageNames(res.Certificate.ExtKeyUsage), ", "))
					for _, o := range res.Certificate.Policies {
						fmt.Fprintf(s.Out, "  policy      %s\n", o)
					}
					if req.CRLBaseURL != "" {
						fmt.Fprintf(s.Out, "  CRL shards  %d, at %s/%s/<shard>.crl\n", req.CRLShards, req.CRLBaseURL, res.IssuerID)
					}
					fmt.Fprintf(s.Out, "  journal     %s\n", res.JournalPath)
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyCRL() command.Command {
	return command.Command{
		Name:    "ceremony crl",
		Summary: "sign the root's CRL under quorum, optionally revoking an issuing CA or the record signer",
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			req := ceremony.RootCRLRequest{}
			fs.StringVar(&req.Revoke, "revoke", "", "`SERIAL` (hex) of an issuing CA's or the record signer's certificate to revoke: it signs nothing from then on")
			reason := fs.String("reason", "", "revocation `REASON`: "+pki.ReasonNames(ceremony.RootCRLReasons()))
			fs.IntVar(&req.NextUpdateDays, "next-update-days", 0, "`DAYS` until the next CRL is due (default: the plan's, else 365)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				var err error
				switch {
				case *reason != "" && req.Revoke == "":
					return command.Usagef("--reason needs --revoke")
				case *reason != "":
					if req.Reason, err = pki.ParseReason(*reason); err != nil {
						return command.Usagef("--reason: %v", err)
					}
				case req.Revoke != "":
					req.Reason = ceremony.RootCRLReasons()[0]
				}
				if req.NextUpdateDays < 0 {
					return command.Usagef("--next-update-days must be positive")
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					req.OpsPIN = pin
					res, err := ceremony.RootCRL(ctx, env, q, req)
					if err != nil {
						return "", err
					}
					c := res.CRL
					if res.Revoked != "" {
						fmt.Fprintf(s.Out, "revoked %s (%s): it signs nothing from now on\n", res.Revoked, req.Reason)
					}
					fmt.Fprintf(s.Out, "root CRL %d of %s: %d entries, next update %s\n  DER    %s\n  PEM    %s\n  sha256 %s\n",
						c.Number, *qf.root, c.Entries, c.NextUpdate.Format("2006-01-02"), c.DERPath, c.PEMPath, c.Fingerprint)
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyReshare() command.Command {
	return command.Command{
		Name:    "ceremony reshare",
		Summary: "move the root's quorum to new custodians and a new secret on every token that holds the root",
		Help: `Changes the PINs of every token the registry knows holds the root (the ceremony's and each
restored one) to those of a new secret split among the new custodians, or refuses before any
change naming the token it cannot reach; --lost-token records one lost (with --lost-reason) and
goes on without it. The backup is re-wrapped for the new epoch and the superseded blobs in the
workspace are overwritten and removed. It ends by listing what the old shares can still open:
copies of superseded backups outside the workspace and lost tokens, which people must destroy.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			custodians := fs.String("custodians", "", "the new custodians, comma-separated `\"A,B,C\"`")
			threshold := fs.Int("threshold", 0, "shares `M` needed from now on")
			sharesDir := fs.String("shares-dir", "", "`DIR` to write the new share files into, for custodians without --deliver")
			deliver := addDeliveries(fs)
			var lost stringList
			fs.Var(&lost, "lost-token", "`LABEL` of a token holding the root that is lost: recorded lost, and the reshare goes on without it (repeat for several)")
			lostReason := fs.String("lost-reason", "", "why the --lost-token tokens are lost (`TEXT`), kept in the registry and the record")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				if err := command.Require(fs, "custodians"); err != nil {
					return err
				}
				if *threshold == 0 {
					return command.Usagef("--threshold is required")
				}
				var names []string
				for _, c := range strings.Split(*custodians, ",") {
					names = append(names, strings.TrimSpace(c))
				}
				dests, err := deliver.destinations(names)
				if err != nil {
					return err
				}
				if slices.ContainsFunc(dests, ceremony.Destination.IsDefault) {
					if err := command.Require(fs, "shares-dir"); err != nil {
						return err
					}
				}
				if *sharesDir != "" {
					if err := checkShareFolder(*sharesDir, names, dests); err != nil {
						return err
					}
				}
				people := &fileParticipants{dir: *sharesDir, pins: qf.pins, err: s, admin: record.Actor{Name: "command line", Role: "custodians"}}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					res, err := ceremony.Reshare(ctx, env, q, ceremony.ReshareRequest{Custodians: names, Destinations: dests, Threshold: *threshold,
						LostTokens: lost, LostReason: *lostReason, OpsPIN: pin}, people)
					if err != nil {
						return "", err
					}
					printReshare(s, *qf.root, *sharesDir, len(names), *threshold, res)
					printWarnings(s, res.Warnings)
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyRestore() command.Command {
	return command.Command{
		Name:    "ceremony restore",
		Summary: "restore the root key from its backup into a new token, under quorum",
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			req := ceremony.RestoreRequest{}
			fs.StringVar(&req.Backup, "backup", "", "the wrapped root key `FILE` from backup/")
			fs.StringVar(&req.Token, "token", "", "`LABEL` for the new token (initialised on a free slot)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				if err := command.RequireFile("backup", req.Backup); err != nil {
					return err
				}
				if err := command.Require(fs, "token"); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					req.OpsPIN = pin
					res, err := ceremony.Restore(ctx, env, q, req)
					if err != nil {
						return "", err
					}
					fmt.Fprintf(s.Out, "root %s restored into token %q; the restored key signs for the root certificate\n", *qf.root, res.Token)
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyDestroy() command.Command {
	return command.Command{
		Name:    "ceremony destroy",
		Summary: "end the root and everything it made, under quorum: issuing CAs, root key on every holder, backups",
		Help: `Logs in to every token that holds the root first, and stops before any change if one is
missing or refuses. Then each issuing CA signs a last CRL and its key is destroyed; the root
signs a final CRL revoking every issuing CA (cessationOfOperation); the record signer signs
this run's record and is retired; the root key is destroyed on every holder and every backup
blob in the workspace is overwritten and removed. Copies outside the workspace and lost
tokens are listed as outstanding. Afterwards every command using the root, its issuing CAs or
its record signer is refused, naming this run.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.checkWithOpsPIN(fs); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					res, err := ceremony.Destroy(ctx, env, q, pin)
					if err != nil {
						return "", err
					}
					c := res.CRL
					fmt.Fprintf(s.Out, "root %s destroyed: its key on %s (%d objects), none remain\n", *qf.root, strings.Join(res.Tokens, ", "), res.Destroyed)
					fmt.Fprintf(s.Out, "  final root CRL %d: %d entries\n  DER    %s\n  PEM    %s\n", c.Number, c.Entries, c.DERPath, c.PEMPath)
					if len(res.Outstanding) == 0 {
						fmt.Fprintf(s.Out, "Nothing is outstanding: no copy of a backup outside the workspace, no lost token.\n")
					} else {
						fmt.Fprintf(s.Out, "Outstanding, for people to destroy:\n")
						for _, o := range res.Outstanding {
							fmt.Fprintf(s.Out, "  - %s\n", o)
						}
					}
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyRecordSigner() command.Command {
	return command.Command{
		Name:    "ceremony record-signer",
		Summary: "make a new record signer under quorum and revoke the old one",
		Help: `Makes a new record-signer key on the operations token and its certificate from the root,
revokes the old record signer (superseded; or as it was revoked before) on a new root CRL and
destroys its key. Later records are signed by the new one, starting with this operation's.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.checkWithOpsPIN(fs); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					res, err := ceremony.NewRecordSigner(ctx, env, q, ceremony.RecordSignerRequest{OpsPIN: pin})
					if err != nil {
						return "", err
					}
					printCertificate(s.Out, "record signer of "+*qf.root, res.Path, res.Certificate)
					fmt.Fprintf(s.Out, "  replaces    serial %s, revoked on root CRL %d; its key destroyed\n", res.Replaced, res.CRL.Number)
					return res.RunID, nil
				})
			}
		},
	}
}

func ceremonyRetireCA() command.Command {
	return command.Command{
		Name:    "ceremony retire-ca",
		Summary: "retire an issuing CA under quorum: from then on it signs only CRLs",
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			req := ceremony.RetireCARequest{}
			fs.StringVar(&req.Issuer, "issuer", "", "the issuing CA's `ID` or common name")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				if err := command.Require(fs, "issuer"); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					req.OpsPIN = pin
					res, err := ceremony.RetireCA(ctx, env, q, req)
					if err != nil {
						return "", err
					}
					fmt.Fprintf(s.Out, "issuing CA %s retired: it signs CRLs for the devices it certified, and no certificate\n", res.IssuerID)
					return res.RunID, nil
				})
			}
		},
	}
}

// printReshare says what a reshare changed and what the old shares can still open.
func printReshare(s command.Streams, root, sharesDir string, n, threshold int, res *ceremony.ReshareResult) {
	fmt.Fprintf(s.Out, "root %s re-shared: epoch %d, %d of %d needed; new shares in %s\n", root, res.Epoch, threshold, n, sharesDir)
	for _, l := range res.Outcome() {
		fmt.Fprintf(s.Out, "  %s\n", l)
	}
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, strings.TrimSpace(v))
	return nil
}

func ceremonySetModule() command.Command {
	return command.Command{
		Name:    "ceremony set-module",
		Summary: "accept a new PKCS#11 module (a driver update) for the root's quorum operations, under quorum",
		Help: `Quorum operations load only the PKCS#11 module the root's quorum statement names, and refuse
the file if its SHA-256 differs (one changed byte is enough). After a driver update, the
custodians accept the new module with this command: it is hashed and loaded for this
operation, its SHA-256 is printed and journaled beside the old one (compare it with the
vendor's), the root is unlocked through it, and the root signs a new statement naming it.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			fs.Lookup("module").Usage = "the new PKCS#11 module's `PATH`, which the quorum accepts from now on"
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				if err := command.RequireFile("module", *qf.env.module); err != nil {
					return err
				}
				return qf.run(ctx, s, func(env run.Env, q *quorum.Collector, pin []byte) (string, error) {
					res, err := ceremony.SetModule(ctx, env, q, ceremony.SetModuleRequest{Module: *qf.env.module, OpsPIN: pin})
					if err != nil {
						return "", err
					}
					fmt.Fprintf(s.Out, "root %s: quorum operations now load %s\n  sha256      %s\n  replaces    %s\n  its sha256  %s\n  statement   %d\n",
						*qf.root, res.Module.Path, res.Module.SHA256, res.Previous.Path, res.Previous.SHA256, res.Seq)
					return res.RunID, nil
				})
			}
		},
	}
}

// zeroInputs zeroes the shares read.
func zeroInputs(in []ceremony.ShareInput) {
	for _, s := range in {
		secret.Zero(s.Text)
	}
}

func ceremonyCheckShares() command.Command {
	return command.Command{
		Name:    "ceremony check-shares",
		Summary: "check custodians' shares against their commitments, and their reconstruction: the yearly inventory",
		Help: `The yearly inventory: each custodian proves they still hold a working share. Every share
(from a file, a .share.age file or the custodian's token) is checked against the commitment
the root's quorum statement gives it and, when at least the threshold are present, their
reconstruction against the secret's digest. Without --ops-pin-file the root token is not
opened and nobody logs in. With it, the record signer signs a record; when the shares
reconstruct the secret, the root token is opened with it, as by any quorum operation, so
that the root attests the record (a check of fewer shares speaks for the operator alone:
kind check-shares-partial). The journal names each
source, its share's number and custodian and the result, never a share. Exits 1 if any share
is refused.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			qf := addQuorumFlags(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := qf.check(fs); err != nil {
					return err
				}
				pin, err := qf.opsPIN.read(false)
				if err != nil {
					return err
				}
				defer secret.Zero(pin)
				env, err := qf.env.open(ctx, s)
				if err != nil {
					return err
				}
				defer env.Close()
				v, err := ceremony.VerifyQuorum(ctx, env.Registry, *qf.root)
				if err != nil {
					return err
				}
				printVerified(s, v)
				ids, err := qf.identities.read(s)
				if err != nil {
					return err
				}
				in := readSources(ctx, s, env, v, qf.sources, ids, qf.pins)
				defer zeroInputs(in)
				env.Progress = stepPrinter(s)
				res, err := ceremony.CheckShares(ctx, env, *qf.root, in, pin)
				if err != nil {
					return err
				}
				for _, c := range res.Checks {
					who := ""
					if c.Number > 0 {
						who = fmt.Sprintf(" share #%d of %s", c.Number, c.Custodian)
					}
					fmt.Fprintf(s.Out, "%s:%s %s\n", c.Source, who, c.Result)
				}
				fmt.Fprintf(s.Out, "root %s: %s\n", *qf.root, res.Summary)
				printRecord(s, env, res.RunID, pin)
				if res.Refused > 0 {
					return fmt.Errorf("%d of %d shares refused", res.Refused, len(in))
				}
				return nil
			}
		},
	}
}
