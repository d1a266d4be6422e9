package record

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// Signed notes (C2SP signed-note, golang.org/x/mod/sumdb/note) carry what Custos signs outside
// a PDF: the record log's checkpoints, and the root's attestations of quorum operations. A note
// is its text, a blank line, and one line per signature: "— <key name> <base64(key ID ||
// signature)>". The keys are the root's and the record signer's, on their tokens, reached as
// crypto.Signer; a note key is named after its certificate and checked against it.
//
// The signature types, as signed-note assigns them:
//
//   - Ed25519: type 0x01; the key ID is SHA-256(name || 0x0A || 0x01 || the 32-byte public
//     key)[:4] and the signature is Ed25519 over the note text.
//   - ECDSA (P-256, P-384): type 0x02; the key ID is SHA-256 of the DER SubjectPublicKeyInfo,
//     first four bytes, and the signature is ASN.1 ECDSA over the SHA-256 of the note text.
//   - RSA, which signed-note assigns no byte: type 0xff followed by the identifier
//     "custos-rsa-pkcs1-sha256"; the key ID is SHA-256(name || 0x0A || 0xff || identifier ||
//     DER SubjectPublicKeyInfo)[:4] and the signature RSASSA-PKCS1-v1_5 with SHA-256.

// rsaNoteType is the identifier of Custos's RSA note signatures, after the 0xff byte.
const rsaNoteType = "custos-rsa-pkcs1-sha256"

// NoteKeyName is the signed-note name of the key certified by cert, for role "root" or
// "record-signer": "custos/<role>/<the first 16 hex digits of the certificate's SHA-256>".
// The name says which certificate to check a signature against.
func NoteKeyName(role string, cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "custos/" + role + "/" + hex.EncodeToString(sum[:8])
}

// Roles of the keys that sign notes.
const (
	RoleRoot         = "root"
	RoleRecordSigner = "record-signer"
)

// noteKey is what a signer and a verifier of one key share: its name, key ID and how it signs.
type noteKey struct {
	name string
	hash uint32
	pub  crypto.PublicKey
}

func newNoteKey(name string, pub crypto.PublicKey) (*noteKey, error) {
	k := &noteKey{name: name, pub: pub}
	h := sha256.New()
	switch p := pub.(type) {
	case ed25519.PublicKey:
		h.Write([]byte(name + "\n\x01"))
		h.Write(p)
	case *ecdsa.PublicKey:
		spki, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("note key %s: %w", name, err)
		}
		h.Write(spki)
	case *rsa.PublicKey:
		spki, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("note key %s: %w", name, err)
		}
		h.Write([]byte(name + "\n\xff" + rsaNoteType))
		h.Write(spki)
	default:
		return nil, fmt.Errorf("note key %s: a %T key cannot sign notes", name, pub)
	}
	k.hash = binary.BigEndian.Uint32(h.Sum(nil))
	return k, nil
}

func (k *noteKey) Name() string    { return k.name }
func (k *noteKey) KeyHash() uint32 { return k.hash }

// Verify checks sig over msg.
func (k *noteKey) Verify(msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	switch p := k.pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(p, msg, sig)
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, digest[:], sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// noteSigner signs notes with a crypto.Signer; ctx reaches a key that takes one (an HSM key).
type noteSigner struct {
	*noteKey
	ctx context.Context
	key crypto.Signer
}

// Sign signs msg, the note's text.
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	key := ctxSigner{ctx: s.ctx, Signer: s.key}
	if _, ok := s.pub.(ed25519.PublicKey); ok {
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	digest := sha256.Sum256(msg)
	return key.Sign(rand.Reader, digest[:], crypto.SHA256)
}

// NoteSigner is a signer of notes for key, certified by cert in role (RoleRoot or
// RoleRecordSigner). It refuses a key that does not match its certificate.
func NoteSigner(ctx context.Context, role string, cert *x509.Certificate, key crypto.Signer) (note.Signer, error) {
	if cert == nil || key == nil {
		return nil, errors.New("note signer: no key or certificate")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("note signer: the key is not the one %q certifies", cert.Subject.CommonName)
	}
	k, err := newNoteKey(NoteKeyName(role, cert), cert.PublicKey)
	if err != nil {
		return nil, err
	}
	return &noteSigner{noteKey: k, ctx: ctx, key: key}, nil
}

// NoteVerifier checks signatures by the key cert certifies in role.
func NoteVerifier(role string, cert *x509.Certificate) (note.Verifier, error) {
	return newNoteKey(NoteKeyName(role, cert), cert.PublicKey)
}

// SignNote signs msg with each signer: a text ending in a newline, or a signed note to which
// their signatures are added.
func SignNote(msg []byte, signers ...note.Signer) ([]byte, error) {
	for _, s := range signers {
		if s == nil {
			return nil, errors.New("sign note: no signer")
		}
	}
	n := &note.Note{Text: string(msg)}
	if bytes.Contains(msg, []byte("\n\n— ")) {
		_, err := note.Open(msg, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return nil, fmt.Errorf("sign note: %w", err)
		}
		n = unverified.Note
	}
	out, err := note.Sign(n, signers...)
	if err != nil {
		return nil, fmt.Errorf("sign note: %w", err)
	}
	return out, nil
}

// OpenNote checks a note's signatures by the given verifiers and returns its text and the
// names of the keys whose signatures verified. A signature by a given key that does not verify
// is an error; signatures by other keys are ignored. A note no given key signed is an error.
func OpenNote(msg []byte, verifiers ...note.Verifier) (text string, signedBy []string, err error) {
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			var names []string
			for _, v := range verifiers {
				names = append(names, v.Name())
			}
			return "", nil, fmt.Errorf("the note is signed by none of %v", names)
		}
		return "", nil, fmt.Errorf("the note does not verify: %w", err)
	}
	for _, s := range n.Sigs {
		signedBy = append(signedBy, s.Name)
	}
	return n.Text, signedBy, nil
}
