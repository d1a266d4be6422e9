package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/pgpwords"
)

func sum() command.Command {
	return command.Command{
		Name:    "sum",
		Args:    "FILE...",
		Summary: "print each file's SHA-256 in hex and as PGP words, to compare with the published one",
		Help: `For each file: its SHA-256 in hex (as sha256sum prints it) and in PGP words, which two
people can read to each other to compare a package carried to an air-gapped workstation with
the SHA256SUMS published with the release. Exits 1 if a file cannot be read.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) == 0 {
					return command.Usagef("name the files to hash")
				}
				for _, a := range args {
					if err := command.ExistingFile(a); err != nil {
						return err
					}
				}
				for _, a := range args {
					d, err := fileSHA256(ctx, a)
					if err != nil {
						return err
					}
					fmt.Fprintf(s.Out, "%s  %s\n  words  %s\n", hex.EncodeToString(d), a, pgpwords.Encode(d))
				}
				return nil
			}
		},
	}
}

// fileSHA256 hashes a regular file of any size as a stream that stops when ctx ends (Ctrl-C
// on a large package).
func fileSHA256(ctx context.Context, path string) ([]byte, error) {
	f, err := inputfile.Open("file", path, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f.Reader(ctx)); err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	return h.Sum(nil), nil
}
