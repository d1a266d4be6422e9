package quorum

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/vault/shamir"

	"github.com/custos-pki/custos/internal/secret"
)

// SecretLen is the length of a quorum secret in bytes.
const SecretLen = 32

// Everything secret is derived from the quorum secret S with HKDF-SHA256 (salt: the ceremony
// id), each value with its own label, so no derived value tells anything about another or
// about S. The digest and the commitments are public; they have labels of their own too.
const (
	labelKEK    = "custos/v1/backup-kek"
	labelDigest = "custos/v1/secret-digest"
	// v2 covers the format version and the threshold as well as the ceremony id, epoch,
	// number and share bytes of v1; v3 also the root certificate's SHA-256.
	labelCommit = "custos/v3/share-commitment"
)

// PIN names a token PIN derived from the quorum secret; its value is the HKDF label.
type PIN string

// The PINs derived from the quorum secret.
const (
	RootSOPIN   PIN = "custos/v1/root-token/so-pin"       // the root token's security officer
	RootUserPIN PIN = "custos/v1/root-token/user-pin"     // the root token's user, who signs with the root key
	OpsSOPIN    PIN = "custos/v1/operations-token/so-pin" // the operations token's security officer, when the root ceremony made it
)

// Derive returns the PIN for quorum secret s of ceremony ceremonyID: 32 hex characters
// (128 bits), which every token accepts. The caller owns the result.
func (p PIN) Derive(s []byte, ceremonyID string) []byte {
	k := derive(s, ceremonyID, string(p), 16)
	defer secret.Zero(k)
	pin := make([]byte, hex.EncodedLen(len(k)))
	hex.Encode(pin, k)
	return pin
}

// KEK returns the AES-256 key that wraps the root key's backup. The caller owns the result.
func KEK(s []byte, ceremonyID string) []byte {
	return derive(s, ceremonyID, labelKEK, 32)
}

// Digest is the public digest of quorum secret s at an epoch: a reconstruction is checked
// against it before any login, because a wrong PIN burns one of the token's tries.
func Digest(s []byte, ceremonyID string, epoch int) []byte {
	return derive(s, ceremonyID, fmt.Sprintf("%s/epoch-%d", labelDigest, epoch), 32)
}

// derive returns HKDF-SHA256(s, salt = ceremony id, info = label).
func derive(s []byte, ceremonyID, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, s, []byte(ceremonyID), label, n)
	if err != nil {
		panic("quorum: hkdf: " + err.Error()) // only for n beyond 255*32
	}
	return k
}

// Commitment binds the share to every field it carries (format version, ceremony id, epoch,
// number, threshold and bytes) and to the root certificate it was made for. It is public,
// kept beside the quorum, and lets one share be checked at entry without the others.
// CeremonyID and RootSHA256 must be set, as Split sets them and a Collector does once the
// share's ceremony hash matched.
//
// Because it covers the root certificate, nobody without the share can make a commitment
// for another certificate: a workspace whose root certificate was replaced (with a quorum
// statement signed by another key) refuses every real share at entry, before anything is
// combined or any module loaded.
func (s Share) Commitment() []byte {
	m := hmac.New(sha256.New, []byte(labelCommit))
	var hdr [9]byte
	hdr[0] = shareVersion
	binary.BigEndian.PutUint32(hdr[1:5], uint32(len(s.CeremonyID)))
	m.Write(hdr[:5])
	m.Write([]byte(s.CeremonyID))
	binary.BigEndian.PutUint32(hdr[1:5], uint32(len(s.RootSHA256)))
	m.Write(hdr[1:5])
	m.Write(s.RootSHA256)
	binary.BigEndian.PutUint16(hdr[5:7], uint16(s.Epoch))
	hdr[7], hdr[8] = byte(s.Number), byte(s.Threshold)
	m.Write(hdr[5:9])
	m.Write(s.Bytes)
	return m.Sum(nil)
}

// NewSecret draws a quorum secret: SecretLen bytes from crypto/rand XOR tokenRandom, as many
// bytes from the HSM's own generator, so a flaw in either alone does not weaken it. It does
// not zero tokenRandom; the caller owns the result.
func NewSecret(tokenRandom []byte) ([]byte, error) {
	if len(tokenRandom) != SecretLen {
		return nil, fmt.Errorf("quorum secret: the token gave %d random bytes, not %d", len(tokenRandom), SecretLen)
	}
	s := make([]byte, SecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("quorum secret: %w", err)
	}
	for i := range s {
		s[i] ^= tokenRandom[i]
	}
	return s, nil
}

// Split cuts quorum secret s into n shares, any m of which rebuild it, numbered 1 to n, for
// the root of ceremonyID whose certificate has the SHA-256 rootSHA256. It does not zero s;
// the caller owns the shares and wipes them.
func Split(s []byte, ceremonyID string, rootSHA256 []byte, epoch, n, m int) ([]Share, error) {
	if len(s) != SecretLen {
		return nil, fmt.Errorf("split the quorum secret: %d bytes, not %d", len(s), SecretLen)
	}
	if len(rootSHA256) != sha256.Size {
		return nil, fmt.Errorf("split the quorum secret: the root certificate's SHA-256 has %d bytes, not %d", len(rootSHA256), sha256.Size)
	}
	parts, err := shamir.Split(s, n, m)
	if err != nil {
		return nil, fmt.Errorf("split the quorum secret: %w", err)
	}
	shares := make([]Share, n)
	for i, p := range parts {
		shares[i] = Share{CeremonyID: ceremonyID, RootSHA256: rootSHA256, Epoch: epoch, Number: i + 1, Threshold: m, Bytes: p}
	}
	return shares, nil
}
