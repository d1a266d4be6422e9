package decommission

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// DeviceToken is a token on the module that holds a device certificate.
type DeviceToken struct {
	Token       string // label
	Slot        uint
	Serial      string // the device serial, from the registry ("" when unknown)
	Model       string
	Status      string // the registry's status, or "unknown to this workspace"
	KeyID       []byte
	Certificate *x509.Certificate
}

// Detect lists the tokens of the module that hold a device certificate, matched against the
// registry. It only reads.
func Detect(ctx context.Context, env run.Env) ([]DeviceToken, error) {
	mod, err := env.OpenDeviceModule(ctx)
	if err != nil {
		return nil, err
	}
	defer mod.Close()
	return detect(ctx, env, mod)
}

func detect(ctx context.Context, env run.Env, mod *hsm.Module) ([]DeviceToken, error) {
	slots, err := mod.Slots(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeviceToken
	for _, sl := range slots {
		if !sl.TokenPresent || !sl.Token.Flags.Initialized {
			continue
		}
		for _, dt := range tokenCertificates(ctx, mod, sl) {
			dev, _, err := env.Registry.DeviceByCertificate(ctx, sha256.Sum256(dt.Certificate.Raw))
			switch {
			case err == nil:
				dt.Serial, dt.Model, dt.Status = dev.Serial, dev.Model, string(dev.Status)
			case errors.Is(err, registry.ErrNotFound):
				dt.Status = "unknown to this workspace"
			default:
				return nil, err
			}
			out = append(out, dt)
		}
	}
	return out, nil
}

func isCA(c *x509.Certificate) bool { return c.BasicConstraintsValid && c.IsCA }

func clientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth {
			return true
		}
	}
	return false
}

// tokenCertificates reads the end-entity certificates on a token, without logging in.
func tokenCertificates(ctx context.Context, mod *hsm.Module, sl hsm.Slot) []DeviceToken {
	s, err := mod.OpenSession(ctx, sl.Token.Label)
	if err != nil {
		return nil
	}
	defer s.Close()
	objs, err := s.Find(ctx, hsm.Match{Class: hsm.ClassCertificate})
	if err != nil {
		return nil
	}
	var out []DeviceToken
	for _, o := range objs {
		c, err := s.Certificate(ctx, hsm.Match{ID: o.ID, Label: o.Label})
		if err != nil || isCA(c) || !clientAuth(c) {
			continue // CA and record-signer certificates on the operations token are not devices
		}
		out = append(out, DeviceToken{Token: sl.Token.Label, Slot: sl.ID, KeyID: o.ID, Certificate: c})
	}
	return out
}

// findDevice finds the token holding one of the device's registered certificates: first the
// token the registry remembers for its key, then every token of the module.
func findDevice(ctx context.Context, env run.Env, mod *hsm.Module, serial string) (DeviceToken, error) {
	if h, err := env.Registry.DeviceHistory(ctx, serial); err == nil {
		for _, k := range h.Keys {
			if k.TokenLabel == "" {
				continue
			}
			sl, err := mod.TokenByLabel(ctx, k.TokenLabel)
			if err != nil {
				continue
			}
			// A copy of the certificate under another id may be on the token too: the one
			// under the key's registered id is the device's.
			var match *DeviceToken
			for _, dt := range tokenCertificates(ctx, mod, sl) {
				if dev, _, err := env.Registry.DeviceByCertificate(ctx, sha256.Sum256(dt.Certificate.Raw)); err == nil && dev.Serial == serial {
					dt.Serial, dt.Model, dt.Status = dev.Serial, dev.Model, string(dev.Status)
					if match == nil || bytes.Equal(dt.KeyID, k.KeyID) {
						match = &dt
					}
				}
			}
			if match != nil {
				return *match, nil
			}
		}
	}
	tokens, err := detect(ctx, env, mod)
	if err != nil {
		return DeviceToken{}, err
	}
	for _, t := range tokens {
		if t.Serial == serial {
			return t, nil
		}
	}
	return DeviceToken{}, fmt.Errorf("no token on the module holds a certificate of device %s: connect the device, or choose method physical or unreachable", serial)
}

// prove has the device's key sign a fresh nonce and checks the signature under its
// registered certificate: the token is that device, not a copy of its certificate.
func prove(ctx context.Context, s *hsm.Session, dt DeviceToken) (string, error) {
	key, err := s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: dt.KeyID})
	if err != nil {
		return "", fmt.Errorf("the token has the certificate of %s but not its key: %w", dt.Serial, err)
	}
	proof, err := possession(key, dt.Certificate, "the device key")
	if err != nil {
		return "", fmt.Errorf("device %s: %w", dt.Serial, err)
	}
	return proof, nil
}

// possession has key sign a fresh nonce and checks the signature under cert; what names the
// key in the proof and errors.
func possession(key crypto.Signer, cert *x509.Certificate, what string) (string, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	var sig []byte
	var err error
	var alg x509.SignatureAlgorithm
	switch cert.PublicKeyAlgorithm {
	case x509.Ed25519:
		alg = x509.PureEd25519
		sig, err = key.Sign(rand.Reader, nonce, crypto.Hash(0))
	default:
		alg = map[x509.PublicKeyAlgorithm]x509.SignatureAlgorithm{x509.ECDSA: x509.ECDSAWithSHA256, x509.RSA: x509.SHA256WithRSA}[cert.PublicKeyAlgorithm]
		digest := sha256.Sum256(nonce)
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("%s did not sign the nonce: %w", what, err)
	}
	if err := cert.CheckSignature(alg, nonce, sig); err != nil {
		return "", fmt.Errorf("proof of possession failed: the token's key does not match the certificate")
	}
	return what + " signed a fresh nonce " + hex.EncodeToString(nonce[:8]) + "… that verifies under its registered certificate", nil
}

// remaining lists what is left of the device identity on its token, as object descriptions.
func remaining(ctx context.Context, s *hsm.Session, id []byte) ([]string, error) {
	objs, err := s.Remaining(ctx, id, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	return out, nil
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}
