package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
)

// Signed messages are what a CA key signs that is neither a certificate nor a CRL (the
// quorum statement the root signs): the key signs the message as it signs certificates
// (SHA-256 for P-256 and RSA-3072, SHA-384 for P-384 and RSA-4096, PKCS #1 v1.5 for RSA,
// Ed25519 over the message itself), so a verifier needs only the certificate, and
// `openssl dgst -sha256|-sha384 -verify` checks the signature with the certificate's public key.

// MessageSignatureAlgorithm is how the key in a certificate of public key pub signs messages.
func MessageSignatureAlgorithm(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	a, err := KeyAlgorithmOf(pub)
	if err != nil {
		return x509.UnknownSignatureAlgorithm, err
	}
	return signatureAlgorithm(a), nil
}

// SignMessage signs msg with key, as MessageSignatureAlgorithm says for its public key. The
// message should name what it is in its first bytes, so that it can never be taken for a
// certificate, a CRL or another kind of message signed by the same key.
func SignMessage(key crypto.Signer, msg []byte) ([]byte, error) {
	a, err := KeyAlgorithmOf(key.Public())
	if err != nil {
		return nil, fmt.Errorf("sign message: %w", err)
	}
	h := signedHash(a)
	in := msg
	if h != 0 {
		d := h.New()
		d.Write(msg)
		in = d.Sum(nil)
	}
	sig, err := key.Sign(rand.Reader, in, h)
	if err != nil {
		return nil, fmt.Errorf("sign message: %w", err)
	}
	return sig, nil
}

// CheckMessageSignature checks that sig is the signature of the key cert certifies over msg.
func CheckMessageSignature(cert *x509.Certificate, msg, sig []byte) error {
	alg, err := MessageSignatureAlgorithm(cert.PublicKey)
	if err != nil {
		return err
	}
	if err := cert.CheckSignature(alg, msg, sig); err != nil {
		return fmt.Errorf("the signature does not verify under %q: %w", cert.Subject.CommonName, err)
	}
	return nil
}
