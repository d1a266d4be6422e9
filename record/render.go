package record

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/version"
)

var stepColumns = []column{
	{title: "#", width: 0.05}, {title: "Time (UTC)", width: 0.17}, {title: "Step", width: 0.2},
	{title: "Status", width: 0.08}, {title: "Who", width: 0.15}, {title: "Details", width: 0.35},
}

// steps draws the step table, saying how it relates to the journal's total entries.
func (d *doc) steps(rows []StepRow, total int) {
	d.heading("Steps, from the journal")
	if len(rows) == total {
		d.para(fmt.Sprintf("All %d entries of the attached journal, one row each, in order: a step that changes a token or the registry has a begin row and a done or failed row.", total), "", smallPt)
	} else {
		d.para(fmt.Sprintf("%d rows for the %d entries of the attached journal.", len(rows), total), "", smallPt)
	}
	d.startTable(stepColumns)
	for _, r := range rows {
		d.tableRow(fmt.Sprint(r.Seq), ts(r.Time), r.Step, r.Status, r.Actor, r.Details)
	}
	d.endTable()
}

// section draws a heading and its fields, when there are any.
func (d *doc) section(heading string, fs []Field) {
	if len(fs) > 0 {
		d.heading(heading)
		d.fields(fs)
	}
}

// bullets draws a heading and a bulleted paragraph for each line, when there are any.
func (d *doc) bullets(heading string, lines []string) {
	if len(lines) > 0 {
		d.heading(heading)
		for _, l := range lines {
			d.para("• "+l, "", bodyPt)
		}
	}
}

// RenderCeremony lays out and assembles a ceremony record, unsigned: what WriteCeremony
// certifies, for tests and previews.
func RenderCeremony(c *Ceremony, journal []byte) ([]byte, error) {
	l, err := layoutCeremony(c, journal, "")
	if err != nil {
		return nil, err
	}
	return l.unsigned()
}

// layoutCeremony lays out a ceremony record's pages.
func layoutCeremony(c *Ceremony, journal []byte, spoolDir string) (*laidOut, error) {
	jf, hash, err := journalOf(journal)
	if err != nil {
		return nil, err
	}
	if c.Steps == nil {
		c.Steps = StepsFromJournal(jf.Entries)
	}
	title := "Ceremony record: " + c.Kind
	pages, err := layOut(c.ID, title, spoolDir, func(d *doc) error {
		d.setFont("sans", "B", 18)
		d.pdf.CellFormat(bodyW, 10, title, "", 1, "L", false, 0, "")
		d.para("Record "+c.ID+" of root "+c.Root, "", bodyPt)
		d.pdf.Ln(2)
		var root Cert
		for _, ce := range c.Certificates {
			if ce.Role == "root CA" {
				root = ce
			}
		}
		summary := []Field{{"Outcome", c.Outcome}, {"Ceremony", c.Root}, {"Operation", c.Kind},
			{"Quorum", fmt.Sprintf("%d of %d custodians", c.Threshold, c.Custodians)},
			{"Started", ts(c.Started)}, {"Finished", ts(c.Finished)}}
		if root.SHA256 != "" {
			summary = append(summary, Field{"Root SHA-256", root.SHA256})
		}
		summary = append(summary, Field{"Journal SHA-256", hash})
		d.summaryBox(summary)
		if root.Fingerprint != "" {
			d.para("Root fingerprint in words: "+root.Fingerprint, "", smallPt)
		}

		d.heading("Participants")
		people := []column{{title: "Name", width: 0.5}, {title: "Role", width: 0.5}}
		d.startTable(people)
		for _, p := range c.Participants {
			d.tableRow(p.Name, p.Role)
		}
		d.endTable()
		d.section("Workstation", c.Workstation)
		d.section("HSM", c.HSM)
		d.heading("Software")
		d.fields(toolFields(jf.Entries))
		if len(c.Certificates) > 0 {
			d.heading("Certificates issued")
			for _, ce := range c.Certificates {
				d.keep(40) // one certificate on one page
				d.fields([]Field{{"Role", ce.Role}, {"Subject", ce.Subject}, {"Serial", ce.Serial},
					{"Valid", ts(ce.NotBefore) + " to " + ts(ce.NotAfter)}, {"Key algorithm", ce.Algorithm},
					{"SHA-256", ce.SHA256}})
				d.pdf.Ln(2)
			}
		}
		if len(c.Commitments) > 0 {
			d.heading("Share commitments (never the shares)")
			cols := []column{{title: "Share", width: 0.08}, {title: "Custodian", width: 0.27}, {title: "Commitment (HMAC-SHA-256)", width: 0.65, mono: true}}
			d.startTable(cols)
			for _, cm := range c.Commitments {
				d.tableRow(fmt.Sprint(cm.Number), cm.Custodian, cm.SHA256)
			}
			d.endTable()
		}
		d.section("Backup", c.Backups)
		d.bullets("Algorithm horizon (NIST IR 8547)", c.Horizon)
		d.section("Quorum statement (signed by the root)", c.Statement)
		d.bullets("Shares checked (never the shares)", c.SharesChecked)
		d.bullets("Warnings", c.Warnings)
		d.steps(c.Steps, len(jf.Entries))
		if err := d.logSection(c.Log); err != nil {
			return err
		}
		d.signatureBlock(c.Participants)
		return nil
	})
	if err != nil {
		return nil, err
	}
	files, err := recordFiles(journal, c.Log)
	if err != nil {
		return nil, err
	}
	return &laidOut{volumes: pages,
		meta: docMeta{Title: title, Subject: fmt.Sprintf("%s of root %s", c.Kind, c.Root), Kind: c.Kind, RunID: c.ID,
			JournalHash: hash, Created: created(c.Finished)},
		files: append(files, c.Attachments...)}, nil
}

