package record

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	d := newDoc("wrap", "wrap")
	tests := []struct {
		name  string
		text  string
		width string // the column is as wide as this text, plus a hair
		want  []string
	}{
		{"fits", "device lost", "device lost", []string{"device lost"}},
		{"at spaces", "nothing to erase: device lost", "erase: device", []string{"nothing to", "erase: device", "lost"}},
		{"camelCase", "keyCompromise", "Compromise", []string{"key", "Compromise"}},
		{"last boundary that fits", "cessationOfOperation", "cessationOfOpera", []string{"cessationOf", "Operation"}},
		{"hash by characters", "0123456789ab", "01234", []string{"01234", "56789", "ab"}},
		{"newlines kept", "a\n\nb", "abc", []string{"a", "", "b"}},
		{"CJK between characters", "李雷李雷李雷", "李雷", []string{"李雷", "李雷", "李雷"}},
		{"too narrow for one character", "ab", "", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			width := d.width(tt.width, "sans", "", smallPt) + 0.01
			got := d.wrap(tt.text, "sans", "", smallPt, width)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("wrap(%q) to the width of %q = %q, want %q", tt.text, tt.width, got, tt.want)
			}
		})
	}
}

// TestTableHeaderRepeats lays out a fleet record over many pages and reads the words' boxes
// back with pdftotext -bbox: on every page the table's header is above its first row, and no
// device is lost or doubled at a page break.
func TestTableHeaderRepeats(t *testing.T) {
	const n = 120
	r := &Destruction{ID: "fleet-1", Outcome: "completed", Technician: "Tess Tech", Witness: "Wes Witness"}
	for i := range n {
		r.Devices = append(r.Devices, DeviceRow{Serial: fmt.Sprintf("DEV-%04d", i), Model: "Pump X2", Method: "unreachable",
			CertSerials: "01a2b3c4d5e6f708091a2b3c4d5e6f7081", Verification: "nothing to erase: device lost",
			Reason: "keyCompromise", Outcome: "decommissioned"})
	}
	b, err := RenderDestruction(r, testJournal(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fleet.pdf")
	os.WriteFile(path, b, 0o644)
	out, err := exec.Command("pdftotext", "-bbox", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, out)
	}
	word := regexp.MustCompile(`<word xMin="[0-9.]+" yMin="([0-9.]+)" xMax="[0-9.]+" yMax="([0-9.]+)">([^<]*)</word>`)
	pages := strings.Split(string(out), "<page ")[1:]
	if len(pages) < 4 {
		t.Fatalf("%d pages, want the table to run over several", len(pages))
	}
	seen := map[string]int{}
	for i, p := range pages {
		headerBottom, firstRowTop := 0.0, 1e9
		for _, m := range word.FindAllStringSubmatch(p, -1) {
			yMin, _ := strconv.ParseFloat(m[1], 64)
			yMax, _ := strconv.ParseFloat(m[2], 64)
			switch {
			case m[3] == "Serial" || m[3] == "Outcome":
				headerBottom = max(headerBottom, yMax)
			case strings.HasPrefix(m[3], "DEV-"):
				seen[m[3]]++
				firstRowTop = min(firstRowTop, yMin)
			}
		}
		if firstRowTop < 1e9 && (headerBottom == 0 || headerBottom > firstRowTop) {
			t.Errorf("page %d: the table header (bottom %.1f pt) is not above its first row (top %.1f pt)", i+1, headerBottom, firstRowTop)
		}
	}
	if len(seen) != n {
		t.Errorf("%d devices in the table, want %d", len(seen), n)
	}
	for s, c := range seen {
		if c != 1 {
			t.Errorf("%s appears %d times", s, c)
		}
	}
}

// TestNoHeadingAtAPageFoot lays out ceremony records whose sections fall at every height of
// a page (more participants push them down) and reads the word boxes back: no page ends with a
// section title, and no page shows a table's header twice.
func TestNoHeadingAtAPageFoot(t *testing.T) {
	word := regexp.MustCompile(`<word xMin="[0-9.]+" yMin="([0-9.]+)" xMax="[0-9.]+" yMax="([0-9.]+)">([^<]*)</word>`)
	journal := testJournal(t, 3)
	for extra := 0; extra <= 45; extra += 3 {
		c := testCeremony()
		for i := range extra {
			c.Participants = append(c.Participants, Actor{fmt.Sprintf("Custodian %d", i), "custodian"})
		}
		c.Steps = []StepRow{{Seq: 1, Step: "root.plan", Status: "note", Actor: "Ada Admin",
			Details: strings.Repeat("plan_words: aardvark adroitness absurd adviser ", 12)}}
		for i := 2; i < 30; i++ {
			c.Steps = append(c.Steps, StepRow{Seq: int64(i), Step: fmt.Sprintf("root.step-%d", i), Status: "done", Actor: "Ada Admin"})
		}
		b, err := RenderCeremony(c, journal)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "record.pdf")
		os.WriteFile(path, b, 0o644)
		out, err := exec.Command("pdftotext", "-bbox", path, "-").CombinedOutput()
		if err != nil {
			t.Fatalf("pdftotext: %v %s", err, out)
		}
		for i, page := range strings.Split(string(out), "<page ")[1:] {
			var lastHeading string
			var headingBottom, lowestBody float64
			headers := 0
			for _, m := range word.FindAllStringSubmatch(page, -1) {
				yMin, _ := strconv.ParseFloat(m[1], 64)
				yMax, _ := strconv.ParseFloat(m[2], 64)
				if yMin < 40 || yMin > 800 {
					continue // the running header and footer
				}
				if h := yMax - yMin; h > 13 && h < 16 { // a 12-point section title
					if yMax > headingBottom {
						headingBottom, lastHeading = yMax, m[3]
					}
					continue
				}
				lowestBody = max(lowestBody, yMin)
				if m[3] == "(UTC)" {
					headers++
				}
			}
			if lastHeading != "" && lowestBody < headingBottom {
				t.Errorf("%d more participants: page %d ends with the heading %q", extra, i+1, lastHeading)
			}
			if headers > 1 {
				t.Errorf("%d more participants: page %d shows the steps table's header %d times", extra, i+1, headers)
			}
		}
	}
}

