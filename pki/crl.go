package pki

import (
	"bufio"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"slices"
	"time"
)

// Revocation is one entry of a CRL.
type Revocation struct {
	Serial    *big.Int  // serial number of the revoked certificate
	RevokedAt time.Time // when the CA revoked it
	Reason    Reason    // ReasonUnspecified writes no reasonCode extension
	// InvalidityDate is when the key is known or suspected to have been compromised, or the
	// certificate otherwise stopped being trustworthy (RFC 5280 5.3.2); zero for none.
	InvalidityDate time.Time
}

// CRL describes one full RFC 5280 version 2 CRL of an issuer.
type CRL struct {
	Number     *big.Int  // the cRLNumber: strictly increasing and never reused per issuer
	ThisUpdate time.Time // when this CRL is issued
	NextUpdate time.Time // when the next one will be issued at the latest
	// Revoked yields the entries in strictly increasing serial order (ORDER BY serial), which
	// proves there are no duplicates without holding a million serials in a set, and makes
	// the CRL the same whoever builds it. It is read once. nil means no entries.
	Revoked iter.Seq2[Revocation, error]
}

// Revocations returns the given entries as a source for CRL.Revoked, sorted by serial: the
// easy way to build a CRL of a few entries, such as a root CRL.
func Revocations(rs ...Revocation) iter.Seq2[Revocation, error] {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b Revocation) int {
		if a.Serial == nil || b.Serial == nil {
			return cmp.Compare(boolInt(a.Serial != nil), boolInt(b.Serial != nil))
		}
		return a.Serial.Cmp(b.Serial)
	})
	return func(yield func(Revocation, error) bool) {
		for _, r := range sorted {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SignedCRL is a signed CRL held in memory, ready to be written as DER or PEM as often as
// needed. A million entries take about 50 MB.
type SignedCRL struct {
	outer   []byte   // the header of the outer SEQUENCE
	prefix  []byte   // the TBS from its header up to the first entry
	entries [][]byte // the encoded entries, in chunks
	suffix  []byte   // the TBS extensions
	sigAlg  []byte
	sig     []byte
	count   int
	size    int
}

// Entries returns how many certificates the CRL lists.
func (c *SignedCRL) Entries() int { return c.count }

// Len returns the size of the DER encoding in bytes.
func (c *SignedCRL) Len() int { return c.size }

// WriteTo writes the DER encoding to w.
func (c *SignedCRL) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range c.parts() {
		k, err := w.Write(p)
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("write CRL: %w", err)
		}
	}
	return n, nil
}

// Bytes returns the DER encoding, for small CRLs that are easier handled whole.
func (c *SignedCRL) Bytes() []byte {
	b := make([]byte, 0, c.size)
	for _, p := range c.parts() {
		b = append(b, p...)
	}
	return b
}

func (c *SignedCRL) parts() [][]byte {
	parts := make([][]byte, 0, len(c.entries)+6)
	parts = append(parts, c.outer, c.prefix)
	parts = append(parts, c.entries...)
	return append(parts, c.suffix, c.sigAlg, bitStringHeader(len(c.sig)), c.sig)
}

// WritePEM writes the CRL as a PEM block of type "X509 CRL", encoding as it goes rather
// than building the whole text in memory.
func (c *SignedCRL) WritePEM(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("-----BEGIN X509 CRL-----\n")
	lb := &lineBreaker{w: bw}
	enc := base64.NewEncoder(base64.StdEncoding, lb)
	if _, err := c.WriteTo(enc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write CRL: %w", err)
	}
	lb.finish()
	bw.WriteString("-----END X509 CRL-----\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write CRL: %w", err)
	}
	return nil
}

// Fingerprint returns the SHA-256 of the DER encoding, which the registry keeps for each
// CRL issued.
func (c *SignedCRL) Fingerprint() Fingerprint {
	h := sha256.New()
	for _, p := range c.parts() {
		h.Write(p)
	}
	var f Fingerprint
	h.Sum(f[:0])
	return f
}

