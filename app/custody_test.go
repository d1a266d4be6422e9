package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/testhsm"
)

// A ceremony in the window delivers where the plan says: Cody's share to his own token (he
// types its PIN once, in the window), Cleo's encrypted to her age recipient, Cole's to his
// folder and Cara's to the shares folder given on the form; two plaintext shares resting in
// that folder are warned of under the split's result and at the end. pkcs11-tool sees Cody's
// share only after his login; age decrypts Cleo's with her identity, and each share checks
// against the commitment the registry holds.
func TestRootCeremonyDeliversToTokenAgeAndFolders(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "cody-card", "cody-so-1234", "cody-pin-1234")
	s, _ := newTestShell(t, env.ModulePath)
	cleo, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	shares := t.TempDir()
	plan := strings.NewReplacer("MODULE", env.ModulePath, "custodians: [Cara Cruz, Zoë Ångström, 李雷]", fmt.Sprintf(`custodians:
  - Cara Cruz
  - {name: Cody Chen, deliver: "token:cody-card"}
  - {name: Cleo Costa, deliver: "age:%s"}
  - {name: Cole Carter, deliver: "dir:%s"}`, cleo.Recipient(), shares)).Replace(testPlan)
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(plan), 0o644)
	onUI(func() { s.show("ceremony") })
	loadPlan(t, s, planPath)
	if txt := textsOnUI(s); !strings.Contains(txt, "Cody Chen (token:cody-card)") || !strings.Contains(txt, "Cleo Costa (age:"+cleo.Recipient().String()+")") {
		t.Errorf("the plan's summary does not say where each share goes:\n%s", txt)
	}
	onUI(func() { entryWithPlaceholder(t, s, "optional: a folder for the shares").SetText(shares) })
	startCeremony(t, s, "ops-pin-1234")
	pinAsked := 0
	var seen []string
	for done := false; !done; {
		action := waitFor(t, "the next thing to do", func() (string, bool) {
			switch {
			case strings.Contains(texts(s.body), "Ceremony complete"), strings.Contains(texts(s.body), "The ceremony stopped"):
				return "end", true
			case button(s.body, "Use my PIN") != nil:
				return "pin", true
			case button(s.body, "Reveal my share") != nil:
				return "reveal", true
			}
			for _, label := range []string{"Confirmed: go ahead", "Acknowledged by", "The result is right"} {
				if button(s.body, label) != nil {
					return label, true
				}
			}
			return "", false
		})
		switch action {
		case "end":
			done = true
		case "pin":
			pinAsked++
			onUI(func() {
				if txt := texts(s.body); !strings.Contains(txt, "Cody Chen: your token's PIN") {
					t.Errorf("the PIN is not asked of Cody:\n%s", txt)
				}
				entryWithPlaceholder(t, s, "the PIN of your token cody-card").SetText("cody-pin-1234")
				test.Tap(button(s.body, "Use my PIN"))
			})
		case "reveal":
			t.Fatal("a share was shown on screen; every custodian has a destination")
		default:
			seen = append(seen, textsOnUI(s))
			onUI(func() {
				if b := button(s.body, action); b != nil {
					test.Tap(b)
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
	}
	final := textsOnUI(s)
	if !strings.Contains(final, "Ceremony complete") {
		t.Fatalf("the ceremony stopped:\n%s", final)
	}
	if pinAsked != 1 {
		t.Errorf("Cody typed his PIN %d times, want once", pinAsked)
	}
	warning := fmt.Sprintf("2 shares rest together in %s: hand each to its custodian, then delete the folder", shares)
	if !strings.Contains(final, warning) || !strings.Contains(strings.Join(seen, "\n"), warning+"\nWarning") {
		t.Errorf("the warning is not shown under the split's result and at the end:\n%s", final)
	}
	for _, name := range []string{"1-Cara-Cruz.share", "3-Cleo-Costa.share.age", "4-Cole-Carter.share"} {
		if info, err := os.Stat(filepath.Join(shares, name)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, info, err)
		}
	}
	out, err := exec.Command("pkcs11-tool", "--module", env.ModulePath, "--token-label", "cody-card", "--login", "--pin", "cody-pin-1234", "-O").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "custos share gui-root epoch 1 #2") {
		t.Errorf("pkcs11-tool on cody-card: %v\n%s", err, out)
	}
	if out, _ := exec.Command("pkcs11-tool", "--module", env.ModulePath, "--token-label", "cody-card", "-O").CombinedOutput(); strings.Contains(string(out), "custos share") {
		t.Errorf("Cody's share is visible without his PIN:\n%s", out)
	}
	q, err := ceremony.LoadQuorum(context.Background(), s.reg, "gui-root")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(shares, "3-Cleo-Costa.share.age"))
	defer f.Close()
	r, err := age.Decrypt(armor.NewReader(f), cleo)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ceremony.StripShareComments(string(text))); err != nil {
		t.Errorf("Cleo's share as decrypted: %v", err)
	}
	cara, _ := os.ReadFile(filepath.Join(shares, "1-Cara-Cruz.share"))
	if _, err := q.Add(ceremony.StripShareComments(string(cara))); err != nil {
		t.Errorf("Cara's share: %v", err)
	}
}

// A plan sending a share to the operations token is refused at Load, as by the command line:
// no plan is loaded and Start stays off.
func TestRootCeremonyRefusesAPlanSendingAShareToTheOperationsToken(t *testing.T) {
	env := testhsm.New(t)
	s, _ := newTestShell(t, env.ModulePath)
	plan := strings.NewReplacer("MODULE", env.ModulePath, "custodians: [Cara Cruz, Zoë Ångström, 李雷]",
		"custodians: [Cara Cruz, {name: Zoë Ångström, deliver: \"token:gui-ops\"}, 李雷]").Replace(testPlan)
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(plan), 0o644)
	if _, err := ceremony.LoadPlan(context.Background(), planPath); err == nil {
		t.Fatal("the workflow takes the plan")
	}
	onUI(func() {
		s.show("ceremony")
		entryWithPlaceholder(t, s, "the reviewed plan file").SetText(planPath)
		test.Tap(button(s.body, "Load"))
	})
	eventually(t, "the refusal", func() bool {
		return strings.Contains(texts(s.body), "token:gui-ops is the operations token, which the operator's PIN opens; give Zoë Ångström a token of their own")
	})
	onUI(func() {
		if button(s.body, "Start the ceremony") != nil {
			t.Error("Start is on with a refused plan")
		}
		if !detailsShown(s) {
			t.Error("the refusal has no Details")
		}
	})
}

// detailsShown says whether a notice's Details expander is visible on the screen.
func detailsShown(s *shell) bool {
	for _, a := range findAll[*widget.Accordion](s.body) {
		if len(a.Items) == 1 && a.Items[0].Title == "Details" {
			return true
		}
	}
	return false
}
