package release

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// The parts of a CycloneDX 1.5 document (https://cyclonedx.org/docs/1.5/json/) an SBOM of a Go
// binary needs.
type (
	bom struct {
		Schema       string       `json:"$schema"`
		BOMFormat    string       `json:"bomFormat"`
		SpecVersion  string       `json:"specVersion"`
		SerialNumber string       `json:"serialNumber"`
		Version      int          `json:"version"`
		Metadata     metadata     `json:"metadata"`
		Components   []component  `json:"components"`
		Dependencies []dependency `json:"dependencies"`
	}
	metadata struct {
		Timestamp string     `json:"timestamp"`
		Tools     tools      `json:"tools"`
		Component component  `json:"component"`
		Props     []property `json:"properties,omitempty"`
	}
	tools struct {
		Components []component `json:"components"`
	}
	component struct {
		Type     string     `json:"type"`
		BOMRef   string     `json:"bom-ref,omitempty"`
		Name     string     `json:"name"`
		Version  string     `json:"version,omitempty"`
		PURL     string     `json:"purl,omitempty"`
		Hashes   []hash     `json:"hashes,omitempty"`
		Licenses []licence  `json:"licenses,omitempty"`
		Props    []property `json:"properties,omitempty"`
	}
	hash struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	}
	licence struct {
		License    *licenceID `json:"license,omitempty"`
		Expression string     `json:"expression,omitempty"`
	}
	licenceID struct {
		ID string `json:"id"`
	}
	property struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	dependency struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	}
)

// SBOM describes one binary as a CycloneDX 1.5 JSON document.
type SBOM struct {
	Name    string    // the binary's name, such as "custos"
	Version string    // the release version
	Path    string    // the binary file, read for its build information and hash
	Time    time.Time // the commit time (SOURCE_DATE_EPOCH), so that two builds write the same bytes
	// Modules are the third-party modules with their licences, from Linked; every module the
	// binary's build information names must be among them.
	Modules []Module
}

// Write writes the SBOM: the binary as the described application (its SHA-256, Go version,
// VCS revision and build settings as properties), and each module it links as a library with
// its version, package URL, go.sum hash and licences. The serial number is derived from the
// binary's hash, so the same binary always gets the same document.
func (s SBOM) Write(w io.Writer) error {
	bi, err := buildinfo.ReadFile(s.Path)
	if err != nil {
		return fmt.Errorf("sbom: read the build information of %s: %w", s.Path, err)
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	sum := sha256.Sum256(data)
	known := map[string]Module{}
	for _, m := range s.Modules {
		known[m.Path] = m
	}
	appRef := "pkg:golang/" + bi.Main.Path + "@" + s.Version + "#" + s.Name
	app := component{Type: "application", BOMRef: appRef, Name: s.Name, Version: s.Version, PURL: appRef,
		Hashes: []hash{{"SHA-256", hex.EncodeToString(sum[:])}},
		Props:  []property{{"golang:module", bi.Main.Path}, {"golang:go-version", bi.GoVersion}}}
	for _, st := range bi.Settings {
		app.Props = append(app.Props, property{"golang:build:" + st.Key, st.Value})
	}
	doc := bom{
		Schema: "http://cyclonedx.org/schema/bom-1.5.schema.json", BOMFormat: "CycloneDX", SpecVersion: "1.5",
		SerialNumber: "urn:uuid:" + uuidFrom(sum[:]), Version: 1,
		Metadata: metadata{
			Timestamp: s.Time.UTC().Format(time.RFC3339),
			Tools:     tools{Components: []component{{Type: "application", Name: "custos-release", Version: s.Version}}},
			Component: app,
		},
	}
	deps := dependency{Ref: appRef, DependsOn: []string{}}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		m, ok := known[d.Path]
		if !ok {
			return fmt.Errorf("sbom: %s links module %s %s, which the notice does not account for", s.Name, d.Path, d.Version)
		}
		ref := "pkg:golang/" + d.Path + "@" + d.Version
		c := component{Type: "library", BOMRef: ref, Name: d.Path, Version: d.Version, PURL: ref,
			Props: []property{{"golang:packages", strings.Join(m.Packages, " ")}}}
		if d.Sum != "" {
			c.Props = append(c.Props, property{"golang:go.sum", d.Sum})
		}
		switch expr := m.SPDX(); {
		case spdxID(expr):
			c.Licenses = []licence{{License: &licenceID{ID: expr}}}
		case expr != "":
			c.Licenses = []licence{{Expression: expr}}
		}
		doc.Components = append(doc.Components, c)
		deps.DependsOn = append(deps.DependsOn, ref)
	}
	sort.Slice(doc.Components, func(i, j int) bool { return doc.Components[i].BOMRef < doc.Components[j].BOMRef })
	sort.Strings(deps.DependsOn)
	doc.Dependencies = []dependency{deps}
	for _, c := range doc.Components {
		doc.Dependencies = append(doc.Dependencies, dependency{Ref: c.BOMRef, DependsOn: []string{}})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// spdxID says whether id is an SPDX licence identifier, which CycloneDX takes as a licence id
// (a LicenseRef- or an expression goes in an expression).
func spdxID(id string) bool {
	return id != "" && !strings.Contains(id, " ") && !strings.HasPrefix(id, "LicenseRef-")
}

// uuidFrom makes an RFC 4122 version 5 style UUID from the first 16 bytes of a hash.
func uuidFrom(h []byte) string {
	var u [16]byte
	copy(u[:], h)
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
