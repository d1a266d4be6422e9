package record

import (
	"testing"

	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
)

// TestJournalReadersRefuseHostileFiles: anyone who can write the workspace could put a FIFO
// or a device in a journal's place; custos runs (ReadJournalFile) and resume (OpenJournal)
// refuse it at once instead of waiting on it forever.
func TestJournalReadersRefuseHostileFiles(t *testing.T) {
	for _, h := range inputfiletest.Inputs(t, "journal", MaxFileSize) {
		t.Run("ReadJournalFile/"+h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error { _, err := ReadJournalFile(path); return err })
		})
		t.Run("OpenJournal/"+h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error { _, err := OpenJournal(path, "run-1"); return err })
		})
	}
}
