//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
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
	if _, err := s.GenerateKeyPair(context.Background(), hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "k"}); err != nil {
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
	for i, alg := range []keyalg.Algorithm{keyalg.ECDSAP256, keyalg.ECDSAP384, keyalg.Ed25519, keyalg.RSA3072} {
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
				if k.Algorithm() == keyalg.Ed25519 {
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

// Return values from the token become errors a person can act on: the sentinel, the
// operation, the token, the value's name and a sentence, never a bare number.
func TestErrorsFromToken(t *testing.T) {
	ctx := context.Background()
	env := faultsToken(t)
	tests := []struct {
		call   string
		rv     uint
		action func(s *hsm.Session) error
		want   error
		says   string
	}{
		{"C_GenerateKeyPair", pkcs11.CKR_MECHANISM_INVALID, generateEd25519, hsm.ErrMechanismUnsupported,
			`hsm: generate ed25519 key "new" on token "faults": mechanism not supported by this token (CKR_MECHANISM_INVALID); this token cannot generate ed25519 keys: choose another algorithm or token`},
		{"C_SignInit", pkcs11.CKR_MECHANISM_INVALID, signOnce, hsm.ErrMechanismUnsupported,
			`hsm: sign with key "k" on token "faults": mechanism not supported by this token (CKR_MECHANISM_INVALID); this token cannot make this kind of signature with this key`},
		{"C_Sign", pkcs11.CKR_DEVICE_REMOVED, signOnce, hsm.ErrTokenRemoved,
			`hsm: sign with key "k" on token "faults": token removed or no longer present (CKR_DEVICE_REMOVED); reconnect the token and start the operation again`},
		{"C_FindObjectsInit", pkcs11.CKR_SESSION_HANDLE_INVALID, signOnce, hsm.ErrTokenRemoved,
			`(CKR_SESSION_HANDLE_INVALID); the session ended (token removed or module finalised): reconnect and start again`},
		{"C_CreateObject", pkcs11.CKR_TOKEN_WRITE_PROTECTED, storeData, hsm.ErrWriteProtected,
			`hsm: store data object "d" on token "faults": token is write-protected (CKR_TOKEN_WRITE_PROTECTED)`},
		{"C_CreateObject", pkcs11.CKR_DEVICE_MEMORY, storeData, hsm.ErrDevice,
			`the token failed (CKR_DEVICE_MEMORY); the token is out of memory: remove unused objects`},
		{"C_Login", pkcs11.CKR_USER_PIN_NOT_INITIALIZED, login, hsm.ErrUserPINNotSet,
			`hsm: log in as user on token "faults": the token's user PIN has not been set (CKR_USER_PIN_NOT_INITIALIZED); the security officer must set the user PIN first`},
		{"C_CreateObject", pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, storeData, nil,
			`hsm: store data object "d" on token "faults": the token refused the operation (CKR_ATTRIBUTE_VALUE_INVALID)`},
		{"C_GenerateRandom", 0x80000123, random, nil,
			`hsm: read random bytes from the token on token "faults": the token refused the operation (vendor-defined return value 0x80000123)`},
	}
	for _, tc := range tests {
		t.Run(tc.call+"/"+strings.TrimPrefix(pkcs11.Error(tc.rv).Error(), "pkcs11: "), func(t *testing.T) {
			m := env.Open(t, hsm.WithFault(func(call string) error {
				if call == tc.call {
					return pkcs11.Error(tc.rv)
				}
				return nil
			}))
			s, err := m.OpenSession(ctx, "faults")
			if err != nil {
				t.Fatal(err)
			}
			if tc.call != "C_Login" {
				if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
					t.Fatal(err)
				}
			}
			err = tc.action(s)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got  %v\nwant %s", err, tc.says)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%v is not %v", err, tc.want)
			}
			var pe pkcs11.Error
			if !errors.As(err, &pe) || uint(pe) != tc.rv {
				t.Fatalf("%v does not carry return value 0x%X", err, tc.rv)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func generateEd25519(s *hsm.Session) error {
	_, err := s.GenerateKeyPair(context.Background(), hsm.KeySpec{Algorithm: keyalg.Ed25519, ID: []byte{9}, Label: "new"})
	return err
}

func signOnce(s *hsm.Session) error {
	k, err := s.Signer(context.Background(), hsm.Match{Label: "k"})
	if err != nil {
		return err
	}
	_, err = k.Sign(nil, make([]byte, 32), crypto.SHA256)
	return err
}

func storeData(s *hsm.Session) error {
	return s.StoreData(context.Background(), hsm.DataObject{Application: "a", Label: "d", Value: []byte{1}})
}

func login(s *hsm.Session) error { return s.Login(context.Background(), hsm.User, []byte(userPIN)) }

func random(s *hsm.Session) error { _, err := s.Random(context.Background(), 8); return err }

// A key generation that fails at any call leaves no half of the key behind; one that
// succeeds leaves both halves, whatever fails after it.
func TestGenerateFailsCleanly(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "gen", soPIN, userPIN)
	// generate returns whether the key was made, and the first error of the run.
	generate := func(k int, id []byte) (made bool, err error) {
		m, err := hsm.Open(env.ModulePath, hsm.WithFault(hsm.FailCall(k, pkcs11.CKR_DEVICE_ERROR)))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		s, err := m.OpenSession(ctx, "gen")
		if err != nil {
			return false, err
		}
		defer s.Close()
		if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
			return false, err
		}
		if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: id, Label: "gen"}); err != nil {
			return false, err
		}
		return true, s.Close()
	}
	var log hsm.CallLog
	m := env.Open(t, hsm.WithFault(log.Fault))
	s := testhsm.UserSession(t, m, "gen", userPIN)
	before := log.Count()
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{0}, Label: "gen0"}); err != nil {
		t.Fatal(err)
	}
	perGenerate := log.Count() - before
	// Opening, finding the token and logging in take a few calls more; fail well past them.
	failedInside := 0
	for k := 1; k <= perGenerate+12; k++ {
		id := []byte{byte(k)}
		made, err := generate(k, id)
		left, ferr := s.Remaining(ctx, id, "")
		if ferr != nil {
			t.Fatal(ferr)
		}
		want := 0
		if made {
			want = 2
		} else if err == nil {
			t.Errorf("fault at call %d: neither made nor failed", k)
		}
		if len(left) != want {
			t.Errorf("fault at call %d (made %v, %v): the token holds %v", k, made, err, left)
		}
		if !made && strings.Contains(fmt.Sprint(err), "generate ecdsa-p256") {
			failedInside++
		}
	}
	if failedInside < perGenerate {
		t.Errorf("only %d runs failed inside GenerateKeyPair, which makes %d calls", failedInside, perGenerate)
	}
}
