//go:build cgo && !nopkcs11

package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A real shared library that is not a PKCS#11 module: the C library itself.
	libc := ""
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			libc = p
			break
		}
	}
	if libc == "" {
		t.Fatal("no libc.so.6 found to stand in for a shared library that is not a PKCS#11 module")
	}
	tests := []struct {
		name string
		path string
		want error
		says string
	}{
		{"empty path", "", hsm.ErrModuleNotFound, "no module path given"},
		{"missing file", filepath.Join(dir, "libvendor-pkcs11.so"), hsm.ErrModuleNotFound, "no file at " + filepath.Join(dir, "libvendor-pkcs11.so") + ": install the HSM's PKCS#11 library or correct the path"},
		{"directory", dir, hsm.ErrNotPKCS11, "is not a regular file"},
		{"text file", text, hsm.ErrNotPKCS11, "could not be loaded as a PKCS#11 library"},
		{"shared library without PKCS#11", libc, hsm.ErrNotPKCS11, "could not be loaded as a PKCS#11 library"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := hsm.Open(tc.path)
			if err == nil {
				m.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %q, want %v saying %q", err, tc.want, tc.says)
			}
			var he *hsm.Error
			if !errors.As(err, &he) || he.Op != "open PKCS#11 module" {
				t.Fatalf("error %#v is not an *hsm.Error naming the operation", err)
			}
		})
	}
}

