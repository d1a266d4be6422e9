package registry

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A registry deleted, replaced by another file, or overwritten by another database under an
// open Registry refuses the next change and journals nothing of it, instead of writing into a
// file nobody will read.
func TestWriteRefusedWhenTheFileIsNoLongerTheOneOpened(t *testing.T) {
	ctx := context.Background()
	other := func(t *testing.T, path string) {
		o, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := journaled(o).SetSetting(ctx, "who", "another registry"); err != nil {
			t.Fatal(err)
		}
		o.Close()
	}
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		want   string
	}{
		{"deleted", func(t *testing.T, path string) { os.Remove(path) }, "was deleted or moved away"},
		{"moved away", func(t *testing.T, path string) { os.Rename(path, path+".old") }, "was deleted or moved away"},
		{"another registry moved into its place", func(t *testing.T, path string) {
			o := filepath.Join(filepath.Dir(path), "other.db")
			other(t, o)
			if err := os.Rename(o, path); err != nil {
				t.Fatal(err)
			}
		}, "was replaced by another file"},
		{"another registry copied over it", func(t *testing.T, path string) {
			o := filepath.Join(filepath.Dir(path), "other.db")
			other(t, o)
			copyOver(t, o, path) // the same inode, another database's bytes
		}, "is another registry now"},
		{"a file that is no database copied over it", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "no longer a SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "custos.db")
			base, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			j := &memJournal{}
			r := base.Journaled(j)
			if err := r.SetSetting(ctx, "before", "1"); err != nil {
				t.Fatal(err)
			}
			tt.change(t, path)
			err = r.SetSetting(ctx, "after", "2")
			if !errors.Is(err, ErrRegistryGone) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("write after the file %s: %v", tt.name, err)
			}
			if len(j.facts) != 1 {
				t.Errorf("%d facts journaled; the refused change must not be", len(j.facts))
			}
		})
	}
}

func copyOver(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// Each registry gets an identity of its own and Custos's application id in its header, which
// reaches the file at once; a database that is not Custos's is refused.
func TestRegistryIdentity(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity() == 0 || a.Identity() == b.Identity() {
		t.Errorf("identities %d and %d", a.Identity(), b.Identity())
	}
	if !a.file.headerSeen {
		t.Error("the identity is not in the file's header after Open")
	}
	id := a.Identity()
	a.Close()
	b.Close()
	a, err = Open(ctx, filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Identity() != id {
		t.Errorf("reopened with identity %d, was %d", a.Identity(), id)
	}
	a.Close()
	foreign := filepath.Join(dir, "foreign.db")
	if err := os.WriteFile(foreign, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(ctx, foreign)
	if err != nil {
		t.Fatal(err)
	}
	f.db.Exec(`PRAGMA application_id = 1234`)
	f.Close()
	if _, err := Open(ctx, foreign); err == nil || !strings.Contains(err.Error(), "not a Custos registry") {
		t.Errorf("a foreign database: %v", err)
	}
}

// Writes without a journal are refused: every change is journaled first.
func TestUnjournaledWriteRefused(t *testing.T) {
	r, err := Open(context.Background(), filepath.Join(t.TempDir(), "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetSetting(context.Background(), "k", "v"); !errors.Is(err, ErrUnjournaled) {
		t.Errorf("unjournaled write: %v", err)
	}
	if _, ok, _ := r.Setting(context.Background(), "k"); ok {
		t.Error("the refused write was committed")
	}
}

// A fact that cannot be journaled is not committed; a commit that fails after its fact was
// journaled is followed by an Uncommitted fact naming it, which a replay leaves out.
func TestJournalBeforeCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	cut := false
	base, err := open(ctx, path, func(op string) error {
		if cut && op == "set-setting" {
			return errors.New("power cut")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	j := &memJournal{}
	r := base.Journaled(j)
	j.fail = errors.New("disk full")
	if err := r.SetSetting(ctx, "k", "v"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("journal failure: %v", err)
	}
	if _, ok, _ := r.Setting(ctx, "k"); ok {
		t.Error("a change whose fact could not be journaled was committed")
	}
	j.fail = nil
	cut = true
	if err := r.SetSetting(ctx, "k", "v"); err == nil || !strings.Contains(err.Error(), "power cut") {
		t.Errorf("failed commit: %v", err)
	}
	cut = false
	if err := r.SetSetting(ctx, "k2", "v2"); err != nil {
		t.Fatal(err)
	}
	if len(j.facts) != 3 {
		t.Fatalf("%d facts, want the uncommitted one, its note, and the committed one", len(j.facts))
	}
	if u, ok := j.facts[1].(*Uncommitted); !ok || len(u.Seqs) != 1 || u.Seqs[0] != 1 || u.Kind != "set-setting" || u.Error != "power cut" {
		t.Errorf("second fact %#v", j.facts[1])
	}
	j.checkReplay(t, path)
}

// Compare finds every kind of difference, by the rows' canonical form, and none between a
// registry and its backup.
func TestCompareAndBackup(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.register(t, "SN-1", t0)
	d2, _ := w.register(t, "SN-2", t0)
	dir := t.TempDir()
	copy1 := filepath.Join(dir, "copy.db")
	if err := w.r.Backup(ctx, copy1, true); err != nil {
		t.Fatal(err)
	}
	if d, err := Compare(ctx, w.r.Path(), copy1); err != nil || len(d) != 0 {
		t.Fatalf("a backup differs: %v %v", d, err)
	}
	if err := w.r.Backup(ctx, copy1, true); !errors.Is(err, ErrExists) {
		t.Errorf("a backup over an existing file: %v", err)
	}
	// The backup opens as the registry it copies, with its identity.
	c, err := OpenReadOnly(ctx, copy1, true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.CountDevices(ctx, ""); n != 2 {
		t.Errorf("the backup has %d devices", n)
	}
	c.Close()
	// A change in the live one shows in its table, by the device's serial, not its row number.
	if err := w.r.SetKeyState(ctx, "SN-2", d2.Key.PublicKeySHA256, KeyCompromised, t0.AddDate(1, 0, 0), "lost"); err != nil {
		t.Fatal(err)
	}
	d, err := Compare(ctx, w.r.Path(), copy1)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, x := range d {
		tables = append(tables, x.Table)
	}
	if strings.Join(tables, ",") != "device_keys,key_states" || !strings.Contains(d[0].String(), `- device="SN-2"`) {
		t.Errorf("diffs: %v", d)
	}
}
