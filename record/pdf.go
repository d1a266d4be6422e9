package record

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-pdf/fpdf"

	"github.com/custos-pki/custos/assets/fonts"
	"github.com/custos-pki/custos/workspace"
)

// Page geometry in millimetres (A4 portrait).
const (
	pageW   = 210.0
	margin  = 15.0
	bodyW   = pageW - 2*margin
	lineH   = 4.6
	smallPt = 8.0
	bodyPt  = 9.5
)

// doc is a record being laid out: fpdf with Custos's fonts, header and footer, and tables
// whose header row is repeated on every page they reach.
//
// fpdf keeps a document's pages uncompressed until it writes them, so a record is laid out
// in volumes of at most volumePages pages, each written, compressed, when the next begins;
// the record is assembled from the volumes (pdfa.go). A fleet's record of 100,000 devices
// thus never holds more than one volume's pages uncompressed. Every footer says "page N of
// M" and the journal's hash, which may be known only at the end: the footer is the last
// thing drawn on a page, so it is cut from the page's content as its own small stream, with
// aliases (see footerMark) that assembly fills in.
type doc struct {
	pdf *fpdf.Fpdf // the volume being laid out
	// meas is a page-less twin of pdf for measuring text: fpdf writes a font change into the
	// page on every SetFont, and measuring through pdf would fill a fleet record with them.
	meas      *fpdf.Fpdf
	font      font // the font pdf has selected
	measFont  font // the font meas has selected
	widths    map[font]*widthTable
	wrapped   map[wrapKey][]string // texts wrapped before, as many as maxWrapped
	id, title string
	volumeCJK bool                // the volume being laid out has the CJK font
	drawn     map[string]*runeSet // by font family and style: the characters the volume has drawn
	op        []byte              // the last text operator written, for its room
	measCJK   bool                // meas has the CJK font
	table     []column            // the table being drawn, for its header on a new page
	// headerPending is set until the table's first row draws the header with it.
	headerPending bool
	// pendingHeading is a section title waiting for what follows it (see heading).
	pendingHeading string

	volumePages int           // the most pages a volume holds
	writer      *volumeWriter // takes the finished volumes
	spoolDir    string        // where finished volumes are spooled
}

// volumePages is how many pages a volume holds at most.
const volumePages = 400

type font struct {
	family, style string
	size          float64
}

type column struct {
	title string
	width float64 // share of the body width
	mono  bool
}

// topY is where a page's content starts, below the running header.
const topY = 22.0

func newDoc(id, title string) *doc {
	meas := fpdf.New("P", "mm", "A4", "")
	addFonts(meas)
	d := &doc{meas: meas, id: id, title: title, widths: map[font]*widthTable{}, wrapped: map[wrapKey][]string{}, volumePages: volumePages}
	d.pdf = d.newVolume()
	return d
}

// addFonts registers the record's fonts with f (the CJK font is added when a text needs it).
func addFonts(f *fpdf.Fpdf) {
	f.AddUTF8FontFromBytes("sans", "", fonts.Sans)
	f.AddUTF8FontFromBytes("sans", "B", fonts.SansBold)
	f.AddUTF8FontFromBytes("mono", "", fonts.Mono)
}

// newVolume is an fpdf document for the next volume's pages. It writes its content
// uncompressed: the volume's streams are compressed when it is finished, by one compressor
// for all of them (fpdf would make a new one for every page).
func (d *doc) newVolume() *fpdf.Fpdf {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetMargins(margin, topY, margin)
	p.SetAutoPageBreak(false, 0)
	p.SetCompression(false)
	addFonts(p)
	// Not home mode: the header leaves the position below a repeated table header.
	p.SetHeaderFuncMode(d.header, false)
	p.SetFooterFunc(d.footer)
	d.volumeCJK = false
	d.drawn = map[string]*runeSet{}
	return p
}

// journalKeyword prefixes the journal's final hash in the document's keywords, where
// Verify reads it back.
const journalKeyword = "custos-journal-sha256:"

// newPage starts a page; fpdf draws the footer and header and then reselects the font that
// was current before, which d.font must know. When the volume is full, the page starts the
// next volume, with the same font and colours.
func (d *doc) newPage() {
	f := d.font
	if d.pdf.PageNo() >= d.volumePages {
		d.finishVolume(false)
		d.pdf = d.newVolume()
		d.font = font{}
		d.pdf.AddPage()
		d.setFont(f.family, f.style, f.size)
		return
	}
	d.pdf.AddPage()
	d.font = f
}

