package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

// sharesFor makes the public records of a quorum: commitments depend on the epoch so that
// the states of two epochs are told apart.
func sharesFor(epoch int, names ...string) []QuorumShare {
	out := make([]QuorumShare, len(names))
	for i, n := range names {
		c := sha256.Sum256([]byte(fmt.Sprintf("epoch %d share %d %s", epoch, i+1, n)))
		out[i] = QuorumShare{Number: i + 1, Custodian: n, Commitment: c[:]}
	}
	return out
}

func digestFor(epoch int) []byte {
	d := sha256.Sum256([]byte(fmt.Sprintf("digest of S at epoch %d", epoch)))
	return d[:]
}

// statementFor stands for the root's statement number seq: the registry keeps it, never reads it.
func statementFor(seq int) Statement {
	return Statement{Seq: seq, Text: []byte(fmt.Sprintf(`{"type":"custos-quorum-statement","seq":%d}`, seq)),
		Signature: []byte("signature"), RunID: fmt.Sprintf("run-%d", seq)}
}

func testQuorum() Quorum {
	backup := sha256.Sum256([]byte("blob 1"))
	return Quorum{CeremonyID: "acme-root-2026", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", OperationsToken: "acme-ops",
		Plan: []byte("id: acme-root-2026\nthreshold: 3\n"), Threshold: 3,
		Shares:       sharesFor(1, "Cara Cruz", "Cody Chen", "Cleo Costa", "Cole Carter", "Zoë Ångström"),
		SecretDigest: digestFor(1), BackupPath: "backup/acme-root-2026.blob", BackupSHA256: backup[:], CreatedAt: t0,
		Statement: statementFor(1)}
}

func TestQuorumRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	q, err := r.AddQuorum(ctx, testQuorum())
	if err != nil {
		t.Fatal(err)
	}
	if q.Epoch != 1 || q.PlanSHA256 != sha256.Sum256(testQuorum().Plan) || q.Status != StatusActive {
		t.Fatalf("stored %+v", q)
	}
	got, err := r.Quorum(ctx, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, q) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, q)
	}
	if !reflect.DeepEqual(got.Custodians(), []string{"Cara Cruz", "Cody Chen", "Cleo Costa", "Cole Carter", "Zoë Ångström"}) {
		t.Errorf("custodians %q", got.Custodians())
	}
	if !bytes.Equal(got.Commitment(5), q.Shares[4].Commitment) || got.Commitment(6) != nil {
		t.Error("Commitment by number")
	}
	_, err = r.AddQuorum(ctx, testQuorum())
	wantErr(t, err, ErrExists, `"acme-root-2026"`)
	_, err = r.Quorum(ctx, "nobody")
	wantErr(t, err, ErrNotFound, `"nobody"`)
}

func TestQuorumRefusesNonsense(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	many := make([]string, 256)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	tests := []struct {
		name string
		edit func(q *Quorum)
		want string
	}{
		{"threshold 1", func(q *Quorum) { q.Threshold = 1 }, "threshold 1"},
		{"threshold above N", func(q *Quorum) { q.Threshold = 6 }, "threshold 6 with 5"},
		{"256 custodians", func(q *Quorum) { q.Shares = sharesFor(1, many...); q.Shares[255].Number = 255 }, "256 custodians"},
		{"repeated number", func(q *Quorum) { q.Shares[1].Number = 1 }, "share number 1"},
		{"number 0", func(q *Quorum) { q.Shares[0].Number = 0 }, "share number 0"},
		{"repeated name", func(q *Quorum) { q.Shares[1].Custodian = "Cara Cruz" }, `"Cara Cruz"`},
		{"empty name", func(q *Quorum) { q.Shares[2].Custodian = "" }, `""`},
		{"no commitment", func(q *Quorum) { q.Shares[3].Commitment = nil }, "commitment of share 4"},
		{"no digest", func(q *Quorum) { q.SecretDigest = nil }, "digest"},
		{"backup without hash", func(q *Quorum) { q.BackupSHA256 = nil }, "backup"},
		{"short backup hash", func(q *Quorum) { q.BackupSHA256 = []byte{1, 2} }, "32 bytes"},
		{"no plan", func(q *Quorum) { q.Plan = nil }, "plan"},
		{"bad ceremony id", func(q *Quorum) { q.CeremonyID = "acme root" }, "space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := testQuorum()
			tc.edit(&q)
			_, err := r.AddQuorum(ctx, q)
			wantErr(t, err, ErrInvalid, tc.want)
		})
	}
	if _, err := r.Quorum(ctx, "acme-root-2026"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused quorum was stored: %v", err)
	}
}

