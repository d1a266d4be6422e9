package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
)

func verify() command.Command {
	return command.Command{
		Name:    "verify",
		Args:    "RECORD.pdf | JOURNAL.jsonl",
		Summary: "check a signed record (or a bare journal) as an auditor would",
		Help: `For a PDF record: the signature is valid, covers the whole file and certifies it; the
signer chains to the root (--root, else the workspace's one root: with several, give
--root), has the document-signing usage, was valid when it signed and was not revoked then
(on --crl, else the newest CRL of the root in the workspace); the embedded journal's hash
chain is intact and its final hash is the record's; the record's entry of the record log is
in the checkpoint signed after it; and a quorum operation carries the root's attestation. It
says which root it checked against. It reads the workspace without changing anything. For a
journal file: its hash chain. Prints each check with PASS or FAIL; exits 0 only if all pass.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			rootFile := fs.String("root", "", "the root certificate `ROOT.pem` to check the signer against")
			crlFile := fs.String("crl", "", "the root's CRL `FILE` (DER or PEM) to check the signer against")
			wsDir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one record or journal file")
				}
				for _, f := range []string{args[0], *rootFile, *crlFile} {
					if f == "" {
						continue
					}
					if err := command.ExistingFile(f); err != nil {
						return err
					}
				}
				data, err := inputfile.Read(ctx, "record or journal", args[0], record.MaxFileSize)
				if err != nil {
					return err
				}
				if !bytes.HasPrefix(data, []byte("%PDF")) {
					rep, err := cancellable(ctx, func() *record.Report { return record.VerifyJournal(data) })
					if err != nil {
						return err
					}
					return conclude(s, rep, args[0])
				}
				tr, err := openTrust(ctx, *rootFile, *crlFile, *wsDir)
				if err != nil {
					return err
				}
				defer tr.close()
				rep, err := cancellable(ctx, func() *record.Report { return record.Verify(data, tr.roots) })
				if err != nil {
					return err
				}
				tr.checkRevocation(ctx, rep)
				printRoot(s, tr, rep)
				return conclude(s, rep, args[0])
			}
		},
	}
}

// conclude prints the checks and says whether the file verifies.
func conclude(s command.Streams, rep *record.Report, name string) error {
	printReport(s, rep)
	if !rep.OK() {
		return fmt.Errorf("%s does not verify", name)
	}
	fmt.Fprintf(s.Out, "%s verifies\n", name)
	return nil
}

// printRoot names the root the record was checked against, and where it came from.
func printRoot(s command.Streams, tr *trust, rep *record.Report) {
	switch {
	case rep.Root != nil:
		fmt.Fprintf(s.Out, "root  %s, SHA-256 %s (%s)\n", rep.Root.Subject, fingerprint(rep.Root), tr.from)
	case len(tr.roots) == 1:
		fmt.Fprintf(s.Out, "root  %s, SHA-256 %s (%s): the signer does not chain to it\n", tr.roots[0].Subject, fingerprint(tr.roots[0]), tr.from)
	default:
		fmt.Fprintf(s.Out, "root  none of the %d roots in %s\n", len(tr.roots), tr.from)
	}
}

// fingerprint is a certificate's SHA-256 in hex.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// cancellable runs check, which takes no context, and returns at once when ctx is cancelled
// (SIGINT, SIGTERM) instead of waiting for it to finish a large record.
func cancellable(ctx context.Context, check func() *record.Report) (*record.Report, error) {
	done := make(chan *record.Report, 1)
	go func() { done <- check() }()
	select {
	case rep := <-done:
		return rep, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("verify: %w", ctx.Err())
	}
}

// printReport prints each check on its line, PASS or FAIL first.
func printReport(s command.Streams, rep *record.Report) {
	for _, c := range rep.Checks {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(s.Out, "%s  %s", mark, c.Name)
		if c.Detail != "" {
			fmt.Fprintf(s.Out, ": %s", c.Detail)
		}
		fmt.Fprintln(s.Out)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(s.Out, "NOTE  %s\n", n)
	}
}

// maxRootFile bounds a --root file: a root certificate is a few KiB; a bundle of roots a few more.
const maxRootFile = 1 << 20

// readRoots reads the certificates of a --root file: PEM blocks, or one DER certificate.
func readRoots(ctx context.Context, path string) ([]*x509.Certificate, error) {
	b, err := inputfile.Read(ctx, "root certificate file", path, maxRootFile)
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		if c, err := x509.ParseCertificate(b); err == nil {
			roots = append(roots, c)
		}
	}
	if len(roots) == 0 {
		return nil, command.Usagef("%s holds no certificate (PEM or DER)", path)
	}
	return roots, nil
}