// finishVolume draws the footer of the volume's last page and hands the volume to the volume
// writer, which has fpdf write it; newPage starts the next.
func (d *doc) finishVolume(last bool) {
	// fpdf's Close draws the last page's footer, and it must be drawn here, with d.pdf still
	// this volume: the writer's goroutine runs Close while the next volume is laid out.
	p := d.pdf
	p.SetFooterFunc(nil)
	d.footer()
	if d.writer == nil {
		d.writer = newVolumeWriter(d.spoolDir)
	}
	d.writer.add(p, last)
}

// volumeWriter has fpdf write finished volumes, compresses them and spools all but the last
// to a temporary file, on a goroutine of its own: on two cores a long record takes the time
// of its layout, the writing beside it.
type volumeWriter struct {
	in       chan rawVolume
	done     chan struct{}
	vols     []*fpdfDoc
	err      error
	spool    *os.File
	spoolDir string
	z        *deflater
}

// rawVolume is a volume whose pages are all drawn.
type rawVolume struct {
	pdf  *fpdf.Fpdf
	last bool
}

func newVolumeWriter(spoolDir string) *volumeWriter {
	w := &volumeWriter{in: make(chan rawVolume, 1), done: make(chan struct{}), z: newDeflater(), spoolDir: spoolDir}
	go func() {
		defer close(w.done)
		for v := range w.in {
			if w.err == nil {
				w.err = w.write(v)
			}
		}
	}()
	return w
}

// add queues a volume; it waits while another is queued.
func (w *volumeWriter) add(pdf *fpdf.Fpdf, last bool) { w.in <- rawVolume{pdf, last} }

// close waits for the volumes queued and returns them all, or the first error.
func (w *volumeWriter) close() ([]*fpdfDoc, error) {
	close(w.in)
	<-w.done
	return w.vols, w.err
}

func (w *volumeWriter) write(raw rawVolume) error {
	var out keptBytes
	if err := raw.pdf.Output(&out); err != nil {
		return fmt.Errorf("render record: %w", err)
	}
	v, err := parseFpdf(out.b)
	if err != nil {
		return err
	}
	if err := v.cutFooters(); err != nil {
		return err
	}
	if err := v.compressStreams(w.z); err != nil {
		return err
	}
	if !raw.last {
		// The record's pages are no secret; the file is unlinked at once and gone with
		// the process.
		if w.spool == nil {
			if w.spool, err = workspace.Spool(w.spoolDir); err != nil {
				return fmt.Errorf("render record: %w", err)
			}
		}
		if err := v.spoolTo(w.spool); err != nil {
			return err
		}
	}
	w.vols = append(w.vols, v)
	return nil
}

// keptBytes is a writer that keeps, without copying, what its first Write is given. fpdf
// writes a finished document in one Write from its own buffer, which it never touches
// again; a volume of 400 pages is several MB that need not be copied. Later writes append.
type keptBytes struct{ b []byte }

func (k *keptBytes) Write(p []byte) (int, error) {
	if k.b == nil {
		k.b = p
	} else {
		k.b = append(k.b[:len(k.b):len(k.b)], p...)
	}
	return len(p), nil
}

func (d *doc) header() {
	p := d.pdf
	p.SetY(8)
	d.setFont("sans", "B", smallPt)
	p.SetTextColor(60, 60, 60)
	p.CellFormat(bodyW/2, 5, "Custos · "+d.title, "", 0, "L", false, 0, "")
	d.setFont("mono", "", smallPt)
	p.CellFormat(bodyW/2, 5, d.id, "", 1, "R", false, 0, "")
	p.SetDrawColor(160, 160, 160)
	p.Line(margin, 14, pageW-margin, 14)
	p.SetTextColor(0, 0, 0)
	p.SetDrawColor(0, 0, 0)
	p.SetXY(margin, topY)
	if d.table != nil && !d.headerPending {
		d.tableHeader()
	}
}

