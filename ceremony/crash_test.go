package ceremony

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// TestIssueCACrashHelper is the child of TestIssueCASurvivesKills: an issue-ca that is killed
// somewhere along the way.
func TestIssueCACrashHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestIssueCASurvivesKills")
	}
	var shares []string
	json.Unmarshal([]byte(os.Getenv("CUSTOS_TEST_CRASH_SHARES")), &shares)
	ctx := context.Background()
	env := childEnv(t, dir)
	q, err := LoadQuorum(ctx, env.Registry, os.Getenv("CUSTOS_TEST_CRASH_ROOT"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		if _, err := q.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := IssueCA(ctx, env, q, IssueCARequest{CommonName: "Killed CA",
		OpsPIN: []byte("ops-pin-1234"), Algorithm: keyalg.ECDSAP256}); err != nil {
		t.Fatal(err)
	}
}

// Kill -9 an issue-ca at moments spread over its run, aborting each stopped run as a person
// would: afterwards every key on the operations token is one the registry owns, every
// journal verifies, and the quorum still issues a CA.
func TestIssueCASurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process 15 times")
	}
	const kills = 15
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	shares, _ := json.Marshal([]string{p.shares[1], p.shares[2], p.shares[3]})
	f.env.Workspace.Close() // the child takes the workspace lock
	tokens := f.hsm.SaveTokenFiles(t)
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIssueCACrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_CRASH_DIR="+f.dir, "CUSTOS_TEST_CRASH_ROOT="+f.plan.ID,
			"CUSTOS_TEST_CRASH_SHARES="+string(shares))
		return cmd
	}
	start := time.Now()
	if out, err := child().CombinedOutput(); err != nil {
		t.Fatalf("an uninterrupted issue-ca: %v\n%s", err, out)
	}
	whole := time.Since(start)

	killed, aborted, destroyed, torn := 0, 0, 0, 0
	for i := range kills {
		if killIn(t, child(), i, kills, whole) {
			killed++
		}
		torn += tokens.RestoreTorn(t)
		for _, res := range abortStopped(t, f) {
			aborted++
			destroyed += len(res.Done)
		}
	}

	halfMade := checkAccountedFor(t, f)
	ws, err := workspace.Open(filepath.Join(f.dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	f.env.Workspace = ws
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "After the kills",
		OpsPIN: []byte("ops-pin-1234"), Algorithm: keyalg.ECDSAP256}); err != nil {
		t.Fatalf("issue-ca after the kills: %v", err)
	}
	t.Logf("an issue-ca takes %v; %d of %d killed mid-run, %d aborted, %d half-made keys destroyed; SoftHSM tore %d token files and left %d half-created objects",
		whole.Round(time.Millisecond), killed, kills, aborted, destroyed, torn, halfMade)
}

// TestRootCrashHelper is the child of TestRootCeremonySurvivesKills: a root ceremony that is
// killed somewhere along the way.
func TestRootCrashHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestRootCeremonySurvivesKills")
	}
	ctx := context.Background()
	env := childEnv(t, dir)
	plan, err := ParsePlan([]byte(os.Getenv("CUSTOS_TEST_CRASH_PLAN")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Root(ctx, env, plan, []byte("ops-pin-1234"), &people{}); err != nil {
		t.Fatal(err)
	}
}

// Kill -9 root ceremonies at moments spread over a ceremony, aborting each as a person would:
// abort destroys the keys a run was making on the operations token and names the root token
// it leaves; afterwards every key on the operations token is one the registry owns, every
// journal verifies, and a new ceremony succeeds.
func TestRootCeremonySurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process 10 times")
	}
	const kills = 10
	base := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, base)
	f.env.Workspace.Close() // the children take the workspace lock
	planFor := func(id string) string {
		return strings.Replace(strings.Replace(base, "acme-root-2026", id, 1), "/usr/lib/softhsm/libsofthsm2.so", f.hsm.ModulePath, 1)
	}
	child := func(id string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRootCrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_CRASH_DIR="+f.dir, "CUSTOS_TEST_CRASH_PLAN="+planFor(id))
		return cmd
	}
	// The first ceremony runs whole (and creates the operations token), to time a ceremony.
	start := time.Now()
	if out, err := child("acme-root-k00").CombinedOutput(); err != nil {
		t.Fatalf("an uninterrupted root ceremony: %v\n%s", err, out)
	}
	whole := time.Since(start)
	tokens := f.hsm.SaveTokenFiles(t)

	killed, aborted, destroyed, rootTokens, torn := 0, 0, 0, 0, 0
	for i := range kills {
		if killIn(t, child(fmt.Sprintf("acme-root-k%02d", i+1)), i, kills, whole) {
			killed++
		}
		torn += tokens.RestoreTorn(t)
		for _, res := range abortStopped(t, f) {
			aborted++
			destroyed += len(res.Done)
			for _, rem := range res.Remaining {
				if strings.Contains(rem, "root token") {
					rootTokens++
				}
			}
		}
	}

	halfMade := checkAccountedFor(t, f)
	if out, err := child("acme-root-after").CombinedOutput(); err != nil {
		t.Fatalf("a root ceremony after the kills: %v\n%s", err, out)
	}
	t.Logf("a root ceremony takes %v; %d of %d killed mid-run, %d aborted, %d half-made keys destroyed, %d root tokens named for clearing; SoftHSM tore %d token files and left %d half-created objects",
		whole.Round(time.Millisecond), killed, kills, aborted, destroyed, rootTokens, torn, halfMade)
}

