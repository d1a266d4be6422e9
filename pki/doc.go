// Package pki makes the certificates and CRLs of a Custos PKI: a self-signed root, an
// issuing CA under it, a record signer for PDF records, and device identities; and full
// CRLs of any size. It is pure crypto/x509 over crypto.Signer: keys live in an HSM and are
// reached only through that interface, so nothing here talks to a token.
//
// Everything is lint-then-sign: what a CA would sign is first signed with a throwaway
// software key and checked with zlint, and the CA's own key signs only what passed. Then
// the result is checked again: same to-be-signed bytes, a signature that verifies under the
// issuer certificate, and (for certificates) zlint once more.
//
// Fingerprints are SHA-256, shown as grouped hex and as PGP words for reading aloud.
package pki