func (d *doc) footer() {
	p := d.pdf
	p.RawWriteStr(footerMark) // where the page's footer starts, for assembly to cut it off
	p.SetY(-13)
	p.SetDrawColor(160, 160, 160)
	p.Line(margin, p.GetY()-1, pageW-margin, p.GetY()-1)
	d.setFont("mono", "", smallPt)
	p.SetTextColor(60, 60, 60)
	// The id and page on the left, the journal on the right, each in the whole width so a long
	// id never overlaps.
	y := p.GetY()
	p.CellFormat(bodyW, 5, d.id+" · page "+pageAlias+" of "+totalAlias, "", 0, "L", false, 0, "")
	p.SetXY(margin, y)
	p.CellFormat(bodyW, 5, "journal sha256 "+journalAlias+"…", "", 0, "R", false, 0, "")
	p.SetTextColor(0, 0, 0)
}

// footerMark is a comment in a page's content where its footer begins. In the footer, which
// assembly cuts off as a stream of its own, pageAlias stands for the page's number,
// totalAlias for the number of pages and journalAlias for the first 16 digits of the
// journal's hash: a table's pages may be laid out before the pages above them and before the
// journal ends (DeviceTable). The mark and the aliases are ASCII, which a page's text, in
// UTF-16, cannot hold, and a page's last mark is its footer's. journalAlias is as wide as
// what replaces it in the monospaced font, and has every digit in it, so that every volume's
// font has the glyphs the numbers and the hash need.
const (
	footerMark   = "%custos-footer"
	pageAlias    = "{pn}"
	totalAlias   = "{nb}"
	journalAlias = "0123456789abcdef"
)

// setFont selects a font for drawing, only when it is not already the current one.
func (d *doc) setFont(family, style string, size float64) {
	f := font{family, style, size}
	if f == d.font {
		return
	}
	d.pdf.SetFont(family, style, size)
	d.font = f
}

// isCJK says whether DejaVu lacks r and the CJK font has it.
func isCJK(r rune) bool {
	return r >= 0x2E80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hangul, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || (r >= 0x3000 && r <= 0x303F) || (r >= 0xFF00 && r <= 0xFFEF))
}

func hasCJK(s string) bool { return strings.IndexFunc(s, isCJK) >= 0 }

// fontFor is the family for a run of text: family itself, or the CJK font for a CJK run.
func (d *doc) fontFor(family, s string) string {
	if !hasCJK(s) {
		return family
	}
	if !d.measCJK {
		d.meas.AddUTF8FontFromBytes("cjk", "", fonts.CJK)
		d.measCJK = true
	}
	return "cjk"
}

// runs cuts s into pieces that are all CJK or all not.
func runs(s string) []string {
	var out []string
	start := 0
	prev := false
	for i, r := range s {
		c := isCJK(r)
		if i > 0 && c != prev {
			out = append(out, s[start:i])
			start = i
		}
		prev = c
	}
	return append(out, s[start:])
}

// runFont is the font a run of text is drawn in: the CJK font has no bold.
func (d *doc) runFont(run, family, style string) (string, string) {
	f := d.fontFor(family, run)
	if f == "cjk" {
		return f, ""
	}
	return f, style
}

// width measures s in family/style/size, CJK runs in the CJK font.
func (d *doc) width(s, family, style string, size float64) float64 {
	if !hasCJK(s) {
		return d.sum(s, font{family, style, size})
	}
	w := 0.0
	for _, r := range runs(s) {
		f, st := d.runFont(r, family, style)
		w += d.sum(r, font{f, st, size})
	}
	return w
}

// sum adds up the widths of s's characters in f, each measured once: fpdf does not kern, so
// a text is as wide as its characters, and a fleet's record measures millions of them.
func (d *doc) sum(s string, f font) float64 {
	return d.widthsOf(f).sum(s)
}

// widthsOf is f's table of widths.
func (d *doc) widthsOf(f font) *widthTable {
	t := d.widths[f]
	if t == nil {
		t = &widthTable{f: f, d: d, other: map[rune]float64{}}
		d.widths[f] = t
	}
	return t
}

// sum is s's width in t's font.
func (t *widthTable) sum(s string) float64 {
	w := 0.0
	for _, r := range s {
		if r < rune(len(t.latin)) && t.latin[r] > 0 {
			w += t.latin[r]
			continue
		}
		cw, ok := t.other[r]
		if !ok {
			d := t.d
			if t.f != d.measFont {
				d.meas.SetFont(t.f.family, t.f.style, t.f.size)
				d.measFont = t.f
			}
			cw = d.meas.GetStringWidth(string(r))
			if r < rune(len(t.latin)) && cw > 0 {
				t.latin[r] = cw
			} else {
				t.other[r] = cw
			}
		}
		w += cw
	}
	return w
}

