package record

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pkcs7"
)

// Check is one thing Verify looked at.
type Check struct {
	Name   string
	OK     bool
	Detail string // why it failed, or what was found
}

// Report is the outcome of verifying a record or a journal.
type Report struct {
	Checks   []Check
	Signer   *x509.Certificate
	Root     *x509.Certificate // the root the signer chained to
	SignedAt time.Time
	Journal  *JournalFile
	Kind     string    // the kind of run the record is of
	Log      *LogProof // the record's place in the record log, when it carries one
	// Checkpoint is the log's checkpoint the record carries, its signatures checked.
	Checkpoint Checkpoint
	// RootSignedCheckpoint says whether the root signed that checkpoint too.
	RootSignedCheckpoint bool
	// Notes say what was not checked, and why: they are neither passes nor failures.
	Notes []string
}

// OK is true when every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

func (r *Report) add(name string, err error, detail string) bool {
	c := Check{Name: name, OK: err == nil, Detail: detail}
	if err != nil {
		c.Detail = err.Error()
	}
	r.Checks = append(r.Checks, c)
	return err == nil
}

// Check names, as `custos verify` prints them.
const (
	CheckCoversFile   = "signature covers the whole file"
	CheckSignature    = "signature is valid"
	CheckCertified    = "signature certifies the record, allowing no change (DocMDP)"
	CheckChain        = "signer chains to the root"
	CheckUsage        = "signer may sign documents (id-kp-documentSigning)"
	CheckValidAt      = "signer certificate was valid when it signed"
	CheckJournal      = "embedded journal's hash chain is intact"
	CheckJournalHash  = "journal's final hash equals the record's"
	CheckJournalAlone = "journal's hash chain is intact"
	CheckLogEntry     = "record log entry is this run's, at a line of its journal"
	CheckLogInclusion = "record is in the record log's checkpoint, signed by the record signer"
	CheckAttestation  = "root attests the quorum operation"
)

var oidSigningTime = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// Verify checks a signed record against roots: the signature, that it covers every byte of
// the file, the signer's chain and usage, and the embedded journal and its hash. It never
// panics on a damaged or hostile file: each problem is a failed check with its reason.
func Verify(file []byte, roots []*x509.Certificate) (rep *Report) {
	rep = &Report{}
	defer func() {
		if r := recover(); r != nil {
			rep.add("file is a readable PDF", fmt.Errorf("unreadable PDF: %v", r), "")
		}
	}()
	content, sig, err := signedParts(file)
	if !rep.add(CheckCoversFile, err, "from the first byte to the last, but for the signature itself") {
		return rep
	}
	p7, err := pkcs7.Parse(sig)
	if err == nil {
		p7.Content = content
		err = p7.Verify()
	}
	if err != nil {
		err = fmt.Errorf("the file was changed after signing, or the signature is damaged: %w", err)
	}
	if !rep.add(CheckSignature, err, "SHA-256 digest of the signed bytes matches the signature") {
		return rep
	}
	rep.add(CheckCertified, certified(file), "")
	signer := p7.GetOnlySigner()
	rep.Signer = signer
	if signer == nil {
		rep.add(CheckChain, errors.New("the signature names no single signer"), "")
		return rep
	}
	var at time.Time
	if err := p7.UnmarshalSignedAttribute(oidSigningTime, &at); err != nil {
		at = time.Now()
	}
	rep.SignedAt = at
	root, chainErr := verifyChain(signer, p7.Certificates, roots, at)
	rep.Root = root
	rep.add(CheckChain, chainErr, "signed by "+signer.Subject.CommonName)
	rep.add(CheckUsage, documentSigning(signer), "")
	var validErr error
	if at.Before(signer.NotBefore) || at.After(signer.NotAfter) {
		validErr = fmt.Errorf("signed %s, outside the certificate's validity %s to %s", at.UTC().Format(time.RFC3339),
			signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339))
	}
	rep.add(CheckValidAt, validErr, "signed "+at.UTC().Format(time.RFC3339))

	parts, err := readParts(file)
	if err == nil {
		rep.Kind = parts.kind
		rep.Journal, err = ReadJournal(bytes.NewReader(parts.files[JournalAttachment]))
	}
	if !rep.add(CheckJournal, err, "") {
		return rep
	}
	keywords := parts.keywords
	want, ok := strings.CutPrefix(keywordHash(keywords), journalKeyword)
	var hashErr error
	switch {
	case !ok:
		hashErr = errors.New("the record does not state its journal's hash")
	case want != rep.Journal.FinalHash:
		hashErr = fmt.Errorf("the embedded journal ends in %s, but the record states %s: the attachment was swapped", rep.Journal.FinalHash, want)
	}
	rep.add(CheckJournalHash, hashErr, rep.Journal.FinalHash)
	rep.checkLog(parts.files, roots)
	return rep
}