// RenderDestruction lays out and assembles a destruction record (certificate of
// sanitization), unsigned.
func RenderDestruction(r *Destruction, journal []byte) ([]byte, error) {
	l, err := layoutDestruction(r, journal, "")
	if err != nil {
		return nil, err
	}
	return l.unsigned()
}

// layoutDestruction lays out a destruction record's pages.
func layoutDestruction(r *Destruction, journal []byte, spoolDir string) (*laidOut, error) {
	jf, hash, err := journalOf(journal)
	if err != nil {
		return nil, err
	}
	if r.Steps == nil && len(jf.Entries) <= maxStepRows {
		r.Steps = StepsFromJournal(jf.Entries)
	}
	count, first := len(r.Devices), DeviceRow{}
	if r.Table != nil {
		if r.Table.added != r.Table.size {
			return nil, fmt.Errorf("record %s: the fleet's table has %d of its %d devices", r.ID, r.Table.added, r.Table.size)
		}
		count, first = r.Table.size, r.Table.first
	} else if count > 0 {
		first = r.Devices[0]
	}
	title := destructionTitle(count)
	head := func(d *doc) error {
		d.setFont("sans", "B", 18)
		d.pdf.CellFormat(bodyW, 10, title, "", 1, "L", false, 0, "")
		d.para("Record "+r.ID+", after "+Rev2, "", bodyPt)
		d.pdf.Ln(2)
		summary := []Field{{"Outcome", r.Outcome}, {"Devices", fmt.Sprint(count)}}
		if len(r.Sanitized) == 1 {
			sz := r.Sanitized[0]
			summary = append(summary, Field{"Method category", sz.Category})
			if len(sz.KeyStore) > 0 {
				var ks []string
				for _, f := range sz.KeyStore {
					ks = append(ks, strings.ToLower(f.Name)+" "+f.Value)
				}
				summary = append(summary, Field{"Key store", strings.Join(ks, ", ")})
			}
		}
		if count == 1 {
			summary = append(summary, Field{"Device", joinNonEmpty(first.Serial, first.Model)}, Field{"UDI", orNotKnown(first.UDI)},
				Field{"Media destination", orNotStated(first.Destination)})
		}
		summary = append(summary, Field{"Manufacturer", r.Manufacturer}, Field{"Technician", r.Technician}, Field{"Witness", orDash(r.Witness)},
			Field{"Validator", orDash(r.Validator)},
			Field{"Revoked by", r.Issuer}, Field{"CRL number", fmt.Sprint(r.CRLNumber)},
			Field{"Started", ts(r.Started)}, Field{"Finished", ts(r.Finished)}, Field{"Journal SHA-256", hash})
		d.summaryBox(summary)
		d.heading("Sanitization")
		d.fields([]Field{
			{"Guideline", Rev2},
			{"Media type", "device key store reached through PKCS#11 (secure element, TPM or smart card)"},
			{"Methods", "erase: cryptographic erase by destroying every object of the device identity (found by key id, certificate value and public key); reinit: token re-initialisation (all objects); physical and unreachable: not sanitized by Custos, a witness attests what happened to the device, the certificate is revoked"},
			{"Category", "Purge when the key store says the key was made on it and could never leave it (no copy can exist elsewhere), Clear otherwise"},
			{"Verification method", "after erasure the key store is searched again by key id, certificate value and public key (certificates, public and private keys), and the old key is asked to sign"},
			{"CRL", orDash(r.CRLFile)},
		})
		d.fields(toolFields(jf.Entries))
		return nil
	}
	tail := func(d *doc) error {
		for _, sz := range r.Sanitized {
			d.sanitization(sz)
		}
		d.section("New identity", r.Replacement)
		if r.Steps != nil {
			d.steps(r.Steps, len(jf.Entries))
		} else {
			d.heading("Steps")
			d.para(fmt.Sprintf("The journal's %d entries are more than this record lists (%d at most); every one of them is in the attached %s.",
				len(jf.Entries), maxStepRows, JournalAttachment), "", bodyPt)
		}
		people := []Actor{{r.Technician, "technician"}}
		if r.Witness != "" {
			people = append(people, Actor{r.Witness, "witness"})
		}
		if r.Validator != "" && !strings.HasPrefix(r.Validator, "none") {
			people = append(people, Actor{r.Validator, "validator"})
		}
		if err := d.logSection(r.Log); err != nil {
			return err
		}
		d.signatureBlock(people)
		return nil
	}
	var pages []*fpdfDoc
	if r.Table != nil {
		// The table's pages were laid out as the fleet was retired: the first pages come
		// before them, and the rest goes on after its last row, in its last volume.
		if pages, err = layOut(r.ID, title, spoolDir, head); err != nil {
			return nil, err
		}
		t := r.Table.d
		t.endTable()
		if err := tail(t); err != nil {
			t.stop()
			return nil, err
		}
		rest, err := t.finish()
		if err != nil {
			return nil, err
		}
		pages = append(pages, rest...)
	} else {
		pages, err = layOut(r.ID, title, spoolDir, func(d *doc) error {
			if err := head(d); err != nil {
				return err
			}
			d.heading("Devices")
			d.startTable(deviceColumns)
			for _, dv := range r.Devices {
				d.deviceRow(dv)
			}
			d.endTable()
			return tail(d)
		})
		if err != nil {
			return nil, err
		}
	}
	files, err := recordFiles(journal, r.Log)
	if err != nil {
		return nil, err
	}
	if r.Results != nil {
		files = append(files, Attachment{Name: "results.csv", MIME: "text/csv", Description: "one row per device",
			Relationship: RelData, Later: r.Results})
	}
	kind := "decommission"
	switch {
	case r.Log != nil:
		kind = r.Log.Entry.Kind
	case count > 1:
		kind = "fleet"
	}
	return &laidOut{volumes: pages,
		meta: docMeta{Title: title, Subject: "key destruction and revocation after " + Rev2, Kind: kind, RunID: r.ID,
			JournalHash: hash, Created: created(r.Finished)},
		files: files}, nil
}

