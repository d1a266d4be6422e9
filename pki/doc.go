// Package pki makes the certificates and CRLs of a Custos PKI: a self-signed root, an
// issuing CA under it, a record signer for PDF records, and device identities; full CRLs
// of any size, and sets of CRL shards small enough for a device to hold. It is pure
// crypto/x509 over crypto.Signer: keys live in an HSM and are reached only through that
// interface, so nothing here talks to a token or writes a file.
//
// Everything is lint-then-sign: what a CA would sign is first signed with a throwaway
// software key and checked with zlint, and the CA's own key signs only what passed. Then
// the result is checked again: same to-be-signed bytes, a signature that verifies under the
// issuer certificate, and (for certificates) zlint once more.
//
// # Devices that live ten years
//
// An issuing CA states what it may certify: IssuingCA.ExtKeyUsages (clientAuth by default,
// serverAuth when asked, never anyExtendedKeyUsage; ParseExtKeyUsages reads
// "clientAuth,serverAuth"), IssuingCA.Policies (ParsePolicy reads an OID) and
// IssuingCA.CAIssuersURL, where the root certificate is published. Issue refuses a
// certificate whose extended key usage or policies its issuer does not allow.
//
// An issuing CA may split its device CRL into shards, CRLShards{BaseURL, IssuerID, Count}:
// the workspace records BaseURL and Count with the issuing CA and never changes them. A
// device certificate issued with DeviceIdentity.CRLShards carries the CRL distribution
// point CRLShards.URL(ShardOf(serial, Count)), BaseURL/IssuerID/<shard>.crl. ShardOf is
// fixed forever (see its documentation and testdata/crl-shards.txt). SignCRLSet signs,
// under one CRL number, the full CRL (no issuingDistributionPoint, for the back office and
// for certificates that name no shard) and every shard (a critical issuingDistributionPoint
// naming exactly the shard's URL, onlyContainsUserCerts), from one pass over the
// revocations, the encoded entries waiting in a Spool file rather than in memory; it hands
// each CRL to a CRLSetWriter as soon as it is signed. CRLSet.Largest and
// CRLSet.OverBudget(DefaultShardBudget) say whether the shards fit the devices. Each
// SignedCRL writes itself with WriteTo or WritePEM wherever the caller chooses.
//
// Limits are typed so that a command line can exit 2 with them: a certificate never
// outlives its issuer (Issue refuses it rather than shortening it), and a CRL's nextUpdate
// never passes its issuer's notAfter nor CRL.MaxNextUpdate after thisUpdate (the policy's
// bound: DefaultMaxNextUpdate, 366 days, for an issuing CA; the plan's for a root). Both
// are a *LimitError naming the date asked for, the limit and what sets it;
// LatestNextUpdate computes the limit beforehand.
//
// Fingerprints are SHA-256, shown as grouped hex and as PGP words for reading aloud.
package pki
