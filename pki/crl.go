package pki

import (
	"bufio"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	"slices"
	"time"

	"github.com/zmap/zlint/v3/lint"

	"github.com/custos-pki/custos/keyalg"
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

// CRL describes one full RFC 5280 version 2 CRL of an issuer, or the set of CRLs that
// SignCRLSet splits into shards.
type CRL struct {
	Number     *big.Int  // the cRLNumber: strictly increasing and never reused per issuer
	ThisUpdate time.Time // when this CRL is issued
	NextUpdate time.Time // when the next one will be issued at the latest
	// MaxNextUpdate is the policy's bound on NextUpdate after ThisUpdate: DefaultMaxNextUpdate
	// for an issuing CA unless the workspace says otherwise, the plan's bound for a root. A
	// NextUpdate past it, or past the issuer's notAfter, is refused with a *LimitError.
	// Required.
	MaxNextUpdate time.Duration
	// Revoked yields the entries in strictly increasing serial order (ORDER BY serial), which
	// proves there are no duplicates without holding a million serials in a set, and makes
	// the CRL the same whoever builds it. It is read once, each entry encoded before the next
	// is asked for, so a source may reuse one Serial for them all. nil means no entries.
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

// SignedCRL is a signed CRL, ready to be written as DER or PEM as often as needed. SignCRL's
// is held in memory (a million entries take about 50 MB); the full CRL of a set is read from
// the set's spool as it is written.
type SignedCRL struct {
	outer   []byte // the header of the outer SEQUENCE
	prefix  []byte // the TBS from its header up to the first entry
	entries crlEntries
	// entriesLen is the size of the entries' encoding.
	entriesLen int
	suffix     []byte // the TBS extensions
	sigAlg     []byte
	sig        []byte
	count      int
	size       int
}

// crlEntries are the encoded entries of a CRL: every chunk whole, in order, or those of a
// spool.
type crlEntries struct {
	chunks [][]byte
	spool  *entrySpool // when set, the entries are the spool's
}

// each yields the entries' bytes in order and reports whether yield asked for more and the
// spool, if any, could be read. What it yields is good only until yield returns.
func (e *crlEntries) each(yield func([]byte) bool) bool {
	if e.spool != nil {
		return e.spool.each(yield)
	}
	for _, c := range e.chunks {
		if !yield(c) {
			return false
		}
	}
	return true
}

// readErr is why the entries' spool could not be read, if it could not: what was made from
// them is then incomplete.
func (e *crlEntries) readErr() error {
	if e.spool == nil {
		return nil
	}
	return e.spool.failed()
}

// at returns the encoded entry at position p.
func (e *crlEntries) at(p uint32) []byte {
	b := e.chunks[p>>chunkBits][p&(entryChunk-1):]
	return b[:tlvLen(b)]
}

// entryPos is where an entry starts: its chunk in the high bits, its offset in the low
// chunkBits. Chunks never split an entry.
func entryPos(chunk, offset int) uint32 { return uint32(chunk)<<chunkBits | uint32(offset) }

// Entries returns how many certificates the CRL lists.
func (c *SignedCRL) Entries() int { return c.count }

// Len returns the size of the DER encoding in bytes.
func (c *SignedCRL) Len() int { return c.size }

// tbs yields the to-be-signed bytes in parts and reports whether yield asked for more.
func (c *SignedCRL) tbs(yield func([]byte) bool) bool {
	return yield(c.prefix) && c.entries.each(yield) && yield(c.suffix)
}

func (c *SignedCRL) tbsLen() int { return len(c.prefix) + c.entriesLen + len(c.suffix) }

// der yields the whole DER encoding in parts.
func (c *SignedCRL) der(yield func([]byte) bool) {
	_ = yield(c.outer) && c.tbs(yield) && yield(c.sigAlg) && yield(bitStringHeader(len(c.sig))) && yield(c.sig)
}

// WriteTo writes the DER encoding to w. A shard's entries are written one by one, so give
// it a buffered writer (as workspace.WriteExclusive does).
func (c *SignedCRL) WriteTo(w io.Writer) (int64, error) {
	var n int64
	var err error
	c.der(func(p []byte) bool {
		var k int
		k, err = w.Write(p)
		n += int64(k)
		return err == nil
	})
	if err == nil {
		err = c.entries.readErr()
	}
	if err != nil {
		return n, fmt.Errorf("write CRL: %w", err)
	}
	return n, nil
}

// Bytes returns the DER encoding, for small CRLs that are easier handled whole; nil if the
// entries' spool cannot be read (WriteTo says why).
func (c *SignedCRL) Bytes() []byte {
	b := make([]byte, 0, c.size)
	c.der(func(p []byte) bool { b = append(b, p...); return true })
	if c.entries.readErr() != nil {
		return nil
	}
	return b
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
// id-ce-cRLNumber (2.5.29.20), id-ce-authorityKeyIdentifier (2.5.29.35) and
// id-ce-issuingDistributionPoint (2.5.29.28). Only the last is critical; the others leave
// the critical flag (default FALSE) out, as DER requires.
var (
	reasonExtPrefix     = []byte{0x30, 0x0A, 0x06, 0x03, 0x55, 0x1D, 0x15, 0x04, 0x03, 0x0A, 0x01} // + reason byte
	invalidityExtPrefix = []byte{0x30, 0x18, 0x06, 0x03, 0x55, 0x1D, 0x18, 0x04, 0x11}             // + GeneralizedTime
	oidCRLNumberDER     = []byte{0x06, 0x03, 0x55, 0x1D, 0x14}
	oidAKIDER           = []byte{0x06, 0x03, 0x55, 0x1D, 0x23}
	oidIDPDER           = []byte{0x06, 0x03, 0x55, 0x1D, 0x1C}
)

const (
	reasonExtSize     = 12
	invalidityExtSize = 26
	// maxEntrySize bounds one encoded entry: a 21-byte serial, two times, both extensions.
	maxEntrySize = 4 + 23 + 17 + 4 + reasonExtSize + invalidityExtSize
	// entryChunk is the size of the buffers the entries are written into: big enough that a
	// million entries take fifty, small enough that none is copied as the list grows.
	chunkBits  = 20
	entryChunk = 1 << chunkBits
	// maxChunks keeps every entry's position in 32 bits: 4 GiB of entries, some 80 million.
	maxChunks = 1 << (32 - chunkBits)
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
	alg        keyalg.Algorithm
	sigAlg     []byte
	issuer     []byte
	aki        []byte
	number     *big.Int
	thisUpdate time.Time
	nextUpdate time.Time
	extensions []byte // [0] EXPLICIT Extensions: authority key identifier, CRL number, and a shard's distribution point
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

// forShard returns the header of the shard published at url: the same but for a critical
// issuingDistributionPoint naming url.
func (h *crlHeader) forShard(url string) *crlHeader {
	s := *h
	s.extensions = crlExtensions(h.aki, h.number, url)
	return &s
}

// crlExtensions encodes the authority key identifier, the CRL number and, for a shard at
// idpURL, its issuingDistributionPoint.
func crlExtensions(aki []byte, number *big.Int, idpURL string) []byte {
	keyID := appendTLV(nil, tagContext0Prim, aki)
	akiValue := appendTLV(nil, tagSequence, keyID)
	exts := appendTLV(nil, tagSequence, appendTLV(slices.Clone(oidAKIDER), tagOctetString, akiValue))
	numberValue := appendInteger(nil, number)
	exts = appendTLV(exts, tagSequence, appendTLV(slices.Clone(oidCRLNumberDER), tagOctetString, numberValue))
	if idpURL != "" {
		exts = append(exts, idpExtension(idpURL)...)
	}
	return appendTLV(nil, tagContext0, appendTLV(nil, tagSequence, exts))
}

// idpExtension encodes a critical issuingDistributionPoint (RFC 5280 5.2.5) that scopes a
// shard: distributionPoint fullName, the shard's URL, which is the one its certificates name
// in their CRL distribution point; and onlyContainsUserCerts, since the issuing CA certifies
// only end entities. A verifier then takes the shard as complete for the certificates that
// name it, and for no others.
func idpExtension(url string) []byte {
	uri := appendTLV(nil, 0x86, []byte(url))                                                   // GeneralName uniformResourceIdentifier [6] IA5String
	fullName := appendTLV(nil, 0xA0, uri)                                                      // DistributionPointName fullName [0] GeneralNames
	point := appendTLV(nil, 0xA0, fullName)                                                    // distributionPoint [0], explicit around the CHOICE
	value := appendTLV(nil, tagSequence, append(point, 0x81, 0x01, 0xFF))                      // onlyContainsUserCerts [1] TRUE
	ext := appendTLV(append(slices.Clone(oidIDPDER), 0x01, 0x01, 0xFF), tagOctetString, value) // critical TRUE
	return appendTLV(nil, tagSequence, ext)
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
//
// NextUpdate must not pass crl.MaxNextUpdate after ThisUpdate nor the issuer's notAfter:
// see LatestNextUpdate.
func SignCRL(crl CRL, issuer Issuer) (*SignedCRL, LintReport, error) {
	h, err := newCRLHeader(crl, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	enc := newCRLEncoder(h, issuer.Certificate)
	if err := enc.read(crl.Revoked, nil); err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	linter, err := newSampleLinter(h.alg)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	report, err := linter.lint(h, enc.samples(&enc.shapes))
	if err != nil {
		return nil, report, fmt.Errorf("sign CRL: %w", err)
	}
	c := h.unsigned(crlEntries{chunks: enc.chunks}, enc.count, enc.size)
	signed, err := c.sign(issuer.Signer, h.alg, nil)
	if err == nil {
		err = verifySigned(issuer.Certificate.PublicKey, h.alg, signed, c.sig)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL: %w", err)
	}
	return c, report, nil
}

// unsigned assembles the CRL of header h and the given entries, still to be signed.
func (h *crlHeader) unsigned(entries crlEntries, count, size int) *SignedCRL {
	return &SignedCRL{
		prefix:     h.prefix(count, size),
		entries:    entries,
		entriesLen: size,
		suffix:     h.extensions,
		sigAlg:     h.sigAlg,
		count:      count,
	}
}

// sign signs the TBS with signer and completes the encoding. It returns what was signed
// (the digest, or for Ed25519 the TBS itself) for verifySigned. scratch, when not nil,
// gathers small parts such as a shard's entries before they are hashed.
func (c *SignedCRL) sign(signer crypto.Signer, alg keyalg.Algorithm, scratch []byte) ([]byte, error) {
	signed := c.toSign(alg, scratch)
	return signed, c.signAs(signer, alg, signed)
}

// toSign returns what the issuer signs: the digest of the TBS, or for Ed25519, which signs
// the message itself, the TBS whole. scratch is as for sign.
func (c *SignedCRL) toSign(alg keyalg.Algorithm, scratch []byte) []byte {
	hash := signedHash(alg)
	if hash == 0 {
		signed := make([]byte, 0, c.tbsLen())
		c.tbs(func(p []byte) bool { signed = append(signed, p...); return true })
		return signed
	}
	h := hash.New()
	buf := scratch[:0]
	c.tbs(func(p []byte) bool {
		if len(buf)+len(p) > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		if len(p) > cap(buf) {
			h.Write(p)
		} else {
			buf = append(buf, p...)
		}
		return true
	})
	h.Write(buf)
	return h.Sum(nil)
}

// signAs has signer sign what toSign returned and completes the encoding.
func (c *SignedCRL) signAs(signer crypto.Signer, alg keyalg.Algorithm, signed []byte) error {
	sig, err := signer.Sign(rand.Reader, signed, signedHash(alg))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	c.seal(sig)
	return nil
}

// seal completes the encoding with signature sig.
func (c *SignedCRL) seal(sig []byte) {
	tbsLen := c.tbsLen()
	c.sig = sig
	c.outer = appendHeader(nil, tagSequence, tbsLen+len(c.sigAlg)+tlvSize(len(c.sig)+1))
	c.size = len(c.outer) + tbsLen + len(c.sigAlg) + tlvSize(len(c.sig)+1)
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
	if err := CheckNextUpdate(ic, this, next, crl.MaxNextUpdate); err != nil {
		return nil, err
	}
	number := new(big.Int).Set(crl.Number)
	return &crlHeader{
		alg:        alg,
		sigAlg:     signatureAlgorithmDER(alg),
		issuer:     ic.RawSubject,
		aki:        ic.SubjectKeyId,
		number:     number,
		thisUpdate: this,
		nextUpdate: next,
		extensions: crlExtensions(ic.SubjectKeyId, number, ""),
	}, nil
}

// Entry shapes: what distinguishes one entry's DER from another's beyond the values is its
// reason (at most 9), whether it has an invalidity date, whether its revocation time is a
// UTCTime or a GeneralizedTime, and whether its serial needs a leading zero.
const shapeCount = 10 * 2 * 2 * 2

func shapeOf(r *Revocation) int {
	return int(r.Reason)<<3 | boolInt(!r.InvalidityDate.IsZero())<<2 | boolInt(timeTag(r.RevokedAt) == tagGeneralizedTime)<<1 | boolInt(r.Serial.BitLen()%8 == 0)
}

// shapeSet holds, per shape, the position plus one of the first entry of that shape; zero
// for none. An array, so that noting the shape of a million entries costs no hashing.
type shapeSet [shapeCount]uint32

// note notes the entry at pos, of the given shape, and reports whether it is the first of
// its shape.
func (s *shapeSet) note(shape int, pos uint32) bool {
	if s[shape] != 0 {
		return false
	}
	s[shape] = pos + 1
	return true
}

// crlEncoder checks and encodes entries into chunks as they come.
type crlEncoder struct {
	header    *crlHeader
	notBefore time.Time
	chunks    [][]byte
	size      int
	count     int
	prev      big.Int
	shapes    shapeSet
	// recycle, when set, gives the buffer of each new chunk, and the encoder lets go of the
	// chunk before: a CRL set's sorter spools the chunks it is done with and recycles them.
	recycle func() []byte
}

func newCRLEncoder(h *crlHeader, issuer *x509.Certificate) *crlEncoder {
	return &crlEncoder{header: h, notBefore: issuer.NotBefore.UTC().Truncate(time.Second)}
}

// read encodes every entry of src; each, when not nil, is told where each one went: its
// position, the chunk it is in (as far as written) and its shape.
func (e *crlEncoder) read(src iter.Seq2[Revocation, error], each func(pos uint32, chunk []byte, shape int)) error {
	if src == nil {
		return nil
	}
	for r, err := range src {
		if err != nil {
			return fmt.Errorf("read revoked certificates: %w", err)
		}
		pos, shape, err := e.add(&r)
		if err != nil {
			return err
		}
		if each != nil {
			each(pos, e.chunks[len(e.chunks)-1], shape)
		}
	}
	return nil
}

// add checks one entry and appends its encoding; it returns where the entry starts and its
// shape, and keeps the first entry of each shape for the linted sample.
func (e *crlEncoder) add(r *Revocation) (pos uint32, shape int, err error) {
	if err := checkSerial(r.Serial); err != nil {
		return 0, 0, fmt.Errorf("revoked certificate %d: %w", e.count+1, err)
	}
	if e.count > 0 && r.Serial.Cmp(&e.prev) <= 0 {
		return 0, 0, fmt.Errorf("revoked serial %s comes after %s: entries must come in strictly increasing serial order (ORDER BY serial), each serial once",
			SerialHex(r.Serial), SerialHex(&e.prev))
	}
	revoked := r.RevokedAt.UTC().Truncate(time.Second)
	if revoked.IsZero() {
		return 0, 0, fmt.Errorf("revoked serial %s has no revocation time", SerialHex(r.Serial))
	}
	if revoked.After(e.header.thisUpdate) {
		return 0, 0, fmt.Errorf("revoked serial %s was revoked at %s, after the CRL's thisUpdate %s", SerialHex(r.Serial), revoked.Format(timeLayout), e.header.thisUpdate.Format(timeLayout))
	}
	if revoked.Before(e.notBefore) {
		return 0, 0, fmt.Errorf("revoked serial %s was revoked at %s, before its issuer became valid (%s)", SerialHex(r.Serial), revoked.Format(timeLayout), e.notBefore.Format(timeLayout))
	}
	if !r.Reason.Valid() {
		return 0, 0, fmt.Errorf("revoked serial %s has reason %s, which Custos does not write", SerialHex(r.Serial), r.Reason)
	}
	invalid := r.InvalidityDate.UTC().Truncate(time.Second)
	if !r.InvalidityDate.IsZero() && invalid.After(revoked) {
		return 0, 0, fmt.Errorf("revoked serial %s has invalidity date %s after its revocation at %s", SerialHex(r.Serial), invalid.Format(timeLayout), revoked.Format(timeLayout))
	}
	entry := Revocation{Serial: r.Serial, RevokedAt: revoked, Reason: r.Reason}
	if !r.InvalidityDate.IsZero() {
		entry.InvalidityDate = invalid
	}

	if len(e.chunks) == 0 || cap(e.chunks[len(e.chunks)-1])-len(e.chunks[len(e.chunks)-1]) < maxEntrySize {
		if len(e.chunks) == maxChunks {
			return 0, 0, fmt.Errorf("revoked certificate %d: the CRL would pass 4 GiB", e.count+1)
		}
		if e.recycle == nil {
			e.chunks = append(e.chunks, make([]byte, 0, entryChunk))
		} else {
			if n := len(e.chunks); n > 0 {
				e.chunks[n-1] = nil
			}
			e.chunks = append(e.chunks, e.recycle())
		}
	}
	last := &e.chunks[len(e.chunks)-1]
	before := len(*last)
	*last = appendEntry(*last, &entry)
	e.size += len(*last) - before
	e.count++
	e.prev.Set(r.Serial)
	pos = entryPos(len(e.chunks)-1, before)
	shape = shapeOf(&entry)
	e.shapes.note(shape, pos)
	return pos, shape, nil
}

// samples returns the encoded entries a shape set notes, in serial order, from the chunks
// the encoder holds.
func (e *crlEncoder) samples(shapes *shapeSet) [][]byte {
	all := crlEntries{chunks: e.chunks}
	out, _ := samplesOf(func(p uint32) ([]byte, error) { return all.at(p), nil }, shapes)
	return out
}

// samplesOf returns the entries a shape set notes, in serial order, each read with at.
func samplesOf(at func(pos uint32) ([]byte, error), shapes *shapeSet) ([][]byte, error) {
	var pos []uint32
	for _, p := range shapes {
		if p != 0 {
			pos = append(pos, p-1)
		}
	}
	slices.Sort(pos) // entries were appended in serial order
	out := make([][]byte, len(pos))
	for i, p := range pos {
		var err error
		if out[i], err = at(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sampleLinter lints the sample CRLs of one signing: SignCRL's one, or the full CRL's and
// every shard's of a CRLSet.
type sampleLinter struct {
	alg       keyalg.Algorithm
	throwaway crypto.Signer // of the issuer's algorithm
	reg       lint.Registry
	sig       []byte // the throwaway's signature of the first sample
}

func newSampleLinter(alg keyalg.Algorithm) (*sampleLinter, error) {
	throwaway, err := generateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("generate throwaway %s key for linting: %w", alg, err)
	}
	reg, err := crlRegistry()
	if err != nil {
		return nil, err
	}
	return &sampleLinter{alg: alg, throwaway: throwaway, reg: reg}, nil
}

// lint builds the sample CRL of header h with the given encoded entries, signs it with the
// throwaway key and lints it. Later samples carry the first one's signature: zlint reads a
// CRL's signature for its encoding and never checks it against a key (it has none), so a
// thousand shards need not cost a thousand more signatures to lint. After the first call,
// lint may be called from several goroutines at once.
func (l *sampleLinter) lint(h *crlHeader, samples [][]byte) (LintReport, error) {
	c := h.unsigned(crlEntries{chunks: samples}, len(samples), lenAll(samples))
	if l.sig == nil {
		if _, err := c.sign(l.throwaway, h.alg, nil); err != nil {
			return nil, fmt.Errorf("sign the CRL to lint: %w", err)
		}
		l.sig = c.sig
	} else {
		c.seal(l.sig)
	}
	return lintCRLWith(l.reg, c.Bytes())
}

func lenAll(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// verifySigned checks that sig is pub's signature over signed, as sign returned it.
func verifySigned(pub crypto.PublicKey, alg keyalg.Algorithm, signed, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = signedHash(alg) == 0 && ed25519.Verify(k, signed, sig)
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, signed, sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, signedHash(alg), signed, sig) == nil
	}
	if !ok {
		return errors.New("the signature does not verify under the issuer's key: refusing it")
	}
	return nil
}
