package hsmcheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/internal/testtpm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/run"
)

func TestMain(m *testing.M) { testtpm.Main(m) }

// SoftHSM2 does everything Custos asks; the spare token ends re-initialised and empty, as
// pkcs11-tool sees it.
func TestSoftHSMDoesEverything(t *testing.T) {
	env := testhsm.New(t)
	r, err := Run(context.Background(), Request{Module: env.ModulePath, Token: "spare", Plan: &Requirements{Algorithm: keyalg.ECDSAP384, Backup: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		if !c.Supported || c.CodeName() != "CKR_OK" {
			t.Errorf("%s: %s %s", c.Name, c.Result(), c.Detail)
		}
	}
	if len(r.Checks) != 21 || len(r.PlanProblems) != 0 || !strings.Contains(r.Cleared, "re-initialised") {
		t.Errorf("%d checks, plan problems %v, cleared %q", len(r.Checks), r.PlanProblems, r.Cleared)
	}
	if len(r.ModuleSHA256) != 64 || r.Info.Manufacturer != "SoftHSM" {
		t.Errorf("module %s %+v", r.ModuleSHA256, r.Info)
	}
	out, err := exec.Command("pkcs11-tool", "--module", env.ModulePath, "--token-label", "spare", "--list-objects").CombinedOutput()
	if err != nil || strings.Contains(string(out), "Object;") {
		t.Errorf("the spare token is not empty: %v\n%s", err, out)
	}
}

// The TPM, through tpm2-pkcs11, does what a device key store needs and not what a root needs;
// each refusal carries the module's return code, and a plan asking for it is told so.
func TestTPMNamesWhatItCannotDo(t *testing.T) {
	tpm := testtpm.Get(t)
	label := tpm.NewLabel("spare")
	r, err := Run(context.Background(), Request{Module: tpm.ModulePath, Token: label, Plan: &Requirements{Algorithm: keyalg.RSA3072, Backup: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // check -> result and return code
		checkInit: "supported CKR_OK", checkInitPIN: "supported CKR_OK", checkUserPIN: "supported CKR_OK",
		checkSOPIN: "supported CKR_OK", checkRandom: "supported CKR_OK",
		checkGenerate(keyalg.ECDSAP256): "supported CKR_OK", checkSign(keyalg.ECDSAP256): "supported CKR_OK",
		checkGenerate(keyalg.ECDSAP384): "supported CKR_OK", checkSign(keyalg.ECDSAP384): "supported CKR_OK",
		// its RSA keys can decrypt too, so a sign-only key is refused
		checkGenerate(keyalg.RSA3072): "NOT supported CKR_GENERAL_ERROR", checkSign(keyalg.RSA3072): "not tried ",
		// refused before the token is asked: its mechanism list stops at 3072 bits, and has no EdDSA
		checkGenerate(keyalg.RSA4096): "NOT supported ", checkSign(keyalg.RSA4096): "not tried ",
		checkGenerate(keyalg.Ed25519): "NOT supported ", checkSign(keyalg.Ed25519): "not tried ",
		// no key may leave a TPM, even wrapped
		checkBackup: "NOT supported CKR_ATTRIBUTE_VALUE_INVALID", checkTrusted: "not tried ", checkRestore: "not tried ",
		checkData: "supported CKR_OK", checkDestroy: "supported CKR_OK",
		checkReinit: "NOT supported CKR_ARGUMENTS_BAD",
	}
	if len(r.Checks) != len(want) {
		t.Errorf("%d checks, want %d", len(r.Checks), len(want))
	}
	for _, c := range r.Checks {
		if got := c.Result() + " " + c.CodeName(); got != want[c.Name] {
			t.Errorf("%s: %q, want %q (%s)", c.Name, got, want[c.Name], c.Detail)
		}
	}
	problems := strings.Join(r.PlanProblems, "\n")
	for _, w := range []string{"plan key rsa-3072: the module cannot generate rsa-3072 key", "(NOT supported, CKR_GENERAL_ERROR)",
		"plan backup: true: the module cannot back up a key"} {
		if !strings.Contains(problems, w) {
			t.Errorf("plan problems lack %q:\n%s", w, problems)
		}
	}
	if !strings.Contains(r.Cleared, "could not be re-initialised") || r.TokenInfo.HasSerial() {
		t.Errorf("cleared %q, token %+v", r.Cleared, r.TokenInfo)
	}
	out, err := exec.Command("pkcs11-tool", "--module", tpm.ModulePath, "--token-label", label, "--list-objects").CombinedOutput()
	if err != nil || strings.Contains(string(out), "Object;") {
		t.Errorf("the spare token is not empty: %v\n%s", err, out)
	}

	// A device plan (P-256, no backup) is all the TPM can do.
	r, err = Run(context.Background(), Request{Module: tpm.ModulePath, Token: tpm.NewLabel("spare"), Plan: &Requirements{Algorithm: keyalg.ECDSAP256}})
	if err != nil || len(r.PlanProblems) != 0 {
		t.Errorf("P-256 without backup on the TPM: %v %v", r.PlanProblems, err)
	}
}

func TestRefusesBeforeStarting(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "taken", "so-pin-1234", "user-pin-1234")
	if _, err := Run(context.Background(), Request{Module: env.ModulePath, Token: "taken"}); !errors.Is(err, ErrTokenInUse) {
		t.Errorf("a label in use: %v", err)
	}
	if _, err := Run(context.Background(), Request{Module: "/nonexistent/libvendor.so", Token: "spare"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/libvendor.so") {
		t.Errorf("a missing module: %v", err)
	}
}

// A token pulled half way through ends the check with each later step refused, not a crash,
// and the report still says how the token was left.
func TestTokenPulledHalfWay(t *testing.T) {
	env := testhsm.New(t)
	r, err := Run(context.Background(), Request{Module: env.ModulePath, Token: "spare", Options: []hsm.Option{hsm.WithFault(hsm.RemoveToken(60))}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Checks[0].Result() != "supported" || r.Checks[len(r.Checks)-1].Supported {
		t.Errorf("first %+v, last %+v", r.Checks[0], r.Checks[len(r.Checks)-1])
	}
	var removed bool
	for _, c := range r.Checks {
		removed = removed || c.Code == 0x32 /* CKR_DEVICE_REMOVED */ || c.Code == 0xE0 /* CKR_TOKEN_NOT_PRESENT */
	}
	if !removed || r.Cleared == "" {
		t.Errorf("no check names the removal: %+v, cleared %q", r.Checks, r.Cleared)
	}
}

// Without a root there is no record signer: saving says so and writes nothing.
func TestSaveWithoutARoot(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	r, err := Run(ctx, Request{Module: env.ModulePath, Token: "spare"})
	if err != nil {
		t.Fatal(err)
	}
	renv, err := run.Open(ctx, filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer renv.Close()
	renv.Module = env.ModulePath
	ws := renv.Workspace
	if _, err := Save(ctx, renv, SaveRequest{OpsPIN: []byte("ops-pin-1234")}, r); !errors.Is(err, ErrNoRecordSigner) {
		t.Errorf("save without a root: %v", err)
	}
	for _, d := range []string{"journal", "records"} {
		if e, _ := os.ReadDir(ws.Path(d)); len(e) != 0 {
			t.Errorf("%s/ has %d files", d, len(e))
		}
	}
}
