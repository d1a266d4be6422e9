package ceremony

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/custos-pki/custos/record"
)

// custodians is the people of a ceremony whose shares go where the plan says: it has a shares
// folder (ShareFolder) and the custodians' token PINs (CustodianPINs), as the command line.
type custodians struct {
	people
	dir  string
	pins map[string]string // by custodian
	// asked counts the PINs asked, by custodian.
	asked map[string]int
}

func (c *custodians) SharesDir() string { return c.dir }
func (c *custodians) CustodianPIN(ctx context.Context, custodian, token string) ([]byte, error) {
	if c.asked == nil {
		c.asked = map[string]int{}
	}
	c.asked[custodian]++
	pin, ok := c.pins[custodian]
	if !ok {
		return nil, fmt.Errorf("no PIN for %s", custodian)
	}
	return []byte(pin), nil
}

// custodyPlan is goodPlan with its custodians delivered as custodiansYAML says.
func custodyPlan(custodiansYAML string) string {
	return strings.Replace(goodPlan, "custodians: [Cara Cruz, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]", custodiansYAML, 1)
}

func TestSharesGoWhereEachCustodianAsked(t *testing.T) {
	ctx := context.Background()
	cleo, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cole := t.TempDir()
	plan := custodyPlan(fmt.Sprintf(`custodians:
  - Cara Cruz
  - {name: Cody Chen, deliver: "token:cody-card"}
  - {name: Cleo Costa, deliver: "age:%s"}
  - {name: Cole Carter, deliver: "dir:%s"}
  - Zoë Ångström`, cleo.Recipient(), cole))
	f := newFixture(t, plan)
	f.hsm.InitToken(t, "cody-card", "cody-so-1234", "cody-pin-1234")
	shares := t.TempDir()
	p := &custodians{dir: shares, pins: map[string]string{"Cody Chen": "cody-pin-1234"}}
	res, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.shares) != 0 {
		t.Errorf("%d shares went to DeliverShare; every custodian has a destination here", len(p.shares))
	}
	// Files: the default folder holds Cara's and Zoë's in clear and Cleo's encrypted; Cole's
	// folder his own. Each is mode 0600.
	files := map[string]string{
		"1-Cara-Cruz.share": shares, "3-Cleo-Costa.share.age": shares, "4-Cole-Carter.share": cole, "5-Zoë-Ångström.share": shares,
	}
	for name, dir := range files {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", name, info.Mode())
		}
	}
	if entries, _ := os.ReadDir(shares); len(entries) != 3 {
		t.Errorf("the default folder holds %d files, want 3", len(entries))
	}
	// The age file is one age decrypts with Cleo's identity, and no share in clear.
	ct, _ := os.ReadFile(filepath.Join(shares, "3-Cleo-Costa.share.age"))
	if !strings.HasPrefix(string(ct), "-----BEGIN AGE ENCRYPTED FILE-----") || strings.Contains(string(ct), "custos-share") {
		t.Errorf("the age file:\n%s", ct)
	}
	// Cody's share is on his token: a private data object that cannot be modified, as
	// pkcs11-tool sees it after his login (and not before).
	objs := tokenObjects(t, f, "cody-card", "cody-pin-1234")
	if !strings.Contains(objs, "custos share acme-root-2026 epoch 1 #2") || !strings.Contains(objs, "private") {
		t.Errorf("cody-card after login:\n%s", objs)
	}
	if objs := tokenObjects(t, f, "cody-card", ""); strings.Contains(objs, "custos share") {
		t.Errorf("the share is visible without Cody's PIN:\n%s", objs)
	}
	// Checked at preflight, written and read back at the split: Cody types his PIN once.
	if p.asked["Cody Chen"] != 1 {
		t.Errorf("Cody's PIN was asked %d times, want once", p.asked["Cody Chen"])
	}
	// Two plaintext shares rest together in the default folder: the people are told, the
	// journal and the record say so; Cole's own folder and Cleo's encrypted file do not count.
	want := fmt.Sprintf("2 shares rest together in %s: hand each to its custodian, then delete the folder", shares)
	if len(res.Warnings) != 1 || res.Warnings[0] != want {
		t.Errorf("warnings %q, want %q", res.Warnings, want)
	}
	if !strings.Contains(splitPayload(t, res.JournalPath).Warnings[0], "2 shares rest together") {
		t.Error("the journal does not warn")
	}
	if text := pdfText(t, res.RecordPath); !strings.Contains(text, "2 shares rest together in") {
		t.Errorf("the record does not warn:\n%s", text)
	}
	q, err := f.env.Registry.Quorum(ctx, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	if q.Shares[1].Destination != "token:cody-card" || q.Shares[2].Destination != "age:"+cleo.Recipient().String() || q.Shares[0].Destination != "" {
		t.Errorf("registry destinations %+v", q.Shares)
	}

	// Each share is used from where it went: Cody's from his token, Cleo's age file with her
	// identity, Cara's file; the three sign an issuing CA.
	v, err := VerifyQuorum(ctx, f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := ShareKeys{Identities: []age.Identity{cleo}, PIN: func(ctx context.Context, token string) ([]byte, error) {
		if token != "cody-card" {
			return nil, errors.New("unknown token")
		}
		return []byte("cody-pin-1234"), nil
	}}
	srcs, err := ParseShareSources("token:cody-card, " + filepath.Join(shares, "3-Cleo-Costa.share.age") + "," + filepath.Join(shares, "1-Cara-Cruz.share"))
	if err != nil {
		t.Fatal(err)
	}
	c := v.Collector()
	defer c.Wipe()
	for i, src := range srcs {
		text, err := v.ReadShare(ctx, f.env, src, keys)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		n, err := c.Add(string(text))
		if err != nil || n != []int{2, 3, 1}[i] {
			t.Fatalf("%s: share #%d, %v", src, n, err)
		}
	}
	if _, err := IssueCA(ctx, f.env, c, IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte("ops-pin-1234")}); err != nil {
		t.Fatal(err)
	}
	// The encrypted share with another identity, or none, is refused, naming the file.
	other, _ := age.GenerateX25519Identity()
	if _, err := v.ReadShare(ctx, f.env, srcs[1], ShareKeys{Identities: []age.Identity{other}}); err == nil || !strings.Contains(err.Error(), "3-Cleo-Costa.share.age") {
		t.Errorf("another identity: %v", err)
	}
	// Cody's token with a wrong PIN gives no share.
	if _, err := v.ReadShare(ctx, f.env, srcs[0], ShareKeys{PIN: func(context.Context, string) ([]byte, error) { return []byte("wrong-pin-99"), nil }}); err == nil {
		t.Error("a wrong PIN read the share")
	}
}

