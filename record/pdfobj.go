package record

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// This file is the little of PDF syntax a record needs beyond what fpdf draws: reading fpdf's
// output back as numbered objects, and writing new objects, strings, names and dates.

// fpdfDoc is fpdf's output cut into its objects, for reassembly as a PDF/A file.
type fpdfDoc struct {
	objects map[int][]byte // object number → "N 0 obj ... endobj\n", as fpdf wrote it
	order   []int          // object numbers in file order
	size    int            // the trailer's /Size: the next free object number
	info    int            // fpdf's document information dictionary
	catalog int            // fpdf's catalog
	pages   int            // the page tree's root
	kids    []int          // the pages, in order
}

var (
	trailerRE  = regexp.MustCompile(`trailer\s*<<\s*/Size (\d+)\s*/Root (\d+) 0 R\s*/Info (\d+) 0 R\s*>>\s*startxref\s*(\d+)\s*%%EOF\s*$`)
	xrefLineRE = regexp.MustCompile(`^(\d{10}) (\d{5}) ([nf]) ?$`)
	kidsRE     = regexp.MustCompile(`/Kids \[((?:\d+ 0 R\s*)*)\]`)
	objHeadRE  = regexp.MustCompile(`^(\d+) 0 obj\b`)
)

// parseFpdf reads the objects of a file fpdf wrote: one revision, a classic cross-reference
// table, a trailer naming the catalog and the information dictionary. Anything else is refused:
// the record's layout produced something this code does not understand.
func parseFpdf(b []byte) (*fpdfDoc, error) {
	m := trailerRE.FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("assemble record: the laid-out PDF has no trailer of the expected form")
	}
	d := &fpdfDoc{objects: map[int][]byte{}}
	d.size, _ = strconv.Atoi(string(m[1]))
	d.catalog, _ = strconv.Atoi(string(m[2]))
	d.info, _ = strconv.Atoi(string(m[3]))
	xref, _ := strconv.Atoi(string(m[4]))
	if xref <= 0 || xref >= len(b) || !bytes.HasPrefix(b[xref:], []byte("xref\n0 ")) {
		return nil, fmt.Errorf("assemble record: the laid-out PDF's startxref %d does not point at its cross-reference table", xref)
	}
	lines := strings.Split(string(b[xref:]), "\n")
	if n, err := strconv.Atoi(strings.TrimPrefix(lines[1], "0 ")); err != nil || n != d.size || len(lines) < 2+n {
		return nil, fmt.Errorf("assemble record: the laid-out PDF's cross-reference table does not cover its %d objects", d.size)
	}
	offsets := map[int]int{}
	for num := 1; num < d.size; num++ {
		e := xrefLineRE.FindStringSubmatch(lines[2+num])
		if e == nil || e[3] != "n" || e[2] != "00000" {
			return nil, fmt.Errorf("assemble record: cross-reference entry %d is not an object in use: %q", num, lines[2+num])
		}
		off, _ := strconv.Atoi(e[1])
		offsets[num] = off
		d.order = append(d.order, num)
	}
	sort.Slice(d.order, func(i, j int) bool { return offsets[d.order[i]] < offsets[d.order[j]] })
	for i, num := range d.order {
		end := xref
		if i+1 < len(d.order) {
			end = offsets[d.order[i+1]]
		}
		start := offsets[num]
		if start >= end || end > len(b) {
			return nil, fmt.Errorf("assemble record: object %d has no bytes of its own", num)
		}
		obj := b[start:end]
		if h := objHeadRE.FindSubmatch(obj); h == nil || string(h[1]) != strconv.Itoa(num) {
			return nil, fmt.Errorf("assemble record: object %d does not start where the cross-reference table says", num)
		}
		d.objects[num] = obj
	}
	root := d.objects[d.catalog]
	pm := regexp.MustCompile(`/Pages (\d+) 0 R`).FindSubmatch(root)
	if pm == nil {
		return nil, fmt.Errorf("assemble record: the laid-out PDF's catalog names no page tree")
	}
	d.pages, _ = strconv.Atoi(string(pm[1]))
	km := kidsRE.FindSubmatch(d.objects[d.pages])
	if km == nil {
		return nil, fmt.Errorf("assemble record: the page tree lists no pages")
	}
	for _, f := range strings.Fields(string(km[1])) {
		if n, err := strconv.Atoi(f); err == nil && f != "0" {
			d.kids = append(d.kids, n)
		}
	}
	if len(d.kids) == 0 {
		return nil, fmt.Errorf("assemble record: the record has no page")
	}
	return d, nil
}