// destructionTitle is the title of the certificate of sanitization of count devices.
func destructionTitle(count int) string {
	if count > 1 {
		return fmt.Sprintf("Certificate of sanitization: fleet of %d devices", count)
	}
	return "Certificate of sanitization"
}

// deviceColumns are the columns of a certificate of sanitization's Devices table. Method and
// outcome are as wide as "unreachable" and "decommissioned".
var deviceColumns = []column{{title: "Serial, model and UDI", width: 0.15}, {title: "Method", width: 0.11},
	{title: "Key store", width: 0.12}, {title: "Keys (ids) and certificates (serials)", width: 0.19, mono: true},
	{title: "Verification", width: 0.14}, {title: "Reason", width: 0.12}, {title: "Outcome and destination", width: 0.17}}

// deviceRow draws a device's row of the Devices table.
func (d *doc) deviceRow(dv DeviceRow) {
	keys := joinNonEmpty(dv.KeyIDs, dv.CertSerials)
	store := dv.KeyStore
	if dv.Method == "physical" || dv.Method == "unreachable" {
		keys = "not erased by Custos: " + keys
		store = "not reached"
	}
	who := joinNonEmpty(dv.Serial, dv.Model)
	if dv.UDI != "" {
		who = joinNonEmpty(who, "UDI "+dv.UDI)
	}
	d.tableRow(who, dv.Method, orDash(store), keys, dv.Verification, dv.Reason,
		dv.Outcome+"; destination: "+orNotStated(dv.Destination))
}

