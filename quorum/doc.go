// Package quorum is the arithmetic and the text of Custos's M-of-N quorum, in pure Go with no
// token in sight: drawing the quorum secret, deriving the root token's PINs and the backup
// key-encryption key from it (HKDF-SHA256, one label each), splitting it into Shamir shares
// (github.com/hashicorp/vault/shamir), the share format a custodian copies by hand, the
// public commitment of each share and digest of the secret, and the Collector that checks
// each share as it is entered and each reconstruction before anyone logs in with it.
//
// What to do with a token (initialise it, set its PINs, log in) is package ceremony's.
//
//	s, _ := quorum.NewSecret(tokenRandom)
//	shares, _ := quorum.Split(s, "acme-root-2026", 1, 5, 3)
//	// hand shares[i].Encode() to custodian i, keep shares[i].Commitment() and
//	// quorum.Digest(s, "acme-root-2026", 1) in the registry
//	c := quorum.NewCollector(params)
//	n, err := c.Add(typedShare) // names the mistyped group or the wrong share
//	s, err = c.Secret()         // only if the shares combine to the digest
//	pin := quorum.RootUserPIN.Derive(s, "acme-root-2026")
//
// # Secrets: the owner zeroes
//
// The quorum secret, shares, PINs and KEKs are []byte and are zeroed by their owner: whoever
// allocates a secret, or receives it as a result, zeroes it (secret.Zero, Share.Wipe,
// Collector.Wipe) once it is no longer needed. A function that takes a secret as an argument
// only borrows it: it never zeroes or keeps the caller's copy, and zeroes whatever it
// allocated along the way. So NewSecret, Split, PIN.Derive, KEK, ParseShare and
// Collector.Secret return secrets their caller owns, and the Collector owns (and Wipe
// zeroes) the shares it keeps.
package quorum
