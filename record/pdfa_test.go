package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// qpdfDoc is a PDF as `qpdf --json` shows it, streams decoded: an independent reading of the
// file's structure.
type qpdfDoc struct {
	objs    map[string]qpdfObj
	trailer map[string]any
}

type qpdfObj struct {
	Value  any `json:"value"`
	Stream *struct {
		Dict map[string]any `json:"dict"`
		Data []byte         `json:"data"`
	} `json:"stream"`
}

func readQPDF(t *testing.T, path string) *qpdfDoc {
	t.Helper()
	out, err := exec.Command("qpdf", "--json", "--json-key=qpdf", "--json-stream-data=inline", "--decode-level=all", path).Output()
	if err != nil {
		t.Fatalf("qpdf --json %s: %v", path, err)
	}
	var j struct {
		QPDF []json.RawMessage `json:"qpdf"`
	}
	if err := json.Unmarshal(out, &j); err != nil || len(j.QPDF) != 2 {
		t.Fatalf("qpdf --json: %v", err)
	}
	q := &qpdfDoc{}
	if err := json.Unmarshal(j.QPDF[1], &q.objs); err != nil {
		t.Fatal(err)
	}
	q.trailer = q.objs["trailer"].Value.(map[string]any)
	return q
}

// dict is the dictionary a reference (or a direct dictionary) names; a stream's dictionary
// for a stream.
func (q *qpdfDoc) dict(t *testing.T, v any) map[string]any {
	t.Helper()
	if ref, ok := v.(string); ok {
		o, found := q.objs["obj:"+ref]
		if !found {
			t.Fatalf("no object %s", ref)
		}
		if o.Stream != nil {
			return o.Stream.Dict
		}
		v = o.Value
	}
	d, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a dictionary", v)
	}
	return d
}

func (q *qpdfDoc) data(t *testing.T, ref any) []byte {
	t.Helper()
	o := q.objs["obj:"+ref.(string)]
	if o.Stream == nil {
		t.Fatalf("%v is not a stream", ref)
	}
	return o.Stream.Data
}

// text is a qpdf JSON string value ("u:text") as text.
func text(v any) string {
	s, _ := v.(string)
	return strings.TrimPrefix(s, "u:")
}

// xmpValues reads an XMP packet into "namespace-URI local-name" → text, for every property
// with a simple value or a single-item Alt or Seq.
func xmpValues(t *testing.T, packet []byte) map[string]string {
	t.Helper()
	const rdf = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
	out := map[string]string{}
	dec := xml.NewDecoder(bytes.NewReader(packet))
	var stack []xml.Name
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			stack = append(stack, e.Name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if strings.TrimSpace(string(e)) == "" {
				continue
			}
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].Space != rdf {
					out[stack[i].Space+" "+stack[i].Local] += string(e)
					break
				}
			}
		}
	}
	return out
}

// signedFleet writes a signed certificate of sanitization for a fleet of three, with its
// results attached.
func signedFleet(t *testing.T, s Signer) string {
	t.Helper()
	r := &Destruction{ID: "fleet-2026-11", Outcome: "completed", Technician: "Tess Tech", Witness: "Wes Witness", Issuer: "Acme Devices CA 1",
		CRLNumber: 7, Started: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 25, 9, 5, 0, 0, time.UTC),
		Results: ready(Pack([]byte("serial,outcome\nPUMP-1,decommissioned\n")))}
	for i := range 3 {
		r.Devices = append(r.Devices, DeviceRow{Serial: fmt.Sprintf("PUMP-%d", i+1), Model: "Pump X2", Method: "unreachable",
			CertSerials: "01a2b3c4d5e6f708091a2b3c4d5e6f7081", Verification: "nothing to erase: device lost", Reason: "keyCompromise", Outcome: "decommissioned"})
	}
	path := filepath.Join(t.TempDir(), "fleet.pdf")
	journal := testJournal(t, 3)
	r.Log = testLog(t, s, "fleet", journal)
	if err := WriteDestruction(context.Background(), path, r, journal, s); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRecordsArePDFA3 checks, through qpdf --json, pdfinfo, pdffonts and pdfsig, each structure
