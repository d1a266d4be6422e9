package record

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos-pki/custos/pki"
)

func TestLogEntryText(t *testing.T) {
	e := LogEntry{Kind: "reshare", Run: "reshare-acme-20261201T101500Z-1a2b3c", JournalSHA256: strings.Repeat("0f", 32)}
	want := "custos record log entry\nkind reshare\nrun reshare-acme-20261201T101500Z-1a2b3c\njournal-sha256 " + strings.Repeat("0f", 32) + "\n"
	if string(e.Text()) != want {
		t.Fatalf("Text() = %q", e.Text())
	}
	if got, err := ParseLogEntry(e.Text()); err != nil || got != e {
		t.Errorf("ParseLogEntry: %+v, %v", got, err)
	}
	for name, bad := range map[string]string{
		"upper-case hash":  strings.Replace(want, "0f0f", "0F0F", 1),
		"short hash":       strings.Replace(want, "0f0f\n", "\n", 1),
		"no final newline": strings.TrimSuffix(want, "\n"),
		"extra line":       want + "x\n",
		"space in the run": strings.Replace(want, "run reshare", "run re share", 1),
		"another header":   strings.Replace(want, "custos record log entry", "custos record", 1),
	} {
		if _, err := ParseLogEntry([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if e.LeafHash() != sha256.Sum256(append([]byte{0}, e.Text()...)) {
		t.Error("the leaf hash is not RFC 6962's SHA-256(0x00 || entry)")
	}
}

func TestCheckpointText(t *testing.T) {
	c := Checkpoint{Origin: LogOrigin("acme-root-2026"), Size: 42, Hash: tlog.Hash{1, 2, 3}}
	want := "custos/acme-root-2026/record-log\n42\n" + c.Hash.String() + "\n"
	if string(c.Text()) != want {
		t.Fatalf("Text() = %q", c.Text())
	}
	if got, err := ParseCheckpoint(want); err != nil || got != c {
		t.Errorf("ParseCheckpoint: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "o\n42\n", "o\n-1\n" + c.Hash.String() + "\n", "o\n042\n" + c.Hash.String() + "\n", "o\n42\nnot base64\n"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// noteCert certifies key for the note tests.
func noteCert(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	s, _ := signerWithKey(t, key)
	return s.Certificate
}

// Notes signed with each kind of key verify with their certificate's key and with no other;
// the Ed25519 key ID is checked against x/mod's own signed-note keys, the ECDSA one against
// signed-note's rule (SHA-256 of the SubjectPublicKeyInfo).
func TestNoteKeys(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 3072)
	edPub, ed, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCert := noteCert(t, other)
	text := Checkpoint{Origin: "custos/x/record-log", Size: 3, Hash: tlog.Hash{9}}.Text()
	for name, key := range map[string]crypto.Signer{"ecdsa-p256": p256, "ecdsa-p384": p384, "rsa-3072": rk, "ed25519": ed} {
		t.Run(name, func(t *testing.T) {
			cert := noteCert(t, key)
			s, err := NoteSigner(context.Background(), RoleRoot, cert, key)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := SignNote(text, s)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := NoteVerifier(RoleRoot, cert)
			got, by, err := OpenNote(msg, v)
			if err != nil || got != string(text) || len(by) != 1 || by[0] != NoteKeyName(RoleRoot, cert) {
				t.Fatalf("OpenNote: %q %v %v", got, by, err)
			}
			// Another key, or the same key in another role, does not verify it.
			ov, _ := NoteVerifier(RoleRoot, otherCert)
			if _, _, err := OpenNote(msg, ov); err == nil {
				t.Error("verified by another key")
			}
			rv, _ := NoteVerifier(RoleRecordSigner, cert)
			if _, _, err := OpenNote(msg, rv); err == nil {
				t.Error("verified as the record signer's")
			}
			// An edited text fails under the right key.
			edited := strings.Replace(string(msg), "\n3\n", "\n4\n", 1)
			if _, _, err := OpenNote([]byte(edited), v); err == nil {
				t.Error("an edited note verified")
			}
			// A second signer is added beside the first, and both verify.
			s2, _ := NoteSigner(context.Background(), RoleRecordSigner, otherCert, other)
			both, err := SignNote(msg, s2)
			if err != nil {
				t.Fatal(err)
			}
			ov2, _ := NoteVerifier(RoleRecordSigner, otherCert)
			if _, by, err := OpenNote(both, v, ov2); err != nil || len(by) != 2 {
				t.Errorf("co-signed: %v %v", by, err)
			}
			switch name {
			case "ed25519":
				vkey, err := note.NewEd25519VerifierKey(NoteKeyName(RoleRoot, cert), edPub)
				if err != nil {
					t.Fatal(err)
				}
				xv, err := note.NewVerifier(vkey)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := note.Open(msg, note.VerifierList(xv)); err != nil {
					t.Errorf("x/mod's own Ed25519 verifier: %v", err)
				}
			case "ecdsa-p256", "ecdsa-p384":
				spki, _ := x509.MarshalPKIXPublicKey(key.Public())
				sum := sha256.Sum256(spki)
				if v.KeyHash() != binary.BigEndian.Uint32(sum[:4]) {
					t.Error("the ECDSA key ID is not SHA-256(SPKI)[:4]")
				}
			}
		})
	}
	if _, err := NoteSigner(context.Background(), RoleRoot, otherCert, p256); err == nil {
		t.Error("a key was accepted for another key's certificate")
	}
}

// memLog is a record log in memory, kept with the same library, for proofs to check.
type memLog struct{ memHashes }

func (m *memLog) add(t testing.TB, n int64, data []byte) tlog.Tree {
	hs, err := tlog.StoredHashes(n, data, m.memHashes)
	if err != nil {
		t.Fatal(err)
	}
	m.memHashes = append(m.memHashes, hs...)
	h, _ := tlog.TreeHash(n+1, m.memHashes)
	return tlog.Tree{N: n + 1, Hash: h}
}

func TestLogProofCheck(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := signerWithKey(t, key)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rootCert := noteCert(t, rootKey)
	m := &memLog{}
	var entries []LogEntry
	var tree tlog.Tree
	for i := range 7 {
		e := LogEntry{Kind: "decommission", Run: "run-" + string(rune('a'+i)), JournalSHA256: strings.Repeat("ab", 32)}
		entries = append(entries, e)
		tree = m.add(t, int64(i), e.Text())
	}
	cp := Checkpoint{Origin: "o", Size: tree.N, Hash: tree.Hash}
	rs, _ := NoteSigner(context.Background(), RoleRecordSigner, s.Certificate, key)
	root, _ := NoteSigner(context.Background(), RoleRoot, rootCert, rootKey)
	signed, _ := SignNote(cp.Text(), rs)
	cosigned, _ := SignNote(signed, root)
	proof, _ := tlog.ProveRecord(tree.N, 4, m.memHashes)
	p := &LogProof{Index: 4, Entry: entries[4], Checkpoint: signed, Proof: proof}
	if _, by, err := p.Check(s.Certificate, nil); err != nil || len(by) != 1 {
		t.Errorf("a good proof: %v %v", by, err)
	}
	if _, _, err := p.Check(s.Certificate, rootCert); err == nil {
		t.Error("a checkpoint the root did not sign passed as root-signed")
	}
	p.Checkpoint = cosigned
	if _, by, err := p.Check(s.Certificate, rootCert); err != nil || len(by) != 2 {
		t.Errorf("a co-signed checkpoint: %v %v", by, err)
	}
	bad := *p
	bad.Index = 3
	if _, _, err := bad.Check(s.Certificate, nil); err == nil {
		t.Error("the entry passed at another index")
	}
	bad = *p
	bad.Entry.JournalSHA256 = strings.Repeat("cd", 32)
	if _, _, err := bad.Check(s.Certificate, nil); err == nil {
		t.Error("an edited entry passed")
	}
	// The files a record carries read back as the same proof.
	files, err := p.attachments()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]byte{}
	for _, f := range files {
		byName[f.Name] = f.Content
	}
	back, err := logProofOf(byName)
	if err != nil || back.Index != 4 || back.Entry != p.Entry || len(back.Proof) != len(p.Proof) {
		t.Fatalf("read back: %+v, %v", back, err)
	}
	if _, _, err := back.Check(s.Certificate, rootCert); err != nil {
		t.Errorf("read back: %v", err)
	}
}

// logged is a record's journal and its place in a log of a few other runs, checkpointed by
// the record signer and, when root is given, co-signed and attested by the root.
func logged(t testing.TB, s Signer, key crypto.Signer, root *x509.Certificate, rootKey crypto.Signer, kind string, journal []byte) *LogProof {
	t.Helper()
	jf, err := ReadJournal(bytesReader(journal))
	if err != nil {
		t.Fatal(err)
	}
	m := &memLog{}
	for i := range 3 {
		m.add(t, int64(i), LogEntry{Kind: "decommission", Run: fmt.Sprintf("before-%d", i), JournalSHA256: strings.Repeat("11", 32)}.Text())
	}
	e := LogEntry{Kind: kind, Run: jf.Entries[0].Run, JournalSHA256: jf.FinalHash}
	tree := m.add(t, 3, e.Text())
	proof, _ := tlog.ProveRecord(tree.N, 3, m.memHashes)
	rs, _ := NoteSigner(context.Background(), RoleRecordSigner, s.Certificate, key)
	cp, _ := SignNote(Checkpoint{Origin: LogOrigin("acme"), Size: tree.N, Hash: tree.Hash}.Text(), rs)
	p := &LogProof{Index: 3, Entry: e, Checkpoint: cp, Proof: proof}
	if root != nil {
		rk, _ := NoteSigner(context.Background(), RoleRoot, root, rootKey)
		p.Checkpoint, _ = SignNote(cp, rk)
		p.Attestation, _ = SignNote(e.Text(), rk)
	}
	return p
}

// TestVerifyChecksTheRecordLog: a record's log entry, checkpoint, proof and, for a quorum
// operation, the root's attestation; a record the operator signed alone that claims a quorum
// fails, and says so.
func TestVerifyChecksTheRecordLog(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, root := signerWithRoot(t, key, rootKey)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other := noteCert(t, otherKey)
	journal := testJournal(t, 2)
	write := func(kind string, p *LogProof) *Report {
		c := testCeremony()
		c.Kind, c.Log = kind, p
		path := filepath.Join(t.TempDir(), "r.pdf")
		if err := WriteCeremony(context.Background(), path, c, journal, s); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		return Verify(b, []*x509.Certificate{root})
	}
	failed := func(rep *Report) string {
		for _, c := range rep.Checks {
			if !c.OK {
				return c.Name + ": " + c.Detail
			}
		}
		return ""
	}
	quorum := logged(t, s, key, root, rootKey, "destroy", journal)
	if rep := write("destroy", quorum); !rep.OK() || !rep.RootSignedCheckpoint || rep.Root == nil || !rep.Root.Equal(root) {
		t.Errorf("an attested quorum record: %s", failed(rep))
	}
	operator := logged(t, s, key, nil, nil, "decommission", journal)
	if rep := write("decommission", operator); !rep.OK() || !strings.Contains(rep.Checks[len(rep.Checks)-1].Detail, "operator alone") {
		t.Errorf("an operator's record: %s %+v", failed(rep), rep.Checks[len(rep.Checks)-1])
	}
	// Every kind that claims a quorum needs the root: a record of it that the operator's
	// record signer logged alone fails, and so does one co-signed but not attested.
	for _, kind := range QuorumKinds {
		if got := failed(write(kind, logged(t, s, key, nil, nil, kind, journal))); !strings.HasPrefix(got, CheckLogInclusion) {
			t.Errorf("a %s record the operator logged alone: first failure %q, want %s", kind, got, CheckLogInclusion)
		}
		att := *logged(t, s, key, root, rootKey, kind, journal)
		att.Attestation = nil
		if got := failed(write(kind, &att)); !strings.HasPrefix(got, CheckAttestation) {
			t.Errorf("a %s record without the root's attestation: first failure %q, want %s", kind, got, CheckAttestation)
		}
	}
	tests := []struct {
		name, kind, want string
		p                *LogProof
	}{
		{"a quorum claimed by the operator alone", "destroy", CheckLogInclusion, logged(t, s, key, nil, nil, "destroy", journal)},
		{"attested by another root", "destroy", CheckLogInclusion, logged(t, s, key, other, otherKey, "destroy", journal)},
		{"the record's kind is not the log entry's", "decommission", CheckLogEntry, quorum},
		{"an entry of another journal", "decommission", CheckLogEntry, logged(t, s, key, nil, nil, "decommission", testJournal(t, 3))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := write(tt.kind, tt.p)
			if got := failed(rep); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first failure %q, want %s", got, tt.want)
			}
		})
	}
	// The attestation alone is missing: the checkpoint is co-signed, but no attestation.
	noAtt := *quorum
	noAtt.Attestation = nil
	if got := failed(write("destroy", &noAtt)); !strings.HasPrefix(got, CheckAttestation) || !strings.Contains(got, "operator alone") {
		t.Errorf("no attestation: %q", got)
	}
}

// signerWithRoot is a record signer certified by a root made from rootKey.
func signerWithRoot(t *testing.T, key, rootKey crypto.Signer) (Signer, *x509.Certificate) {
	t.Helper()
	serial, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Acme Root CA", Organization: "Acme Medical", Country: "US", ValidityYears: 20}, serial, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ = pki.NewSerial(rand.Reader)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: "Acme Records", ValidityYears: 5, EmailProtection: true},
		serial, key.Public(), pki.Issuer{Certificate: root, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	testRootKeys.Store(root, rootKey)
	return Signer{Key: key, Certificate: cert, Chain: []*x509.Certificate{root}}, root
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
