package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func verifyCommands() []command {
	return []command{{
		name:    "verify",
		args:    "RECORD.pdf | JOURNAL.jsonl",
		summary: "check a signed record (or a bare journal) as an auditor would",
		help: `For a PDF record: the signature is valid and covers the whole file, the signer chains to
the root (--root, else the roots in the workspace), the signer certificate has the
document-signing usage and was valid when it signed, the embedded journal's hash chain is
intact, and its final hash equals the one the record states. For a journal file: its
hash chain. Prints each check with PASS or FAIL; exits 0 only if all pass.`,
		setup: func(fs *flag.FlagSet) runFunc {
			rootFile := fs.String("root", "", "the root certificate `ROOT.pem` to check the signer against")
			wsDir := workspaceFlag(fs)
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) != 1 {
					return usagef("name one record or journal file")
				}
				if err := existingFile(args[0]); err != nil {
					return err
				}
				if *rootFile != "" {
					if err := existingFile(*rootFile); err != nil {
						return err
					}
				}
				data, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				var rep *record.Report
				if bytes.HasPrefix(data, []byte("%PDF")) {
					roots, err := verifyRoots(ctx, *rootFile, *wsDir)
					if err != nil {
						return err
					}
					rep = record.Verify(data, roots)
				} else {
					rep = record.VerifyJournal(data)
				}
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
				if !rep.OK() {
					return fmt.Errorf("%s does not verify", args[0])
				}
				fmt.Fprintf(s.Out, "%s verifies\n", args[0])
				return nil
			}
		},
	}}
}

// verifyRoots reads the roots to check against: the --root file, else the workspace's roots.
func verifyRoots(ctx context.Context, rootFile, wsDir string) ([]*x509.Certificate, error) {
	if rootFile != "" {
		b, err := os.ReadFile(rootFile)
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
				return nil, fmt.Errorf("%s: %w", rootFile, err)
			}
			roots = append(roots, c)
		}
		if len(roots) == 0 {
			if c, err := x509.ParseCertificate(b); err == nil {
				roots = append(roots, c)
			}
		}
		if len(roots) == 0 {
			return nil, usagef("%s holds no certificate (PEM or DER)", rootFile)
		}
		return roots, nil
	}
	ws, err := openWorkspace(wsDir)
	if err != nil {
		return nil, err
	}
	defer ws.Close()
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		return nil, err
	}
	defer reg.Close()
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
