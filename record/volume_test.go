package record

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVolumesJoinIntoOneRecord lays out a long table in volumes of three pages (a fleet's
// record has volumes of volumePages) and checks the joined, signed file with tools that
// know nothing of volumes: qpdf finds it sound, pdftotext reads every row once and "page N of
// M" on every page with the right N and M, pdffonts finds every font embedded (the CJK one
// too, in the volumes that use it), pdfsig and Verify accept the signature.
func TestVolumesJoinIntoOneRecord(t *testing.T) {
	const rows = 400
	journal := testJournal(t, 2)
	jf, hash, err := journalOf(journal)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := layOutVolumes("vol-1", "Volumes", t.TempDir(), 3, func(d *doc) error {
		d.para("A table long enough for several volumes.", "", bodyPt)
		d.heading("Devices")
		d.startTable([]column{{title: "Serial", width: 0.3}, {title: "Owner", width: 0.3}, {title: "Key id", width: 0.4, mono: true}})
		for i := range rows {
			owner := "Zoë Ångström"
			if i%40 == 7 { // the CJK font appears in some volumes only
				owner = "李雷"
			}
			d.tableRow(fmt.Sprintf("DEV-%04d", i), owner, fmt.Sprintf("%064x", i))
		}
		d.endTable()
		d.fields(toolFields(jf.Entries))
		d.signatureBlock([]Actor{{"Tess Tech", "technician"}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) < 5 {
		t.Fatalf("%d volumes, want the table to run over several", len(vols))
	}
	s, root := testSigner(t, "Acme")
	l := &laidOut{volumes: vols, meta: docMeta{Title: "Volumes", Kind: "fleet", RunID: "vol-1", JournalHash: hash}, files: []Attachment{journalAttachment(journal)}}
	path := filepath.Join(t.TempDir(), "volumes.pdf")
	if err := l.write(context.Background(), path, s, "test"); err != nil {
		t.Fatal(err)
	}
	checkSignedFile(t, path, root)
	out, err := exec.Command("pdftotext", "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, out)
	}
	pages := strings.Split(strings.TrimRight(string(out), "\f"), "\f")
	for i, p := range pages {
		if want := fmt.Sprintf("vol-1 · page %d of %d", i+1, len(pages)); !strings.Contains(p, want) {
			t.Errorf("page %d lacks %q", i+1, want)
		}
	}
	for i := range rows {
		if n := strings.Count(string(out), fmt.Sprintf("DEV-%04d", i)); n != 1 {
			t.Errorf("DEV-%04d appears %d times", i, n)
		}
	}
	if n := strings.Count(string(out), "李雷"); n != (rows+32)/40 {
		t.Errorf("李雷 appears %d times, want %d", n, (rows+32)/40)
	}
	fonts, err := exec.Command("pdffonts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pdffonts: %v %s", err, fonts)
	}
	row := regexp.MustCompile(`(?m)^(\S+)\s+CID TrueType\s+Identity-H\s+(yes|no)\s+(yes|no)\s+(yes|no)`)
	found := row.FindAllStringSubmatch(string(fonts), -1)
	if len(found) == 0 {
		t.Fatalf("pdffonts lists no font:\n%s", fonts)
	}
	cjk := 0
	for _, f := range found {
		if f[2] != "yes" {
			t.Errorf("font %s is not embedded", f[1])
		}
		if strings.Contains(f[1], "cjk") {
			cjk++
		}
	}
	if cjk == 0 {
		t.Errorf("no CJK font:\n%s", fonts)
	}
}