// widthTable is the widths of the characters of one font measured so far.
type widthTable struct {
	f     font
	d     *doc         // whose measuring twin measures a character first met
	latin [256]float64 // by code point; 0 when not measured
	other map[rune]float64
}

// wrap breaks s into lines no wider than width: at spaces, between CJK characters, and a
// word wider than the column at its last camelCase, hyphen, slash or colon boundary that
// fits ("key|Compromise"), else by characters. Hex values are first written in groups
// (groupHex), so a hash breaks between groups, never inside one. fpdf does not kern, so
// widths add up.
//
// A text wrapped before to the same width is not wrapped again: a fleet's table repeats its
// methods, reasons and outcomes on every row. The lines
// returned are shared and not to be changed.
func (d *doc) wrap(s, family, style string, size, width float64) []string {
	k := wrapKey{s, family, style, size, width}
	if lines, ok := d.wrapped[k]; ok {
		return lines
	}
	lines := d.wrapOnce(s, family, style, size, width)
	if len(d.wrapped) < maxWrapped {
		d.wrapped[k] = lines
	}
	return lines
}

// wrapKey is a text to wrap and how.
type wrapKey struct {
	s, family, style string
	size, width      float64
}

// maxWrapped bounds the texts a record remembers wrapped: enough for a fleet's repeated
// cells, not a copy of every row.
const maxWrapped = 4096

func (d *doc) wrapOnce(s, family, style string, size, width float64) []string {
	w := func(s string) float64 { return d.width(s, family, style, size) }
	if !hasCJK(s) { // one font for all: its table at hand
		w = d.widthsOf(font{family, style, size}).sum
	}
	var lines []string
	for _, para := range strings.Split(groupHex(s), "\n") {
		line, lineW := "", 0.0
		for _, tok := range tokens(para) {
			tokW := w(tok)
			if line != "" && lineW+tokW > width {
				lines = append(lines, strings.TrimRight(line, " "))
				line, lineW = "", 0
			}
			if line == "" && strings.HasPrefix(tok, " ") {
				tok = strings.TrimLeft(tok, " ")
				tokW = w(tok)
			}
			for tokW > width {
				n := cut(tok, width, w)
				if n == len(tok) {
					break // one character wider than the column: it overflows
				}
				lines = append(lines, tok[:n])
				tok = tok[n:]
				tokW = w(tok)
			}
			line, lineW = line+tok, lineW+tokW
		}
		lines = append(lines, line)
	}
	return lines
}

// hexGroup is how many hex digits a group holds: a SHA-256 is eight groups of eight.
const hexGroup = 8

// groupHex writes every word of s that is a hex value of 16 digits or more (a hash, a key id,
// a serial; a trailing comma, semicolon, colon, full stop or parenthesis is not part of it) in groups of hexGroup
// digits separated by spaces, counted from the start: "4d4d4d4d 4d4d4d4d 4d".
func groupHex(s string) string {
	if !strings.ContainsAny(s, "0123456789abcdefABCDEF") {
		return s
	}
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		for j, word := range strings.Split(line, " ") {
			if j > 0 {
				b.WriteByte(' ')
			}
			core := strings.TrimRight(word, ",;.:)")
			if len(core) < 2*hexGroup || strings.Trim(core, "0123456789abcdefABCDEF") != "" {
				b.WriteString(word)
				continue
			}
			for k := 0; k < len(core); k += hexGroup {
				if k > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(core[k:min(k+hexGroup, len(core))])
			}
			b.WriteString(word[len(core):])
		}
	}
	return b.String()
}

// cut is how many bytes of tok, wider than width, go on a line of their own: up to the last
// word boundary that fits, else as many characters as fit (at least one).
func cut(tok string, width float64, w func(string) float64) int {
	byChars, atBoundary, used := 0, 0, 0.0
	var prev rune
	for i, r := range tok {
		if i > 0 {
			byChars = i
			if unicode.IsLower(prev) && unicode.IsUpper(r) || strings.ContainsRune("-/:_,", prev) {
				atBoundary = i
			}
		}
		if used += w(tok[i : i+utf8.RuneLen(r)]); used > width {
			break
		}
		prev = r
	}
	if byChars == 0 { // not even one character fits: take one anyway
		_, n := utf8.DecodeRuneInString(tok)
		return n
	}
	if atBoundary > 0 {
		return atBoundary
	}
	return byChars
}

