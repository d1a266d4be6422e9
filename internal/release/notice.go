// Package release writes what ships beside a Custos release besides the binaries: the notice
// of every third-party licence the released binaries link, as `make release` puts it in dist/.
package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Module is a Go module that a released binary links, with the licences that cover what is
// linked.
type Module struct {
	Path     string
	Version  string
	Dir      string    // in the module cache
	Packages []string  // the module's packages linked, sorted
	Binaries []string  // which binaries link it
	Licences []Licence // the licence files covering the linked packages, sorted by file
	// RootLicence is the module's top-level licence when none of the linked packages falls
	// under it (hashicorp/vault: BUSL-1.1 at the top, MPL-2.0 on the shamir package); zero
	// otherwise.
	RootLicence Licence
}

// Licence is one licence file and what it is.
type Licence struct {
	File string // relative to the module's folder, with forward slashes
	SPDX string // an SPDX identifier, or a description such as "patent grant"
	Text string
}

// Build is one binary to account for: its name, the main package and the environment its
// build uses (CGO_ENABLED, GOFLAGS with tags), which decide which packages it links.
type Build struct {
	Name    string
	Package string
	Env     []string
}

// listed is the part of `go list -deps -json` output this package reads.
type listed struct {
	ImportPath string
	Dir        string
	Standard   bool
	Module     *struct {
		Path    string
		Version string
		Dir     string
		Main    bool
		Replace *struct{ Path, Version, Dir string }
	}
}

