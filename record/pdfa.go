package record

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/version"
)

// A record is assembled from fpdf's pages into one PDF/A-3b file (ISO 19005-3, level B) that
// the record signer certifies in the same pass:
//
//   - a header with a binary comment line, and a trailer /ID;
//   - XMP metadata linked from the catalog (title, description, dates, producer with its
//     version, the run id, kind and journal hash), the same values as the information
//     dictionary, with the PDF/A extension schema that declares Custos's own properties;
//   - an sRGB output intent (the profile in icc.go);
//   - every attachment as an embedded file with its MIME subtype, size, date and checksum, in
//     a file specification with /F, /UF, /Desc and /AFRelationship, listed in the catalog's
//     /AF and in its /EmbeddedFiles name tree;
//   - the signature field as a widget on the first page (in its /Annots, printable, zero
//     size, so it needs no appearance) and in the AcroForm, and the signature referenced from
//     the catalog's /Perms /DocMDP: a certification signature that allows no change.
//
// fpdf embeds every font it draws with (TrueType subsets). The signature covers every byte but
// its own /Contents, in one revision.

// Attachment is a file a record carries.
type Attachment struct {
	Name        string // its file name in the record
	MIME        string // its media type, e.g. "text/csv"
	Description string
	// Relationship is how it relates to the record, as PDF/A-3 names it: Source (the record
	// was made from it), Data (it is the record's data in another form) or Supplement.
	Relationship string
	Content      []byte
	Packed       *Packed // the content, packed, when Content is nil
	// Later gives the content, packed, when Content and Packed are nil: it is asked for when
	// the record's pages are written, so that it may be made meanwhile.
	Later func() (*Packed, error)
}

// Relationships of an attachment to its record (PDF/A-3 /AFRelationship).
const (
	RelSource     = "Source"
	RelData       = "Data"
	RelSupplement = "Supplement"
)

// docMeta is what a record says about itself in its information dictionary and XMP.
type docMeta struct {
	Title, Subject string
	Kind, RunID    string
	JournalHash    string
	Created        time.Time
}

// keywords is the information dictionary's /Keywords, where Verify reads the journal hash.
func (m docMeta) keywords() string { return journalKeyword + m.JournalHash }

// docID is the trailer's /ID: the same record always gets the same one.
func (m docMeta) docID() string {
	sum := sha256.Sum256([]byte("custos record\n" + m.RunID + "\n" + m.JournalHash))
	return strings.ToUpper(hex.EncodeToString(sum[:16]))
}

const (
	author   = "Custos"
	xmpNS    = "https://github.com/custos-pki/custos/ns/record/1.0/"
	fieldTag = "Record signature" // the signature field's name
)

func producer() string { return version.String() + " (go-pdf/fpdf)" }

