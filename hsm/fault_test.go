package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
)

// signWorkflow is a small workflow of the kind ceremony and decommission run: open a
// session, log in, find a key, sign, read random bytes, log out, close.
func signWorkflow(m *hsm.Module) error {
	ctx := context.Background()
	s, err := m.OpenSession(ctx, "faults")
	if err != nil {
		return err
	}
	err = func() error {
		if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
			return err
		}
		k, err := s.Signer(ctx, hsm.Match{Label: "k"})
		if err != nil {
			return err
		}
		d := sha256.Sum256([]byte("fault"))
		sig, err := k.Sign(nil, d[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
			return errors.New("signature does not verify")
		}
		if _, err := s.Random(ctx, 16); err != nil {
			return err
		}
		return s.Logout(ctx)
	}()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

func faultsToken(t *testing.T) *testhsm.Env {
	t.Helper()
	env := testhsm.New(t)
	env.InitToken(t, "faults", soPIN, userPIN)
	m := env.Open(t)
	s := testhsm.UserSession(t, m, "faults", userPIN)
	if _, err := s.GenerateKeyPair(context.Background(), hsm.KeySpec{Algorithm: hsm.ECDSAP256, ID: []byte{1}, Label: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return env
}

// run opens the module with opts, runs the workflow and closes the module.
func run(t *testing.T, env *testhsm.Env, opts ...hsm.Option) error {
	t.Helper()
	m, err := hsm.Open(env.ModulePath, opts...)
	if err != nil {
		t.Fatal(err)
	}
	werr := signWorkflow(m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return werr
}

// Learn how many PKCS#11 calls the workflow makes, then fail each in turn: every run ends
// in a clear error carrying the token's return value, and the token is unharmed.
func TestFailEveryCall(t *testing.T) {
	env := faultsToken(t)
	var log hsm.CallLog
	if err := run(t, env, hsm.WithFault(log.Fault)); err != nil {
		t.Fatal(err)
	}
	calls := log.Calls()
	if len(calls) != log.Count() || len(calls) < 8 {
		t.Fatalf("calls: %v", calls)
	}
	for _, want := range []string{"C_OpenSession", "C_Login", "C_FindObjectsInit", "C_SignInit", "C_Sign", "C_GenerateRandom", "C_Logout", "C_CloseSession"} {
		if !strings.Contains(strings.Join(calls, " "), want) {
			t.Errorf("the workflow's calls %v lack %s", calls, want)
		}
	}
	t.Logf("the workflow makes %d PKCS#11 calls: %s", len(calls), strings.Join(calls, " "))

	for k := 1; k <= len(calls); k++ {
		err := run(t, env, hsm.WithFault(hsm.FailCall(k, pkcs11.CKR_DEVICE_ERROR)))
		var pe pkcs11.Error
		if !errors.Is(err, hsm.ErrDevice) || !errors.As(err, &pe) || pe != pkcs11.CKR_DEVICE_ERROR ||
			!strings.Contains(err.Error(), "the token failed (CKR_DEVICE_ERROR); check the token's connection") {
			t.Errorf("failing call %d (%s): got %v", k, calls[k-1], err)
		}
	}
	// A fault past the last call changes nothing, and the token still works.
	if err := run(t, env, hsm.WithFault(hsm.FailCall(len(calls)+1, pkcs11.CKR_DEVICE_ERROR))); err != nil {
		t.Fatal(err)
	}
}

// Pull the token out before each call in turn: every run that still had work to do ends
// in an error saying the token is gone.
func TestTokenRemovedAtEveryCall(t *testing.T) {
	env := faultsToken(t)
	var log hsm.CallLog
	if err := run(t, env, hsm.WithFault(log.Fault)); err != nil {
		t.Fatal(err)
	}
	calls := log.Calls()
	for k := 1; k <= len(calls); k++ {
		err := run(t, env, hsm.WithFault(hsm.RemoveToken(k)))
		switch {
		case calls[k-1] == "C_CloseSession":
			// Closing a session of a removed token is no failure: the work was done.
			if err != nil {
				t.Errorf("removed before the final close: %v", err)
			}
		case errors.Is(err, hsm.ErrTokenRemoved):
			if !strings.Contains(err.Error(), "reconnect the token and start the operation again") {
				t.Errorf("removed before call %d (%s): %v", k, calls[k-1], err)
			}
		case errors.Is(err, hsm.ErrTokenNotFound):
			// Removed before the token was found by its label.
			if !strings.Contains(err.Error(), `find token "faults"`) {
				t.Errorf("removed before call %d (%s): %v", k, calls[k-1], err)
			}
		default:
			t.Errorf("removed before call %d (%s): got %v, want ErrTokenRemoved", k, calls[k-1], err)
		}
	}
}

// The Signer serialises calls on its session: many goroutines sign (and use the session
// for other things) at once, and every signature verifies.
func TestConcurrentSigning(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "concurrent")
	var keys []*hsm.Signer
	for i, alg := range []hsm.Algorithm{hsm.ECDSAP256, hsm.ECDSAP384, hsm.Ed25519, hsm.RSA3072} {
		k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: []byte{byte(i + 1)}, Label: string(alg)})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	const goroutines, rounds = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*rounds)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := keys[(g+r)%len(keys)]
				msg := []byte{byte(g), byte(r)}
				h := crypto.SHA256
				if k.Algorithm() == hsm.Ed25519 {
					h = 0
				}
				sig, err := k.Sign(nil, digestOf(h, msg), h)
				if err != nil {
					errs <- err
					continue
				}
				verify(t, k.Public(), h, msg, sig, h)
				if r%3 == 0 {
					if _, err := s.Random(ctx, 8); err != nil {
						errs <- err
					}
					if _, err := s.Find(ctx, hsm.Match{Class: hsm.ClassPublicKey}); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
