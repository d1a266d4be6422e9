// Command custos-release writes what `make release` ships beside the binaries: the notice of
// every third-party licence the released binaries link (found in the module cache, plus the
// licences of Custos's embedded fonts), and a CycloneDX SBOM of each binary.
//
//	go run ./internal/release/cmd/custos-release -version 0.2.0 -time 1764547200 \
//	    -notice dist/custos-0.2.0-NOTICE.txt \
//	    -bin custos=.,CGO_ENABLED=1 -bin custos-verify=./cmd/custos-verify,CGO_ENABLED=0 \
//	    -sbom custos=build/custos=dist/custos-0.2.0.cdx.json
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/release"
	"github.com/custos-pki/custos/workspace"
)

type builds []release.Build

func (b *builds) String() string { return fmt.Sprint(*b) }

// Set reads "name=package[,KEY=VALUE...]".
func (b *builds) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || rest == "" {
		return fmt.Errorf("-bin %q: want name=package[,KEY=VALUE...]", s)
	}
	parts := strings.Split(rest, ",")
	*b = append(*b, release.Build{Name: name, Package: parts[0], Env: parts[1:]})
	return nil
}

type sboms [][3]string

func (s *sboms) String() string { return fmt.Sprint(*s) }

// Set reads "name=binary=output".
func (s *sboms) Set(v string) error {
	p := strings.SplitN(v, "=", 3)
	if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
		return fmt.Errorf("-sbom %q: want name=binary=output", v)
	}
	*s = append(*s, [3]string{p[0], p[1], p[2]})
	return nil
}

func main() {
	version := flag.String("version", "", "the release version")
	epoch := flag.Int64("time", 0, "the commit time in seconds since 1970 (SOURCE_DATE_EPOCH)")
	notice := flag.String("notice", "", "the notice file to write (it must not exist)")
	assets := flag.String("assets", "assets/fonts", "folder of embedded assets whose licence files the notice includes")
	var bins builds
	var boms sboms
	flag.Var(&bins, "bin", "a released binary's build: name=package[,KEY=VALUE...] (repeat)")
	flag.Var(&boms, "sbom", "an SBOM to write: name=binary=output (repeat)")
	flag.Parse()
	if *version == "" || *notice == "" || len(bins) == 0 {
		fmt.Fprintln(os.Stderr, "custos-release: give -version, -notice FILE and at least one -bin")
		os.Exit(2)
	}
	if err := run(*version, time.Unix(*epoch, 0), *notice, *assets, bins, boms); err != nil {
		fmt.Fprintf(os.Stderr, "custos-release: %v\n", err)
		os.Exit(1)
	}
}

func run(version string, at time.Time, notice, assets string, bins builds, boms sboms) error {
	mods, err := release.Linked(context.Background(), ".", bins)
	if err != nil {
		return err
	}
	goLicence, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "LICENSE"))
	if err != nil {
		return fmt.Errorf("the Go distribution's licence: %w", err)
	}
	extra, err := release.ReadLicences(".", assets)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := release.WriteNotice(&b, "Custos "+version, mods, string(goLicence), extra); err != nil {
		return err
	}
	if err := workspace.CreateExclusive(notice, b.Bytes(), 0o644); err != nil {
		return err
	}
	for _, s := range boms {
		var b bytes.Buffer
		doc := release.SBOM{Name: s[0], Version: version, Path: s[1], Time: at, Modules: mods}
		if err := doc.Write(&b); err != nil {
			return err
		}
		if err := workspace.CreateExclusive(s[2], b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