// Two Opens of one module share one initialised context: closing one leaves the other
// working, and the module is finalised (and can be opened afresh) after the last Close.
func TestOpenSharesOneContext(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "shared", soPIN, userPIN)
	m1, err := hsm.Open(env.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := hsm.Open(env.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := m2.OpenSession(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	s1, err := m1.OpenSession(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	// Login state is the application's: a login on one Module's session shows on the other's.
	if err := s1.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Random(ctx, 4); !errors.Is(err, hsm.ErrSessionClosed) {
		t.Fatalf("session of the closed module: got %v, want ErrSessionClosed", err)
	}
	if _, err := m1.Slots(ctx); !errors.Is(err, hsm.ErrSessionClosed) {
		t.Fatalf("closed module: got %v, want ErrSessionClosed", err)
	}
	if _, err := s2.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "k"}); err != nil {
		t.Fatalf("the other module's session stopped working after the first Close: %v", err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Finalised: a new Open initialises again, and the login is gone with the old context.
	m3 := env.Open(t)
	s3, err := m3.OpenSession(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Signer(ctx, hsm.Match{ID: []byte{1}}); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("private key visible without login after re-initialisation: %v", err)
	}
}

func TestSlotsAndTokens(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	m := env.Open(t)

	slots, err := m.Slots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 1 || !slots[0].TokenPresent || slots[0].Token.Flags.Initialized {
		t.Fatalf("a fresh SoftHSM2 should have one slot with an uninitialised token: %+v", slots)
	}
	if _, err := m.TokenByLabel(ctx, "anything"); !errors.Is(err, hsm.ErrTokenNotFound) || !strings.Contains(err.Error(), "has no initialised token") {
		t.Fatalf("TokenByLabel on an empty module: %v", err)
	}
	if _, err := m.OpenSlotSession(ctx, slots[0].ID); !errors.Is(err, hsm.ErrTokenNotInitialized) {
		t.Fatalf("session on an uninitialised token: got %v, want ErrTokenNotInitialized", err)
	}

	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.InitToken(ctx, free.ID, "Zoë's token", []byte(soPIN), []byte(userPIN))
	if err != nil {
		t.Fatal(err)
	}
	tok := a.Token
	if tok.Label != "Zoë's token" || tok.Manufacturer != "SoftHSM project" || tok.Model != "SoftHSM v2" ||
		tok.Serial == "" || tok.FirmwareVersion.String() != "2.6" || tok.HardwareVersion.String() != "2.6" ||
		tok.MinPINLen != 4 || tok.MaxPINLen != 255 {
		t.Errorf("token info %+v", tok)
	}
	f := tok.Flags
	if !f.Initialized || !f.LoginRequired || !f.UserPINInitialized || f.UserPINLocked || f.UserPINFinalTry || f.UserPINCountLow || f.SOPINLocked {
		t.Errorf("flags of a new token: %s", f)
	}
	if got := f.String(); got != "initialized,login-required,user-pin-initialized" {
		t.Errorf("flags string %q", got)
	}

	free, err = m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if free.ID == a.ID {
		t.Fatal("the slot just initialised is still reported free")
	}
	b, err := m.InitToken(ctx, free.ID, "second", []byte(soPIN), []byte(userPIN))
	if err != nil {
		t.Fatal(err)
	}
	if b.Token.Serial == a.Token.Serial {
		t.Fatal("two tokens share a serial")
	}

	_, err = m.TokenByLabel(ctx, "third")
	if !errors.Is(err, hsm.ErrTokenNotFound) || !strings.Contains(err.Error(), `find token "third": token not found; tokens present: "Zoë's token", "second"`) {
		t.Fatalf("TokenByLabel(third): %v", err)
	}

	free, _ = m.FreeSlot(ctx)
	refusals := []struct {
		name  string
		slot  uint
		label string
		want  string
	}{
		{"label in use", free.ID, "second", `another token is already labelled "second"`},
		{"slot initialised", a.ID, "other", `slot already holds an initialised token; it holds "Zoë's token"`},
		{"empty label", free.ID, "", "the label is empty"},
		{"long label", free.ID, strings.Repeat("x", 33), "is 33 bytes: PKCS#11 token labels hold at most 32"},
		{"trailing blank", free.ID, "blank ", `"blank " starts or ends with a blank`},
		{"leading blank", free.ID, " blank", `" blank" starts or ends with a blank`},
		{"newline", free.ID, "ops\ntoken", `"ops\ntoken" holds a control character`},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.InitToken(ctx, tc.slot, tc.label, []byte(soPIN), []byte(userPIN))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}

	// After the module is initialised again, SoftHSM2 gives initialised tokens new slot
	// ids: a token is found by its label, never by a remembered slot id.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := env.Open(t)
	again, err := m2.TokenByLabel(ctx, "Zoë's token")
	if err != nil {
		t.Fatal(err)
	}
	if again.Token.Serial != a.Token.Serial {
		t.Fatalf("found serial %s, want %s", again.Token.Serial, a.Token.Serial)
	}
	if again.ID == a.ID {
		t.Logf("slot id %d unchanged after re-initialisation", a.ID)
	} else {
		t.Logf("slot id %d became %d after re-initialisation", a.ID, again.ID)
	}
	info, err := m2.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Manufacturer != "SoftHSM" || info.LibraryVersion.String() != "2.6" || info.CryptokiVersion.Major < 2 {
		t.Errorf("module info %+v", info)
	}
}

func TestReinitTokenErases(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "device-0042", soPIN, userPIN)
	m := env.Open(t)
	s := testhsm.UserSession(t, m, "device-0042", userPIN)
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{0x42}, Label: "device key"}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreData(ctx, hsm.DataObject{Application: "test", Label: "d", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	// PKCS#11 refuses to initialise a token this application has sessions with.
	_, err := m.ReinitToken(ctx, "device-0042", []byte(soPIN), "device-0042", nil)
	if !errors.Is(err, hsm.ErrSessionExists) || !strings.Contains(err.Error(), "close every other program and session") {
		t.Fatalf("re-initialise with a session open: got %v, want ErrSessionExists", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = m.ReinitToken(ctx, "device-0042", []byte("not-the-so-pin"), "device-0042", nil)
	if !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("re-initialise with a wrong SO PIN: got %v, want ErrPINIncorrect", err)
	}

	slot, err := m.ReinitToken(ctx, "device-0042", []byte(soPIN), "wiped-0042", nil)
	if err != nil {
		t.Fatal(err)
	}
	if slot.Token.Label != "wiped-0042" || slot.Token.Flags.UserPINInitialized {
		t.Fatalf("after re-initialisation: %q %s", slot.Token.Label, slot.Token.Flags)
	}
	s2, err := m.OpenSession(ctx, "wiped-0042")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Login(ctx, hsm.User, []byte(userPIN)); !errors.Is(err, hsm.ErrUserPINNotSet) {
		t.Fatalf("user login after wipe: got %v, want ErrUserPINNotSet", err)
	}
	if err := s2.InitUserPIN(ctx, []byte(soPIN), []byte("new-user-pin")); err != nil {
		t.Fatal(err)
	}
	if err := s2.Login(ctx, hsm.User, []byte("new-user-pin")); err != nil {
		t.Fatal(err)
	}
	objs, err := s2.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Fatalf("objects left after re-initialisation: %v", objs)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if out := pkcs11Tool(t, env.ModulePath, "--token-label", "wiped-0042", "--login", "--pin", "new-user-pin", "--list-objects"); strings.Contains(out, "Object;") {
		t.Fatalf("pkcs11-tool still lists objects:\n%s", out)
	}
}

func TestChangePINs(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "pins", soPIN, userPIN)
	m := env.Open(t)
	s, err := m.OpenSession(ctx, "pins")
	if err != nil {
		t.Fatal(err)
	}
	newUser, newSO := []byte("user-pin-0002"), []byte("so-pin-0002")

	if err := s.ChangePIN(ctx, hsm.User, []byte("wrong-pin"), newUser); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("change with a wrong old PIN: got %v", err)
	}
	if err := s.ChangePIN(ctx, hsm.User, []byte(userPIN), newUser); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePIN(ctx, hsm.SO, []byte(soPIN), newSO); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who  hsm.UserType
		pin  []byte
		good bool
	}{
		{hsm.User, []byte(userPIN), false},
		{hsm.User, newUser, true},
		{hsm.SO, []byte(soPIN), false},
		{hsm.SO, newSO, true},
	} {
		err := s.Login(ctx, c.who, c.pin)
		if c.good != (err == nil) || (!c.good && !errors.Is(err, hsm.ErrPINIncorrect)) {
			t.Errorf("login as %s with %q: %v", c.who, c.pin, err)
		}
		if err := s.Logout(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The new SO PIN resets the user PIN.
	if err := s.InitUserPIN(ctx, newSO, []byte("user-pin-0003")); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.User, []byte("user-pin-0003")); err != nil {
		t.Fatal(err)
	}
}

func TestLoginStates(t *testing.T) {
	ctx := context.Background()
	_, m, s := newToken(t, "states")
	// Logging in again as the same user is fine, from this or another session.
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatalf("second user login: %v", err)
	}
	other, err := m.OpenSession(ctx, "states")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatalf("user login on a second session: %v", err)
	}
	err = s.Login(ctx, hsm.SO, []byte(soPIN))
	if !errors.Is(err, hsm.ErrOtherUserLoggedIn) || !strings.Contains(err.Error(), "log out first") {
		t.Fatalf("SO login while the user is logged in: %v", err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Logout(ctx); err != nil {
		t.Fatalf("logout when nobody is logged in: %v", err)
	}
	if err := s.Login(ctx, hsm.SO, []byte(soPIN)); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPIN(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "acme-ops", soPIN, userPIN)
	m := env.Open(t)
	s, err := m.OpenSession(ctx, "acme-ops")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Login(ctx, hsm.User, []byte("1234-wrong"))
	if !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Fatalf("got %v, want ErrPINIncorrect", err)
	}
	var pe pkcs11.Error
	if !errors.As(err, &pe) || pe != pkcs11.CKR_PIN_INCORRECT {
		t.Errorf("error does not carry CKR_PIN_INCORRECT: %#v", err)
	}
	want := `hsm: log in as user on token "acme-ops": wrong PIN (CKR_PIN_INCORRECT); the token has counted a wrong PIN since the last good login and locks the PIN after a few: check the PIN before trying again`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	ti, err := s.TokenInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ti.Flags.UserPINCountLow {
		t.Errorf("after a wrong PIN the token flags are %s", ti.Flags)
	}

	// SoftHSM 2.6.1 never locks a PIN: after many wrong tries the right PIN still works
	// and clears the count. (Locked PINs are shown through the fault hook below.)
	for i := 0; i < 20; i++ {
		if err := s.Login(ctx, hsm.User, []byte("1234-wrong")); !errors.Is(err, hsm.ErrPINIncorrect) {
			t.Fatalf("try %d: %v", i, err)
		}
	}
	ti, _ = s.TokenInfo(ctx)
	if ti.Flags.UserPINLocked || ti.Flags.UserPINFinalTry {
		t.Fatalf("SoftHSM2 locked the PIN after 21 wrong tries: %s", ti.Flags)
	}
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	ti, _ = s.TokenInfo(ctx)
	if ti.Flags.UserPINCountLow {
		t.Errorf("count still low after a good login: %s", ti.Flags)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.SO, []byte("wrong-so-pin")); !errors.Is(err, hsm.ErrPINIncorrect) || !strings.Contains(err.Error(), "log in as SO") {
		t.Fatalf("wrong SO PIN: %v", err)
	}
}

// SoftHSM2 never locks a PIN, so a locked PIN is shown by having the fault hook answer
// C_Login the way a real token does once its PIN is locked.
func TestLockedPIN(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "locked", soPIN, userPIN)
	locked := func(call string) error {
		if call == "C_Login" {
			return pkcs11.Error(pkcs11.CKR_PIN_LOCKED)
		}
		return nil
	}
	m := env.Open(t, hsm.WithFault(locked))
	s, err := m.OpenSession(ctx, "locked")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Login(ctx, hsm.User, []byte(userPIN))
	want := `hsm: log in as user on token "locked": PIN is locked (CKR_PIN_LOCKED); the security officer must reset the user PIN, or the token be re-initialised`
	if !errors.Is(err, hsm.ErrPINLocked) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	err = s.Login(ctx, hsm.SO, []byte(soPIN))
	if !errors.Is(err, hsm.ErrPINLocked) || !strings.Contains(err.Error(), "the SO PIN is locked: the token can only be reset by its vendor's procedure") {
		t.Fatalf("SO: got %v", err)
	}
}

