package ceremony

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/custos-pki/custos/record"
)

// writeRecord renders the run's record from its journal and signs it. Nothing is journaled
// after this: the record carries the journal as it stands.
func (r *run) writeRecord(ctx context.Context, c *record.Ceremony, s record.Signer) (string, error) {
	jb, err := r.journal.Bytes()
	if err != nil {
		return "", err
	}
	fillFromJournal(c, r.journal.Entries())
	path := r.env.Workspace.Path("records", r.id+".pdf")
	if err := record.WriteCeremony(ctx, path, c, jb, s); err != nil {
		return "", err
	}
	return path, nil
}

var commitRE = regexp.MustCompile(`^(.*), commitment ([0-9a-f]+), delivered to`)

// fillFromJournal takes what a record shows from the journal entries, so the record and the
// journal it carries say the same.
func fillFromJournal(c *record.Ceremony, entries []record.Entry) {
	for _, e := range entries {
		d := e.Data
		if c.Started.IsZero() {
			c.Started = e.Time
		}
		c.Finished = e.Time
		if e.Status != record.StatusDone && e.Status != record.StatusNote {
			continue
		}
		if d["host"] != "" {
			c.Workstation = fields(d, "host", "os", "custos", "build", "clock", "network", "air_gapped")
			c.HSM = fields(d, "module", "module_info", "token_manufacturer", "token_model", "token_serial", "token_firmware", "slot")
		}
		if d["subject"] != "" && d["sha256"] != "" {
			role := map[string]string{"root.certificate": "root CA", "root.record-signer": "record signer", "issue-ca.certificate": "issuing CA"}[e.Step]
			nb, _ := time.Parse(time.RFC3339, d["not_before"])
			na, _ := time.Parse(time.RFC3339, d["not_after"])
			c.Certificates = append(c.Certificates, record.Cert{Role: role, Subject: d["subject"], Serial: d["serial"],
				NotBefore: nb, NotAfter: na, SHA256: d["sha256"], Fingerprint: d["words"], Algorithm: d["algorithm"]})
		}
		var nums []int
		for k := range d {
			if n, ok := strings.CutPrefix(k, "share_"); ok {
				if i, err := strconv.Atoi(n); err == nil {
					nums = append(nums, i)
				}
			}
		}
		sort.Ints(nums)
		for _, n := range nums {
			if m := commitRE.FindStringSubmatch(d[fmt.Sprintf("share_%d", n)]); m != nil {
				c.Commitments = append(c.Commitments, record.Commitment{Number: n, Custodian: m[1], SHA256: m[2]})
			}
		}
		if e.Step == "root.backup" || strings.HasPrefix(e.Step, "reshare.") || strings.HasPrefix(e.Step, "restore.") {
			for _, k := range []string{"file", "backup", "sha256", "backup_sha256", "method"} {
				if d[k] != "" && (k != "sha256" || e.Step == "root.backup") {
					c.Backups = append(c.Backups, record.Field{Name: k, Value: d[k]})
				}
			}
		}
		if d["notices"] != "" {
			c.Horizon = append(c.Horizon, d["notices"]+" Acknowledged by "+d["acknowledged_by"]+".")
		}
	}
}

func fields(d map[string]string, keys ...string) []record.Field {
	var out []record.Field
	for _, k := range keys {
		if d[k] != "" {
			out = append(out, record.Field{Name: strings.ReplaceAll(k, "_", " "), Value: d[k]})
		}
	}
	return out
}

// quorumPeople are the participants of an operation under quorum.
func quorumPeople(holders []string) []record.Person {
	var out []record.Person
	for _, h := range holders {
		out = append(out, record.Person{Name: h, Role: "custodian"})
	}
	return out
}
