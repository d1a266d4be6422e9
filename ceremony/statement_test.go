package ceremony

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// sha256sum is the file's SHA-256 as coreutils' sha256sum prints it: the independent view.
func sha256sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// editRegistry runs SQL on the workspace's custos.db as anyone who can write the workspace
// could, outside Custos.
func editRegistry(t *testing.T, f *fixture, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", f.env.Workspace.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestQuorumStatementIsSignedAndKept(t *testing.T) {
	ctx := context.Background()
	module := testhsm.CopyModule(t)
	f := newFixture(t, strings.Replace(goodPlan, "/usr/lib/softhsm/libsofthsm2.so", module, 1))
	p := &people{}
	res, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	s := v.Statement
	h := f.plan.SHA256()
	if s.Seq != 1 || s.Epoch != 1 || s.Threshold != 3 || len(s.Custodians) != 5 || s.Custodians[4].Name != "Zoë Ångström" ||
		s.Module.Path != module || s.Module.SHA256 != sha256sum(t, module) || s.PlanSHA256 != hex.EncodeToString(h[:]) ||
		s.OperationsToken != "acme-ops" || s.RootToken.Label != f.plan.ID || s.Run != res.RunID ||
		s.RootCertificateSHA256 != res.Fingerprint().String() {
		t.Errorf("statement %+v", s)
	}
	for i, c := range res.Shares {
		if s.Custodians[i].Commitment != hex.EncodeToString(c.Commitment) {
			t.Errorf("custodian %d's commitment differs from the registry's", i+1)
		}
	}
	if list := pkcs11List(t, f); !strings.Contains(list, s.RootToken.Serial) || !strings.Contains(list, s.RootToken.Manufacturer) {
		t.Errorf("pkcs11-tool does not show the root token %s:\n%s", s.RootToken, list)
	}

	// The record carries the statement as signed: pdfdetach takes it out, openssl checks it
	// with the root certificate's key alone.
	dir := t.TempDir()
	for _, name := range []string{"quorum-statement-1.json", "quorum-statement-1.sig"} {
		if out, err := exec.Command("pdfdetach", "-savefile", name, "-o", filepath.Join(dir, name), res.RecordPath).CombinedOutput(); err != nil {
			t.Fatalf("pdfdetach %s: %v\n%s", name, err, out)
		}
	}
	openssl(t, "x509", "-in", res.RootPath, "-pubkey", "-noout", "-out", filepath.Join(dir, "root.pub"))
	if out := openssl(t, "dgst", "-sha384", "-verify", filepath.Join(dir, "root.pub"), "-signature", filepath.Join(dir, "quorum-statement-1.sig"),
		filepath.Join(dir, "quorum-statement-1.json")); !strings.Contains(out, "Verified OK") {
		t.Errorf("openssl dgst -verify: %s", out)
	}
	if text, _ := os.ReadFile(filepath.Join(dir, "quorum-statement-1.json")); string(text) != string(mustStatement(t, f).Text) {
		t.Error("the record's statement is not the registry's")
	}
	// And the journal names it.
	jf, err := record.ReadJournalFile(res.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	var journaled bool
	for _, e := range jf.Entries {
		if e.Step == "root.statement" && e.Status == record.StatusDone {
			st, err := record.Decode[StatementSigned](e)
			journaled = err == nil && st.Statement == string(mustStatement(t, f).Text) && st.ModuleSHA256 == s.Module.SHA256
		}
	}
	if !journaled {
		t.Error("the journal does not hold the statement as signed")
	}

	// A quorum operation journals what it relied on: the statement, the root's fingerprint
	// in words, the module and its SHA-256, the root token.
	ica, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	u := unlockPayload(t, ica.JournalPath)
	if u.Statement != 1 || u.Module != module || u.ModuleSHA256 != s.Module.SHA256 || u.RootWords != res.Fingerprint().Words() || !strings.Contains(u.RootToken, s.RootToken.Serial) {
		t.Errorf("unlock journaled %+v", u)
	}
}

func mustStatement(t *testing.T, f *fixture) registry.Statement {
	t.Helper()
	q, err := f.env.Registry.Quorum(context.Background(), f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	return q.Statement
}

func unlockPayload(t *testing.T, journal string) Unlocked {
	t.Helper()
	jf, err := record.ReadJournalFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range jf.Entries {
		if strings.HasSuffix(e.Step, ".unlock") && e.Status == record.StatusDone {
			u, err := record.Decode[Unlocked](e)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
	}
	t.Fatalf("%s has no unlock step done", journal)
	return Unlocked{}
}

func pkcs11List(t *testing.T, f *fixture) string {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "-L").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool -L: %v\n%s", err, out)
	}
	return string(out)
}

// Whoever can write the workspace cannot change what a quorum operation trusts: each edit of
// the registry below is refused, naming what differs, both when the shares are entered after
// it and when they were entered before it.
func TestRegistryEditsAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	st := mustStatement(t, f)
	q, _ := f.env.Registry.Quorum(ctx, f.plan.ID)
	edits := []struct {
		name, edit, undo string
		args, undoArgs   []any
		want             string
	}{
		{"module", `UPDATE quorums SET module_path = '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so'`, `UPDATE quorums SET module_path = ?`,
			nil, []any{q.ModulePath}, "PKCS#11 module of acme-root-2026 is /usr/lib/x86_64-linux-gnu/pkcs11-spy.so"},
		{"threshold", `UPDATE quorums SET threshold = 2`, `UPDATE quorums SET threshold = 3`, nil, nil, "threshold 2, not 3"},
		{"commitment", `UPDATE quorum_shares SET commitment = ? WHERE number = 2`, `UPDATE quorum_shares SET commitment = ? WHERE number = 2`,
			[]any{make([]byte, 32)}, []any{q.Shares[1].Commitment}, "custodians and commitments"},
		{"custodian", `UPDATE quorum_shares SET custodian = 'Mallory' WHERE number = 3`, `UPDATE quorum_shares SET custodian = 'Cleo Costa' WHERE number = 3`,
			nil, nil, "#3 Mallory"},
		{"digest", `UPDATE quorums SET secret_digest = ?`, `UPDATE quorums SET secret_digest = ?`, []any{make([]byte, 32)}, []any{q.SecretDigest}, "secret digest"},
		{"operations token", `UPDATE quorums SET ops_token = 'evil-ops'`, `UPDATE quorums SET ops_token = 'acme-ops'`, nil, nil, "operations token"},
		{"root key's token", `UPDATE issuers SET token_label = 'evil-root' WHERE id = 'acme-root-2026'`,
			`UPDATE issuers SET token_label = 'acme-root-2026' WHERE id = 'acme-root-2026'`, nil, nil, "root key's token"},
		{"statement text", `UPDATE quorum_statements SET statement = ?`, `UPDATE quorum_statements SET statement = ?`,
			[]any{[]byte(strings.Replace(string(st.Text), `"threshold":3`, `"threshold":2`, 1))}, []any{st.Text}, "not signed by the root"},
		{"statement removed", `DELETE FROM quorum_statements`, `INSERT INTO quorum_statements VALUES (?, ?, ?, ?, ?, ?)`,
			nil, []any{f.plan.ID, st.Seq, st.Text, st.Signature, st.RunID, st.CreatedAt.Unix()}, "has no quorum statement"},
	}
	before := f.quorum(t, p.shares[1], p.shares[2], p.shares[3]) // entered before the edits
	defer before.Wipe()
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			editRegistry(t, f, e.edit, e.args...)
			defer editRegistry(t, f, e.undo, e.undoArgs...)
			_, err := LoadQuorum(ctx, f.env.Registry, f.plan.ID)
			if !errors.Is(err, ErrNotAsSigned) || !strings.Contains(err.Error(), e.want) {
				t.Errorf("LoadQuorum: %v, want %q", err, e.want)
			}
			_, err = IssueCA(ctx, f.env, before, IssueCARequest{CommonName: "X", OpsPIN: []byte("ops-pin-1234")})
			if err == nil || !(errors.Is(err, ErrNotAsSigned) || errors.Is(err, quorum.ErrRefused)) {
				t.Errorf("IssueCA with shares entered before the edit: %v", err)
			}
		})
	}
	runs, _ := f.env.Registry.RunsOf(ctx, f.plan.ID)
	if len(runs) != 1 {
		t.Errorf("refused operations started %d runs", len(runs)-1)
	}
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[2], p.shares[3], p.shares[4]), IssueCARequest{CommonName: "CA", OpsPIN: []byte("ops-pin-1234")}); err != nil {
		t.Fatalf("after the edits were undone: %v", err)
	}
}

