package record

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pdfsign/sign"
)

func TestVerifyPassesAGoodRecord(t *testing.T) {
	s, root := testSigner(t, "Acme")
	_, file := writeSigned(t, s)
	rep := Verify(file, []*x509.Certificate{root})
	if !rep.OK() {
		for _, c := range rep.Checks {
			t.Errorf("%v %s: %s", c.OK, c.Name, c.Detail)
		}
	}
	if len(rep.Checks) != 11 || rep.Journal == nil || len(rep.Journal.Entries) != 81 {
		t.Errorf("%d checks, a journal of %d entries", len(rep.Checks), len(rep.Journal.Entries))
	}
}

func TestVerifyFailsTamperedRecords(t *testing.T) {
	s, root := testSigner(t, "Acme")
	_, file := writeSigned(t, s)
	other, otherRoot := testSigner(t, "Mallory")
	_, foreign := writeSigned(t, other)
	_ = otherRoot

	flip := func(at int) []byte {
		b := bytes.Clone(file)
		b[at] ^= 0x20
		return b
	}
	sigAt := bytes.Index(file, []byte("/ByteRange"))
	tests := []struct {
		name  string
		file  []byte
		check string
	}{
		{"byte in the middle", flip(len(file) / 3), CheckSignature},
		{"byte near the start", flip(20), CheckSignature},
		{"byte in the last line", flip(len(file) - 3), CheckSignature},
		{"truncated", file[:len(file)-100], CheckCoversFile},
		{"appended update", append(bytes.Clone(file), []byte("\n1 0 obj\n<< /Type /EmbeddedFile >>\nendobj\n%%EOF\n")...), CheckCoversFile},
		{"signed by a key outside the root", foreign, CheckChain},
		{"no signature", file[:sigAt-200], CheckCoversFile},
		{"empty", nil, CheckCoversFile},
		{"not a PDF", []byte("hello"), CheckCoversFile},
		{"an approval signature, not a certification", approvalSigned(t, s), CheckCertified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Verify(tt.file, []*x509.Certificate{root})
			if rep.OK() {
				t.Fatal("a tampered record verified")
			}
			var failed []string
			for _, c := range rep.Checks {
				if !c.OK {
					failed = append(failed, c.Name+": "+c.Detail)
				}
			}
			if !strings.HasPrefix(failed[0], tt.check) {
				t.Errorf("first failure %q, want %q", failed[0], tt.check)
			}
		})
	}
}

// approvalSigned is an unsigned record signed by the record signer with another tool, as an
// approval signature: valid, but it certifies nothing.
func approvalSigned(t *testing.T, s Signer) []byte {
	t.Helper()
	doc, err := RenderCeremony(testCeremony(), testJournal(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = sign.Sign(bytes.NewReader(doc), &out, rdr, int64(len(doc)), sign.SignData{
		Signature:         sign.SignDataSignature{CertType: sign.ApprovalSignature, Info: sign.SignDataSignatureInfo{Name: "x", Date: time.Now()}},
		Signer:            s.Key,
		DigestAlgorithm:   crypto.SHA256,
		Certificate:       s.Certificate,
		CertificateChains: [][]*x509.Certificate{append([]*x509.Certificate{s.Certificate}, s.Chain...)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// A swapped journal: a record laid out around one journal but stating another's hash is caught
// by the hash check even though the signature is valid.
func TestVerifyCatchesSwappedJournal(t *testing.T) {
	s, root := testSigner(t, "Acme")
	journal := testJournal(t, 3)
	other := testJournal(t, 4)
	jf, _ := ReadJournal(bytes.NewReader(journal))
	l, err := layoutCeremony(testCeremony(), other, "")
	if err != nil {
		t.Fatal(err)
	}
	l.meta.JournalHash = jf.FinalHash
	var signed bytes.Buffer
	if err := assemble(context.Background(), &signed, l.volumes, l.meta, l.files, &s, "test"); err != nil {
		t.Fatal(err)
	}
	rep := Verify(signed.Bytes(), []*x509.Certificate{root})
	var got string
	for _, c := range rep.Checks {
		if !c.OK {
			got = c.Name
			break
		}
	}
	if got != CheckJournalHash {
		t.Errorf("first failed check %q, want %q", got, CheckJournalHash)
	}
}

func TestVerifyJournalFile(t *testing.T) {
	j := testJournal(t, 2)
	if rep := VerifyJournal(j); !rep.OK() {
		t.Errorf("good journal: %+v", rep.Checks)
	}
	bad := bytes.Replace(j, []byte("root.step-0"), []byte("root.step-X"), 1)
	if rep := VerifyJournal(bad); rep.OK() || !strings.Contains(rep.Checks[0].Detail, "line 3") {
		t.Errorf("edited journal: %+v", rep.Checks)
	}
}

func FuzzVerifyJournal(f *testing.F) {
	f.Add(testJournal(f, 2))
	f.Add([]byte("{\"seq\":1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := VerifyJournal(b)
		for _, c := range rep.Checks {
			if !c.OK && c.Detail == "" {
				t.Fatal("a failed check without a reason")
			}
		}
	})
}

func FuzzVerifyRecord(f *testing.F) {
	s, root := testSigner(f, "Acme")
	path := filepath.Join(f.TempDir(), "r.pdf")
	if err := WriteCeremony(context.Background(), path, testCeremony(), testJournal(f, 3), s); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("%PDF-1.7\n/ByteRange [0 10 20 5]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep := Verify(b, []*x509.Certificate{root})
		if len(rep.Checks) == 0 {
			t.Fatal("no checks reported")
		}
		for _, c := range rep.Checks {
			if !c.OK && c.Detail == "" {
				t.Fatalf("check %q failed without a reason", c.Name)
			}
		}
	})
}