// checkLog checks the record's place in the record log, when it carries one, and the root's
// attestation of a quorum operation.
func (rep *Report) checkLog(files map[string][]byte, roots []*x509.Certificate) {
	lp, err := logProofOf(files)
	if err != nil {
		rep.add(CheckLogEntry, err, "")
		return
	}
	if lp == nil {
		rep.add(CheckLogEntry, fmt.Errorf("the record carries no entry of the record log (%s): no log vouches for it", LogEntryAttachment), "")
		if ClaimsQuorum(rep.Kind) {
			rep.add(CheckAttestation, fmt.Errorf("a %s run claims a quorum, but the record carries no attestation by the root: it speaks for the operator alone", rep.Kind), "")
		}
		return
	}
	rep.Log = lp
	if rep.Kind != "" && rep.Kind != lp.Entry.Kind {
		rep.add(CheckLogEntry, fmt.Errorf("the record says it is of a %s run, its log entry of a %s run", rep.Kind, lp.Entry.Kind), "")
		return
	}
	rep.Kind = lp.Entry.Kind
	line, err := journalLine(rep.Journal, lp.Entry)
	rep.add(CheckLogEntry, err, fmt.Sprintf("entry %d of the log: %s run %s, journal lines 1 to %d of %d", lp.Index, lp.Entry.Kind, lp.Entry.Run, line, len(rep.Journal.Entries)))
	if rep.Signer == nil {
		return
	}
	quorum := ClaimsQuorum(lp.Entry.Kind)
	var root *x509.Certificate
	if quorum {
		root = rep.Root
	}
	cp, signed, err := lp.Check(rep.Signer, root)
	if err == nil || cp.Size > 0 {
		rep.Checkpoint = cp
	}
	rep.RootSignedCheckpoint = err == nil && root != nil
	rep.add(CheckLogInclusion, err, fmt.Sprintf("leaf %d of %d in %s, signed by %s", lp.Index, cp.Size, cp.Origin, strings.Join(signed, ", ")))
	if !quorum && lp.Attestation == nil {
		rep.add(CheckAttestation, nil, "a "+lp.Entry.Kind+" run claims no quorum: the record speaks for the operator alone (the record signer)")
		return
	}
	rep.add(CheckAttestation, attested(lp, rep.Root), fmt.Sprintf("the root %s signed this run's log entry", rootName(rep.Root)))
}

// attested checks the root's attestation: a note signed by root whose text is the entry's.
func attested(lp *LogProof, root *x509.Certificate) error {
	if root == nil {
		return errors.New("the signer chains to no given root, so no root attestation can be checked")
	}
	if lp.Attestation == nil {
		return fmt.Errorf("a %s run claims a quorum, but the record carries no attestation by the root: it speaks for the operator alone", lp.Entry.Kind)
	}
	v, err := NoteVerifier(RoleRoot, root)
	if err != nil {
		return err
	}
	text, _, err := OpenNote(lp.Attestation, v)
	if err != nil {
		return fmt.Errorf("the attestation is not the root's: %w", err)
	}
	if text != string(lp.Entry.Text()) {
		return errors.New("the root attested another log entry than this record's")
	}
	return nil
}

func rootName(root *x509.Certificate) string {
	if root == nil {
		return "(none)"
	}
	return root.Subject.CommonName
}

// journalLine is the line of the journal whose hash the log entry names (1-based), checking
// the entry is this journal's run.
func journalLine(jf *JournalFile, e LogEntry) (int, error) {
	if len(jf.Entries) == 0 || jf.Entries[0].Run != e.Run {
		return 0, fmt.Errorf("the log entry is of run %s, the journal of another", e.Run)
	}
	for i := 1; i < len(jf.Entries); i++ {
		if jf.Entries[i].Prev == e.JournalSHA256 {
			return i, nil
		}
	}
	if jf.FinalHash == e.JournalSHA256 {
		return len(jf.Entries), nil
	}
	return 0, fmt.Errorf("no line of the journal has the hash %s the log entry names", e.JournalSHA256)
}