// A workspace whose root certificate was replaced, with a statement of another key naming a
// logging module and the real commitments copied, takes no real share: the commitments bind
// each share to the root it was made for.
func TestAnotherRootTakesNoShare(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	v, err := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := pki.NewSerial(rand.Reader)
	fake, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Acme Medical Root CA 2026", Organization: "Acme Medical", Country: "US", ValidityYears: 25}, serial, key)
	if err != nil {
		t.Fatal(err)
	}
	forged := *v.Statement
	sum := sha256.Sum256(fake.Raw)
	forged.RootCertificateSHA256 = hex.EncodeToString(sum[:])
	forged.Module.Path = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
	ss, err := forged.Sign(key, fake)
	if err != nil {
		t.Fatal(err)
	}
	editRegistry(t, f, `UPDATE issuers SET cert_der = ?, cert_sha256 = ?, serial = ? WHERE id = ?`, fake.Raw, sum[:], fake.SerialNumber.Bytes(), f.plan.ID)
	editRegistry(t, f, `UPDATE quorums SET module_path = ?`, forged.Module.Path)
	editRegistry(t, f, `UPDATE quorum_statements SET statement = ?, signature = ?`, ss.Text, ss.Signature)
	q, err := LoadQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatalf("the forged quorum is consistent, yet: %v", err)
	}
	for n := 1; n <= 5; n++ {
		if _, err := q.Add(p.shares[n]); !errors.Is(err, quorum.ErrRefused) || !strings.Contains(err.Error(), "does not match its commitment") {
			t.Errorf("share #%d under the forged root: %v", n, err)
		}
	}
}