// lineBreaker breaks base64 text into the 64-character lines of PEM (RFC 7468).
type lineBreaker struct {
	w    *bufio.Writer
	used int
}

func (l *lineBreaker) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(64-l.used, len(b))
		l.w.Write(b[:k])
		l.used += k
		b = b[k:]
		if l.used == 64 {
			l.w.WriteByte('\n')
			l.used = 0
		}
	}
	return n, nil
}

func (l *lineBreaker) finish() {
	if l.used > 0 {
		l.w.WriteByte('\n')
	}
}

func bitStringHeader(n int) []byte {
	return append(appendHeader(nil, tagBitString, n+1), 0) // no unused bits
}

// Extension DER: OIDs id-ce-cRLReasons (2.5.29.21), id-ce-invalidityDate (2.5.29.24),
// id-ce-cRLNumber (2.5.29.20) and id-ce-authorityKeyIdentifier (2.5.29.35). None is
// critical, so the critical flag (default FALSE) is left out as DER requires.
var (
	reasonExtPrefix     = []byte{0x30, 0x0A, 0x06, 0x03, 0x55, 0x1D, 0x15, 0x04, 0x03, 0x0A, 0x01} // + reason byte
	invalidityExtPrefix = []byte{0x30, 0x18, 0x06, 0x03, 0x55, 0x1D, 0x18, 0x04, 0x11}             // + GeneralizedTime
	oidCRLNumberDER     = []byte{0x06, 0x03, 0x55, 0x1D, 0x14}
	oidAKIDER           = []byte{0x06, 0x03, 0x55, 0x1D, 0x23}
)

const (
	reasonExtSize     = 12
	invalidityExtSize = 26
	// maxEntrySize bounds one encoded entry: a 21-byte serial, two times, both extensions.
	maxEntrySize = 4 + 23 + 17 + 4 + reasonExtSize + invalidityExtSize
	// entryChunk is the size of the buffers the entries are written into: big enough that a
	// million entries take fifty, small enough that none is copied as the list grows.
	entryChunk = 1 << 20
)

// appendEntry encodes one revokedCertificates element.
func appendEntry(b []byte, r *Revocation) []byte {
	extLen := 0
	if r.Reason != ReasonUnspecified {
		extLen += reasonExtSize
	}
	if !r.InvalidityDate.IsZero() {
		extLen += invalidityExtSize
	}
	content := tlvSize(integerContentSize(r.Serial)) + timeSize(r.RevokedAt)
	if extLen > 0 {
		content += tlvSize(extLen)
	}
	b = appendHeader(b, tagSequence, content)
	b = appendInteger(b, r.Serial)
	b = appendTime(b, r.RevokedAt)
	if extLen > 0 {
		b = appendHeader(b, tagSequence, extLen)
		if r.Reason != ReasonUnspecified {
			b = append(b, reasonExtPrefix...)
			b = append(b, byte(r.Reason))
		}
		if !r.InvalidityDate.IsZero() {
			b = append(b, invalidityExtPrefix...)
			b = appendGeneralizedTime(b, r.InvalidityDate)
		}
	}
	return b
}

// crlHeader is everything in a TBSCertList but the entries.
type crlHeader struct {
	alg        KeyAlgorithm
	sigAlg     []byte
	issuer     []byte
	thisUpdate time.Time
	nextUpdate time.Time
	extensions []byte // [0] EXPLICIT Extensions: authority key identifier and CRL number
}

// prefix encodes the TBS from its header to the revokedCertificates header, for entries of
// entriesLen bytes in all; with no entries the field is left out, as RFC 5280 requires.
func (h *crlHeader) prefix(count, entriesLen int) []byte {
	n := 3 + len(h.sigAlg) + len(h.issuer) + timeSize(h.thisUpdate) + timeSize(h.nextUpdate) + len(h.extensions)
	if count > 0 {
		n += tlvSize(entriesLen)
	}
	b := make([]byte, 0, 64+len(h.sigAlg)+len(h.issuer))
	b = appendHeader(b, tagSequence, n)
	b = append(b, tagInteger, 1, 1) // version v2
	b = append(b, h.sigAlg...)
	b = append(b, h.issuer...)
	b = appendTime(b, h.thisUpdate)
	b = appendTime(b, h.nextUpdate)
	if count > 0 {
		b = appendHeader(b, tagSequence, entriesLen)
	}
	return b
}