func keywordHash(k string) string {
	i := strings.Index(k, journalKeyword)
	if i < 0 {
		return ""
	}
	return strings.Fields(k[i:])[0]
}

// signedParts returns the bytes the signature covers and the signature, checking that
// they are the whole file but for the signature's own hex string.
func signedParts(file []byte) ([]byte, []byte, error) {
	all := byteRangeRE.FindAllSubmatchIndex(file, -1)
	switch {
	case len(all) == 0:
		return nil, nil, errors.New("the file has no signature")
	case len(all) > 1:
		return nil, nil, fmt.Errorf("the file has %d signatures; a record has one", len(all))
	}
	m := all[0]
	var n [4]int64
	for i := range n {
		v, err := strconv.ParseInt(string(file[m[2+2*i]:m[3+2*i]]), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("bad /ByteRange: %w", err)
		}
		n[i] = v
	}
	a, b, c, d := n[0], n[1], n[2], n[3]
	size := int64(len(file))
	if a != 0 || b <= 0 || c <= b || d < 0 || c+d != size {
		return nil, nil, fmt.Errorf("the signature covers bytes 0–%d and %d–%d of a %d-byte file: something was added or cut after signing", b, c, c+d, size)
	}
	gap := bytes.TrimSpace(file[b:c])
	if len(gap) < 2 || gap[0] != '<' || gap[len(gap)-1] != '>' {
		return nil, nil, errors.New("the bytes the signature leaves out are not the signature")
	}
	raw, err := hex.DecodeString(string(gap[1 : len(gap)-1]))
	if err != nil {
		return nil, nil, fmt.Errorf("the signature is not hex: %w", err)
	}
	raw = trimDER(raw)
	content := make([]byte, 0, b+d)
	content = append(content, file[:b]...)
	content = append(content, file[c:]...)
	return content, raw, nil
}

// trimDER cuts the zero padding after a DER value.
func trimDER(b []byte) []byte {
	var v asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &v); err == nil {
		return b[:len(b)-len(rest)]
	}
	return b
}

// verifyChain checks that signer chains to one of roots at time at, and returns that root.
func verifyChain(signer *x509.Certificate, certs, roots []*x509.Certificate, at time.Time) (*x509.Certificate, error) {
	if len(roots) == 0 {
		return nil, errors.New("no root to check against: give the root certificate")
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range certs {
		if !c.Equal(signer) {
			ip.AddCert(c)
		}
	}
	chains, err := signer.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("the signer does not chain to the given root: %w", err)
	}
	chain := chains[0]
	return chain[len(chain)-1], nil
}

func documentSigning(c *x509.Certificate) error {
	if hasDocumentSigning(c) {
		return nil
	}
	return fmt.Errorf("%s has no id-kp-documentSigning (1.3.6.1.5.5.7.3.36) extended key usage", c.Subject.CommonName)
}

// certified checks that the file's signature is a certification signature allowing no change:
// the catalog's /Perms /DocMDP names a signature whose DocMDP transform has /P 1 and whose
// byte range is the one signedParts checked, the only signature in the file.
func certified(file []byte) error {
	r, err := pdf.NewReader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		return fmt.Errorf("read the PDF: %w", err)
	}
	sig := r.Trailer().Key("Root").Key("Perms").Key("DocMDP")
	if sig.IsNull() {
		return errors.New("the record is not certified: its catalog has no /Perms /DocMDP")
	}
	m := byteRangeRE.FindSubmatch(file)
	br := sig.Key("ByteRange")
	for i := 0; i < 4; i++ {
		if want, _ := strconv.ParseInt(string(m[1+i]), 10, 64); br.Index(i).Int64() != want {
			return errors.New("the certifying signature is not the record's signature")
		}
	}
	refs := sig.Key("Reference")
	for i := 0; i < refs.Len(); i++ {
		ref := refs.Index(i)
		if ref.Key("TransformMethod").Name() != "DocMDP" {
			continue
		}
		p := ref.Key("TransformParams").Key("P")
		if p.IsNull() || p.Int64() != 1 {
			return fmt.Errorf("the certification allows changes after signing (DocMDP /P %v)", p)
		}
		return nil
	}
	return errors.New("the signature has no DocMDP reference")
}