// The module file is pinned by the statement: one byte changed and it is refused before any
// share is combined, naming both hashes; the quorum accepts it with SetModule, after which
// the old file is refused.
func TestModuleIsPinned(t *testing.T) {
	ctx := context.Background()
	module := testhsm.CopyModule(t)
	f := newFixture(t, strings.NewReplacer("/usr/lib/softhsm/libsofthsm2.so", module, "ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	accepted := sha256sum(t, module)
	original := filepath.Join(t.TempDir(), "libvendor-pkcs11.so")
	b, _ := os.ReadFile(module)
	os.WriteFile(original, b, 0o755)
	testhsm.ChangeOneByte(t, module)
	changed := sha256sum(t, module)
	if changed == accepted {
		t.Fatal("the byte did not change")
	}
	tries := userPINTries(t, f)
	_, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "CA", OpsPIN: []byte("ops-pin-1234")})
	if !errors.Is(err, ErrNotAsSigned) || !strings.Contains(err.Error(), changed) || !strings.Contains(err.Error(), accepted) ||
		!strings.Contains(err.Error(), "no share was combined") {
		t.Fatalf("issue-ca through a changed module: %v", err)
	}
	if now := userPINTries(t, f); now != tries {
		t.Errorf("the root token's flags changed from %q to %q: a login was tried", tries, now)
	}
	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	if len(runs) != 1 {
		t.Fatalf("%d stopped runs", len(runs))
	}
	if j, _ := os.ReadFile(runs[0].JournalPath); !strings.Contains(string(j), changed) || !strings.Contains(string(j), accepted) {
		t.Error("the journal of the refused run does not name both hashes")
	}
	if _, err := handlers.Abort(ctx, f.env, runs[0].ID, run.PINs{}); err != nil {
		t.Errorf("abort the refused run: %v", err)
	}

	// Too few shares cannot accept it.
	if _, err := SetModule(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2]), SetModuleRequest{Module: module}); !errors.Is(err, quorum.ErrRefused) {
		t.Errorf("set-module with 2 of 3 shares: %v", err)
	}
	res, err := SetModule(ctx, f.env, f.quorum(t, p.shares[2], p.shares[4], p.shares[5]), SetModuleRequest{Module: module, OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Previous.SHA256 != accepted || res.Module.SHA256 != changed || res.Module.Path != module || res.Seq != 2 {
		t.Errorf("set-module: %+v", res)
	}
	if u := unlockPayload(t, f.env.JournalPath(res.RunID)); u.ModuleSHA256 != changed {
		t.Errorf("set-module's unlock journaled module %s", u.ModuleSHA256)
	}
	ica, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "CA", OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatalf("issue-ca through the accepted module: %v", err)
	}
	if u := unlockPayload(t, ica.JournalPath); u.Statement != 2 || u.ModuleSHA256 != changed {
		t.Errorf("issue-ca relied on %+v", u)
	}
	// The file the quorum accepted before is refused now, wherever it is.
	f.env.Module = original
	_, err = RootCRL(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), RootCRLRequest{})
	if !errors.Is(err, ErrNotAsSigned) || !strings.Contains(err.Error(), accepted) {
		t.Errorf("the old module after set-module: %v", err)
	}
}