// abortStopped aborts every stopped run, as a person would after a crash (a ceremony run
// cannot be resumed), and returns what each abort said. A run killed with every step done
// (while its record was written) resumes instead, writing its record, as a person would.
func abortStopped(t *testing.T, f *fixture) []run.Outcome {
	t.Helper()
	ctx := context.Background()
	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	var out []run.Outcome
	for _, r := range runs {
		ws, err := workspace.Open(filepath.Join(f.dir, "ws"))
		if err != nil {
			t.Fatal(err)
		}
		env := run.Env{Workspace: ws, Registry: f.env.Registry}
		jf, err := record.ReadJournalFile(r.JournalPath)
		if err == nil && recordPending(r, jf.Entries) == "" {
			if res, err := handlers.Resume(ctx, env, r.ID, run.PINs{Ops: []byte("ops-pin-1234")}); err != nil {
				t.Errorf("resume %s, killed with every step done: %v", r.ID, err)
			} else {
				t.Logf("%s, killed with every step done, resumed: %s", r.ID, res.Summary)
			}
			ws.Close()
			continue
		}
		if _, err := handlers.Resume(ctx, env, r.ID, run.PINs{}); !errors.Is(err, run.ErrCannotResume) {
			t.Errorf("resume %s: %v", r.ID, err)
		}
		res, err := handlers.Abort(ctx, env, r.ID, run.PINs{Ops: []byte("ops-pin-1234")})
		ws.Close()
		if err != nil {
			t.Fatalf("abort %s: %v", r.ID, err)
		}
		out = append(out, res)
	}
	return out
}

// checkAccountedFor fails the test for any key on the operations token that the registry
// does not own (as an issuing CA or the record signer) and for any journal that does not
// verify. It returns how many half-created objects SoftHSM left: its C_CreateObject writes an
// object's class before its other attributes, so a kill between them leaves an object with
// neither id nor label, which Custos never makes.
func checkAccountedFor(t *testing.T, f *fixture) (halfMade int) {
	t.Helper()
	ctx := context.Background()
	owned := map[string]bool{}
	issuers, _ := f.env.Registry.Issuers(ctx)
	for _, i := range issuers {
		owned[hex.EncodeToString(i.Key.KeyID)] = true
	}
	roles, _ := f.env.Registry.RoleCerts(ctx)
	for _, r := range roles {
		owned[hex.EncodeToString(r.Key.KeyID)] = true
	}
	m, err := hsm.Open(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := m.OpenSession(ctx, f.plan.OperationsToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, []byte("ops-pin-1234")); err != nil {
		t.Fatal(err)
	}
	defer s.Logout(ctx)
	objs, _ := s.Objects(ctx)
	for _, o := range objs {
		if len(o.ID) == 0 && o.Label == "" {
			halfMade++
			continue
		}
		if !owned[hex.EncodeToString(o.ID)] {
			t.Errorf("operations token keeps %v, which the registry does not own", o)
		}
	}
	journals, _ := filepath.Glob(filepath.Join(f.dir, "ws", "journal", "*.jsonl"))
	for _, j := range journals {
		if _, err := record.ReadJournalFile(j); err != nil {
			t.Errorf("journal %s: %v", j, err)
		}
	}
	return halfMade
}

// killIn starts cmd and kills it at a random moment of the i-th of n equal slices of whole,
// so that n runs are killed at moments spread over a run. It says whether cmd was still
// running when killed.
func killIn(t *testing.T, cmd *exec.Cmd, i, n int, whole time.Duration) bool {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slice := whole / time.Duration(n)
	time.Sleep(slice*time.Duration(i) + time.Duration(rand.Int64N(int64(slice))))
	cmd.Process.Kill()
	return cmd.Wait() != nil
}

// childEnv opens, in a kill test's child process, the workspace and registry under dir.
func childEnv(t *testing.T, dir string) run.Env {
	t.Helper()
	env, err := run.Open(context.Background(), filepath.Join(dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	return env
}
