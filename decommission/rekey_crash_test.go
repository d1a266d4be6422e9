package decommission

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// TestRekeyCrashHelper is the child of TestRekeySurvivesKills: it re-keys one device and is
// killed somewhere along the way.
func TestRekeyCrashHelper(t *testing.T) {
	dir, serial := os.Getenv("CUSTOS_TEST_REKEY_CRASH_DIR"), os.Getenv("CUSTOS_TEST_REKEY_CRASH_SERIAL")
	if dir == "" {
		t.Skip("child process of TestRekeySurvivesKills")
	}
	env, done := openEnv(t, dir)
	defer done()
	if _, err := Rekey(context.Background(), env, rekeyRequest(serial)); err != nil {
		t.Fatal(err)
	}
}

// finishRekey does what a person would after a rekey of p stopped: resume its run, or abort
// it and re-key again when it cannot resume, or re-key again when no run was left. It says
// which.
func finishRekey(t *testing.T, env run.Env, p *Provisioned) (resumed, aborted, again int) {
	t.Helper()
	ctx := context.Background()
	pins := run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)}
	runs, _ := env.Registry.UnfinishedRuns(ctx)
	for _, r := range runs {
		rerr := func() error { _, err := rekeyHandlers.Resume(ctx, env, r.ID, pins); return err }()
		if rerr == nil {
			resumed++
			continue
		}
		if _, err := rekeyHandlers.Abort(ctx, env, r.ID, pins); err != nil {
			t.Fatalf("%s: neither resumed (%v) nor aborted (%v)", r.ID, rerr, err)
		}
		aborted++
	}
	if h, _ := env.Registry.DeviceHistory(ctx, p.Serial); len(h.Keys) == 1 {
		if _, err := Rekey(ctx, env, rekeyRequest(p.Serial)); err != nil {
			t.Fatalf("%s: rekey again: %v", p.Serial, err)
		}
		again++
	}
	return resumed, aborted, again
}

// checkRekeyed fails unless p was re-keyed exactly once and is left with one identity: one
// key pair and one certificate on its token, the registry's only active key and certificate,
// its old key destroyed and its old certificate on the issuer's newest CRL as superseded.
func checkRekeyed(t *testing.T, f *fixture, module string, p *Provisioned, what string) {
	t.Helper()
	ctx := context.Background()
	cert := checkOneIdentity(t, f, module, p.Serial, p.Token)
	if bytes.Equal(cert.Raw, p.Certificate.Raw) {
		t.Errorf("%s: %s keeps its old certificate", what, p.Serial)
	}
	h, err := f.env.Registry.DeviceHistory(ctx, p.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Keys) != 2 || len(h.Certificates) != 2 || h.Keys[0].State != registry.KeyDestroyed {
		t.Errorf("%s: %s has keys %+v and %d certificates, want the old key destroyed and one new key", what, p.Serial, h.Keys, len(h.Certificates))
	}
	checkRevokedOnCRL(t, f, f.issuer, p.Certificate)
}

// removeTornObjects destroys the key and certificate objects a kill left with no id and no
// label on a SoftHSM2 token, and says how many: SoftHSM2 creates an object before it writes
// its attributes, so a SIGKILL in C_GenerateKeyPair or C_CreateObject can leave an object
// with neither (pkcs11-tool lists a key of no size, or a certificate of no subject). Custos gives every object it makes an id and a
// label, so none of these is Custos's; like testhsm's RestoreTorn, this takes away the
// stand-in's own tearing, not Custos's, and the count is reported.
func removeTornObjects(t *testing.T, module, token string) int {
	t.Helper()
	ctx := context.Background()
	s, done := deviceSession(t, module, token)
	defer done()
	objs, err := s.Objects(ctx)
	if err != nil {
		t.Fatalf("%s: %v", token, err)
	}
	n := 0
	for _, o := range objs {
		if (o.Class == hsm.ClassPublicKey || o.Class == hsm.ClassPrivateKey || o.Class == hsm.ClassCertificate) && len(o.ID) == 0 && o.Label == "" {
			if err := s.DestroyObject(ctx, o); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// Kill -9 a rekey at moments spread over a whole run, one device after another; then do what
// a person would (resume, or abort and re-key again). Every device ends re-keyed once with
// exactly one identity on its token, the registry agreeing, its old certificate revoked on the
// newest CRL, and every journal and record verifies.
func TestRekeySurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process per device")
	}
	const devices = 16
	ctx := context.Background()
	f := newFixture(t)
	var provisioned []*Provisioned
	for i := range devices {
		provisioned = append(provisioned, f.provision(t, fmt.Sprintf("RK-%02d", i)))
	}
	f.env.Workspace.Close()
	f.env.Registry.Close()
	tokens := f.hsm.SaveTokenFiles(t)
	child := func(serial string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRekeyCrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_REKEY_CRASH_DIR="+f.dir, "CUSTOS_TEST_REKEY_CRASH_SERIAL="+serial)
		return cmd
	}
	killed, resumed, aborted, again, torn, tornObjects := 0, 0, 0, 0, 0, 0
	whole := killSpread(t, provisioned, child, func(p *Provisioned, caught bool) {
		if caught {
			killed++
		}
		torn += tokens.RestoreTorn(t)
		tornObjects += removeTornObjects(t, f.hsm.ModulePath, p.Token)
		env, done := openEnv(t, f.dir)
		r, a, g := finishRekey(t, env, p)
		resumed, aborted, again = resumed+r, aborted+a, again+g
		done()
		tornObjects += removeTornObjects(t, f.hsm.ModulePath, p.Token)
	})

	env, done := openEnv(t, f.dir)
	defer done()
	f.env = env
	if runs, _ := env.Registry.UnfinishedRuns(ctx); len(runs) != 0 {
		t.Errorf("unfinished runs remain: %+v", runs)
	}
	for _, p := range provisioned {
		checkRekeyed(t, f, f.hsm.ModulePath, p, "after the kills")
	}
	if n := checkRecordsAndJournals(t, f, "*-rekey-*.pdf"); n < devices {
		t.Errorf("%d records, want one per device (%d) at least", n, devices)
	}
	t.Logf("a rekey takes %v; %d devices, %d killed mid-run: %d resumed, %d aborted, %d re-keyed again; SoftHSM tore %d token files and left %d empty objects",
		whole.Round(time.Millisecond), devices, killed, resumed, aborted, again, torn, tornObjects)
}

// A rekey failing at each PKCS#11 call in turn (and again with the token pulled before each
// call) ends with an error and a journal naming the failed step; resuming it, or aborting it
// and re-keying again, brings every case to a device re-keyed once with one identity. The
// device token of each round is deleted after it, so every round makes the same calls.
func TestRekeyFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	failed, resumed, aborted, again := 0, 0, 0, 0
	calls := faultSweep(t, f, "RF", func(serial string) error {
		_, err := Rekey(ctx, f.env, rekeyRequest(serial))
		return err
	}, func(p *Provisioned, err error, what string) {
		if err != nil {
			failed++
		}
		r, a, g := finishRekey(t, f.env, p)
		resumed, aborted, again = resumed+r, aborted+a, again+g
		checkRekeyed(t, f, f.hsm.ModulePath, p, what)
	})
	t.Logf("injected %d faults (%d calls, failed or with the token pulled) into a rekey: %d failed, %d runs resumed, %d aborted, %d re-keyed again",
		2*calls, calls, failed, resumed, aborted, again)
}