// recordParts is what Verify reads from a record besides its signature: its attachments, the
// keywords of its information dictionary and the kind of run its metadata names.
type recordParts struct {
	files    map[string][]byte
	keywords string
	kind     string
}

// maxAttachment bounds what is read of one attachment.
const maxAttachment = 512 << 20

// readParts reads a record's attachments, keywords and kind.
func readParts(file []byte) (*recordParts, error) {
	r, err := pdf.NewReader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		return nil, fmt.Errorf("read the PDF: %w", err)
	}
	parts := &recordParts{files: map[string][]byte{}, keywords: r.Trailer().Key("Info").Key("Keywords").Text()}
	if md := r.Trailer().Key("Root").Key("Metadata"); md.Kind() == pdf.Stream {
		rc := md.Reader()
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err == nil {
			parts.kind = xmpKind(b)
		}
	}
	names := r.Trailer().Key("Root").Key("Names").Key("EmbeddedFiles").Key("Names")
	var found []string
	for i := 0; i+1 < names.Len(); i += 2 {
		spec := names.Index(i + 1)
		name := spec.Key("UF").Text()
		if name == "" {
			name = spec.Key("F").Text()
		}
		found = append(found, name)
		if _, dup := parts.files[name]; dup {
			return nil, fmt.Errorf("the record carries two attachments named %s", name)
		}
		rc := spec.Key("EF").Key("F").Reader()
		b, err := io.ReadAll(io.LimitReader(rc, maxAttachment))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read the attachment %s: %w", name, err)
		}
		parts.files[name] = b
	}
	if _, ok := parts.files[JournalAttachment]; !ok {
		return nil, fmt.Errorf("no embedded %s (attachments: %v)", JournalAttachment, found)
	}
	return parts, nil
}

// EmbeddedJournal is the journal a record carries, as the record's attachment holds it: what a
// rebuild of the registry holds against the journal file of the same run.
func EmbeddedJournal(file []byte) ([]byte, error) {
	parts, err := readParts(file)
	if err != nil {
		return nil, err
	}
	return parts.files[JournalAttachment], nil
}

// journalAndKeywords reads the embedded journal and the document keywords.
func journalAndKeywords(file []byte) ([]byte, string, error) {
	parts, err := readParts(file)
	if err != nil {
		return nil, "", err
	}
	return parts.files[JournalAttachment], parts.keywords, nil
}

var xmpKindRE = regexp.MustCompile(`<custos:Kind>([^<]*)</custos:Kind>`)

// xmpKind is the custos:Kind an XMP packet names, or "".
func xmpKind(b []byte) string {
	if m := xmpKindRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// VerifyJournal checks a bare journal file's hash chain.
func VerifyJournal(b []byte) *Report {
	rep := &Report{}
	jf, err := ReadJournal(bytes.NewReader(b))
	detail := ""
	if err == nil {
		rep.Journal = jf
		detail = fmt.Sprintf("%d entries, final hash %s", len(jf.Entries), jf.FinalHash)
		if len(jf.Entries) == 0 {
			err = errors.New("the journal is empty")
		}
	}
	rep.add(CheckJournalAlone, err, detail)
	return rep
}

// CheckNotRevoked names the check of the signer against the root's CRL.
const CheckNotRevoked = "signer was not revoked when it signed"

// NotRevokedWhenSigned checks the record signer's certificate against crl, a CRL the root
// signed: it fails when the certificate was revoked at or before signedAt. A signer revoked
// after it signed passes, and the detail says when it was revoked.
func NotRevokedWhenSigned(signer, root *x509.Certificate, crl *x509.RevocationList, signedAt time.Time) (string, error) {
	if err := crl.CheckSignatureFrom(root); err != nil {
		return "", fmt.Errorf("the CRL is not signed by the root %s: %w", root.Subject.CommonName, err)
	}
	which := fmt.Sprintf("the root's CRL number %v of %s", crl.Number, crl.ThisUpdate.UTC().Format(time.RFC3339))
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(signer.SerialNumber) != 0 {
			continue
		}
		at := e.RevocationTime.UTC().Format(time.RFC3339)
		if !e.RevocationTime.After(signedAt) {
			return "", fmt.Errorf("%s revoked the signer %s at %s, before the record was signed at %s: a revoked record signer signs no record",
				which, signer.Subject.CommonName, at, signedAt.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("%s revokes it from %s, after it signed", which, at), nil
	}
	return "not on " + which, nil
}
