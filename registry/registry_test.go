package registry

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenCreatesSchemaWithPragmas(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	v, err := r.Version(ctx)
	if err != nil || v != SchemaVersion() || v < 1 {
		t.Fatalf("version %d, %v; want %d", v, err, SchemaVersion())
	}
	// Several connections of the pool must all carry the pragmas.
	for i := 0; i < 3; i++ {
		conn, err := r.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range []struct {
			pragma string
			want   string
		}{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"synchronous", "2"}, // FULL
			{"busy_timeout", "10000"},
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, p.pragma, got, p.want)
			}
		}
	}
	var tables int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables < 15 {
		t.Errorf("%d tables after migration", tables)
	}
}

func TestReopenKeepsDataAndVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	if err := r.SetSetting(ctx, "pkcs11.module", "/usr/lib/softhsm/libsofthsm2.so"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	for i := 0; i < 2; i++ {
		r, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		r = journaled(r)
		v, _, _ := r.Setting(ctx, "pkcs11.module")
		if v != "/usr/lib/softhsm/libsofthsm2.so" {
			t.Errorf("setting after reopen: %q", v)
		}
		var rows int
		if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_version`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != SchemaVersion() {
			t.Errorf("%d schema_version rows, want one per migration (%d)", rows, SchemaVersion())
		}
		r.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	next := SchemaVersion() + 1
	if _, err := r.db.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future', 0)`, next); err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, err = Open(ctx, path)
	wantErr(t, err, ErrSchemaTooNew, path, fmt.Sprintf("version %d", next), fmt.Sprintf("up to %d", SchemaVersion()), "newer Custos")
}

func TestMigrationIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	injected := errors.New("injected fault")
	_, err := open(ctx, path, func(op string) error {
		if op == "migrate" {
			return injected
		}
		return nil
	})
	if !errors.Is(err, injected) || !strings.Contains(err.Error(), "0001_initial.sql") {
		t.Fatalf("open with a failing migration: %v", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if n != 0 {
		t.Fatalf("a failed migration left %d schema objects", n)
	}
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	defer r.Close()
	if v, _ := r.Version(ctx); v != SchemaVersion() {
		t.Fatalf("version after retry: %d", v)
	}
}

func TestMigrationsAreNumberedWithoutGaps(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 || !strings.HasPrefix(m.name, fmt.Sprintf("%04d_", i+1)) {
			t.Errorf("migration %d is %s", i+1, m.name)
		}
	}
}

// TestHelperProcess is not a test: it is the second process of the tests below, started by
// runHelper with REGISTRY_HELPER set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("REGISTRY_HELPER")
	if mode == "" {
		return
	}
	ctx := context.Background()
	r, err := Open(ctx, os.Getenv("REGISTRY_DB"))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	r = journaled(r)
	switch mode {
	case "read":
		n, err := r.CountDevices(ctx, "")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(n)
	case "write":
		if err := r.SetSetting(ctx, "from-child", "yes"); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("written")
	case "allocate-and-crash":
		n, err := r.AllocateCRLNumber(ctx, os.Getenv("REGISTRY_ISSUER"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(n)
		os.Stdout.Sync()
		// A crash between allocation and RecordCRL: no Close, no deferred functions.
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	r.Close()
	os.Exit(0)
}

func helperCmd(t *testing.T, mode, db string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), append(env, "REGISTRY_HELPER="+mode, "REGISTRY_DB="+db)...)
	return cmd
}

func TestSecondProcessUnderWAL(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	writtenElsewhere(w.r, "a second process writes a setting")
	w.register(t, "SN-1", t0)

	// The first process holds a write transaction with an uncommitted device.
	tx, err := w.r.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (serial, model, issuer_num, status, registered_at)
		SELECT 'SN-uncommitted', 'm', num, 'active', 0 FROM issuers WHERE id = 'ica-test'`); err != nil {
		t.Fatal(err)
	}

	// A reader in another process opens the database and reads the committed state at once.
	start := time.Now()
	out, err := helperCmd(t, "read", w.r.Path()).Output()
	if err != nil {
		t.Fatalf("reader process: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "1" {
		t.Fatalf("reader saw %q devices, want the 1 committed", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the reader waited %v for the writer", d)
	}

	// A writer in another process waits for the first one's transaction, then writes.
	child := helperCmd(t, "write", w.r.Path())
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if err := child.Wait(); err != nil || strings.TrimSpace(line) != "written" {
		t.Fatalf("writer process: %v: %q", err, line)
	}
	if v, ok, _ := w.r.Setting(ctx, "from-child"); !ok || v != "yes" {
		t.Errorf("the child's write is not visible: %q %v", v, ok)
	}
	if n, _ := w.r.CountDevices(ctx, ""); n != 2 {
		t.Errorf("%d devices after both commits, want 2", n)
	}
}

func TestCRLNumberNeverReusedAfterCrash(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	writtenElsewhere(w.r, "a second process allocates a CRL number")
	n1, err := w.r.AllocateCRLNumber(ctx, "ica-test")
	if err != nil || n1 != 1 {
		t.Fatalf("first number %d, %v", n1, err)
	}
	if err := w.r.RecordCRL(ctx, CRL{IssuerID: "ica-test", Number: n1, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 7), Path: "crl/1.crl"}); err != nil {
		t.Fatal(err)
	}
	// Another process allocates number 2 and is killed before it signs or records anything.
	out, err := helperCmd(t, "allocate-and-crash", w.r.Path(), "REGISTRY_ISSUER=ica-test").Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v: %s", err, out)
	}
	burned, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || burned != 2 {
		t.Fatalf("crashed process allocated %q", out)
	}
	// Reopen, as Custos does on its next start.
	path := w.r.Path()
	w.r.Close()
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	defer r.Close()
	n3, err := r.AllocateCRLNumber(ctx, "ica-test")
	if err != nil || n3 != 3 {
		t.Fatalf("after the crash: number %d, %v; want 3 (2 is burned)", n3, err)
	}
	if latest, err := r.LatestCRL(ctx, "ica-test"); err != nil || latest.Number != 1 {
		t.Fatalf("latest CRL %d, %v", latest.Number, err)
	}
	// The burned number can never be recorded after a higher one.
	if err := r.RecordCRL(ctx, CRL{IssuerID: "ica-test", Number: n3, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 7), Path: "crl/3.crl"}); err != nil {
		t.Fatal(err)
	}
	err = r.RecordCRL(ctx, CRL{IssuerID: "ica-test", Number: burned, ThisUpdate: t0, NextUpdate: t0.AddDate(0, 0, 7), Path: "crl/2.crl"})
	wantErr(t, err, ErrConflict, "CRL 2", `"ica-test"`, "number 3")
}

func TestSettings(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	if _, ok, err := r.Setting(ctx, "pkcs11.module"); ok || err != nil {
		t.Fatalf("unset setting: %v %v", ok, err)
	}
	for _, v := range []string{"/usr/lib/softhsm/libsofthsm2.so", "/opt/vendor/lib/p11.so", ""} {
		if err := r.SetSetting(ctx, "pkcs11.module", v); err != nil {
			t.Fatal(err)
		}
		got, ok, err := r.Setting(ctx, "pkcs11.module")
		if !ok || err != nil || got != v {
			t.Errorf("after SetSetting(%q): %q %v %v", v, got, ok, err)
		}
	}
	if err := r.DeleteSetting(ctx, "pkcs11.module"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.Setting(ctx, "pkcs11.module"); ok {
		t.Error("setting still there after delete")
	}
	wantErr(t, r.SetSetting(ctx, "", "x"), ErrInvalid, "setting")
}