func TestPINLength(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	m := env.Open(t)
	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.InitToken(ctx, free.ID, "short", []byte("123"), []byte(userPIN))
	if !errors.Is(err, hsm.ErrPINLength) || !strings.Contains(err.Error(), "this token accepts PINs of 4 to 255 bytes") {
		t.Fatalf("3-byte SO PIN: %v", err)
	}
	if _, err := m.InitToken(ctx, free.ID, "short", []byte(soPIN), nil); err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenSession(ctx, "short")
	if err != nil {
		t.Fatal(err)
	}
	err = s.InitUserPIN(ctx, []byte(soPIN), bytes.Repeat([]byte("9"), 256))
	if !errors.Is(err, hsm.ErrPINLength) || !strings.Contains(err.Error(), "the user PIN is 256 bytes; this token accepts PINs of 4 to 255 bytes") {
		t.Fatalf("256-byte user PIN: %v", err)
	}
	if err := s.InitUserPIN(ctx, []byte(soPIN), []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangePIN(ctx, hsm.User, []byte(userPIN), []byte("12")); !errors.Is(err, hsm.ErrPINLength) {
		t.Fatalf("2-byte new PIN: %v", err)
	}
	if err := s.Login(ctx, hsm.User, nil); !errors.Is(err, hsm.ErrPINLength) {
		t.Fatalf("empty PIN: %v", err)
	}
}

// A token that answers CKR_PIN_LEN_RANGE itself gets the same clear error, naming the
// lengths the token accepts.
func TestPINLenRangeFromToken(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "range", soPIN, userPIN)
	m := env.Open(t, hsm.WithFault(func(call string) error {
		if call == "C_Login" {
			return pkcs11.Error(pkcs11.CKR_PIN_LEN_RANGE)
		}
		return nil
	}))
	s, err := m.OpenSession(ctx, "range")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Login(ctx, hsm.User, []byte(userPIN))
	want := `hsm: log in as user on token "range": PIN is too short or too long for this token (CKR_PIN_LEN_RANGE); this token accepts PINs of 4 to 255 bytes`
	if !errors.Is(err, hsm.ErrPINLength) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestClosedSession(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "closing")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Random(ctx, 8); !errors.Is(err, hsm.ErrSessionClosed) {
		t.Fatalf("got %v, want ErrSessionClosed", err)
	}
}

// A cancelled context stops an operation before it reaches the token.
func TestContextCancelled(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "ctx", soPIN, userPIN)
	var log hsm.CallLog
	m := env.Open(t, hsm.WithFault(log.Fault))
	s := testhsm.UserSession(t, m, "ctx", userPIN)
	k, err := s.GenerateKeyPair(context.Background(), hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := log.Count()
	calls := map[string]func() error{
		"Login":   func() error { return s.Login(ctx, hsm.User, []byte(userPIN)) },
		"Sign":    func() error { _, err := k.SignContext(ctx, make([]byte, 32), crypto.SHA256); return err },
		"Find":    func() error { _, err := s.Objects(ctx); return err },
		"Random":  func() error { _, err := s.Random(ctx, 8); return err },
		"Slots":   func() error { _, err := m.Slots(ctx); return err },
		"Session": func() error { _, err := m.OpenSession(ctx, "ctx"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v", name, err)
		}
	}
	if n := log.Count() - before; n != 0 {
		t.Errorf("%d PKCS#11 calls were made with a cancelled context", n)
	}
}