func crlExtensions(aki []byte, number *big.Int) []byte {
	keyID := appendTLV(nil, tagContext0Prim, aki)
	akiValue := appendTLV(nil, tagSequence, keyID)
	akiExt := appendTLV(nil, tagSequence, appendTLV(slices.Clone(oidAKIDER), tagOctetString, akiValue))
	numberValue := appendInteger(nil, number)
	numberExt := appendTLV(nil, tagSequence, appendTLV(slices.Clone(oidCRLNumberDER), tagOctetString, numberValue))
	exts := appendTLV(nil, tagSequence, append(akiExt, numberExt...))
	return appendTLV(nil, tagContext0, exts)
}

// SignCRL builds, lints and signs a CRL for issuer.
//
// The entries are read once and encoded straight into DER as they come, with no per-entry
// allocation, so a million of them take about a quarter of a second and 50 MB. zlint's CRL
// lints then run on a CRL that the very same encoder builds with the same header and one
// entry of each shape found (each reason, with and without invalidity date, each time and serial
// encoding), signed by a throwaway key of the issuer's algorithm; any error or fatal refuses
// the CRL before the issuer's key is used. The full list is not handed to zlint: parsing a
// million entries costs seconds and gigabytes, and what the CRL lints check per entry
// (serial, revocation time not after thisUpdate, unique serials, valid reason codes, no
// duplicate extensions) is checked here on every entry as it is encoded. Last, the issuer
// signs the digest of the real TBS (Ed25519 signs the TBS itself) and the signature is
// verified under the issuer certificate before anything is returned.
func SignCRL(crl CRL, issuer Issuer) (*SignedCRL, LintReport, error) {
	h, err := newCRLHeader(crl, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	enc := crlEncoder{header: h, notBefore: issuer.Certificate.NotBefore.UTC().Truncate(time.Second)}
	if crl.Revoked != nil {
		for r, err := range crl.Revoked {
			if err != nil {
				return nil, nil, fmt.Errorf("sign CRL: read revoked certificates: %w", err)
			}
			if err := enc.add(&r); err != nil {
				return nil, nil, fmt.Errorf("sign CRL: %w", err)
			}
		}
	}

	report, err := lintCRLSample(h, enc.samples())
	if err != nil {
		return nil, report, fmt.Errorf("sign CRL: %w", err)
	}

	c := &SignedCRL{
		prefix:  h.prefix(enc.count, enc.size),
		entries: enc.chunks,
		suffix:  h.extensions,
		sigAlg:  h.sigAlg,
		count:   enc.count,
	}
	if c.sig, err = signParts(issuer, h.alg, c.tbsParts(), c.tbsLen()); err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	c.outer = appendHeader(nil, tagSequence, c.tbsLen()+len(c.sigAlg)+tlvSize(len(c.sig)+1))
	c.size = len(c.outer) + c.tbsLen() + len(c.sigAlg) + tlvSize(len(c.sig)+1)
	return c, report, nil
}

func (c *SignedCRL) tbsParts() [][]byte {
	parts := make([][]byte, 0, len(c.entries)+2)
	parts = append(parts, c.prefix)
	parts = append(parts, c.entries...)
	return append(parts, c.suffix)
}

func (c *SignedCRL) tbsLen() int {
	n := 0
	for _, p := range c.tbsParts() {
		n += len(p)
	}
	return n
}

func newCRLHeader(crl CRL, issuer Issuer) (*crlHeader, error) {
	ic := issuer.Certificate
	if ic == nil {
		return nil, errors.New("the issuer certificate is missing")
	}
	if issuer.Signer == nil {
		return nil, fmt.Errorf("no signer for issuer %q", ic.Subject.CommonName)
	}
	if !ic.IsCA || ic.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("issuer %q may not sign CRLs (it is not a CA with the cRLSign key usage)", ic.Subject.CommonName)
	}
	if len(ic.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("issuer %q has no subject key identifier to put in the CRL's authority key identifier", ic.Subject.CommonName)
	}
	if err := checkSignerKey(issuer); err != nil {
		return nil, err
	}
	alg, err := KeyAlgorithmOf(ic.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	if crl.Number == nil || crl.Number.Sign() < 0 {
		return nil, errors.New("CRL.Number must be present and not negative")
	}
	if integerContentSize(crl.Number) > 20 {
		return nil, errors.New("CRL.Number is longer than the 20 octets RFC 5280 allows")
	}
	if crl.ThisUpdate.IsZero() {
		return nil, errors.New("CRL.ThisUpdate is missing")
	}
	this := crl.ThisUpdate.UTC().Truncate(time.Second)
	next := crl.NextUpdate.UTC().Truncate(time.Second)
	if !next.After(this) {
		return nil, fmt.Errorf("CRL.NextUpdate (%s) must be after CRL.ThisUpdate (%s)", next.Format(timeLayout), this.Format(timeLayout))
	}
	if y := next.Year(); y > 9999 {
		return nil, errors.New("CRL.NextUpdate is after the year 9999")
	}
	return &crlHeader{
		alg:        alg,
		sigAlg:     alg.signatureAlgorithmDER(),
		issuer:     ic.RawSubject,
		thisUpdate: this,
		nextUpdate: next,
		extensions: crlExtensions(ic.SubjectKeyId, crl.Number),
	}, nil
}

// crlEncoder checks and encodes entries into chunks as they come.
type crlEncoder struct {
	header    *crlHeader
	notBefore time.Time
	chunks    [][]byte
	size      int
	count     int
	prev      big.Int
	// shapes holds the first entry of each shape, indexed by reason (at most 9), invalidity
	// date, time encoding and serial padding: an array, so that noting the shape of a
	// million entries costs no hashing.
	shapes [10][2][2][2]*Revocation
}

// add checks one entry and appends its encoding. The shape of an entry (reason, invalidity
// date or not, UTCTime or GeneralizedTime, serial with or without a leading zero) is what
// distinguishes its DER from another's beyond the values, so the first entry of each shape
// is kept for the linted sample.
func (e *crlEncoder) add(r *Revocation) error {
	if err := checkSerial(r.Serial); err != nil {
		return fmt.Errorf("revoked certificate %d: %w", e.count+1, err)
	}
	if e.count > 0 && r.Serial.Cmp(&e.prev) <= 0 {
		return fmt.Errorf("revoked serial %s comes after %s: entries must come in strictly increasing serial order (ORDER BY serial), each serial once",
			SerialHex(r.Serial), SerialHex(&e.prev))
	}
	revoked := r.RevokedAt.UTC().Truncate(time.Second)
	if revoked.IsZero() {
		return fmt.Errorf("revoked serial %s has no revocation time", SerialHex(r.Serial))
	}
	if revoked.After(e.header.thisUpdate) {
		return fmt.Errorf("revoked serial %s was revoked at %s, after the CRL's thisUpdate %s", SerialHex(r.Serial), revoked.Format(timeLayout), e.header.thisUpdate.Format(timeLayout))
	}
	if revoked.Before(e.notBefore) {
		return fmt.Errorf("revoked serial %s was revoked at %s, before its issuer became valid (%s)", SerialHex(r.Serial), revoked.Format(timeLayout), e.notBefore.Format(timeLayout))
	}
	if !r.Reason.valid() {
		return fmt.Errorf("revoked serial %s has reason %s, which Custos does not write", SerialHex(r.Serial), r.Reason)
	}
	invalid := r.InvalidityDate.UTC().Truncate(time.Second)
	if !r.InvalidityDate.IsZero() && invalid.After(revoked) {
		return fmt.Errorf("revoked serial %s has invalidity date %s after its revocation at %s", SerialHex(r.Serial), invalid.Format(timeLayout), revoked.Format(timeLayout))
	}
	entry := Revocation{Serial: r.Serial, RevokedAt: revoked, Reason: r.Reason}
	if !r.InvalidityDate.IsZero() {
		entry.InvalidityDate = invalid
	}

	if len(e.chunks) == 0 || cap(e.chunks[len(e.chunks)-1])-len(e.chunks[len(e.chunks)-1]) < maxEntrySize {
		e.chunks = append(e.chunks, make([]byte, 0, entryChunk))
	}
	last := &e.chunks[len(e.chunks)-1]
	before := len(*last)
	*last = appendEntry(*last, &entry)
	e.size += len(*last) - before
	e.count++
	e.prev.Set(r.Serial)

	slot := &e.shapes[entry.Reason][boolInt(!entry.InvalidityDate.IsZero())][boolInt(timeTag(revoked) == tagGeneralizedTime)][boolInt(r.Serial.BitLen()%8 == 0)]
	if *slot == nil {
		sample := entry
		sample.Serial = new(big.Int).Set(r.Serial) // the source may reuse its big.Int
		*slot = &sample
	}
	return nil
}

// samples returns one entry of each shape, in serial order.
func (e *crlEncoder) samples() []Revocation {
	var out []Revocation
	for _, byReason := range e.shapes {
		for _, byInvalidity := range byReason {
			for _, byTime := range byInvalidity {
				for _, r := range byTime {
					if r != nil {
						out = append(out, *r)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Revocation) int { return a.Serial.Cmp(b.Serial) })
	return out
}

// lintCRLSample builds the sample CRL with the real header, signs it with a throwaway key
// of the issuer's algorithm and lints it.
func lintCRLSample(h *crlHeader, samples []Revocation) (LintReport, error) {
	var entries []byte
	for i := range samples {
		entries = appendEntry(entries, &samples[i])
	}
	throwaway, err := h.alg.generateKey()
	if err != nil {
		return nil, fmt.Errorf("generate throwaway %s key for linting: %w", h.alg, err)
	}
	tbs := h.prefix(len(samples), len(entries))
	tbs = append(tbs, entries...)
	tbs = append(tbs, h.extensions...)
	sig, err := signParts(Issuer{Signer: throwaway}, h.alg, [][]byte{tbs}, len(tbs))
	if err != nil {
		return nil, fmt.Errorf("sign the CRL to lint: %w", err)
	}
	der := appendHeader(nil, tagSequence, len(tbs)+len(h.sigAlg)+tlvSize(len(sig)+1))
	der = append(der, tbs...)
	der = append(der, h.sigAlg...)
	der = append(der, bitStringHeader(len(sig))...)
	der = append(der, sig...)
	return lintCRL(der)
}

// signParts signs the TBS given in parts with issuer.Signer, then verifies the signature
// under the issuer certificate's key (the signer's own key for the throwaway).
func signParts(issuer Issuer, alg KeyAlgorithm, parts [][]byte, size int) ([]byte, error) {
	pub := issuer.Signer.Public()
	if issuer.Certificate != nil {
		pub = issuer.Certificate.PublicKey
	}
	hash := alg.hash()
	if hash == 0 { // Ed25519 signs the message itself, so it needs it whole
		msg := parts[0]
		if len(parts) > 1 {
			msg = make([]byte, 0, size)
			for _, p := range parts {
				msg = append(msg, p...)
			}
		}
		sig, err := issuer.Signer.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, msg, sig) {
			return nil, errors.New("the signature does not verify under the issuer's key: refusing it")
		}
		return sig, nil
	}
	hh := hash.New()
	for _, p := range parts {
		hh.Write(p)
	}
	digest := hh.Sum(nil)
	sig, err := issuer.Signer.Sign(rand.Reader, digest, hash)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	ok := false
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil
	}
	if !ok {
		return nil, errors.New("the signature does not verify under the issuer's key: refusing it")
	}
	return sig, nil
}