// userPINTries is what pkcs11-tool says of the root token's PIN flags: a failed login shows.
func userPINTries(t *testing.T, f *fixture) string {
	t.Helper()
	for _, block := range strings.Split(pkcs11List(t, f), "Slot ") {
		if strings.Contains(block, "token label        : "+f.plan.ID+"\n") {
			for _, l := range strings.Split(block, "\n") {
				if strings.Contains(l, "token flags") {
					return l
				}
			}
		}
	}
	t.Fatalf("no token %s", f.plan.ID)
	return ""
}

// A token that took the root token's label is not the root token: it is refused by the
// identity the statement names, before any share is combined.
func TestAnotherTokenWithTheRootsLabel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	v, _ := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	dirs, _ := filepath.Glob(filepath.Join(f.hsm.Dir, "tokens", "*"))
	for _, d := range dirs {
		if b, _ := os.ReadFile(filepath.Join(d, "token.object")); strings.Contains(string(b), f.plan.ID) && !strings.Contains(string(b), "acme-ops") {
			// The real root token, out of the module's sight (it reads every folder of its own).
			if err := os.Rename(d, filepath.Join(t.TempDir(), "away")); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.hsm.InitToken(t, f.plan.ID, "so-pin-1234", "user-pin-1234")
	_, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "CA", OpsPIN: []byte("ops-pin-1234")})
	if !errors.Is(err, ErrNotAsSigned) || !strings.Contains(err.Error(), v.Statement.RootToken.Serial) || !strings.Contains(err.Error(), "no share was combined") {
		t.Fatalf("issue-ca with another token labelled %s: %v", f.plan.ID, err)
	}
}

// restoredRoot is a root made by a ceremony and restored into a second token, acme-root-b,
// with three of its shares to open it.
func restoredRoot(t *testing.T) (*fixture, func() *quorum.Collector) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	three := func() *quorum.Collector { return f.quorum(t, p.shares[1], p.shares[2], p.shares[3]) }
	if _, err := Restore(ctx, f.env, three(), RestoreRequest{Token: "acme-root-b",
		Backup: f.env.Workspace.Path("backup", f.plan.ID+"-epoch1.wrapped")}); err != nil {
		t.Fatal(err)
	}
	return f, three
}