// Linked lists the third-party modules the builds link, run from the main module's folder dir.
// A licence file that cannot be identified is an error naming it: a person must read it before
// the release ships.
func Linked(ctx context.Context, dir string, builds []Build) ([]Module, error) {
	byPath := map[string]*Module{}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-json=ImportPath,Dir,Standard,Module", b.Package)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), b.Env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("list the packages %s links: %w: %s", b.Name, err, strings.TrimSpace(stderr.String()))
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p listed
			if err := dec.Decode(&p); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("read go list output for %s: %w", b.Name, err)
			}
			if p.Standard || p.Module == nil || p.Module.Main {
				continue
			}
			mod, ver, mdir := p.Module.Path, p.Module.Version, p.Module.Dir
			if r := p.Module.Replace; r != nil {
				mod, ver, mdir = r.Path, r.Version, r.Dir
			}
			m := byPath[mod]
			if m == nil {
				m = &Module{Path: mod, Version: ver, Dir: mdir}
				byPath[mod] = m
			}
			if !slices.Contains(m.Packages, p.ImportPath) {
				m.Packages = append(m.Packages, p.ImportPath)
			}
			if !slices.Contains(m.Binaries, b.Name) {
				m.Binaries = append(m.Binaries, b.Name)
			}
		}
	}
	mods := make([]Module, 0, len(byPath))
	for _, m := range byPath {
		sort.Strings(m.Packages)
		if err := m.findLicences(); err != nil {
			return nil, err
		}
		mods = append(mods, *m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

// licenceName matches the files that hold licences, notices and patent grants.
var licenceName = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense)([-._].*)?$`)

// findLicences collects, for each linked package, the licence files of the nearest folder at
// or above it (up to the module's root) that has any, and the licence files in the package's
// own subfolders (C sources or fonts compiled into it).
func (m *Module) findLicences() error {
	files := map[string]bool{}
	rootCovers := false
	rootFiles, err := licenceFiles(m.Dir)
	if err != nil {
		return err
	}
	for _, pkg := range m.Packages {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, m.Path), "/")
		dir := filepath.Join(m.Dir, filepath.FromSlash(rel))
		for d := dir; ; d = filepath.Dir(d) {
			found, err := licenceFiles(d)
			if err != nil {
				return err
			}
			if len(found) > 0 || d == m.Dir || !strings.HasPrefix(d, m.Dir) {
				for _, f := range found {
					files[f] = true
				}
				rootCovers = rootCovers || d == m.Dir
				break
			}
		}
		sub, err := subtreeLicences(dir)
		if err != nil {
			return err
		}
		for _, f := range sub {
			files[f] = true
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("module %s %s has no licence file covering %s: read its terms before it ships", m.Path, m.Version, strings.Join(m.Packages, ", "))
	}
	for f := range files {
		l, err := readLicence(m.Dir, f)
		if err != nil {
			return err
		}
		m.Licences = append(m.Licences, l)
	}
	sort.Slice(m.Licences, func(i, j int) bool { return m.Licences[i].File < m.Licences[j].File })
	if !rootCovers && len(rootFiles) > 0 {
		m.RootLicence, err = readLicence(m.Dir, rootFiles[0])
		if err != nil {
			return err
		}
	}
	return nil
}

// licenceFiles lists the licence files directly in dir, as absolute paths, sorted.
func licenceFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("look for licences: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && licenceName.MatchString(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// subtreeLicences lists licence files in dir's subfolders that are not Go packages of their own
// (so their files are part of dir's package), leaving out test data.
func subtreeLicences(dir string) ([]string, error) {
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("look for licences: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		err := filepath.WalkDir(filepath.Join(dir, e.Name()), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || hasGoFiles(p) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && licenceName.MatchString(d.Name()) {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("look for licences: %w", err)
		}
	}
	return out, nil
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

func readLicence(root, path string) (Licence, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Licence{}, fmt.Errorf("read licence: %w", err)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return Licence{}, err
	}
	text := string(b)
	id := Identify(text)
	if id == "" && strings.HasPrefix(strings.ToUpper(filepath.Base(path)), "NOTICE") {
		id = "notice" // an attribution notice, reproduced as it is
	}
	if id == "" {
		return Licence{}, fmt.Errorf("licence %s is of no kind Custos recognises: read it, and teach release.Identify its kind before it ships", path)
	}
	return Licence{File: filepath.ToSlash(rel), SPDX: id, Text: text}, nil
}

// kinds recognise licence texts by phrases each kind always has, tried in order.
var kinds = []struct {
	id  string
	all []string
}{
	{"BUSL-1.1", []string{"Business Source License"}},
	{"MPL-2.0", []string{"Mozilla Public License", "2.0"}},
	{"Apache-2.0", []string{"Apache License", "Version 2.0"}},
	{"OFL-1.1", []string{"SIL OPEN FONT LICENSE"}},
	{"Bitstream-Vera", []string{"Bitstream Vera"}},
	{"MIT", []string{"Permission is hereby granted, free of charge"}},
	{"BSD-3-Clause", []string{"Redistribution and use in source and binary forms", "Neither the name"}},
	{"BSD-3-Clause", []string{"Redistribution and use in source and binary forms", "may not be used to endorse or promote"}},
	{"BSD-2-Clause", []string{"Redistribution and use in source and binary forms"}},
	{"ISC", []string{"Permission to use, copy, modify, and", "distribute this software for any", "purpose with or without fee"}},
	{"Zlib", []string{"provided 'as-is'", "Permission is granted to anyone to use this software"}},
	{"Unlicense", []string{"free and unencumbered software released into the public domain"}},
	{"blessing", []string{"The author disclaims copyright to this source code"}},
	{"LicenseRef-SQLite-public-domain", []string{"SQLite Is Public Domain"}},
	{"patent grant", []string{"Additional IP Rights Grant (Patents)"}},
	{"third-party notices", []string{"# Third-Party Licenses"}},
	{"third-party notices", []string{"# Third-Party Software Notices"}},
}

// attribution matches a licence file that is only a link to a work's source (modernc.org/memory's
// LICENSE-LOGO names where its logo comes from).
var attribution = regexp.MustCompile(`^https?://\S+$`)

// notLicences are the kinds of file that grant nothing of their own: they are reproduced in the
// notice but named in no licence expression.
var notLicences = map[string]bool{"patent grant": true, "notice": true, "attribution link": true, "third-party notices": true}

// Identify names the kind of a licence text by its SPDX identifier ("" when it is of no known
// kind). Line breaks and runs of spaces do not matter.
func Identify(text string) string {
	flat := strings.Join(strings.Fields(text), " ")
	if attribution.MatchString(flat) {
		return "attribution link"
	}
	for _, k := range kinds {
		ok := true
		for _, phrase := range k.all {
			if !strings.Contains(flat, phrase) {
				ok = false
				break
			}
		}
		if ok {
			return k.id
		}
	}
	return ""
}

// SPDX is the module's licence expression: its licences' identifiers joined with AND, patent
// grants and notices left out.
func (m Module) SPDX() string {
	var ids []string
	for _, l := range m.Licences {
		if notLicences[l.SPDX] || slices.Contains(ids, l.SPDX) {
			continue
		}
		ids = append(ids, l.SPDX)
	}
	return strings.Join(ids, " AND ")
}

// WriteNotice writes the notice file: a table of every module with its version, licence and
// the binaries linking it, the note on any module whose top-level licence does not cover what
// is linked, then every licence text. goLicence is the Go distribution's LICENSE, which covers
// the standard library and runtime in every binary; extra are licences of the project's own
// embedded assets (fonts), by path.
func WriteNotice(w io.Writer, title string, mods []Module, goLicence string, extra []Licence) error {
	if len(mods) == 0 {
		return errors.New("write notice: no modules")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: third-party software notices\n\n", title)
	b.WriteString("The released binaries link the Go modules below (as `go list -deps` lists their packages for\n" +
		"the release build). Every licence text that covers what they link follows the table.\n\n")
	fmt.Fprintf(&b, "%-50s %-40s %-26s %s\n", "Module", "Version", "Licence", "Linked by")
	fmt.Fprintf(&b, "%-50s %-40s %-26s %s\n", "Go standard library and runtime", "", "BSD-3-Clause", "every binary")
	for _, m := range mods {
		fmt.Fprintf(&b, "%-50s %-40s %-26s %s\n", m.Path, m.Version, m.SPDX(), strings.Join(m.Binaries, ", "))
	}
	for _, l := range extra {
		fmt.Fprintf(&b, "%-50s %-40s %-26s %s\n", l.File, "", l.SPDX, "custos (embedded)")
	}
	for _, m := range mods {
		if m.RootLicence.File == "" {
			continue
		}
		fmt.Fprintf(&b, "\nNote on %s %s: only %s is linked. It carries its own licence (%s, %s). The module's top-level %s is %s and covers the rest of the module, which is not linked; it is reproduced below for completeness.\n",
			m.Path, m.Version, strings.Join(m.Packages, ", "), m.SPDX(), licenceFileList(m.Licences), m.RootLicence.File, m.RootLicence.SPDX)
	}
	section := func(head, text string) {
		fmt.Fprintf(&b, "\n%s\n%s\n\n%s\n", strings.Repeat("=", 78), head, strings.TrimRight(text, "\n"))
	}
	section("Go standard library and runtime (BSD-3-Clause): LICENSE of the Go distribution", goLicence)
	for _, m := range mods {
		for _, l := range m.Licences {
			section(fmt.Sprintf("%s %s (%s): %s", m.Path, m.Version, l.SPDX, l.File), l.Text)
		}
		if m.RootLicence.File != "" {
			section(fmt.Sprintf("%s %s (%s, not linked): %s", m.Path, m.Version, m.RootLicence.SPDX, m.RootLicence.File), m.RootLicence.Text)
		}
	}
	for _, l := range extra {
		section(fmt.Sprintf("%s (%s)", l.File, l.SPDX), l.Text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func licenceFileList(ls []Licence) string {
	var f []string
	for _, l := range ls {
		f = append(f, l.File)
	}
	return strings.Join(f, ", ")
}

// ReadLicences reads and identifies the licence files in dir (not its subfolders), naming them
// by their path relative to base.
func ReadLicences(base, dir string) ([]Licence, error) {
	files, err := licenceFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []Licence
	for _, f := range files {
		l, err := readLicence(base, f)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