func TestGroupHex(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short abcdef", "short abcdef"},
		{strings.Repeat("ab", 32), "abababab abababab abababab abababab abababab abababab abababab abababab"},
		{"sha256: 0123456789abcdef01;", "sha256: 01234567 89abcdef 01;"},
		{"key 0123456789ABCDEF, next", "key 01234567 89ABCDEF, next"},
		{"searched for key id 0123456789abcdef0123: nothing", "searched for key id 01234567 89abcdef 0123: nothing"},
		{"not-hex-0123456789abcdef0123", "not-hex-0123456789abcdef0123"},
		{"a\n0123456789abcdef0123456789abcdef", "a\n01234567 89abcdef 01234567 89abcdef"},
		{"李雷 0123456789abcdef", "李雷 01234567 89abcdef"},
	}
	for _, tt := range tests {
		if got := groupHex(tt.in); got != tt.want {
			t.Errorf("groupHex(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHexNeverWrapsMidGroup lays out hashes, key ids and serials in the narrowest columns a
// record has and reads the words back with pdftotext: every hex value shows as whole groups
// of eight, so none was broken inside a group.
func TestHexNeverWrapsMidGroup(t *testing.T) {
	sha := strings.Repeat("0123456789abcdef", 4)
	r := &Destruction{ID: "fleet-hex", Outcome: "completed", Technician: "Tess Tech"}
	for i := range 20 {
		r.Devices = append(r.Devices, DeviceRow{Serial: fmt.Sprintf("DEV-%d", i), Model: "Pump", Method: "erase",
			KeyIDs: sha[:40], CertSerials: sha[:32] + ", " + sha[8:40], Verification: "searched by id, certificate and public key: nothing left " + sha,
			Reason: "cessationOfOperation", Outcome: "decommissioned"})
	}
	r.Steps = []StepRow{{Seq: 1, Step: "erase.verify", Status: "done", Actor: "custos (system)", Details: "sha256: " + sha + "; key_id: " + sha[:40]}}
	b, err := RenderDestruction(r, testJournal(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := testCeremony()
	c.Commitments = append(c.Commitments, Commitment{3, "Cole Carter", sha})
	cb, err := RenderCeremony(c, testJournal(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	word := regexp.MustCompile(`<word [^>]*>([^<]*)</word>`)
	hexWord := regexp.MustCompile(`^[0-9a-f]{6,}[,;]?$`)
	for name, doc := range map[string][]byte{"destruction": b, "ceremony": cb} {
		path := filepath.Join(t.TempDir(), name+".pdf")
		os.WriteFile(path, doc, 0o644)
		out, err := exec.Command("pdftotext", "-bbox", path, "-").CombinedOutput()
		if err != nil {
			t.Fatalf("pdftotext: %v %s", err, out)
		}
		groups := 0
		for _, m := range word.FindAllStringSubmatch(string(out), -1) {
			if w := strings.TrimRight(m[1], ",;"); hexWord.MatchString(m[1]) {
				groups++
				if len(w) != 8 {
					t.Errorf("%s: a hex group of %d digits, %q: broken across lines", name, len(w), w)
				}
			}
		}
		if groups < 20 {
			t.Errorf("%s: only %d hex groups found", name, groups)
		}
	}
}