func TestReshare(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	if _, err := w.r.AddQuorum(ctx, testQuorum()); err != nil {
		t.Fatal(err)
	}
	for _, h := range []RootHolder{{Token: "acme-root-2026", KeyID: []byte{1}, Origin: OriginCeremony, PINEpoch: 1},
		{Token: "acme-root-b", KeyID: []byte{1}, Origin: OriginRestore, PINEpoch: 1},
		{Token: "acme-root-c", KeyID: []byte{1}, Origin: OriginRestore, PINEpoch: 1}} {
		if err := w.r.AddRootHolder(ctx, "acme-root-2026", h, t0); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, w.r.AddRootHolder(ctx, "acme-root-2026", RootHolder{Token: "acme-root-b", KeyID: []byte{1}, Origin: OriginRestore, PINEpoch: 1}, t0), ErrExists)
	wantErr(t, w.r.AddRootHolder(ctx, "ica-test", RootHolder{Token: "x", KeyID: []byte{1}, Origin: OriginRestore, PINEpoch: 1}, t0), ErrInvalid, "not a root")
	w.startRun(t, "run-reshare", "single")
	backup2 := sha256.Sum256([]byte("blob 2"))
	up := QuorumUpdate{Threshold: 2, Shares: sharesFor(2, "Cody Chen", "Dana Diaz", "Eli Evans"), SecretDigest: digestFor(2),
		BackupPath: "backup/acme-root-2026-e2.blob", BackupSHA256: backup2[:], Statement: statementFor(2), At: t0.AddDate(1, 0, 0), RunID: "run-reshare"}
	// Every holder is given the new PINs or recorded lost, or nothing changes.
	for _, tc := range []struct {
		rotated []string
		lost    []LostHolder
		target  error
		want    []string
	}{
		{[]string{"acme-root-2026", "acme-root-b"}, nil, ErrConflict, []string{`"acme-root-c"`, "neither"}},
		{[]string{"acme-root-2026", "acme-root-b", "acme-root-x"}, nil, ErrConflict, []string{`"acme-root-x"`, "does not hold"}},
		{[]string{"acme-root-2026", "acme-root-b"}, []LostHolder{{Token: "acme-root-c"}}, ErrInvalid, []string{"without a reason"}},
	} {
		u := up
		u.Rotated, u.Lost = tc.rotated, tc.lost
		_, err := w.r.Reshare(ctx, "acme-root-2026", 1, u)
		wantErr(t, err, tc.target, tc.want...)
	}
	up.Rotated = []string{"acme-root-2026", "acme-root-b"}
	up.Lost = []LostHolder{{Token: "acme-root-c", Note: "fell into the harbour"}}
	q, err := w.r.Reshare(ctx, "acme-root-2026", 1, up)
	if err != nil {
		t.Fatal(err)
	}
	holders, _ := w.r.RootHolders(ctx, "acme-root-2026")
	if len(holders) != 3 || holders[0].State != HolderLost || holders[0].Note != "fell into the harbour" || holders[0].StateRun != "run-reshare" ||
		holders[0].PINEpoch != 1 || holders[1].PINEpoch != 2 || holders[2].PINEpoch != 2 || holders[2].State != HolderHolding {
		t.Errorf("holders after the reshare: %+v", holders)
	}
	if blobs, _ := w.r.BackupBlobs(ctx, "acme-root-2026"); len(blobs) != 2 || blobs[1].Epoch != 2 || blobs[1].SHA256 != backup2 || blobs[1].RunID != "run-reshare" {
		t.Errorf("backup blobs after the reshare: %+v", blobs)
	}
	up.Rotated, up.Lost = []string{"acme-root-2026", "acme-root-b"}, nil
	if q.Epoch != 2 || q.Threshold != 2 || !reflect.DeepEqual(q.Shares, up.Shares) || !bytes.Equal(q.SecretDigest, up.SecretDigest) ||
		q.BackupPath != up.BackupPath || !bytes.Equal(q.BackupSHA256, up.BackupSHA256) || !q.UpdatedAt.Equal(up.At) || !q.CreatedAt.Equal(t0) {
		t.Fatalf("after reshare %+v", q)
	}
	if got, _ := w.r.Quorum(ctx, "acme-root-2026"); !reflect.DeepEqual(got, q) {
		t.Errorf("read back %+v", got)
	}

	tests := []struct {
		name   string
		from   int
		edit   func(u *QuorumUpdate)
		target error
		want   []string
	}{
		{"stale epoch", 1, nil, ErrConflict, []string{"epoch 1", "at epoch 2"}},
		{"future epoch", 3, nil, ErrConflict, []string{"at epoch 2"}},
		{"threshold too high", 2, func(u *QuorumUpdate) { u.Threshold = 4 }, ErrInvalid, []string{"threshold 4"}},
		{"drops the backup", 2, func(u *QuorumUpdate) { u.BackupPath, u.BackupSHA256 = "", nil }, ErrConflict, []string{"backup"}},
		{"a statement out of sequence", 2, func(u *QuorumUpdate) { u.Statement = statementFor(2) }, ErrConflict, []string{"quorum statement 2, but the next is 3"}},
		{"no statement", 2, func(u *QuorumUpdate) { u.Statement = Statement{Seq: 3} }, ErrInvalid, []string{"text and signature"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := up
			u.Shares, u.Statement = sharesFor(3, "X", "Y", "Z"), statementFor(3)
			if tc.edit != nil {
				tc.edit(&u)
			}
			_, err := w.r.Reshare(ctx, "acme-root-2026", tc.from, u)
			wantErr(t, err, tc.target, append(tc.want, `"acme-root-2026"`)...)
			if got, _ := w.r.Quorum(ctx, "acme-root-2026"); !reflect.DeepEqual(got, q) {
				t.Errorf("a refused reshare changed the quorum: %+v", got)
			}
		})
	}

	// The end of the root: quorum and root issuer destroyed together; no reshare after.
	if err := w.r.DestroyRoot(ctx, "acme-root-2026", t0.AddDate(20, 0, 0), ""); err != nil {
		t.Fatal(err)
	}
	got, _ := w.r.Quorum(ctx, "acme-root-2026")
	root, _ := w.r.Issuer(ctx, "acme-root-2026")
	if got.Status != StatusDestroyed || root.Status != StatusDestroyed || !root.DestroyedAt.Equal(t0.AddDate(20, 0, 0)) {
		t.Errorf("after DestroyRoot: quorum %s, root %s", got.Status, root.Status)
	}
	_, err = w.r.Reshare(ctx, "acme-root-2026", 2, up)
	wantErr(t, err, ErrConflict, "destroyed")
	wantErr(t, w.r.DestroyRoot(ctx, "acme-root-2026", t0, ""), ErrConflict, "already")
	wantErr(t, w.r.DestroyRoot(ctx, "nobody", t0, ""), ErrNotFound, `"nobody"`)
}

