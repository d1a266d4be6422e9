//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
)

// BenchmarkSign measures one signature on SoftHSM2 per key type, through the Signer
// (session lock, C_SignInit, C_Sign and, for ECDSA, the DER conversion).
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	_, _, s := newToken(b, "bench")
	d := sha256.Sum256([]byte("benchmark"))
	for i, alg := range keyalg.All() {
		k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: []byte{byte(i + 1)}, Label: string(alg)})
		if err != nil {
			b.Fatal(err)
		}
		digest, opts := d[:], crypto.SignerOpts(crypto.SHA256)
		if alg == keyalg.Ed25519 {
			digest, opts = []byte("benchmark"), crypto.Hash(0)
		}
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				if _, err := k.Sign(nil, digest, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