// orNotKnown is v, or "not known".
func orNotKnown(v string) string {
	if v == "" {
		return "not known"
	}
	return v
}

// orNotStated is v, or "not stated".
func orNotStated(v string) string {
	if v == "" {
		return "not stated"
	}
	return v
}

// Rev2 is the guideline certificates of sanitization follow.
const Rev2 = "NIST SP 800-88 Rev. 2, Guidelines for Media Sanitization (September 2025)"

// sanitization lays out what was done to one device's key store.
func (d *doc) sanitization(sz Sanitization) {
	d.heading("Sanitization of device " + sz.Serial)
	fs := []Field{{"Method category", sz.Category}}
	if sz.UDI != "" {
		fs = append(fs, Field{"Device UDI", sz.UDI})
	}
	if sz.Attested != "" {
		fs = append(fs, Field{"Attested", sz.Attested})
	}
	if sz.Technique != "" {
		fs = append(fs, Field{"Technique", sz.Technique})
	}
	if sz.Copies != "" {
		fs = append(fs, Field{"Copies of the key", sz.Copies})
	}
	fs = append(fs, sz.KeyStore...)
	if sz.Verification != "" {
		fs = append(fs, Field{"Verification result", sz.Verification})
	}
	if sz.Destination != "" {
		fs = append(fs, Field{"Media destination", sz.Destination})
	}
	d.fields(fs)
	if len(sz.Destroyed) > 0 {
		d.heading("Objects destroyed on the key store of " + sz.Serial)
		d.startTable([]column{{title: "Class", width: 0.13}, {title: "Id (CKA_ID)", width: 0.22, mono: true}, {title: "Label", width: 0.17},
			{title: "Found by", width: 0.18}, {title: "Attributes before destruction", width: 0.30}})
		for _, o := range sz.Destroyed {
			d.tableRow(o.Class, orDash(o.ID), orDash(o.Label), o.FoundBy, orDash(o.Attributes))
		}
		d.endTable()
	}
	if len(sz.Searches) > 0 {
		d.heading("Searches made after the erasure")
		d.startTable([]column{{title: "Search", width: 0.85}, {title: "Found", width: 0.15}})
		for _, s := range sz.Searches {
			d.tableRow(s.Search, fmt.Sprint(s.Found))
		}
		d.endTable()
	}
}

// RenderModuleCheck lays out and assembles the record of a module check, unsigned.
func RenderModuleCheck(c *ModuleCheck, journal []byte) ([]byte, error) {
	l, err := layoutModuleCheck(c, journal, "")
	if err != nil {
		return nil, err
	}
	return l.unsigned()
}

