package record

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"slices"
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
	// spool holds the objects instead, at spans, once a finished volume is spooled.
	spool *os.File
	spans map[int]span
	// footers are the pages' footers, cut from their content (cutFooters), by page object.
	footers map[int][]byte
	order   []int // object numbers in file order
	size    int   // the trailer's /Size: the next free object number
	info    int   // fpdf's document information dictionary
	catalog int   // fpdf's catalog
	pages   int   // the page tree's root
	kids    []int // the pages, in order
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

// withAnnots returns page object obj, number num, with /Annots [refs] added to its dictionary.
func withAnnots(num int, obj []byte, refs ...int) ([]byte, error) {
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

// joined is a record's volumes as one document. The first volume's objects keep their
// numbers and its page tree lists every page; the other volumes' objects follow, numbered
// anew, without their catalog, information dictionary and page tree.
type joined struct {
	vols    []*fpdfDoc
	renum   []map[int]int // per volume after the first: its object numbers in the record
	footer  []map[int]int // per volume: each page's footer's object number, by page object
	size    int           // the next free object number
	catalog int           // the first volume's catalog, information dictionary and page tree
	info    int
	pages   int
	kids    []int       // every page, in order
	number  map[int]int // each page's number, from 1, by its object number
	journal string      // what footers show of the journal's hash
	z       *deflater   // compresses the footers
}

// join numbers the objects of a record's volumes as one document's, whose journal has the
// hash journalHash.
func join(vols []*fpdfDoc, journalHash string) (*joined, error) {
	if len(vols) == 0 {
		return nil, fmt.Errorf("assemble record: the record has no page")
	}
	first := vols[0]
	j := &joined{vols: vols, size: first.size, catalog: first.catalog, info: first.info, pages: first.pages,
		kids: slices.Clone(first.kids), renum: make([]map[int]int, len(vols)), footer: make([]map[int]int, len(vols))}
	for i, v := range vols[1:] {
		m := map[int]int{v.pages: first.pages}
		for _, num := range v.order {
			if num != v.catalog && num != v.info && num != v.pages {
				m[num] = j.size
				j.size++
			}
		}
		for _, k := range v.kids {
			j.kids = append(j.kids, m[k])
		}
		j.renum[i+1] = m
	}
	j.number = make(map[int]int, len(j.kids))
	for i, k := range j.kids {
		j.number[k] = i + 1
	}
	j.journal = journalHash[:min(16, len(journalHash))]
	for i, v := range vols {
		j.footer[i] = make(map[int]int, len(v.kids))
		for _, k := range v.kids {
			if v.footers[k] == nil {
				return nil, fmt.Errorf("assemble record: page object %d of volume %d has no footer", k, i+1)
			}
			j.footer[i][k] = j.size
			j.size++
		}
	}
	return j, nil
}

// objects calls write with each object of the record but the catalog and the information
// dictionary, in order, each as pieces to be written one after the other.
//
// Each volume's objects are let go once written, so that the volumes and the file they
// become are not both held whole: a record's volumes are assembled once.
func (j *joined) objects(write func(num int, obj ...[]byte) error) error {
	for i, v := range j.vols {
		if v.objects == nil && v.spans == nil {
			return fmt.Errorf("assemble record: volume %d was assembled before", i+1)
		}
		for _, num := range v.order {
			obj, err := v.object(num)
			if err != nil {
				return err
			}
			switch {
			case num == v.catalog || num == v.info:
				continue
			case i == 0 && num == v.pages && len(j.vols) > 1:
				tree, err := j.pageTree(obj)
				if err != nil {
					return err
				}
				if err := write(num, tree); err != nil {
					return err
				}
			case i == 0 && v.footers[num] != nil:
				if err := j.page(write, num, obj, v.footers[num], j.footer[i][num]); err != nil {
					return err
				}
			case i == 0:
				if err := write(num, obj); err != nil {
					return err
				}
			case num == v.pages:
				continue
			default:
				head, rest, err := renumber(obj, j.renum[i])
				if err != nil {
					return err
				}
				if f := v.footers[num]; f != nil {
					err = j.page(write, j.renum[i][num], head, f, j.footer[i][num])
				} else {
					err = write(j.renum[i][num], head, rest)
				}
				if err != nil {
					return err
				}
			}
		}
		v.objects, v.spans, v.footers = nil, nil, nil
	}
	// The volumes of one layout share one spool: read only and unlinked, closing it frees it.
	closed := map[*os.File]bool{}
	for _, v := range j.vols {
		if v.spool != nil && !closed[v.spool] {
			v.spool.Close()
			closed[v.spool] = true
		}
	}
	return nil
}

// bytes is what the volumes' objects take.
func (j *joined) bytes() int {
	n := 0
	for _, v := range j.vols {
		for _, o := range v.objects {
			n += len(o)
		}
		for _, sp := range v.spans {
			n += int(sp.n)
		}
		for _, f := range v.footers {
			n += len(f) + 64
		}
	}
	return n
}

// page writes page object obj, number num, with its content followed by its footer, and the
// footer as object footerNum with the page's number, the number of pages and the journal's
// hash in it.
func (j *joined) page(write func(num int, obj ...[]byte) error, num int, obj, footer []byte, footerNum int) error {
	m := contentsRE.FindSubmatchIndex(obj)
	if m == nil {
		return fmt.Errorf("assemble record: page object %d names no content", num)
	}
	var p []byte
	p = append(p, obj[:m[0]]...)
	p = append(p, "/Contents ["...)
	p = append(p, obj[m[2]:m[3]]...)
	p = fmt.Appendf(p, " 0 R %d 0 R]", footerNum)
	p = append(p, obj[m[1]:]...)
	if err := write(num, p); err != nil {
		return err
	}
	for _, f := range []struct{ alias, value, what string }{
		{pageAlias, strconv.Itoa(j.number[num]), "its number"},
		{totalAlias, strconv.Itoa(len(j.kids)), "the number of pages"},
		{journalAlias, j.journal, "the journal's hash"},
	} {
		alias := utf16BE(f.alias)
		if bytes.Count(footer, alias) != 1 {
			return fmt.Errorf("assemble record: the footer of page object %d does not hold %s once", num, f.what)
		}
		footer = bytes.Replace(footer, alias, utf16BE(f.value), 1)
	}
	if j.z == nil {
		j.z = newDeflater()
	}
	z, err := j.z.deflate(footer)
	if err != nil {
		return err
	}
	return write(footerNum, fmt.Appendf(nil, "%d 0 obj\n<</Filter /FlateDecode /Length %d>>\nstream\n", footerNum, len(z)), z, []byte("\nendstream\nendobj\n"))
}

// utf16BE is ASCII s as fpdf writes it in a page's text: UTF-16, big-endian. None of its
// bytes needs escaping in a PDF string.
func utf16BE(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for i := range len(s) {
		out = append(out, 0, s[i])
	}
	return out
}

var countRE = regexp.MustCompile(`/Count \d+`)

// pageTree is the first volume's page tree obj listing every page of the record.
func (j *joined) pageTree(obj []byte) ([]byte, error) {
	if len(kidsRE.FindAllIndex(obj, -1)) != 1 || len(countRE.FindAllIndex(obj, -1)) != 1 {
		return nil, fmt.Errorf("assemble record: the page tree has not one list of pages and one count")
	}
	obj = kidsRE.ReplaceAllLiteral(obj, []byte("/Kids ["+refs(j.kids)+"]"))
	return countRE.ReplaceAllLiteral(obj, []byte("/Count "+strconv.Itoa(len(j.kids)))), nil
}

var refRE = regexp.MustCompile(`\b(\d+) 0 R\b`)

// renumber is obj with its number and its references renumbered by m, as the part before
// its stream's data (the whole object when it has no stream) and the rest, unchanged.
func renumber(obj []byte, m map[int]int) (head, rest []byte, err error) {
	h := objHeadRE.FindSubmatch(obj)
	if h == nil {
		return nil, nil, fmt.Errorf("assemble record: an object of a volume has no header")
	}
	dict, _, isStream := splitStream(obj)
	if !isStream {
		dict = obj
	}
	old, _ := strconv.Atoi(string(h[1]))
	body := dict[len(h[0]):]
	var b []byte
	b = append(b, strconv.Itoa(m[old])...)
	b = append(b, " 0 obj"...)
	var missing []byte
	b = append(b, refRE.ReplaceAllFunc(body, func(r []byte) []byte {
		n, _ := strconv.Atoi(string(r[:bytes.IndexByte(r, ' ')]))
		to, ok := m[n]
		if !ok {
			missing = r
		}
		return []byte(strconv.Itoa(to) + " 0 R")
	})...)
	if missing != nil {
		return nil, nil, fmt.Errorf("assemble record: object %d of a volume refers to %s, which the volume lacks", old, missing)
	}
	if !isStream {
		return b, nil, nil
	}
	return append(b, "stream\n"...), obj[len(dict)+len("stream\n"):], nil
}

// pdfWriter writes a PDF file object by object, keeping each object's offset for the
// cross-reference table. What it writes is buffered, and passed on to out a megabyte at a
// time while the file is spilled (see spill), hashed on the way for the signature: a fleet's
// record of 50 MB is not held whole. Without out, the whole file stays in buf.
type pdfWriter struct {
	buf     bytes.Buffer
	out     io.Writer
	sum     hash.Hash // what has passed to out
	base    int       // the bytes passed to out
	last    byte      // the last byte written
	spills  bool      // whether buffered bytes go on to out as they come
	offsets map[int]int
	err     error // the first error of out
}

func newPDFWriter(out io.Writer) *pdfWriter {
	return &pdfWriter{out: out, sum: sha256.New(), spills: out != nil, offsets: map[int]int{}}
}

// spillSize is how much the writer buffers before it passes it on.
const spillSize = 1 << 20

// at is the offset in the file of the next byte written.
func (w *pdfWriter) at() int { return w.base + w.buf.Len() }

func (w *pdfWriter) write(p []byte) {
	if len(p) == 0 {
		return
	}
	w.buf.Write(p)
	w.last = p[len(p)-1]
	if w.spills && w.buf.Len() >= spillSize {
		w.spill()
	}
}

// spill passes the buffered bytes on to out.
func (w *pdfWriter) spill() {
	if w.out == nil || w.buf.Len() == 0 {
		return
	}
	b := w.buf.Bytes()
	w.sum.Write(b)
	if _, err := w.out.Write(b); err != nil && w.err == nil {
		w.err = fmt.Errorf("write record: %w", err)
	}
	w.base += len(b)
	w.buf.Reset()
}

// hold keeps what is written from here on in the buffer: the signature's dictionary and
// what follows it, filled in once the whole file is known.
func (w *pdfWriter) hold() {
	w.spill()
	w.spills = false
}

// raw writes an object as it was written elsewhere ("N 0 obj ... endobj"), in pieces.
func (w *pdfWriter) raw(num int, obj ...[]byte) {
	w.offsets[num] = w.at()
	for _, p := range obj {
		w.write(p)
	}
	if w.last != '\n' {
		w.write([]byte{'\n'})
	}
}

// object writes object num with the given body (a dictionary, an array...).
func (w *pdfWriter) object(num int, body string) {
	w.offsets[num] = w.at()
	w.write(fmt.Appendf(nil, "%d 0 obj\n%s\nendobj\n", num, body))
}

// stream writes object num as a stream: dict is the dictionary's entries without /Length.
func (w *pdfWriter) stream(num int, dict string, data []byte) {
	w.offsets[num] = w.at()
	w.write(fmt.Appendf(nil, "%d 0 obj\n<< %s /Length %d >>\nstream\n", num, dict, len(data)))
	w.write(data)
	w.write([]byte("\nendstream\nendobj\n"))
}

// finish writes the cross-reference table for objects 1 to size-1 (each must have been
// written) and the trailer.
func (w *pdfWriter) finish(size int, trailer string) error {
	xref := w.at()
	var b bytes.Buffer
	b.Grow(20*size + 256)
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", size)
	for num := 1; num < size; num++ {
		off, ok := w.offsets[num]
		if !ok {
			return fmt.Errorf("assemble record: object %d was never written", num)
		}
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n", size, trailer, xref)
	w.write(b.Bytes())
	return w.err
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

// deflater compresses streams with one zlib writer, reset for each.
type deflater struct {
	buf bytes.Buffer
	z   *zlib.Writer
}

func newDeflater() *deflater {
	d := &deflater{}
	d.z, _ = zlib.NewWriterLevel(&d.buf, zlib.BestSpeed) // the level is valid
	return d
}

// deflate returns b compressed, in a buffer of the deflater's until the next call.
func (d *deflater) deflate(b []byte) ([]byte, error) {
	d.buf.Reset()
	d.z.Reset(&d.buf)
	if _, err := d.z.Write(b); err != nil {
		return nil, fmt.Errorf("assemble record: compress: %w", err)
	}
	if err := d.z.Close(); err != nil {
		return nil, fmt.Errorf("assemble record: compress: %w", err)
	}
	return d.buf.Bytes(), nil
}

var lengthRE = regexp.MustCompile(`/Length \d+`)

// compressStreams compresses every stream fpdf wrote uncompressed (page contents, ToUnicode
// maps), each object copied out of the file fpdf wrote so that it can be dropped.
func (d *fpdfDoc) compressStreams(z *deflater) error {
	for _, num := range d.order {
		obj := d.objects[num]
		dict, data, ok := splitStream(obj)
		if !ok || bytes.Contains(dict, []byte("/Filter")) {
			d.objects[num] = bytes.Clone(obj)
			continue
		}
		c, err := z.deflate(data)
		if err != nil {
			return err
		}
		if n := len(lengthRE.FindAllIndex(dict, -1)); n != 1 {
			return fmt.Errorf("assemble record: stream object %d has %d lengths", num, n)
		}
		dict = lengthRE.ReplaceAll(dict, []byte("/Filter /FlateDecode /Length "+strconv.Itoa(len(c))))
		out := make([]byte, 0, len(dict)+len(c)+32)
		out = append(out, dict...)
		out = append(out, "stream\n"...)
		out = append(out, c...)
		out = append(out, "\nendstream\nendobj\n"...)
		d.objects[num] = out
	}
	return nil
}

var contentsRE = regexp.MustCompile(`/Contents (\d+) 0 R`)

// cutFooters cuts each page's footer, what follows footerMark in its content, into
// d.footers: the footer says the number of pages, which only assembly knows.
func (d *fpdfDoc) cutFooters() error {
	d.footers = make(map[int][]byte, len(d.kids))
	for _, page := range d.kids {
		m := contentsRE.FindSubmatch(d.objects[page])
		if m == nil {
			return fmt.Errorf("assemble record: page object %d names no content", page)
		}
		num, _ := strconv.Atoi(string(m[1]))
		dict, data, ok := splitStream(d.objects[num])
		at := bytes.LastIndex(data, []byte(footerMark))
		if !ok || at < 0 || bytes.Contains(dict, []byte("/Filter")) {
			return fmt.Errorf("assemble record: the content of page object %d has no footer", page)
		}
		d.footers[page] = bytes.Clone(bytes.TrimPrefix(data[at+len(footerMark):], []byte("\n")))
		body := data[:at]
		var obj []byte
		obj = append(obj, lengthRE.ReplaceAll(dict, []byte("/Length "+strconv.Itoa(len(body))))...)
		obj = append(obj, "stream\n"...)
		obj = append(obj, body...)
		obj = append(obj, "\nendstream\nendobj\n"...)
		d.objects[num] = obj
	}
	return nil
}

// splitStream cuts a stream object as fpdf writes it ("N 0 obj\n<<...>>\nstream\nDATA\nendstream\nendobj")
// into the part before "stream\n" and the data; ok is false for an object without a stream.
func splitStream(obj []byte) (dict, data []byte, ok bool) {
	i := bytes.Index(obj, []byte(">>\nstream\n"))
	j := bytes.LastIndex(obj, []byte("\nendstream"))
	if i < 0 || j < i+len(">>\nstream\n") {
		return nil, nil, false
	}
	return obj[:i+3], obj[i+len(">>\nstream\n") : j], true
}

// span is where a spooled object is.
type span struct{ off, n int64 }

// spoolTo moves the volume's objects out of memory, to the end of f: a fleet's record holds
// one volume in memory while it is laid out, not all of them.
func (d *fpdfDoc) spoolTo(f *os.File) error {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("render record: spool: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	d.spans = make(map[int]span, len(d.order))
	for _, num := range d.order {
		o := d.objects[num]
		if _, err := w.Write(o); err != nil {
			return fmt.Errorf("render record: spool: %w", err)
		}
		d.spans[num] = span{end, int64(len(o))}
		end += int64(len(o))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("render record: spool: %w", err)
	}
	d.objects, d.spool = nil, f
	return nil
}

// object is object num's bytes, from memory or the spool.
func (d *fpdfDoc) object(num int) ([]byte, error) {
	if d.spool == nil {
		return d.objects[num], nil
	}
	sp, ok := d.spans[num]
	if !ok {
		return nil, fmt.Errorf("assemble record: object %d is not in the spool", num)
	}
	b := make([]byte, sp.n)
	if _, err := d.spool.ReadAt(b, sp.off); err != nil {
		return nil, fmt.Errorf("assemble record: read the spool: %w", err)
	}
	return b, nil
}