// withAnnots returns page object num with /Annots [refs] added to its dictionary.
func (d *fpdfDoc) withAnnots(num int, refs ...int) ([]byte, error) {
	obj := d.objects[num]
	if bytes.Contains(obj, []byte("/Annots")) {
		return nil, fmt.Errorf("assemble record: page object %d already has annotations", num)
	}
	end := bytes.LastIndex(obj, []byte(">>"))
	if end < 0 || !bytes.Contains(obj, []byte("/Type /Page")) {
		return nil, fmt.Errorf("assemble record: object %d is not a page dictionary", num)
	}
	var b bytes.Buffer
	b.Write(obj[:end])
	b.WriteString("\n/Annots [")
	for i, r := range refs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d 0 R", r)
	}
	b.WriteString("]")
	b.Write(obj[end:])
	return b.Bytes(), nil
}

// pdfWriter writes a PDF file object by object, keeping each object's offset for the
// cross-reference table.
type pdfWriter struct {
	buf     bytes.Buffer
	offsets map[int]int
}

func newPDFWriter() *pdfWriter { return &pdfWriter{offsets: map[int]int{}} }

// raw writes an object as it was written elsewhere ("N 0 obj ... endobj").
func (w *pdfWriter) raw(num int, obj []byte) {
	w.offsets[num] = w.buf.Len()
	w.buf.Write(obj)
	if !bytes.HasSuffix(obj, []byte("\n")) {
		w.buf.WriteByte('\n')
	}
}

// object writes object num with the given body (a dictionary, an array...).
func (w *pdfWriter) object(num int, body string) {
	w.offsets[num] = w.buf.Len()
	fmt.Fprintf(&w.buf, "%d 0 obj\n%s\nendobj\n", num, body)
}

// stream writes object num as a stream: dict is the dictionary's entries without /Length.
func (w *pdfWriter) stream(num int, dict string, data []byte) {
	w.offsets[num] = w.buf.Len()
	fmt.Fprintf(&w.buf, "%d 0 obj\n<< %s /Length %d >>\nstream\n", num, dict, len(data))
	w.buf.Write(data)
	w.buf.WriteString("\nendstream\nendobj\n")
}

// finish writes the cross-reference table for objects 1 to size-1 (each must have been
// written) and the trailer.
func (w *pdfWriter) finish(size int, trailer string) error {
	xref := w.buf.Len()
	fmt.Fprintf(&w.buf, "xref\n0 %d\n0000000000 65535 f \n", size)
	for num := 1; num < size; num++ {
		off, ok := w.offsets[num]
		if !ok {
			return fmt.Errorf("assemble record: object %d was never written", num)
		}
		fmt.Fprintf(&w.buf, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&w.buf, "trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n", size, trailer, xref)
	return nil
}

// pdfText is s as a PDF text string: a literal string when it is printable ASCII, else
// UTF-16BE with its byte order mark, in hex.
func pdfText(s string) string {
	ascii := true
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		return "(" + strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`).Replace(s) + ")"
	}
	var b strings.Builder
	b.WriteString("<FEFF")
	for _, u := range utf16.Encode([]rune(s)) {
		fmt.Fprintf(&b, "%04X", u)
	}
	b.WriteString(">")
	return b.String()
}

// pdfName is s as a PDF name, with every byte outside the regular characters written #xx.
func pdfName(s string) string {
	var b strings.Builder
	b.WriteByte('/')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("#%()/<>[]{}", c) >= 0 {
			fmt.Fprintf(&b, "#%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pdfDate is t as a PDF date string, in UTC.
func pdfDate(t time.Time) string { return "(D:" + t.UTC().Format("20060102150405") + "Z)" }

// xmpDate is t as an XMP date, in UTC, to the second: the same instant as pdfDate.
func xmpDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// refs lists object references: "4 0 R 6 0 R".
func refs(nums []int) string {
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = fmt.Sprintf("%d 0 R", n)
	}
	return strings.Join(parts, " ")
}