// PDF/A-3b and a certification signature need, in a ceremony record and a fleet record.
func TestRecordsArePDFA3(t *testing.T) {
	s, _ := testSigner(t, "Acme")
	ceremony, _ := writeSigned(t, s)
	records := map[string]struct{ path, run string }{"ceremony": {ceremony, "acme-root-2026"}, "fleet": {signedFleet(t, s), "fleet-2026-11"}}
	for name, rec := range records {
		path := rec.path
		t.Run(name, func(t *testing.T) {
			raw, _ := os.ReadFile(path)
			// A header, then a comment line of at least four bytes above 127.
			if !bytes.HasPrefix(raw, []byte("%PDF-1.7\n%")) || raw[10] < 128 || raw[11] < 128 || raw[12] < 128 || raw[13] < 128 {
				t.Errorf("header %q", raw[:16])
			}
			if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors") {
				t.Errorf("qpdf --check: %v\n%s", err, out)
			}
			q := readQPDF(t, path)
			if _, ok := q.trailer["/Encrypt"]; ok {
				t.Error("the record is encrypted")
			}
			id, _ := q.trailer["/ID"].([]any)
			if len(id) != 2 || len(id[0].(string)) != len("b:")+32 || id[0] != id[1] {
				t.Errorf("trailer /ID %v: want two equal 16-byte strings", q.trailer["/ID"])
			}
			cat := q.dict(t, q.trailer["/Root"])
			info := q.dict(t, q.trailer["/Info"])

			// XMP, unfiltered, linked from the catalog, saying what the information dictionary says.
			md := q.dict(t, cat["/Metadata"])
			if md["/Type"] != "/Metadata" || md["/Subtype"] != "/XML" || md["/Filter"] != nil {
				t.Errorf("metadata stream %v", md)
			}
			xmp := xmpValues(t, q.data(t, cat["/Metadata"]))
			const (
				dc     = "http://purl.org/dc/elements/1.1/ "
				xmpNS_ = "http://ns.adobe.com/xap/1.0/ "
				pdfNS  = "http://ns.adobe.com/pdf/1.3/ "
				aid    = "http://www.aiim.org/pdfa/ns/id/ "
			)
			jf, _ := ReadJournal(bytes.NewReader(journalOfRecord(t, raw)))
			want := map[string]string{
				aid + "part": "3", aid + "conformance": "B",
				dc + "title": text(info["/Title"]), dc + "description": text(info["/Subject"]), dc + "creator": text(info["/Author"]),
				xmpNS_ + "CreatorTool": text(info["/Creator"]), pdfNS + "Producer": text(info["/Producer"]), pdfNS + "Keywords": text(info["/Keywords"]),
				xmpNS_ + "CreateDate": pdfToXMPDate(text(info["/CreationDate"])), xmpNS_ + "ModifyDate": pdfToXMPDate(text(info["/ModDate"])),
				xmpNS + " RunID": rec.run, xmpNS + " JournalSHA256": jf.FinalHash,
			}
			for k, v := range want {
				if xmp[k] != v || v == "" {
					t.Errorf("XMP %s = %q, want %q", k, xmp[k], v)
				}
			}
			if !strings.HasPrefix(text(info["/Producer"]), "Custos ") {
				t.Errorf("producer %q names no version of Custos", text(info["/Producer"]))
			}
			// Custos's own properties are declared in a PDF/A extension schema.
			if xmp["http://www.aiim.org/pdfa/ns/schema# namespaceURI"] != xmpNS || xmp["http://www.aiim.org/pdfa/ns/schema# prefix"] != "custos" {
				t.Errorf("no extension schema for the custos properties: %v", xmp)
			}
			for _, p := range []string{"RunID", "Kind", "JournalSHA256"} {
				if !strings.Contains(xmp["http://www.aiim.org/pdfa/ns/property# name"], p) {
					t.Errorf("extension schema does not declare %s", p)
				}
			}

			// An sRGB output intent with its ICC profile.
			ois, _ := cat["/OutputIntents"].([]any)
			if len(ois) != 1 {
				t.Fatalf("output intents %v", cat["/OutputIntents"])
			}
			oi := q.dict(t, ois[0])
			prof := q.data(t, oi["/DestOutputProfile"])
			if oi["/S"] != "/GTS_PDFA1" || q.dict(t, oi["/DestOutputProfile"])["/N"] != 3.0 || len(prof) < 128 ||
				string(prof[36:40]) != "acsp" || string(prof[12:20]) != "mntrRGB " || int(binary.BigEndian.Uint32(prof)) != len(prof) {
				t.Errorf("output intent %v, profile of %d bytes", oi, len(prof))
			}

			// Every attachment: a file spec with /F, /UF, /Desc, /AFRelationship, listed in /AF and in
			// the sorted name tree, its stream with a MIME subtype, size and date.
			af, _ := cat["/AF"].([]any)
			tree := q.dict(t, q.dict(t, cat["/Names"])["/EmbeddedFiles"])["/Names"].([]any)
			var names []string
			for i := 0; i+1 < len(tree); i += 2 {
				names = append(names, text(tree[i]))
				if !slices.Contains(af, tree[i+1]) {
					t.Errorf("%s is in the name tree but not in /AF", text(tree[i]))
				}
			}
			if len(af) != len(names) || !slices.IsSorted(names) || !slices.Contains(names, JournalAttachment) {
				t.Errorf("/AF %v, name tree %v", af, names)
			}
			for _, ref := range af {
				fs := q.dict(t, ref)
				name := text(fs["/UF"])
				ef := q.dict(t, q.dict(t, fs["/EF"])["/F"])
				params := q.dict(t, ef["/Params"])
				rel, _ := fs["/AFRelationship"].(string)
				if fs["/Type"] != "/Filespec" || text(fs["/F"]) != name || text(fs["/Desc"]) == "" ||
					!slices.Contains([]string{"/Source", "/Data", "/Supplement"}, rel) {
					t.Errorf("file spec %v", fs)
				}
				sub, _ := ef["/Subtype"].(string)
				data := q.data(t, q.dict(t, fs["/EF"])["/F"])
				if !strings.Contains(sub, "/") || sub == "/" || params["/Size"] != float64(len(data)) || params["/ModDate"] == nil {
					t.Errorf("embedded file %s: subtype %q, params %v, %d bytes", name, sub, params, len(data))
				}
				if name == JournalAttachment && (rel != "/Source" || !bytes.Equal(data, journalOfRecord(t, raw))) {
					t.Errorf("the journal's relationship is %s", rel)
				}
			}

			// A certification signature: /Perms /DocMDP names the signature, whose DocMDP
			// reference allows no change; its field is a printable zero-size widget on page 1.
			sigRef := q.dict(t, cat["/Perms"])["/DocMDP"]
			sig := q.dict(t, sigRef)
			refsArr, _ := sig["/Reference"].([]any)
			if sig["/Type"] != "/Sig" || sig["/SubFilter"] != "/adbe.pkcs7.detached" || len(refsArr) != 1 {
				t.Fatalf("signature %v", sig)
			}
			sr := q.dict(t, refsArr[0])
			if sr["/TransformMethod"] != "/DocMDP" || q.dict(t, sr["/TransformParams"])["/P"] != 1.0 {
				t.Errorf("signature reference %v", sr)
			}
			form := q.dict(t, cat["/AcroForm"])
			fields, _ := form["/Fields"].([]any)
			if form["/SigFlags"] != 3.0 || len(fields) != 1 || form["/NeedAppearances"] != nil {
				t.Fatalf("AcroForm %v", form)
			}
			w := q.dict(t, fields[0])
			flags, _ := w["/F"].(float64)
			const print, hidden, invisible, noView, toggle = 4, 2, 1, 32, 256
			if w["/Subtype"] != "/Widget" || w["/FT"] != "/Sig" || w["/V"] != sigRef ||
				int(flags)&print == 0 || int(flags)&(hidden|invisible|noView|toggle) != 0 || fmt.Sprint(w["/Rect"]) != "[0 0 0 0]" {
				t.Errorf("signature widget %v", w)
			}
			pages := q.dict(t, cat["/Pages"])["/Kids"].([]any)
			if annots, _ := q.dict(t, pages[0])["/Annots"].([]any); !slices.Contains(annots, fields[0]) || w["/P"] != pages[0] {
				t.Errorf("the widget is not in the first page's /Annots: %v", q.dict(t, pages[0]))
			}

			// Every font is embedded.
			fonts := 0
			for ref, o := range q.objs {
				d, ok := o.Value.(map[string]any)
				if !ok || d["/Type"] != "/Font" || d["/Subtype"] == "/CIDFontType2" {
					continue
				}
				fonts++
				if d["/Subtype"] != "/Type0" {
					t.Errorf("%s: a %v font (only embedded TrueType fonts are expected)", ref, d["/Subtype"])
					continue
				}
				desc := q.dict(t, q.dict(t, d["/DescendantFonts"].([]any)[0])["/FontDescriptor"])
				if desc["/FontFile2"] == nil {
					t.Errorf("%s (%v) is not embedded", ref, d["/BaseFont"])
				}
			}
			if fonts == 0 {
				t.Error("no font found")
			}
			out, err := exec.Command("pdffonts", path).CombinedOutput()
			if err != nil {
				t.Fatalf("pdffonts: %v %s", err, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[2:] {
				if f := strings.Fields(l); len(f) < 5 || f[len(f)-5] != "yes" {
					t.Errorf("pdffonts: not embedded: %s", l)
				}
			}

			out, _ = exec.Command("pdfinfo", path).CombinedOutput()
			for _, want := range []string{"Metadata Stream: yes", "Form:            AcroForm", "JavaScript:      no", "Encrypted:       no", "PDF version:     1.7"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("pdfinfo lacks %q:\n%s", want, out)
				}
			}
			out, _ = exec.Command("pdfsig", path).CombinedOutput()
			for _, want := range []string{"Signature is Valid.", "Total document signed", "Signature Field Name: " + fieldTag} {
				if !strings.Contains(string(out), want) {
					t.Errorf("pdfsig lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// pdfToXMPDate turns "D:20261125113000Z" into "2026-11-25T11:30:00Z".
func pdfToXMPDate(d string) string {
	t, err := time.Parse("D:20060102150405Z", d)
	if err != nil {
		return "unparsable " + d
	}
	return xmpDate(t)
}

// journalOfRecord is the journal attached to a record, read back with Verify's own reader.
func journalOfRecord(t *testing.T, file []byte) []byte {
	t.Helper()
	j, _, err := journalAndKeywords(file)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestSRGBProfile converts colours through the profile with Little CMS's transicc and compares
// them with its built-in sRGB: the profile describes sRGB.
func TestSRGBProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "srgb.icc")
	os.WriteFile(path, sRGBProfile(), 0o644)
	lab := func(profile, rgb string) [3]float64 {
		cmd := exec.Command("transicc", "-t1", "-i", profile, "-o", "*Lab", "-n")
		cmd.Stdin = strings.NewReader(rgb + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("transicc: %v %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var v [3]float64
		if _, err := fmt.Sscan(lines[len(lines)-1], &v[0], &v[1], &v[2]); err != nil {
			t.Fatalf("transicc output %q: %v", out, err)
		}
		return v
	}
	for _, rgb := range []string{"255 255 255", "0 0 0", "255 0 0", "0 255 0", "0 0 255", "128 128 128", "20 40 200", "10 10 10"} {
		got, want := lab(path, rgb), lab("*sRGB", rgb)
		for i := range got {
			if d := got[i] - want[i]; d > 0.1 || d < -0.1 {
				t.Errorf("RGB %s: L*a*b* %v through the profile, %v through Little CMS's sRGB", rgb, got, want)
				break
			}
		}
	}
}

// ready gives p, packed already, where a record asks for an attachment it may wait for.
func ready(p *Packed) func() (*Packed, error) { return func() (*Packed, error) { return p, nil } }