// layoutModuleCheck lays out a module check's pages.
func layoutModuleCheck(c *ModuleCheck, journal []byte, spoolDir string) (*laidOut, error) {
	jf, hash, err := journalOf(journal)
	if err != nil {
		return nil, err
	}
	title := "Module check"
	pages, err := layOut(c.ID, title, spoolDir, func(d *doc) error {
		d.setFont("sans", "B", 18)
		d.pdf.CellFormat(bodyW, 10, title, "", 1, "L", false, 0, "")
		d.para("Record "+c.ID+": every operation Custos asks of a PKCS#11 module, tried on a spare token", "", bodyPt)
		d.pdf.Ln(2)
		supported := 0
		for _, r := range c.Checks {
			if r.Result == "supported" {
				supported++
			}
		}
		plan := "none given"
		switch {
		case c.Plan != "" && len(c.Problems) == 0:
			plan = "the module can do everything it asks"
		case c.Plan != "":
			plan = fmt.Sprintf("%d choices the module cannot do", len(c.Problems))
		}
		d.summaryBox([]Field{{"Supported", fmt.Sprintf("%d of %d operations", supported, len(c.Checks))}, {"Plan", plan},
			{"Started", ts(c.Started)}, {"Finished", ts(c.Finished)}, {"Journal SHA-256", hash}})
		d.heading("Module")
		d.fields(c.Module)
		d.heading("Spare token")
		d.fields(append(c.Token, Field{"Left", c.Cleared}))
		if c.Plan != "" {
			d.heading("The plan")
			if len(c.Problems) == 0 {
				d.para("Everything the plan "+c.Plan+" asks of the module, it did.", "", bodyPt)
			}
			for _, p := range c.Problems {
				d.para("• "+p, "", bodyPt)
			}
		}
		d.heading("Operations")
		d.startTable([]column{{title: "Operation", width: 0.36}, {title: "Result", width: 0.12}, {title: "Return code", width: 0.2, mono: true}, {title: "Detail", width: 0.32}})
		for _, r := range c.Checks {
			d.tableRow(r.Check, r.Result, r.Code, r.Detail)
		}
		d.endTable()
		d.heading("Software")
		d.fields(toolFields(jf.Entries))
		d.steps(StepsFromJournal(jf.Entries), len(jf.Entries))
		if err := d.logSection(c.Log); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	files, err := recordFiles(journal, c.Log)
	if err != nil {
		return nil, err
	}
	return &laidOut{volumes: pages,
		meta: docMeta{Title: title, Subject: "what a PKCS#11 module does on a spare token, before a ceremony", Kind: "hsm-check",
			RunID: c.ID, JournalHash: hash, Created: created(c.Finished)},
		files: files}, nil
}

// maxShardRows is the most shards whose SHA-256 a CRL publication's record lists as rows; the
// attached list has them all.
const maxShardRows = 64

// layoutCRLPublication lays out the short record of a CRL publication.
func layoutCRLPublication(c *CRLPublication, journal []byte, spoolDir string) (*laidOut, error) {
	jf, hash, err := journalOf(journal)
	if err != nil {
		return nil, err
	}
	title := "CRL publication"
	what, subject := "an issuing CA's full CRL", "an issuing CA's full CRL"
	if c.Set != nil {
		what = fmt.Sprintf("an issuing CA's CRL set (its full CRL and %d shards)", c.Set.Shards)
		subject = "an issuing CA's CRL set"
	}
	pages, err := layOut(c.ID, title, spoolDir, func(d *doc) error {
		d.setFont("sans", "B", 18)
		d.pdf.CellFormat(bodyW, 10, title, "", 1, "L", false, 0, "")
		d.para("Record "+c.ID+": "+what+", signed with its key on the operations token under the operator PIN", "", bodyPt)
		d.pdf.Ln(2)
		summary := []Field{{"Issuing CA", c.Issuer}, {"CRL number", fmt.Sprint(c.Number)}, {"Entries", fmt.Sprint(c.Entries)},
			{"This update", ts(c.ThisUpdate)}, {"Next update", ts(c.NextUpdate)}, {"Operator", c.Operator}}
		if c.Set != nil {
			summary = append(summary, Field{"Shards", fmt.Sprint(c.Set.Shards)})
		}
		d.summaryBox(append(summary, Field{"Started", ts(c.Started)}, Field{"Finished", ts(c.Finished)}, Field{"Journal SHA-256", hash}))
		d.heading("The full CRL")
		d.fields([]Field{{"File", c.File}, {"SHA-256", c.SHA256}})
		if set := c.Set; set != nil {
			d.heading("The CRL set")
			over := "none"
			if len(set.OverBudget) > 0 {
				over = fmt.Sprint(set.OverBudget)
			}
			d.fields([]Field{{"Folder", set.Folder}, {"Shards", fmt.Sprintf("%d, in %s", set.Shards, set.ShardFolder)},
				{"Largest", set.Largest}, {"Budget", fmt.Sprintf("%d bytes; shards over it: %s", set.Budget, over)},
				{"Every file's SHA-256", fmt.Sprintf("attached as %s (sha256sum -c in the set's folder checks a copy), SHA-256 %s", set.SumsFile, set.SumsSHA256)}})
			d.heading("Each shard's SHA-256")
			shown := set.ShardSHA256
			if len(shown) > maxShardRows {
				shown = shown[:maxShardRows]
			}
			d.fields(shown)
			if n := len(set.ShardSHA256) - len(shown); n > 0 {
				d.para(fmt.Sprintf("The other %d shards' SHA-256 are in the attached %s.", n, set.SumsFile), "", bodyPt)
			}
		}
		d.heading("Software")
		d.fields(toolFields(jf.Entries))
		d.steps(StepsFromJournal(jf.Entries), len(jf.Entries))
		if err := d.logSection(c.Log); err != nil {
			return err
		}
		d.signatureBlock([]Actor{{c.Operator, "operator"}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	files, err := recordFiles(journal, c.Log)
	if err != nil {
		return nil, err
	}
	files = append(files, c.Attachments...)
	return &laidOut{volumes: pages,
		meta:  docMeta{Title: title, Subject: subject, Kind: "crl-publish", RunID: c.ID, JournalHash: hash, Created: created(c.Finished)},
		files: files}, nil
}

// toolFields names the builds of Custos that ran the run, from its journal, and the one that
// wrote the record: version, commit, Go version and the binary's SHA-256.
func toolFields(entries []Entry) []Field {
	var out []Field
	for _, b := range Builds(entries) {
		out = append(out, Field{"Tool (ran the run)", buildLine(b)})
	}
	cur := version.Current()
	if len(out) == 0 || !Builds(entries)[len(out)-1].Same(cur) {
		out = append(out, Field{"Tool (wrote this record)", buildLine(cur)})
	}
	return out
}

func buildLine(b version.Info) string {
	sum := b.SHA256
	if sum == "" {
		sum = "unknown (" + b.BinaryErr + ")"
	}
	return b.String() + ", binary SHA-256 " + sum
}

// recordFiles are the files every record carries: its journal, and its place in the record
// log once it has one.
func recordFiles(journal []byte, log *LogProof) ([]Attachment, error) {
	files := []Attachment{journalAttachment(journal)}
	if log == nil {
		return files, nil
	}
	more, err := log.attachments()
	if err != nil {
		return nil, err
	}
	return append(files, more...), nil
}

// journalAttachment is the run's journal as every record carries it: the source the record
// was made from.
func journalAttachment(journal []byte) Attachment {
	return Attachment{Name: JournalAttachment, MIME: JournalMIME, Description: "the run's hash-chained journal",
		Relationship: RelSource, Content: journal}
}

// JournalMIME is the media type of an attached journal: JSON text, one object per line.
const JournalMIME = "application/x-ndjson"

// maxStepRows is the most journal entries a destruction record lists as rows; a fleet's
// journal beyond it is in the attachment alone.
const maxStepRows = 2000

// JournalAttachment is the name of the journal embedded in every record.
const JournalAttachment = "journal.jsonl"

func journalOf(journal []byte) (*JournalFile, string, error) {
	jf, err := ReadJournal(bytes.NewReader(journal))
	if err != nil {
		return nil, "", fmt.Errorf("record: the journal does not verify: %w", err)
	}
	if jf.FinalHash == "" {
		return nil, "", fmt.Errorf("record: the journal is empty")
	}
	return jf, jf.FinalHash, nil
}

func created(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t.UTC()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