// After a restore the statement names the restored token first, and the ceremony's token
// beside it. With the restored one missing, the root opens on the ceremony's token; a token
// that took that label but is not the one the statement names (another serial) is refused
// before any share is combined.
func TestStatementNamesTheRestoredToken(t *testing.T) {
	ctx := context.Background()
	f, three := restoredRoot(t)
	v, err := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil || v.Statement.RootToken.Label != "acme-root-b" || v.Seq != 2 {
		t.Fatalf("the statement after the restore: %+v %v", v, err)
	}
	away := t.TempDir()
	moveToken := func(label, to string) {
		t.Helper()
		m := f.hsm.Open(t)
		tok, err := m.TokenByLabel(ctx, label)
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		dirs, _ := filepath.Glob(filepath.Join(f.hsm.Dir, "tokens", "*"))
		for _, d := range dirs {
			if b, _ := os.ReadFile(filepath.Join(d, "token.object")); strings.Contains(string(b), tok.Token.Serial) {
				if err := os.Rename(d, to); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("no token %s", label)
	}
	moveToken("acme-root-b", filepath.Join(away, "b"))
	if _, err := RootCRL(ctx, f.env, three(), RootCRLRequest{}); err != nil {
		t.Fatalf("a root CRL on the ceremony's token, the restored one missing: %v", err)
	}
	holders, _ := f.env.Registry.RootHolders(ctx, f.plan.ID)
	var serial string
	for _, h := range holders {
		if h.Token == f.plan.ID {
			serial = h.Serial
		}
	}
	moveToken(f.plan.ID, filepath.Join(away, "a"))
	f.hsm.InitToken(t, f.plan.ID, "so-pin-1234", "user-pin-1234")
	_, err = RootCRL(ctx, f.env, three(), RootCRLRequest{})
	if err == nil || serial == "" || !strings.Contains(err.Error(), serial) || !strings.Contains(err.Error(), "no share was combined") {
		t.Fatalf("a root CRL on another token labelled %s (registry serial %q): %v", f.plan.ID, serial, err)
	}
}

// Which tokens hold the root is the statement's word, not the registry's: the registry's rows
// must agree with it. A row hidden (so a reshare would pass over a token, leaving it opening
// to the old shares), a row added for a token the statement does not name, or one deleted is
// refused before any share is combined; a reshare that records a token lost signs a statement
// without it.
func TestHoldersAreTheStatements(t *testing.T) {
	ctx := context.Background()
	f, three := restoredRoot(t)
	v, err := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := statementHolderNames(v.Statement); got != `"`+f.plan.ID+`", "acme-root-b"` || v.Statement.Version != 2 {
		t.Fatalf("statement %d (version %d) names the holders %s", v.Seq, v.Statement.Version, got)
	}
	backupRows := func() {
		editRegistry(t, f, `UPDATE root_holders SET state = 'holding' WHERE token_label = 'acme-root-b'`)
	}
	for _, tt := range []struct {
		name, edit, undo, want string
	}{
		{"a holder hidden", `UPDATE root_holders SET state = 'lost' WHERE token_label = 'acme-root-b'`, "",
			`the registry has token "acme-root-b" lost`},
		{"a holder added", `INSERT INTO root_holders (issuer_num, token_label, token_serial, key_id, origin, pin_epoch, state, state_at)
			SELECT issuer_num, 'acme-root-x', '', key_id, 'restore', pin_epoch, 'holding', state_at FROM root_holders WHERE token_label = 'acme-root-b'`,
			`DELETE FROM root_holders WHERE token_label = 'acme-root-x'`, `the registry says token "acme-root-x" holds root`},
		{"a holder deleted", `UPDATE root_holders SET token_label = 'acme-root-c' WHERE token_label = 'acme-root-b'`,
			`UPDATE root_holders SET token_label = 'acme-root-b' WHERE token_label = 'acme-root-c'`, `the registry says token "acme-root-c" holds root`},
		{"another key id", `UPDATE root_holders SET key_id = x'0102' WHERE token_label = 'acme-root-b'`, "", `the root key on "acme-root-b" has id 0102`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key, _ := f.env.Registry.RootHolders(ctx, f.plan.ID)
			editRegistry(t, f, tt.edit)
			defer func() {
				if tt.undo != "" {
					editRegistry(t, f, tt.undo)
				}
				backupRows()
				for _, h := range key {
					editRegistry(t, f, `UPDATE root_holders SET key_id = ? WHERE token_label = ?`, h.KeyID, h.Token)
				}
			}()
			before := userPINTries(t, f)
			_, err := Reshare(ctx, f.env, three(), ReshareRequest{Custodians: []string{"Ann", "Bea", "Cai"}, Threshold: 2}, &people{})
			if !errors.Is(err, ErrNotAsSigned) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "no share was combined") {
				t.Fatalf("reshare: %v, want %q", err, tt.want)
			}
			if after := userPINTries(t, f); after != before {
				t.Errorf("the root token's PIN flags went from %q to %q: a login was tried", before, after)
			}
		})
	}
	// Every holder agrees again: a reshare recording the ceremony's token lost signs a
	// statement naming acme-root-b alone, and the next quorum operation opens the root there.
	p2 := &people{}
	if _, err := Reshare(ctx, f.env, three(), ReshareRequest{Custodians: []string{"Ann", "Bea", "Cai"}, Threshold: 2,
		LostTokens: []string{f.plan.ID}, LostReason: "dropped in transit"}, p2); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil || statementHolderNames(v.Statement) != `"acme-root-b"` {
		t.Fatalf("after the reshare: %v, %v", v, err)
	}
	if _, err := RootCRL(ctx, f.env, f.quorum(t, p2.shares[1], p2.shares[2]), RootCRLRequest{}); err != nil {
		t.Fatalf("a root CRL with the new shares: %v", err)
	}
}
