package pki

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
)

// CRLShards is how an issuing CA splits its device CRL into shards small enough for a device
// to hold. Each device certificate names its own shard's URL as its CRL distribution point;
// the shard of a certificate is ShardOf(serial, Count), so it never changes, and shard i is
// published at BaseURL/IssuerID/i.crl. The full CRL (no issuingDistributionPoint) is still
// signed beside the shards for the back office and for certificates that name no shard.
//
// The workspace records BaseURL and Count with the issuing CA when it is created and never
// changes them: a certificate issued before a change would name a shard that no longer lists
// it.
type CRLShards struct {
	BaseURL  string // http or https, without a trailing slash, query or fragment: "http://pki.acme.example/crl"
	IssuerID string // the issuing CA's id in the workspace, a URL path segment such as "ica-0a1b2c3d4e"
	Count    int    // how many shards: 1 to MaxCRLShards
}

// MaxCRLShards bounds CRLShards.Count: a million devices in 1,000 shards take about 50 KiB
// each; more than 65,536 shards would mostly be empty.
const MaxCRLShards = 1 << 16

// DefaultShardBudget is the size a shard should stay within, in bytes of DER: what the
// devices Custos was designed for keep for revocation data.
const DefaultShardBudget = 64 << 10

// Check refuses a BaseURL that is not a plain http or https URL, an IssuerID that is not a
// safe path segment, or a Count out of range.
func (s CRLShards) Check() error {
	if err := s.CheckBase(); err != nil {
		return err
	}
	if s.IssuerID == "" || s.IssuerID == "." || s.IssuerID == ".." || strings.Trim(s.IssuerID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
		return fmt.Errorf("CRLShards.IssuerID %q must be the issuing CA's id: letters, digits, '.', '-' and '_'", s.IssuerID)
	}
	return nil
}

// CheckBase is Check without IssuerID: what can be checked of a new issuing CA's options
// before it, and so its id, exists.
func (s CRLShards) CheckBase() error {
	if s.BaseURL == "" {
		return fmt.Errorf("CRLShards.BaseURL is empty: give the http URL under which the shards are published")
	}
	if err := checkURL("CRLShards.BaseURL", s.BaseURL, "http", "https"); err != nil {
		return err
	}
	for _, c := range []byte(s.BaseURL) {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("CRLShards.BaseURL %q has a space or a character outside ASCII: percent-encode it", s.BaseURL)
		}
	}
	u, _ := url.Parse(s.BaseURL)
	switch {
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s.BaseURL, "?#"):
		return fmt.Errorf("CRLShards.BaseURL %q has a query or fragment: the shard path is appended to it, so give a plain URL", s.BaseURL)
	case u.User != nil:
		return fmt.Errorf("CRLShards.BaseURL %q carries a user name: a CRL is public, so leave it out", s.BaseURL)
	case strings.HasSuffix(s.BaseURL, "/"):
		return fmt.Errorf("CRLShards.BaseURL %q ends with /: leave it out, the shard path /<issuer>/<shard>.crl is appended", s.BaseURL)
	}
	if s.Count < 1 || s.Count > MaxCRLShards {
		return fmt.Errorf("CRLShards.Count is %d: it must be between 1 and %d", s.Count, MaxCRLShards)
	}
	return nil
}

// URL returns where shard i is published: BaseURL/IssuerID/i.crl, i in decimal.
func (s CRLShards) URL(shard int) string {
	return s.BaseURL + "/" + s.IssuerID + "/" + strconv.Itoa(shard) + ".crl"
}

// ShardOf returns the shard, from 0 to count-1, of the certificate with serial number
// serial. It is fixed forever, since certificates name their shard for as long as they
// live, and it is defined so that anyone can compute it without Custos:
//
//  1. take the content octets of the certificate's serialNumber INTEGER, as DER encodes
//     them: the serial's big-endian bytes without leading zeros, with one 0x00 in front
//     when the first byte is 0x80 or more (so 0x80 is 00 80, and 1 is 01);
//  2. compute their SHA-256;
//  3. read the first 8 bytes of the digest as a big-endian unsigned 64-bit integer;
//  4. the shard is that integer modulo count.
//
// Hashing spreads any serials evenly, random ones as NewSerial makes and sequential ones
// alike. pki/testdata/crl-shards.txt holds vectors computed with Python's hashlib. serial
// must be positive and count at least 1.
func ShardOf(serial *big.Int, count int) int {
	if count <= 1 {
		return 0
	}
	var buf [maxSerialContent]byte
	n := integerContentSize(serial)
	if n > len(buf) {
		// Longer than RFC 5280 allows: still stable, just not on the stack.
		return shardOfContent(serial.FillBytes(make([]byte, n)), count)
	}
	return shardOfContent(serial.FillBytes(buf[:n]), count)
}

// maxSerialContent is the longest serial RFC 5280 allows, in content octets.
const maxSerialContent = 20

func shardOfContent(content []byte, count int) int {
	sum := sha256.Sum256(content)
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(count))
}
