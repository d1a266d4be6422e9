package ceremony

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/personname"
	"github.com/custos-pki/custos/internal/pgpwords"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
)

// Plan is a root key ceremony as prepared and reviewed before the day. It never holds a PIN.
type Plan struct {
	ID              string   `yaml:"id"`
	Module          string   `yaml:"module"`
	OperationsToken string   `yaml:"operations_token"`
	Administrator   string   `yaml:"administrator"`
	Witnesses       []string `yaml:"witnesses"`
	// Custodians are the share holders' names, in share order; in the file, each is a name or
	// {name: NAME, deliver: DESTINATION} (see Destination).
	Custodians []string `yaml:"-"`
	// Deliveries are where each custodian's share goes, beside Custodians; missing or zero
	// entries are the default destination.
	Deliveries  []Destination `yaml:"-"`
	Threshold   int           `yaml:"threshold"`
	Key         PlanKey       `yaml:"key"`
	Certificate PlanSubject   `yaml:"certificate"`
	Backup      bool          `yaml:"backup"`
	// CRLDistributionPoint is written into the issuing CA certificates the root signs.
	CRLDistributionPoint string `yaml:"crl_distribution_point,omitempty"`
	// CRLNextUpdateDays is how long a root CRL stays current; 0 means 365.
	CRLNextUpdateDays int `yaml:"crl_next_update_days,omitempty"`
	// RecordSignerName is the common name of the record-signing certificate; empty means
	// "<organization> Ceremony Records".
	RecordSignerName string `yaml:"record_signer_name,omitempty"`

	raw []byte
}

// PlanKey is the root key's algorithm.
type PlanKey struct {
	Algorithm string `yaml:"algorithm"`
}

// PlanSubject is the root certificate's subject and lifetime.
type PlanSubject struct {
	CommonName    string `yaml:"common_name"`
	Organization  string `yaml:"organization"`
	Country       string `yaml:"country"`
	ValidityYears int    `yaml:"validity_years"`
}

// PlanError names the plan key that is wrong.
type PlanError struct {
	Key     string // e.g. "threshold", "custodians[3]"
	Problem string
}

func (e *PlanError) Error() string { return fmt.Sprintf("plan: %s: %s", e.Key, e.Problem) }