// tokens splits text into words (with their leading space) and single CJK characters.
func tokens(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch {
		case isCJK(r):
			if start < i {
				out = append(out, s[start:i])
			}
			out = append(out, s[i:i+utf8.RuneLen(r)])
			start = i + utf8.RuneLen(r)
		case r == ' ' && start < i && strings.TrimLeft(s[start:i], " ") != "":
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// draw writes one line at the current position, switching to the CJK font for CJK runs.
func (d *doc) draw(line, family, style string, size, h float64) {
	rs := runs(line)
	for _, r := range rs {
		f, st := d.runFont(r, family, style)
		if f == "cjk" && !d.volumeCJK {
			d.pdf.AddUTF8FontFromBytes("cjk", "", fonts.CJK)
			d.volumeCJK = true
		}
		d.setFont(f, st, size)
		w := 0.0 // to the right margin: a run alone on its line needs no measure
		if len(rs) > 1 {
			w = d.width(r, family, style, size)
		}
		d.text(w, h, r)
	}
}

// text writes s at the current position as fpdf's CellFormat(w, h, s, "", 0, "L", ...) does,
// the same operators, without fpdf's formatting: a fleet's record draws a million lines.
// fpdf embeds in a volume the characters it has drawn in it, so a text with a character the
// volume's font has not drawn yet goes through CellFormat, as does one that is not black or
// has a character beyond the Basic Multilingual Plane.
func (d *doc) text(w, h float64, s string) {
	p := d.pdf
	drawn := d.drawn[d.font.family+d.font.style]
	if drawn == nil {
		drawn = &runeSet{}
		d.drawn[d.font.family+d.font.style] = drawn
	}
	if r, g, b := p.GetTextColor(); r != 0 || g != 0 || b != 0 || !drawn.hasAll(s) {
		p.CellFormat(w, h, s, "", 0, "L", false, 0, "")
		drawn.add(s)
		return
	}
	const k = 72 / 25.4 // points per millimetre
	x, y := p.GetXY()
	_, fontSize := p.GetFontSize()
	r, g, b := p.GetFillColor()
	colored := r != 0 || g != 0 || b != 0 // fpdf then sets the text colour apart
	op := d.op[:0]
	if colored {
		op = append(op, "q 0.000 g "...)
	}
	op = append(op, "BT "...)
	op = strconv.AppendFloat(op, (x+p.GetCellMargin())*k, 'f', 2, 64)
	op = append(op, ' ')
	_, pageH := p.GetPageSize() // fpdf's A4, in points, in millimetres: a hair over 297
	op = strconv.AppendFloat(op, (pageH-(y+.5*h+.3*fontSize))*k, 'f', 2, 64)
	op = append(op, " Td ("...)
	for _, c := range s { // UTF-16BE, escaped as a PDF literal string
		for _, b := range [2]byte{byte(c >> 8), byte(c)} {
			switch b {
			case '\\', '(', ')':
				op = append(op, '\\', b)
			case '\r':
				op = append(op, '\\', 'r')
			default:
				op = append(op, b)
			}
		}
	}
	op = append(op, ")Tj ET"...)
	if colored {
		op = append(op, " Q"...)
	}
	p.RawWriteStr(string(op))
	d.op = op
	if w == 0 {
		w = pageW - margin - x
	}
	p.SetX(x + w)
}

// runeSet is a set of characters.
type runeSet struct {
	bmp map[rune]bool
	low [256]bool
}

// hasAll says whether every character of s is in the set, and all are in the Basic
// Multilingual Plane.
func (rs *runeSet) hasAll(s string) bool {
	for _, c := range s {
		switch {
		case c < 256:
			if !rs.low[c] {
				return false
			}
		case c > 0xFFFF || !rs.bmp[c]:
			return false
		}
	}
	return true
}

func (rs *runeSet) add(s string) {
	for _, c := range s {
		if c < 256 {
			rs.low[c] = true
			continue
		}
		if rs.bmp == nil {
			rs.bmp = map[rune]bool{}
		}
		rs.bmp[c] = true
	}
}

// text writes s in the given style, wrapped to the body width.
func (d *doc) para(s string, style string, size float64) {
	h := lineH * size / bodyPt
	for _, l := range d.wrap(s, "sans", style, size, bodyW) {
		d.placeHeading(h)
		d.need(h)
		d.pdf.SetX(margin)
		d.draw(l, "sans", style, size, h)
		d.pdf.Ln(h)
	}
}

// heading sets a section title. It is drawn with the first line or row that follows it, on a
// new page when the two do not fit together: a title is never left alone at a page's foot.
func (d *doc) heading(s string) { d.pendingHeading = s }

// placeHeading draws a pending heading, keeping next millimetres of what follows with it.
func (d *doc) placeHeading(next float64) {
	s := d.pendingHeading
	if s == "" {
		return
	}
	d.pendingHeading = ""
	d.need(headingH + next)
	d.pdf.Ln(3)
	d.setFont("sans", "B", 12)
	d.pdf.SetTextColor(20, 50, 100)
	d.pdf.CellFormat(bodyW, 7, s, "B", 1, "L", false, 0, "")
	d.pdf.SetTextColor(0, 0, 0)
	d.pdf.Ln(1.5)
}

// keep starts a new page unless h millimetres fit, with a pending heading above them.
func (d *doc) keep(h float64) {
	d.placeHeading(h)
	d.need(h)
}

// headingH is the height a heading takes.
const headingH = 11.5

// need starts a new page unless h millimetres are left.
func (d *doc) need(h float64) {
	if d.pdf.GetY()+h > bottomY {
		d.newPage()
	}
}

// bottomY is where a page's content ends, above the running footer.
const bottomY = 297 - 18.0

// fields writes label: value pairs in two columns.
func (d *doc) fields(fs []Field) {
	cols := []column{{width: 0.3}, {width: 0.7}}
	for _, f := range fs {
		d.row(cols, []string{f.Name, f.Value}, rowStyle{size: bodyPt, boldFirst: true})
	}
}

// startTable begins a table; its header is drawn with the first row (so the two are never
// split across pages), and again on each new page the table reaches, until endTable.
func (d *doc) startTable(cols []column) {
	d.table = cols
	d.headerPending = true
}

func (d *doc) endTable() {
	if d.headerPending { // a table without rows still shows its columns
		d.headerPending = false
		d.tableHeader()
	}
	d.table = nil
	d.pdf.Ln(2)
}

func (d *doc) tableHeader() { d.row(d.table, d.titles(), headerStyle) }

func (d *doc) titles() []string {
	t := make([]string, len(d.table))
	for i, c := range d.table {
		t[i] = c.title
	}
	return t
}

var headerStyle = rowStyle{size: smallPt, bold: true, fill: true, border: true}

// tableRow draws one row of the current table, after the table's header if it is the first.
func (d *doc) tableRow(cells ...string) {
	st := rowStyle{size: smallPt, border: true}
	if d.headerPending {
		h := d.rowHeight(d.table, d.titles(), headerStyle) + d.rowHeight(d.table, cells, st)
		d.keep(h) // a new page here leaves the header to be drawn below
		d.headerPending = false
		d.tableHeader()
	}
	d.row(d.table, cells, st)
}

// rowHeight is the height row would draw cells at.
func (d *doc) rowHeight(cols []column, cells []string, st rowStyle) float64 {
	_, h := d.layoutRow(cols, cells, st)
	return h
}

type rowStyle struct {
	size            float64
	bold, boldFirst bool // every cell, or the first (a label)
	fill, border    bool
}

// cellLines is one cell of a row, wrapped, with the font it is drawn in.
type cellLines struct {
	lines         []string
	family, style string
}

// layoutRow wraps each cell to its column and says how tall the row is.
func (d *doc) layoutRow(cols []column, cells []string, st rowStyle) ([]cellLines, float64) {
	lh := lineH * st.size / bodyPt
	out := make([]cellLines, len(cols))
	maxLines := 1
	for i, c := range cols {
		out[i].family = "sans"
		if c.mono && !st.bold {
			out[i].family = "mono"
		}
		if st.bold || st.boldFirst && i == 0 {
			out[i].style = "B"
		}
		out[i].lines = d.wrap(cells[i], out[i].family, out[i].style, st.size, c.width*bodyW-2)
		maxLines = max(maxLines, len(out[i].lines))
	}
	return out, float64(maxLines)*lh + 1.5
}

// row draws one row of cells; they wrap, and the row moves to a new page whole.
func (d *doc) row(cols []column, cells []string, st rowStyle) {
	lh := lineH * st.size / bodyPt
	cl, h := d.layoutRow(cols, cells, st)
	d.placeHeading(h)
	if d.pdf.GetY()+h > bottomY {
		d.newPage() // the header redraws the table header
	}
	p := d.pdf // after newPage, which may have begun a volume
	x, y := p.GetX(), p.GetY()
	if st.fill {
		p.SetFillColor(225, 232, 242)
	}
	for i, c := range cols {
		w := c.width * bodyW
		switch {
		case st.fill:
			p.Rect(x, y, w, h, "FD")
		case st.border:
			p.Rect(x, y, w, h, "D")
		}
		for k, l := range cl[i].lines {
			p.SetXY(x+1, y+0.75+float64(k)*lh)
			d.draw(l, cl[i].family, cl[i].style, st.size, lh)
		}
		x += w
	}
	p.SetXY(margin, y+h)
}

// summaryBox draws the record's summary in a shaded box.
func (d *doc) summaryBox(fs []Field) {
	p := d.pdf
	y := p.GetY()
	p.SetFillColor(242, 245, 250)
	p.Rect(margin, y, bodyW, float64(len(fs))*5.6+3, "F")
	p.SetY(y + 1.5)
	for _, f := range fs {
		p.SetX(margin + 2)
		d.setFont("sans", "B", bodyPt)
		p.CellFormat(45, 5.6, f.Name, "", 0, "L", false, 0, "")
		fam, size := "sans", bodyPt
		if len(f.Value) >= 40 && strings.Trim(f.Value, "0123456789abcdef") == "" {
			fam, size = "mono", smallPt
		}
		d.draw(groupHex(f.Value), fam, "", size, 5.6)
		p.Ln(5.6)
	}
	p.Ln(3)
}

// signatureBlock leaves a line for each participant's hand signature and printed name.
func (d *doc) signatureBlock(people []Actor) {
	d.heading("Signatures")
	// The block stays on one page while it can: signatures split from their heading read as
	// if someone were missing.
	d.keep(min(10+16*float64(len(people)), bottomY-topY-headingH))
	d.para("By signing, each participant attests that the steps above took place as recorded, in their presence.", "", smallPt)
	d.pdf.Ln(2)
	for _, pp := range people {
		d.need(16)
		p := d.pdf
		y := p.GetY() + 9
		p.SetDrawColor(0, 0, 0)
		p.Line(margin, y, margin+80, y)
		p.Line(margin+90, y, margin+130, y)
		p.SetXY(margin, y+0.5)
		d.draw(pp.Name+" — "+pp.Role, "sans", "", smallPt, 4)
		p.SetX(margin + 90)
		d.setFont("sans", "", smallPt)
		p.CellFormat(40, 4, "date", "", 1, "L", false, 0, "")
		p.Ln(3)
	}
}

// layOut lays out a record with draw and returns its volumes; those it spools go to a
// temporary file in spoolDir (the record's own folder; "" for the system's), on the disk
// the record goes to rather than a /tmp that may be memory.
func layOut(id, title, spoolDir string, draw func(d *doc) error) ([]*fpdfDoc, error) {
	return layOutVolumes(id, title, spoolDir, volumePages, draw)
}

// layOutVolumes is layOut with volumes of at most pages pages.
func layOutVolumes(id, title, spoolDir string, pages int, draw func(d *doc) error) ([]*fpdfDoc, error) {
	d := newDoc(id, title)
	d.volumePages, d.spoolDir = pages, spoolDir
	d.newPage()
	defer d.stop()
	if err := draw(d); err != nil {
		return nil, err
	}
	return d.finish()
}

// finish ends the last volume and returns them all.
func (d *doc) finish() ([]*fpdfDoc, error) {
	d.finishVolume(true)
	vols, err := d.writer.close()
	d.writer = nil
	if err != nil {
		return nil, err
	}
	return vols, nil
}

// stop stops the volume writer of a layout that failed.
func (d *doc) stop() {
	if d.writer != nil {
		d.writer.close()
	}
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
