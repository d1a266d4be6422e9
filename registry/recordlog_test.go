package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// mth is RFC 6962's Merkle Tree Hash, written from its definition (section 2.1) as an oracle
// for the library's: MTH({d0}) = SHA-256(0x00 || d0); MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k])
// || MTH(D[k:n])), k the largest power of two below n.
func mth(leaves [][]byte) tlog.Hash {
	if len(leaves) == 1 {
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := mth(leaves[:k]), mth(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func testLeaf(i int) LogLeaf {
	run := fmt.Sprintf("run-%03d", i)
	return LogLeaf{RunID: run, Kind: "decommission", JournalSHA256: fmt.Sprintf("%064x", i),
		Leaf: []byte("custos record log entry\nkind decommission\nrun " + run + "\n")}
}

func TestRecordLogAppendsAndProves(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	const origin = "custos/acme-root-2026/record-log"
	if _, ok, _ := r.LogOrigin(ctx); ok {
		t.Fatal("an empty registry has a log origin")
	}
	var datas [][]byte
	var trees []tlog.Tree
	for i := range 21 {
		l := testLeaf(i)
		got, tree, existed, err := r.AppendLog(ctx, origin, l)
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, l.Leaf)
		if existed || got.Index != int64(i) || tree.N != int64(i+1) || tree.Hash != mth(datas) {
			t.Fatalf("leaf %d: index %d, existed %v, tree %d %v, want the RFC 6962 hash %v", i, got.Index, existed, tree.N, tree.Hash, mth(datas))
		}
		trees = append(trees, tree)
	}
	// Every leaf is proven in every tree that holds it, and every tree extends every smaller one.
	for size := int64(1); size <= 21; size++ {
		for i := range size {
			p, err := r.ProveLeaf(ctx, i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, size, trees[size-1].Hash, i, tlog.RecordHash(datas[i])); err != nil {
				t.Errorf("leaf %d in the log of %d: %v", i, size, err)
			}
		}
		for old := int64(1); old < size; old++ {
			p, err := r.ProveLog(ctx, old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, size, trees[size-1].Hash, old, trees[old-1].Hash); err != nil {
				t.Errorf("the log of %d extending that of %d: %v", size, old, err)
			}
		}
	}
	// A run is logged once; a resumed run gets its leaf back and adds nothing.
	again := testLeaf(3)
	again.JournalSHA256 = fmt.Sprintf("%064x", 999)
	got, tree, existed, err := r.AppendLog(ctx, origin, again)
	if err != nil || !existed || got.Index != 3 || got.JournalSHA256 != testLeaf(3).JournalSHA256 || tree != trees[20] {
		t.Errorf("logging run-003 again: %+v, %v, %v, %v", got, tree, existed, err)
	}
	if _, _, _, err := r.AppendLog(ctx, "custos/other/record-log", testLeaf(99)); !errors.Is(err, ErrConflict) {
		t.Errorf("another origin: %v", err)
	}
	leaves, err := r.LogLeaves(ctx)
	if err != nil || len(leaves) != 21 || !slices.EqualFunc(leaves, datas, func(l LogLeaf, d []byte) bool { return string(l.Leaf) == string(d) }) {
		t.Errorf("leaves %d, %v", len(leaves), err)
	}
	if l, err := r.LogLeafOf(ctx, "run-007"); err != nil || l.Index != 7 {
		t.Errorf("leaf of run-007: %+v, %v", l, err)
	}
	if _, err := r.LogLeafOf(ctx, "run-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("leaf of an unknown run: %v", err)
	}
}

func TestRecordLogCheckpoints(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	var tree tlog.Tree
	for i := range 5 {
		var err error
		if _, tree, _, err = r.AppendLog(ctx, "o", testLeaf(i)); err != nil {
			t.Fatal(err)
		}
	}
	good := LogCheckpoint{Size: 5, RootHash: tree.Hash, Note: []byte("o\n5\n" + tree.Hash.String() + "\n\n— k x\n"), RunID: "run-004"}
	tests := []struct {
		name string
		c    LogCheckpoint
		want error
	}{
		{"good", good, nil},
		{"the same again", good, nil},
		{"root signed", LogCheckpoint{Size: 5, RootHash: tree.Hash, Note: []byte("root signed"), RunID: "run-004", RootSigned: true}, nil},
		{"a hash the log never had", LogCheckpoint{Size: 5, RootHash: tlog.Hash{1}, Note: []byte("x"), RunID: "r"}, ErrConflict},
		{"larger than the log", LogCheckpoint{Size: 6, RootHash: tree.Hash, Note: []byte("y"), RunID: "r"}, ErrConflict},
		{"no note", LogCheckpoint{Size: 5, RootHash: tree.Hash, RunID: "r"}, ErrInvalid},
	}
	for _, tt := range tests {
		if err := r.AddLogCheckpoint(ctx, tt.c); !errors.Is(err, tt.want) && (tt.want != nil || err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	all, _ := r.LogCheckpoints(ctx, false)
	roots, _ := r.LogCheckpoints(ctx, true)
	if len(all) != 2 || len(roots) != 1 || !roots[0].RootSigned || string(roots[0].Note) != "root signed" {
		t.Errorf("checkpoints %+v, root-signed %+v", all, roots)
	}
}

// The auditor reads the record log through the read-only open, which changes no file.
func TestRecordLogReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "custos.db")
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	for i := range 3 {
		if _, _, _, err := r.AppendLog(ctx, "o", testLeaf(i)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	snapshot := func() map[string]string {
		m := map[string]string{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			fi, _ := e.Info()
			m[e.Name()] = fmt.Sprintf("%x %v", sha256.Sum256(b), fi.ModTime())
		}
		return m
	}
	before := snapshot()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)

	ro, err := OpenReadOnly(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := ro.LogLeaves(ctx)
	if err != nil || len(leaves) != 3 {
		t.Errorf("read-only: %d leaves, %v", len(leaves), err)
	}
	if _, _, _, err := ro.AppendLog(ctx, "o", testLeaf(9)); err == nil {
		t.Error("a read-only registry took a write")
	}
	ro.Close()
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "none.db"), true); !errors.Is(err, ErrNoRegistry) {
		t.Errorf("no database: %v", err)
	}
	if after := snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
	}
}
