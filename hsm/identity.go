//go:build cgo && !nopkcs11

package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/miekg/pkcs11"
)

// equalPublic is implemented by the public keys of crypto/ecdsa, crypto/rsa and crypto/ed25519.
type equalPublic interface{ Equal(crypto.PublicKey) bool }

// IdentityObjects finds every object on the token that belongs to a key identity, whatever
// its CKA_ID or label: objects with CKA_ID id (when id is not empty); certificates whose value
// is one of certs or that carry one of their public keys; public keys equal to one of them;
// private keys that sign a fresh challenge verifying under one of them (RSA ones are compared
// by modulus); and private keys with the id of any certificate or public key found. It returns
// the objects, each once with every way it was found, and the searches made with how many
// each found, for a destruction record. The user must be logged in to see private keys.
func (s *Session) IdentityObjects(ctx context.Context, id []byte, certs []*x509.Certificate) ([]IdentityObject, []IdentitySearch, error) {
	op := "look for the objects of a key identity"
	var found []IdentityObject
	index := map[uint]int{}
	add := func(o Object, by string) {
		if i, ok := index[o.handle]; ok {
			for _, b := range found[i].FoundBy {
				if b == by {
					return
				}
			}
			found[i].FoundBy = append(found[i].FoundBy, by)
			return
		}
		index[o.handle] = len(found)
		found = append(found, IdentityObject{Object: o, FoundBy: []string{by}})
	}
	var searches []IdentitySearch
	var pubs []crypto.PublicKey
	for _, c := range certs {
		pubs = append(pubs, c.PublicKey)
	}
	matches := func(pub crypto.PublicKey) bool {
		for _, p := range pubs {
			if e, ok := p.(equalPublic); ok && e.Equal(pub) {
				return true
			}
		}
		return false
	}

	var candidates []Object // EC and Ed25519 private keys, tested by signing after the lock is released
	err := func() error {
		if err := s.begin(ctx, op); err != nil {
			return err
		}
		defer s.mu.Unlock()
		if len(id) > 0 {
			objs, err := s.find(ctx, op, Match{ID: id})
			if err != nil {
				return err
			}
			for _, o := range objs {
				add(o, "key id")
			}
			searches = append(searches, IdentitySearch{Search: "objects of any class with key id " + hex.EncodeToString(id), Found: len(objs)})
		}
		if len(certs) == 0 {
			return nil
		}
		objs, err := s.find(ctx, op, Match{Class: ClassCertificate})
		if err != nil {
			return err
		}
		byValue, byKey := 0, 0
		for _, o := range objs {
			a, err := s.attributes(op, pkcs11.ObjectHandle(o.handle), pkcs11.CKA_VALUE)
			if err != nil {
				return err
			}
			v := a[pkcs11.CKA_VALUE]
			for _, c := range certs {
				if bytes.Equal(v, c.Raw) {
					add(o, "certificate value")
					byValue++
					break
				}
			}
			if other, err := x509.ParseCertificate(v); err == nil && matches(other.PublicKey) {
				add(o, "public key")
				byKey++
			}
		}
		searches = append(searches,
			IdentitySearch{Search: fmt.Sprintf("certificates whose value is the device's (%d certificates read)", len(objs)), Found: byValue},
			IdentitySearch{Search: "certificates that carry the device's public key", Found: byKey})

		if objs, err = s.find(ctx, op, Match{Class: ClassPublicKey}); err != nil {
			return err
		}
		n := 0
		for _, o := range objs {
			pub, _, err := s.publicKey(op, pkcs11.ObjectHandle(o.handle))
			if err == nil && matches(pub) {
				add(o, "public key")
				n++
			}
		}
		searches = append(searches, IdentitySearch{Search: fmt.Sprintf("public keys equal to the device's (%d public keys read)", len(objs)), Found: n})

		if objs, err = s.find(ctx, op, Match{Class: ClassPrivateKey}); err != nil {
			return err
		}
		n = 0
		for _, o := range objs {
			if o.KeyType == "RSA" {
				if pub, _, err := s.publicKey(op, pkcs11.ObjectHandle(o.handle)); err == nil && matches(pub) {
					add(o, "public key")
					n++
				}
				continue
			}
			candidates = append(candidates, o)
		}
		searches = append(searches, IdentitySearch{Search: fmt.Sprintf("RSA private keys with the device's modulus (%d private keys read)", len(objs)), Found: n})
		return nil
	}()
	if err != nil {
		return nil, nil, err
	}

	if len(certs) > 0 {
		n := 0
		for _, o := range candidates {
			for _, pub := range pubs {
				ok, err := s.signsUnder(ctx, o, pub)
				if err != nil {
					return nil, nil, err
				}
				if ok {
					add(o, "public key")
					n++
					break
				}
			}
		}
		searches = append(searches, IdentitySearch{Search: fmt.Sprintf("EC and Ed25519 private keys that sign a fresh challenge verifying under the device's public key (%d tried)", len(candidates)), Found: n})
	}

	// A private key that cannot sign (or whose module refuses) is still found when it shares
	// its id with a certificate or public key of the identity.
	ids := map[string]bool{}
	for _, f := range found {
		if f.Class != ClassPrivateKey && len(f.ID) > 0 {
			ids[string(f.ID)] = true
		}
	}
	n := 0
	for _, o := range candidates {
		if _, done := index[o.handle]; !done && ids[string(o.ID)] {
			add(o, "id of a found object")
			n++
		}
	}
	if len(certs) > 0 {
		searches = append(searches, IdentitySearch{Search: "private keys with the id of a certificate or public key found", Found: n})
	}
	return found, searches, nil
}

// signsUnder says whether the private key o signs a fresh challenge that verifies under pub.
// A key of another type, or one the module will not sign with, does not.
func (s *Session) signsUnder(ctx context.Context, o Object, pub crypto.PublicKey) (bool, error) {
	k := &Signer{s: s, priv: pkcs11.ObjectHandle(o.handle), pub: pub, id: o.ID, label: o.Label}
	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return false, err
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if o.KeyType != "EC" {
			return false, nil
		}
		digest := sha256.Sum256(challenge)
		sig, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if err != nil {
			return false, ctx.Err()
		}
		return ecdsa.VerifyASN1(p, digest[:], sig), nil
	case ed25519.PublicKey:
		if o.KeyType != "EC_EDWARDS" {
			return false, nil
		}
		sig, err := k.SignContext(ctx, challenge, crypto.Hash(0))
		if err != nil {
			return false, ctx.Err()
		}
		return ed25519.Verify(p, challenge, sig), nil
	}
	return false, nil
}
