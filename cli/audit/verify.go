package audit

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func verify() command.Command {
	return command.Command{
		Name:    "verify",
		Args:    "RECORD.pdf | JOURNAL.jsonl",
		Summary: "check a signed record (or a bare journal) as an auditor would",
		Help: `For a PDF record: the signature is valid and covers the whole file, the signer chains to
the root (--root, else the roots in the workspace), the signer certificate has the
document-signing usage and was valid when it signed, the embedded journal's hash chain is
intact, and its final hash equals the one the record states. For a journal file: its
hash chain. Prints each check with PASS or FAIL; exits 0 only if all pass.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			rootFile := fs.String("root", "", "the root certificate `ROOT.pem` to check the signer against")
			wsDir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one record or journal file")
				}
				if err := command.ExistingFile(args[0]); err != nil {
					return err
				}
				if *rootFile != "" {
					if err := command.ExistingFile(*rootFile); err != nil {
						return err
					}
				}
				data, err := inputfile.Read(ctx, "record or journal", args[0], record.MaxFileSize)
				if err != nil {
					return err
				}
				var rep *record.Report
				if bytes.HasPrefix(data, []byte("%PDF")) {
					roots, err := verifyRoots(ctx, *rootFile, *wsDir)
					if err != nil {
						return err
					}
					rep, err = cancellable(ctx, func() *record.Report { return record.Verify(data, roots) })
					if err != nil {
						return err
					}
				} else {
					rep, err = cancellable(ctx, func() *record.Report { return record.VerifyJournal(data) })
					if err != nil {
						return err
					}
				}
				printReport(s, rep)
				if !rep.OK() {
					return fmt.Errorf("%s does not verify", args[0])
				}
				fmt.Fprintf(s.Out, "%s verifies\n", args[0])
				return nil
			}
		},
	}
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
}

// verifyRoots reads the roots to check against: the --root file, else the workspace's roots.
func verifyRoots(ctx context.Context, rootFile, wsDir string) ([]*x509.Certificate, error) {
	if rootFile != "" {
		return readRoots(ctx, rootFile)
	}
	_, reg, closeAll, err := registry.OpenWorkspaceReadOnly(ctx, wsDir)
	if errors.Is(err, registry.ErrEmptyWorkspace) {
		return nil, errors.New("the workspace has no root: give the root certificate with --root")
	}
	if err != nil {
		return nil, err
	}
	defer closeAll()
	issuers, err := reg.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	var roots []*x509.Certificate
	for _, i := range issuers {
		if i.Kind == registry.IssuerRoot {
			if c, err := x509.ParseCertificate(i.Certificate); err == nil {
				roots = append(roots, c)
			}
		}
	}
	if len(roots) == 0 {
		return nil, errors.New("the workspace has no root: give the root certificate with --root")
	}
	return roots, nil
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