// TestReshareIsAtomic fails a reshare after all its writes, just before commit, and checks
// nothing of it stays; then it reshares many times while another connection reads, and checks
// every read is one whole epoch, never a mix of two.
func TestReshareIsAtomic(t *testing.T) {
	ctx := context.Background()
	injected := errors.New("power cut")
	fail := false
	r, err := open(ctx, filepath.Join(t.TempDir(), "custos.db"), func(op string) error {
		if fail && op == "reshare" {
			return injected
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r = journaled(r)
	root := newRoot(t, "Acme Medical Root CA 2026")
	if _, err := r.AddIssuer(ctx, Issuer{ID: "acme-root-2026", Kind: IssuerRoot, Certificate: root.cert.Raw,
		CeremonyID: "acme-root-2026", Key: KeyLocation{TokenLabel: "acme-root-2026", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}}); err != nil {
		t.Fatal(err)
	}
	before, err := r.AddQuorum(ctx, testQuorum())
	if err != nil {
		t.Fatal(err)
	}
	backup := sha256.Sum256([]byte("blob"))
	update := func(epoch int) QuorumUpdate {
		names := []string{"A", "B", "C", "D"}[:2+epoch%3]
		return QuorumUpdate{Threshold: 2, Shares: sharesFor(epoch, names...), SecretDigest: digestFor(epoch),
			BackupPath: fmt.Sprintf("backup/e%d.blob", epoch), BackupSHA256: backup[:], Statement: statementFor(epoch)}
	}
	fail = true
	_, err = r.Reshare(ctx, "acme-root-2026", 1, update(2))
	if !errors.Is(err, injected) {
		t.Fatalf("reshare with a fault before commit: %v", err)
	}
	fail = false
	if got, _ := r.Quorum(ctx, "acme-root-2026"); !reflect.DeepEqual(got, before) {
		t.Fatalf("a failed reshare left part of itself:\n%+v", got)
	}

	const epochs = 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		reads := 0
		for {
			select {
			case <-done:
				if reads == 0 {
					errs <- errors.New("the reader never read")
				}
				return
			default:
			}
			q, err := r.Quorum(ctx, "acme-root-2026")
			if err != nil {
				errs <- err
				return
			}
			reads++
			if q.Epoch == 1 {
				continue
			}
			u := update(q.Epoch)
			if !reflect.DeepEqual(q.Shares, u.Shares) || !bytes.Equal(q.SecretDigest, u.SecretDigest) || q.BackupPath != u.BackupPath ||
				!bytes.Equal(q.Statement.Text, u.Statement.Text) {
				errs <- fmt.Errorf("read a mix: epoch %d with shares %v, digest %x, backup %s", q.Epoch, q.Custodians(), q.SecretDigest[:4], q.BackupPath)
				return
			}
		}
	}()
	for e := 1; e < epochs; e++ {
		if _, err := r.Reshare(ctx, "acme-root-2026", e, update(e+1)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if q, _ := r.Quorum(ctx, "acme-root-2026"); q.Epoch != epochs {
		t.Errorf("final epoch %d", q.Epoch)
	}
}

// A new module and a restored root key each come with the root's next statement, in one
// transaction: a statement out of sequence changes nothing.
func TestStatementsFollowTheirChanges(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	q := testQuorum()
	q.Shares[1].Destination = "token:cody-card"
	if _, err := w.r.AddQuorum(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, _ := w.r.Quorum(ctx, "acme-root-2026")
	if got.Statement.Seq != 1 || got.Shares[1].Destination != "token:cody-card" || !got.Statement.CreatedAt.Equal(t0) {
		t.Fatalf("stored statement %+v, shares %+v", got.Statement, got.Shares)
	}
	_, err := w.r.SetQuorumModule(ctx, "acme-root-2026", "/opt/hsm/libnew.so", statementFor(3))
	wantErr(t, err, ErrConflict, "quorum statement 3, but the next is 2")
	after, err := w.r.SetQuorumModule(ctx, "acme-root-2026", "/opt/hsm/libnew.so", statementFor(2))
	if err != nil {
		t.Fatal(err)
	}
	if after.ModulePath != "/opt/hsm/libnew.so" || after.Statement.Seq != 2 || string(after.Statement.Text) != string(statementFor(2).Text) {
		t.Errorf("after a new module: %s, statement %d", after.ModulePath, after.Statement.Seq)
	}
	to := KeyLocation{TokenLabel: "acme-root-b", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}
	wantErr(t, w.r.MoveRootKey(ctx, "acme-root-2026", to, statementFor(2)), ErrConflict, "the next is 3")
	if root, _ := w.r.Issuer(ctx, "acme-root-2026"); root.Key.TokenLabel != "acme-root-2026" {
		t.Errorf("a refused move moved the key to %s", root.Key)
	}
	if err := w.r.MoveRootKey(ctx, "acme-root-2026", to, statementFor(3)); err != nil {
		t.Fatal(err)
	}
	root, _ := w.r.Issuer(ctx, "acme-root-2026")
	got, _ = w.r.Quorum(ctx, "acme-root-2026")
	if root.Key.TokenLabel != "acme-root-b" || got.Statement.Seq != 3 || got.Statement.RunID != "run-3" {
		t.Errorf("after the move: key %s, statement %d", root.Key, got.Statement.Seq)
	}
}