// splitPayload is the root.split entry of a journal.
func splitPayload(t *testing.T, path string) Split {
	t.Helper()
	jf, err := record.ReadJournalFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range jf.Entries {
		if (e.Step == "root.split" || e.Step == "reshare.split") && e.Status == record.StatusDone {
			p, err := record.Decode[Split](e)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatal("no split in the journal")
	return Split{}
}

// pdfText is a record's text as pdftotext reads it.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// TestDestinationsRefused: every destination that is not the custodian's own is refused
// before anything is made, naming the custodian (or, from the plan alone, the key).
func TestDestinationsRefused(t *testing.T) {
	ctx := context.Background()
	// From the plan alone: the root token, the operations token, two custodians on one token,
	// destinations that are not destinations.
	for _, tt := range []struct {
		name, custodians, key, says string
	}{
		{"root token", `[{name: Cara Cruz, deliver: "token:acme-root-2026"}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[1].deliver", "is the root token"},
		{"operations token", `[Cara Cruz, {name: Cody Chen, deliver: "token:acme-ops"}, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[2].deliver", "is the operations token"},
		{"two custodians on one token", `[{name: Cara Cruz, deliver: "token:shared"}, Cody Chen, {name: Cleo Costa, deliver: "token:shared"}, Cole Carter, Zoë Ångström]`, "custodians[3].deliver", "already holds the share of Cara Cruz"},
		{"no kind", `[{name: Cara Cruz, deliver: "cara-card"}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[1].deliver", "not a destination"},
		{"unknown kind", `[{name: Cara Cruz, deliver: "usb:/dev/sdb"}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[1].deliver", "not a kind of destination"},
		{"not an age recipient", `[{name: Cara Cruz, deliver: "age:age1notarecipient"}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[1].deliver", "not an age recipient"},
		{"token and a folder", `[{name: Cara Cruz, deliver: ["token:cara-card", "dir:/media/cara"]}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians[1].deliver", "goes nowhere else"},
		{"unknown custodian key", `[{name: Cara Cruz, deliver: "token:cara-card", pin: "1234"}, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]`, "custodians", "field pin not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(custodyPlan("custodians: " + tt.custodians)))
			if err == nil || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v, want %s: ...%s...", err, tt.key, tt.says)
			}
		})
	}
	// A plugin recipient is a destination: its plugin runs only when it encrypts.
	if _, err := ParseDestination("age:age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t"); err != nil {
		t.Errorf("a YubiKey plugin recipient: %v", err)
	}

	// What needs the tokens: an uninitialised token, a token holding a key the registry knows
	// (an issuing CA's on a spare token, a device's), a token that is not there. Each is
	// refused before the root token exists.
	f := newFixture(t, goodPlan)
	// An uninitialised token: the SO initialised it, no user PIN was ever set. pkcs11-tool
	// makes it in the only slot of the fresh token folder, before this process loads SoftHSM2
	// (which reads the folder when it is loaded).
	if out, err := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "--init-token", "--label", "blank-card", "--so-pin", "blank-so-1234").CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool --init-token: %v\n%s", err, out)
	}
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	ica, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	// A device token, provisioned elsewhere, whose key the registry knows by its CKA_ID.
	f.hsm.InitToken(t, "sn-0001", "dev-so-1234", "dev-pin-1234")
	if out, err := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "--token-label", "sn-0001", "--login", "--pin", "dev-pin-1234",
		"--keypairgen", "--key-type", "EC:prime256v1", "--id", "d0d0", "--label", "device key").CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool keypairgen: %v\n%s", err, out)
	}
	registerDeviceKey(t, f, "SN-0001", []byte{0xd0, 0xd0})
	for _, tt := range []struct{ name, token, pin, says string }{
		{"uninitialised token", "blank-card", "blank-pin-1234", "not initialised"},
		{"a token holding a device key", "sn-0001", "dev-pin-1234", "device SN-0001"},
		{"a token that is not there", "nobody-card", "x-pin-1234", "no token has that label"},
		{"the operations token by a key's label", ica.Token, "ops-pin-1234", "holds the key of"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plan := custodyPlan(fmt.Sprintf(`custodians: [Cara Cruz, {name: Cody Chen, deliver: "token:%s"}, Cleo Costa, Cole Carter, Zoë Ångström]`, tt.token))
			plan = strings.Replace(strings.Replace(plan, "id: acme-root-2026", "id: acme-root-2027", 1), "operations_token: acme-ops", "operations_token: acme-ops-2", 1)
			pl, err := ParsePlan([]byte(strings.Replace(plan, "/usr/lib/softhsm/libsofthsm2.so", f.hsm.ModulePath, 1)))
			if err != nil {
				t.Fatal(err)
			}
			c := &custodians{dir: t.TempDir(), pins: map[string]string{"Cody Chen": tt.pin}}
			_, err = Root(ctx, f.env, pl, []byte("ops-pin-1234"), c)
			if err == nil || !strings.Contains(err.Error(), "Cody Chen's share cannot go to token:"+tt.token) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want ...%s...", err, tt.says)
			}
			if len(c.shares) != 0 {
				t.Error("a share was handed out")
			}
			if _, err := f.hsm.Open(t).TokenByLabel(ctx, "acme-root-2027"); err == nil {
				t.Error("the root token was made")
			}
		})
	}
}

// registerDeviceKey registers a device with one key of the given CKA_ID on token sn-0001, as
// device provisioning leaves it in the registry.
func registerDeviceKey(t *testing.T, f *fixture, serial string, keyID []byte) {
	t.Helper()
	editRegistry(t, f, `INSERT INTO devices (serial, model, issuer_num, status, registered_at) SELECT ?, 'pump', num, 'active', 0 FROM issuers WHERE kind = 'issuing'`, serial)
	editRegistry(t, f, `INSERT INTO device_keys (device_num, key_id, public_key_sha256, token_label, state, state_at)
		SELECT num, ?, randomblob(32), '', 'active', 0 FROM devices WHERE serial = ?`, keyID, serial)
}