// assemble turns fpdf's output into the record, written to out: a PDF/A-3b file with its
// metadata, output intent and attachments, certified by s when s is not nil (unsigned
// otherwise, for tests and previews). reason goes into the signature.
func assemble(ctx context.Context, out io.Writer, volumes []*fpdfDoc, meta docMeta, files []Attachment, s *Signer, reason string) error {
	src, err := join(volumes, meta.JournalHash)
	if err != nil {
		return err
	}
	// New objects follow fpdf's; fpdf's catalog and information dictionary are replaced.
	next := src.size
	alloc := func() int { next++; return next - 1 }
	var (
		catalog  = src.catalog
		info     = src.info
		metadata = alloc()
		icc      = alloc()
		sig      = 0
		field    = 0
	)
	if s != nil {
		sig, field = alloc(), alloc()
	}
	type embedded struct{ stream, spec int }
	emb := make([]embedded, len(files))
	for i := range files {
		emb[i] = embedded{alloc(), alloc()}
	}

	w := newPDFWriter(out)
	// The header line, then a comment of bytes above 127 so that tools treat the file as binary.
	w.write([]byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"))
	err = src.objects(func(num int, obj ...[]byte) error {
		if field != 0 && num == src.kids[0] {
			page, err := withAnnots(num, bytes.Join(obj, nil), field)
			if err != nil {
				return err
			}
			obj = [][]byte{page}
		}
		w.raw(num, obj...)
		return w.err
	})
	if err != nil {
		return err
	}

	w.object(info, infoDict(meta))
	xmp := xmpPacket(meta)
	w.stream(metadata, "/Type /Metadata /Subtype /XML", xmp)
	profile := Pack(sRGBProfile()).deflated
	w.stream(icc, "/N 3 /Filter /FlateDecode", profile)

	names := make([]string, len(files))
	specs := make([]int, len(files))
	order := make([]int, len(files))
	for i, f := range files {
		if f.Name == "" || f.MIME == "" || f.Relationship == "" {
			return fmt.Errorf("assemble record: attachment %d lacks a name, media type or relationship", i+1)
		}
		p := f.Packed
		switch {
		case p == nil && f.Later != nil:
			if p, err = f.Later(); err != nil {
				return fmt.Errorf("assemble record: %s: %w", f.Name, err)
			}
		case p == nil:
			p = Pack(f.Content)
		}
		// The checksum is the one PDF defines for embedded files, MD5.
		w.stream(emb[i].stream, fmt.Sprintf("/Type /EmbeddedFile /Subtype %s /Filter /FlateDecode /Params << /Size %d /CreationDate %s /ModDate %s /CheckSum <%X> >>",
			pdfName(f.MIME), p.size, pdfDate(meta.Created), pdfDate(meta.Created), p.md5[:]), p.deflated)
		w.object(emb[i].spec, fmt.Sprintf("<< /Type /Filespec /F %s /UF %s /Desc %s /AFRelationship %s /EF << /F %d 0 R /UF %d 0 R >> >>",
			pdfText(f.Name), pdfText(f.Name), pdfText(f.Description), pdfName(f.Relationship), emb[i].stream, emb[i].stream))
		names[i], specs[i], order[i] = f.Name, emb[i].spec, i
	}
	// A name tree's keys are sorted.
	sort.Slice(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	var tree strings.Builder
	for _, i := range order {
		fmt.Fprintf(&tree, "%s %d 0 R ", pdfText(names[i]), specs[i])
	}

	cat := fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R /Lang (en) /Metadata %d 0 R\n"+
		"/ViewerPreferences << /DisplayDocTitle true >>\n"+
		"/OutputIntents [<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1) /RegistryName (http://www.color.org) /Info %s /DestOutputProfile %d 0 R >>]\n"+
		"/Names << /EmbeddedFiles << /Names [%s] >> >> /AF [%s]",
		src.pages, metadata, pdfText(iccDescription), icc, strings.TrimSpace(tree.String()), refs(specs))
	var ph *placeholder
	if s != nil {
		cat += fmt.Sprintf("\n/AcroForm << /Fields [%d 0 R] /SigFlags 3 >>\n/Perms << /DocMDP %d 0 R >>", field, sig)
		ph, err = newPlaceholder(s)
		if err != nil {
			return err
		}
		// From the signature's dictionary on, the file is held until it is signed.
		w.hold()
		w.object(sig, ph.dict(s, reason))
		w.object(field, fmt.Sprintf("<< /Type /Annot /Subtype /Widget /FT /Sig /T %s /V %d 0 R /F 132 /Rect [0 0 0 0] /P %d 0 R >>",
			pdfText(fieldTag), sig, src.kids[0]))
	}
	w.object(catalog, cat+" >>")
	id := meta.docID()
	if err := w.finish(next, fmt.Sprintf("/Root %d 0 R /Info %d 0 R /ID [<%s> <%s>]", catalog, info, id, id)); err != nil {
		return err
	}
	if s != nil {
		if err := ph.sign(ctx, w.buf.Bytes(), w.base, w.sum, s); err != nil {
			return err
		}
	}
	w.spills = true
	w.spill()
	return w.err
}

// infoDict is the document information dictionary; every value is also in the XMP.
func infoDict(m docMeta) string {
	return fmt.Sprintf("<< /Title %s /Subject %s /Author %s /Creator %s /Producer %s /Keywords %s /CreationDate %s /ModDate %s >>",
		pdfText(m.Title), pdfText(m.Subject), pdfText(author), pdfText(version.String()), pdfText(producer()),
		pdfText(m.keywords()), pdfDate(m.Created), pdfDate(m.Created))
}

// xmpPacket is the record's XMP metadata: PDF/A identification, Dublin Core, XMP basic and
// PDF properties equal to the information dictionary's, and Custos's own properties with the
// extension schema PDF/A requires for them.
func xmpPacket(m docMeta) []byte {
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	date := xmpDate(m.Created)
	prop := func(name, desc string) string {
		return `<rdf:li rdf:parseType="Resource"><pdfaProperty:name>` + name + `</pdfaProperty:name>` +
			`<pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category>` +
			`<pdfaProperty:description>` + esc(desc) + `</pdfaProperty:description></rdf:li>`
	}
	var b strings.Builder
	b.WriteString("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n")
	b.WriteString(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"><pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:format>application/pdf</dc:format>` +
		`<dc:title><rdf:Alt><rdf:li xml:lang="x-default">` + esc(m.Title) + `</rdf:li></rdf:Alt></dc:title>` +
		`<dc:description><rdf:Alt><rdf:li xml:lang="x-default">` + esc(m.Subject) + `</rdf:li></rdf:Alt></dc:description>` +
		`<dc:creator><rdf:Seq><rdf:li>` + author + `</rdf:li></rdf:Seq></dc:creator></rdf:Description>` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"><xmp:CreateDate>` + date + `</xmp:CreateDate>` +
		`<xmp:ModifyDate>` + date + `</xmp:ModifyDate><xmp:MetadataDate>` + date + `</xmp:MetadataDate>` +
		`<xmp:CreatorTool>` + esc(version.String()) + `</xmp:CreatorTool></rdf:Description>` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"><pdf:Producer>` + esc(producer()) + `</pdf:Producer>` +
		`<pdf:Keywords>` + esc(m.keywords()) + `</pdf:Keywords></rdf:Description>` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:custos="` + xmpNS + `"><custos:RunID>` + esc(m.RunID) + `</custos:RunID>` +
		`<custos:Kind>` + esc(m.Kind) + `</custos:Kind><custos:JournalSHA256>` + esc(m.JournalHash) + `</custos:JournalSHA256></rdf:Description>` + "\n")
	b.WriteString(`<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">` +
		`<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource"><pdfaSchema:schema>Custos record</pdfaSchema:schema>` +
		`<pdfaSchema:namespaceURI>` + xmpNS + `</pdfaSchema:namespaceURI><pdfaSchema:prefix>custos</pdfaSchema:prefix>` +
		`<pdfaSchema:property><rdf:Seq>` +
		prop("RunID", "the id of the run this record is of") +
		prop("Kind", "the kind of run: root, issue-ca, crl, reshare, restore, destroy, decommission, fleet, crl-publish") +
		prop("JournalSHA256", "SHA-256 of the last line of the attached journal, in hexadecimal") +
		`</rdf:Seq></pdfaSchema:property></rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>` + "\n")
	b.WriteString("</rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>")
	return []byte(b.String())
}
