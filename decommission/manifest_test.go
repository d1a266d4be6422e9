package decommission

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
)

// TestLoadManifestRefusesHostileInputs: a manifest that is a device, a FIFO nobody writes to,
// a socket, a folder or a file over 256 MiB (sparse: it takes no disk) is refused at once,
// naming the file, before it is read.
func TestLoadManifestRefusesHostileInputs(t *testing.T) {
	for _, h := range inputfiletest.Inputs(t, "manifest", maxManifest) {
		t.Run(h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error {
				_, err := LoadManifest(context.Background(), path)
				return err
			})
		})
	}
}

func TestLoadManifest(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.csv"), "serial,method,reason,note\nSN-1,erase,,returned\n")
	m, err := LoadManifest(context.Background(), good)
	if err != nil || len(m.Rows) != 1 {
		t.Fatalf("LoadManifest(good) = %+v, %v", m, err)
	}
	if want, _ := ParseManifest(strings.NewReader("serial,method,reason,note\nSN-1,erase,,returned\n")); m.SHA256 != want.SHA256 {
		t.Error("the manifest's hash differs from ParseManifest's")
	}
	// Bad lines are named with the file; the good rows still come back for the preview.
	bad := writeFile(t, filepath.Join(dir, "bad.csv"), "serial,method,reason\nA,x,\nB,erase,\n")
	m, err = LoadManifest(context.Background(), bad)
	var me ManifestError
	if !errors.As(err, &me) || len(me) != 1 || !strings.HasPrefix(err.Error(), bad+": manifest: line 2: ") || m == nil || len(m.Rows) != 1 {
		t.Errorf("LoadManifest(bad) = %+v, %v", m, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadManifest(ctx, good); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := LoadManifest(context.Background(), filepath.Join(dir, "nope.csv")); err == nil || !strings.Contains(err.Error(), "nope.csv does not exist") {
		t.Errorf("missing: %v", err)
	}
	os.Remove(good)
}