// maxPlanSize keeps a hostile plan from exhausting memory; a real one is a few hundred bytes.
const maxPlanSize = 64 << 10

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// LoadPlan reads the plan file at path and checks it as ParsePlan does. A path that is not a
// regular file of at most 64 KiB (a FIFO, a device, a 2 GB file) is refused before a byte is
// read; every error names the file.
func LoadPlan(ctx context.Context, path string) (*Plan, error) {
	data, err := inputfile.Read(ctx, "plan", path, maxPlanSize)
	if err != nil {
		return nil, err
	}
	p, err := ParsePlan(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePlan reads and validates a plan. Unknown keys and impossible values are refused with
// the key named, before any HSM is opened.
func ParsePlan(data []byte) (*Plan, error) {
	if len(data) > maxPlanSize {
		return nil, &PlanError{Key: "(file)", Problem: fmt.Sprintf("larger than %d bytes; this is not a plan", maxPlanSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file struct {
		Plan       `yaml:",inline"`
		Custodians []custodianEntry `yaml:"custodians"`
	}
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("plan: %s", yamlProblem(err))
	}
	p := file.Plan
	for i, c := range file.Custodians {
		p.Custodians = append(p.Custodians, c.Name)
		d, err := ParseDestination(c.Deliver...)
		if err != nil {
			return nil, &PlanError{Key: fmt.Sprintf("custodians[%d].deliver", i+1), Problem: err.Error()}
		}
		p.Deliveries = append(p.Deliveries, d)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &PlanError{Key: "(file)", Problem: "more than one YAML document; a plan is one"}
	}
	p.raw = append([]byte(nil), data...)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// yamlProblem turns the YAML decoder's message into one a reviewer understands.
func yamlProblem(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	if errors.Is(err, io.EOF) {
		return "the file is empty"
	}
	return err.Error()
}

// Validate checks every value, naming the key of the first that is wrong.
func (p *Plan) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &PlanError{Key: key, Problem: fmt.Sprintf(format, args...)}
	}
	if !idPattern.MatchString(p.ID) {
		return bad("id", "%q is not a ceremony id: use 1 to 32 lower-case letters, digits, '.', '_' or '-' (it is also the root token's label)", p.ID)
	}
	if strings.TrimSpace(p.Module) == "" {
		return bad("module", "missing: name the HSM's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so")
	}
	if problem := hsm.TokenLabelProblem(p.OperationsToken); problem != "" {
		return bad("operations_token", "the token label %s", problem)
	}
	if p.OperationsToken == p.ID {
		return bad("operations_token", "must differ from the root token's label %q", p.ID)
	}
	if err := checkName("administrator", p.Administrator); err != nil {
		return err
	}
	if len(p.Witnesses) == 0 {
		return bad("witnesses", "at least one witness must attend a root ceremony")
	}
	seen := map[string]string{}
	people := []struct {
		key, name string
	}{{"administrator", p.Administrator}}
	for i, w := range p.Witnesses {
		people = append(people, struct{ key, name string }{fmt.Sprintf("witnesses[%d]", i+1), w})
	}
	n := len(p.Custodians)
	if n < 2 || n > 255 {
		return bad("custodians", "%d custodians; a quorum needs 2 to 255", n)
	}
	for i, c := range p.Custodians {
		people = append(people, struct{ key, name string }{fmt.Sprintf("custodians[%d]", i+1), c})
	}
	for _, person := range people {
		if err := checkName(person.key, person.name); err != nil {
			return err
		}
		k := nameKey(person.name)
		if prev, dup := seen[k]; dup {
			return bad(person.key, "%q reads the same as %s: each person holds one role, under one name", person.name, prev)
		}
		seen[k] = person.key
	}
	if p.Threshold < 2 || p.Threshold > n {
		return bad("threshold", "%d; it must be at least 2 and at most the %d custodians", p.Threshold, n)
	}
	if err := p.checkDeliveries(); err != nil {
		return err
	}
	alg, err := keyalg.Parse(p.Key.Algorithm)
	if err != nil {
		return bad("key.algorithm", "%q is not one of %s", p.Key.Algorithm, keyalg.List())
	}
	if alg == keyalg.Ed25519 && p.Backup {
		return bad("backup", "an ed25519 key cannot be backed up: PKCS#11 tokens cannot wrap EdDSA keys with AES key wrap; choose ecdsa-p384 or set backup: false")
	}
	c := p.Certificate
	if err := checkSubject("certificate.common_name", c.CommonName, pki.MaxCommonName); err != nil {
		return err
	}
	if err := checkSubject("certificate.organization", c.Organization, pki.MaxOrganization); err != nil {
		return err
	}
	if problem := pki.CountryProblem(c.Country); problem != "" {
		return bad("certificate.country", "%s", problem)
	}
	if p.RecordSignerName != "" {
		if err := checkSubject("record_signer_name", p.RecordSignerName, pki.MaxCommonName); err != nil {
			return err
		}
	} else if n := utf8.RuneCountInString(p.recordSignerName()); n > pki.MaxCommonName {
		return bad("certificate.organization", "the record signer's common name would be %q, %d characters long: at most %d are allowed (RFC 5280); shorten the organization or set record_signer_name",
			p.recordSignerName(), n, pki.MaxCommonName)
	}
	if c.ValidityYears < 1 || c.ValidityYears > 50 {
		return bad("certificate.validity_years", "%d; a root is valid for 1 to 50 years", c.ValidityYears)
	}
	if p.CRLNextUpdateDays < 0 || p.CRLNextUpdateDays > 3650 {
		return bad("crl_next_update_days", "%d; use 1 to 3650, or leave it out for 365", p.CRLNextUpdateDays)
	}
	if u := p.CRLDistributionPoint; u != "" {
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https" && parsed.Scheme != "ldap") || parsed.Host == "" {
			return bad("crl_distribution_point", "%q is not an http, https or ldap URL with a host", u)
		}
	}
	return nil
}

// checkSubject checks a subject attribute of a certificate the ceremony makes by the rule
// the certificate is made with (RFC 5280's upper bound of max characters among it), so that
// the plan fails at load rather than after the root key exists.
func checkSubject(key, value string, max int) error {
	if strings.TrimSpace(value) == "" {
		return &PlanError{Key: key, Problem: "empty"}
	}
	if problem := pki.SubjectTextProblem(value, max); problem != "" {
		return &PlanError{Key: key, Problem: problem}
	}
	if strings.ContainsRune(value, unicode.ReplacementChar) {
		return &PlanError{Key: key, Problem: fmt.Sprintf("%q holds an invalid character", value)}
	}
	return nil
}

// checkName refuses a person's name that could be read as another's: it must be in NFC (the
// form a keyboard types), and hold no control or format character (a zero-width space, a bidi
// override such as U+202E), which would print two different names the same in the record.
func checkName(key, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return &PlanError{Key: key, Problem: "empty"}
	case len(name) > 128:
		return &PlanError{Key: key, Problem: "longer than 128 bytes"}
	case !utf8.ValidString(name):
		return &PlanError{Key: key, Problem: "not valid UTF-8"}
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			return &PlanError{Key: key, Problem: fmt.Sprintf("%+q holds a control or invalid character (%U)", name, r)}
		case unicode.Is(unicode.Cf, r):
			return &PlanError{Key: key, Problem: fmt.Sprintf("%+q holds an invisible format character (%U): it would read as another name; type the name again", name, r)}
		}
	}
	if !norm.NFC.IsNormalString(name) {
		return &PlanError{Key: key, Problem: fmt.Sprintf("%+q is not in Unicode normal form C (NFC): a letter is written as a base and a combining mark; type the name again or save the plan as NFC", name)}
	}
	return nil
}

