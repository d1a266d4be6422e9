package record

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/digitorus/pkcs7"
)

// This file writes the record's signature: a detached CMS SignedData (RFC 5652) over the
// SHA-256 of the signed bytes, with the signed attributes a PDF signature carries (content
// type, message digest, signing time) and the signer's certificate chain. It is written from
// the digest, not the content, so that a record of tens of megabytes is never copied to be
// signed; it is the structure pkcs7.NewSignedData, AddSignerChain and Detach make, and
// Verify reads it back with that package.

type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT
}

type cmsSignedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo struct{ ContentType asn1.ObjectIdentifier }
	Certificates     asn1.RawValue
	SignerInfos      []cmsSignerInfo `asn1:"set"`
}

type cmsSignerInfo struct {
	Version            int
	Signer             cmsIssuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

type cmsIssuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue // a SET of one value
}

// signedData is the detached CMS signature, by key with s's certificate and chain, of content
// whose SHA-256 is digest.
func signedData(digest []byte, s *Signer, key crypto.Signer) ([]byte, error) {
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("sign record: %w", err) }
	attrs, err := signedAttributes(digest, time.Now().UTC())
	if err != nil {
		return fail(err)
	}
	// The signature covers the attributes' DER as a SET OF; they are carried as [0] IMPLICIT.
	set := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: attrs}
	toSign, err := asn1.Marshal(set)
	if err != nil {
		return fail(err)
	}
	var sig []byte
	var alg asn1.ObjectIdentifier
	switch key.Public().(type) {
	case ed25519.PublicKey: // signs the attributes themselves
		alg = pkcs7.OIDEncryptionAlgorithmEDDSA25519
		sig, err = key.Sign(rand.Reader, toSign, crypto.Hash(0))
	default:
		h := crypto.SHA256.New()
		h.Write(toSign)
		if alg, err = signatureAlgorithm(key.Public()); err == nil {
			sig, err = key.Sign(rand.Reader, h.Sum(nil), crypto.SHA256)
		}
	}
	if err != nil {
		return fail(err)
	}
	issuer := s.Certificate.RawIssuer
	if len(s.Chain) > 0 {
		issuer = s.Chain[0].RawSubject
	}
	var certs []byte
	for _, c := range append([]*x509.Certificate{s.Certificate}, s.Chain...) {
		certs = append(certs, c.Raw...)
	}
	sha256 := pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDDigestAlgorithmSHA256}
	sd := cmsSignedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos: []cmsSignerInfo{{
			Version:            1,
			Signer:             cmsIssuerAndSerial{Issuer: asn1.RawValue{FullBytes: issuer}, Serial: s.Certificate.SerialNumber},
			DigestAlgorithm:    sha256,
			SignedAttrs:        asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: attrs},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: alg},
			Signature:          sig,
		}},
	}
	sd.EncapContentInfo.ContentType = pkcs7.OIDData
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return fail(err)
	}
	der, err := asn1.Marshal(cmsContentInfo{ContentType: pkcs7.OIDSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		return fail(err)
	}
	return der, nil
}

// signedAttributes is the DER of the signed attributes, each encoded and in the order DER
// gives a SET OF: by their encodings.
func signedAttributes(digest []byte, at time.Time) ([]byte, error) {
	values := []struct {
		oid asn1.ObjectIdentifier
		v   any
	}{
		{pkcs7.OIDAttributeContentType, pkcs7.OIDData},
		{pkcs7.OIDAttributeMessageDigest, digest},
		{pkcs7.OIDAttributeSigningTime, at},
	}
	var enc [][]byte
	for _, a := range values {
		v, err := asn1.Marshal(a.v)
		if err != nil {
			return nil, err
		}
		b, err := asn1.Marshal(cmsAttribute{Type: a.oid, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}})
		if err != nil {
			return nil, err
		}
		enc = append(enc, b)
	}
	slices.SortFunc(enc, bytes.Compare)
	return bytes.Join(enc, nil), nil
}

// signatureAlgorithm names the signature over a SHA-256 digest that pub verifies.
func signatureAlgorithm(pub crypto.PublicKey) (asn1.ObjectIdentifier, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return pkcs7.OIDDigestAlgorithmECDSASHA256, nil
	case *rsa.PublicKey:
		return pkcs7.OIDEncryptionAlgorithmRSASHA256, nil
	}
	return nil, fmt.Errorf("a record cannot be signed with a %T key", pub)
}
