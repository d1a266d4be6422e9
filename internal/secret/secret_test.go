package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
)

func TestReadPINFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{"owner only", "123456\n", 0o600, "123456", ""},
		{"read only owner", "abcd", 0o400, "abcd", ""},
		{"crlf", "4321\r\n", 0o600, "4321", ""},
		{"world readable", "123456\n", 0o644, "", "can be read or written by others (mode 0644): run chmod 600"},
		{"group readable", "123456\n", 0o640, "", "mode 0640"},
		{"empty", "\n", 0o600, "", "is empty"},
		{"too long", strings.Repeat("x", 300), 0o600, "", "is 300 bytes; a PIN file is at most 256 bytes: it should hold only the PIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPINFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadPINFile error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("PIN = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadPINFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	_, err := ReadPINFile(path)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want a missing-file error naming %s", err, path)
	}
}

// TestSecretFilesRefuseHostileInputs gives each kind of secret file a device, a FIFO nobody
// writes to, a socket, a folder and a file one byte too large: each is refused at once.
func TestSecretFilesRefuseHostileInputs(t *testing.T) {
	for _, kind := range []struct {
		name string
		max  int64
		read func(string) ([]byte, error)
	}{{"PIN file", maxPINFile, ReadPINFile}, {"share file", maxShareFile, ReadShareFile}} {
		for _, h := range inputfiletest.Inputs(t, kind.name, kind.max) {
			t.Run(kind.name+"/"+h.Name, func(t *testing.T) {
				inputfiletest.Refuse(t, h, func(path string) error {
					_, err := kind.read(path)
					return err
				})
			})
		}
	}
}

func TestZero(t *testing.T) {
	a, b := []byte("secret"), []byte{1, 2, 3}
	ZeroAll(a, b, nil)
	for _, buf := range [][]byte{a, b} {
		for i, c := range buf {
			if c != 0 {
				t.Fatalf("byte %d = %d after Zero", i, c)
			}
		}
	}
}