// nameKey compares names as people read them (personname.Key).
func nameKey(name string) string { return personname.Key(name) }

// Destination is where custodian i's share goes (zero: the default).
func (p *Plan) Destination(i int) Destination {
	if i < len(p.Deliveries) {
		return p.Deliveries[i]
	}
	return Destination{}
}

// checkDeliveries refuses, naming the custodian's key, a destination the plan alone shows to
// be wrong: more deliveries than custodians, a token that is the root's or the operations
// token, two custodians on one token. What needs the tokens themselves is checked when the
// ceremony starts (checkTokenDestination).
func (p *Plan) checkDeliveries() error {
	if len(p.Deliveries) > len(p.Custodians) {
		return &PlanError{Key: "custodians", Problem: fmt.Sprintf("%d destinations for %d custodians", len(p.Deliveries), len(p.Custodians))}
	}
	tokens := map[string]int{}
	for i, d := range p.Deliveries {
		key := fmt.Sprintf("custodians[%d].deliver", i+1)
		switch {
		case d.Token == "":
			continue
		case d.Token == p.ID:
			return &PlanError{Key: key, Problem: fmt.Sprintf("token:%s is the root token: a share never rests beside the key it unlocks; give %s a token of their own", d.Token, p.Custodians[i])}
		case d.Token == p.OperationsToken:
			return &PlanError{Key: key, Problem: fmt.Sprintf("token:%s is the operations token, which the operator's PIN opens; give %s a token of their own", d.Token, p.Custodians[i])}
		}
		if j, dup := tokens[d.Token]; dup {
			return &PlanError{Key: key, Problem: fmt.Sprintf("token:%s already holds the share of %s (custodians[%d]): two shares on one token are one custodian; give each a token of their own", d.Token, p.Custodians[j], j+1)}
		}
		tokens[d.Token] = i
	}
	return nil
}

// Raw is the plan file as reviewed.
func (p *Plan) Raw() []byte { return p.raw }

// SHA256 is the hash of the plan file that the witness compares with the reviewed copy.
func (p *Plan) SHA256() [32]byte { return sha256.Sum256(p.raw) }

// HashWords is the plan hash in the PGP word list, to be read aloud.
func (p *Plan) HashWords() string {
	h := p.SHA256()
	return pgpwords.Encode(h[:])
}

// Algorithm is the root key's algorithm.
func (p *Plan) Algorithm() keyalg.Algorithm {
	a, _ := keyalg.Parse(p.Key.Algorithm)
	return a
}

func (p *Plan) recordSignerName() string {
	if p.RecordSignerName != "" {
		return p.RecordSignerName
	}
	return p.Certificate.Organization + " Ceremony Records"
}

func (p *Plan) crlNextUpdateDays() int {
	if p.CRLNextUpdateDays == 0 {
		return 365
	}
	return p.CRLNextUpdateDays
}
