package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// memoryPeople confirm everything and keep shares in memory, for preparing a world.
type memoryPeople struct{ shares map[int]string }

func (m *memoryPeople) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (m *memoryPeople) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (m *memoryPeople) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	m.shares[d.Number] = d.Text
	return "memory", nil
}
func (m *memoryPeople) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return m.shares[d.Number], nil
}

// world is a shell on a workspace with a root (shares in memory), optionally an issuing CA.
func world(t *testing.T, withCA bool) (*shell, *memoryPeople, string) {
	env := testhsm.New(t)
	s, _ := newTestShell(t, env.ModulePath)
	plan, err := ceremony.ParsePlan([]byte(strings.Replace(testPlan, "MODULE", env.ModulePath, 1)))
	if err != nil {
		t.Fatal(err)
	}
	people := &memoryPeople{shares: map[int]string{}}
	if _, err := ceremony.Root(context.Background(), s.runEnv(), plan, []byte("ops-pin-1234"), people); err != nil {
		t.Fatal(err)
	}
	issuer := ""
	if withCA {
		q, _ := ceremony.LoadQuorum(context.Background(), s.reg, plan.ID)
		q.Add(people.shares[1])
		q.Add(people.shares[2])
		res, err := ceremony.IssueCA(context.Background(), s.runEnv(), q, ceremony.IssueCARequest{CommonName: "GUI Devices CA", OpsPIN: []byte("ops-pin-1234")})
		if err != nil {
			t.Fatal(err)
		}
		issuer = res.IssuerID
	}
	return s, people, issuer
}

func entryWithPlaceholder(t *testing.T, s *shell, prefix string) *widget.Entry {
	t.Helper()
	for _, e := range findAll[*widget.Entry](s.body) {
		if strings.HasPrefix(e.PlaceHolder, prefix) {
			return e
		}
	}
	t.Fatalf("no entry %q", prefix)
	return nil
}

// custodianSelect is the Quorum screen's choice of who enters a share now.
func custodianSelect(t *testing.T, s *shell) *widget.Select {
	t.Helper()
	for _, sel := range findAll[*widget.Select](s.body) {
		if sel.PlaceHolder == "who enters a share now" {
			return sel
		}
	}
	t.Fatal("no custodian choice")
	return nil
}

// typeShare has custodian type text as their share and add it (on the UI goroutine).
func typeShare(t *testing.T, s *shell, custodian, text string) {
	t.Helper()
	custodianSelect(t, s).SetSelected(custodian)
	entryWithPlaceholder(t, s, "custos-share").SetText(text)
	test.Tap(button(s.body, "Add this share"))
}

func TestQuorumIssueCAWithMistypedGroup(t *testing.T) {
	s, people, _ := world(t, false)
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
		// Nothing can be typed before a custodian says who they are; then the room is told
		// to look away, and the share is masked unless the custodian holds the button.
		if len(findAll[*widget.Entry](s.body)) > 1 && strings.Contains(texts(s.body), "custos-share") {
			t.Error("a share field is shown before a custodian is chosen")
		}
		custodianSelect(t, s).SetSelected("Cara Cruz")
		if txt := texts(s.body); !strings.Contains(txt, "Only Cara Cruz should look at the screen now") {
			t.Errorf("no warning to the room:\n%s", txt)
		}
		share := entryWithPlaceholder(t, s, "custos-share")
		share.SetText(people.shares[1])
		if !share.Password {
			t.Error("the share is shown as typed")
		}
		hold := findAll[*holdButton](s.body)[0]
		test.Tap(hold) // a tap alone shows nothing
		if !share.Password {
			t.Error("a tap showed the share")
		}
		hold.MouseDown(nil)
		if share.Password {
			t.Error("holding the button does not show the share")
		}
		hold.MouseUp(nil)
		if !share.Password {
			t.Error("the share stays shown after the button is let go")
		}
		// A mistyped character in group 4 is caught and named; nothing is added, the field is
		// cleared, and no character of it is echoed.
		bad := []byte(people.shares[1])
		i := strings.Index(string(bad), "\n") + 1 + 3*6 + 1 // group 4, second character
		bad[i] ^= 1
		share.SetText(string(bad))
		test.Tap(button(s.body, "Add this share"))
		txt := texts(s.body)
		if !strings.Contains(txt, "Group 4 of 19 of the share is wrong") || !strings.Contains(txt, "0 of 2 shares present") || share.Text != "" {
			t.Errorf("mistyped share:\n%s", txt)
		}
		_, groups := quorum.SplitEncoded(string(bad))
		for _, g := range groups {
			if strings.Contains(txt, g) {
				t.Errorf("the rejected share's group %s is on screen", g)
			}
		}
		share.SetText(people.shares[1])
		test.Tap(button(s.body, "Add this share"))
		if share.Text != "" {
			t.Error("the field keeps an accepted share")
		}
		typeShare(t, s, "李雷", people.shares[3])
		if txt := texts(s.body); !strings.Contains(txt, "2 of 2 shares present: Cara Cruz, 李雷") {
			t.Errorf("after two shares:\n%s", txt)
		}
		uiLock.Unlock()
		snapshot(t, s, "quorum-shares")
		uiLock.Lock()
		// A failed operation (no CA name) keeps the shares: the custodians need not come back.
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Run the operation"))
	})
	eventually(t, "the failure", func() bool { return strings.Contains(texts(s.body), "the shares entered are kept") })
	onUI(func() {
		if txt := texts(s.body); !strings.Contains(txt, "2 of 2 shares present: Cara Cruz, 李雷") || button(s.body, "Run the operation") == nil {
			t.Errorf("after a failed operation:\n%s", txt)
		}
		entryWithPlaceholder(t, s, "e.g. Acme Devices CA").SetText("GUI Devices CA")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Run the operation"))
	})
	eventually(t, "the issuing CA", func() bool { return strings.Contains(texts(s.body), "Issuing CA ica-") })
	issuers, _ := s.reg.Issuers(context.Background())
	var n int
	for _, i := range issuers {
		if i.Kind == registry.IssuerIssuing {
			n++
			if _, err := os.Stat(s.ws.Path("certs", i.ID+".pem")); err != nil {
				t.Error(err)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d issuing CAs", n)
	}
}

// TestQuorumSharesFromFilesAndTokens: a custodian's share loaded from an age file with their
// identity file, another read from the custodian's token with the PIN they type; leaving the
// screen zeroes them.
func TestQuorumSharesFromFilesAndTokens(t *testing.T) {
	s, people, _ := world(t, false)
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "zoe.key")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	w, _ := age.Encrypt(&ct, id.Recipient())
	w.Write([]byte("# Share 2\n" + people.shares[2] + "\n"))
	w.Close()
	ageFile := filepath.Join(dir, "2-Zoë-Ångström.share.age")
	if err := os.WriteFile(ageFile, ct.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// 李雷's share on his own token, as the ceremony leaves it.
	(&testhsm.Env{ModulePath: s.cfg.Module}).InitToken(t, "li-card", "li-so-1234", "li-pin-1234")
	if err := ceremony.WriteShareToToken(context.Background(), s.cfg.Module, "li-card", []byte("li-pin-1234"),
		ceremony.ShareDelivery{CeremonyID: "gui-root", Epoch: 1, Number: 3, Text: people.shares[3]}); err != nil {
		t.Fatal(err)
	}
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
		custodianSelect(t, s).SetSelected("Zoë Ångström")
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("Load a file")
		entryWithPlaceholder(t, s, "share file").SetText(ageFile)
		entryWithPlaceholder(t, s, "age identity file").SetText(idFile)
		test.Tap(button(s.body, "Load this share"))
	})
	eventually(t, "the age share", func() bool { return strings.Contains(texts(s.body), "1 of 2 shares present: Zoë Ångström") })
	onUI(func() {
		custodianSelect(t, s).SetSelected("李雷")
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("Read it from my token")
		entryWithPlaceholder(t, s, "your token's label").SetText("li-card")
		entryWithPlaceholder(t, s, "your token's PIN").SetText("li-pin-1234")
		test.Tap(button(s.body, "Read my share from my token"))
	})
	eventually(t, "the token share", func() bool { return strings.Contains(texts(s.body), "2 of 2 shares present: Zoë Ångström, 李雷") })
	onUI(func() {
		if txt := texts(s.body); strings.Contains(txt, "li-pin-1234") {
			t.Error("the PIN stays on screen")
		}
		q := s.quorumShares.q
		s.show("home")
		if q.Present() != 0 {
			t.Errorf("%d shares kept after the screen was left", q.Present())
		}
	})
	// Without the identity file, the age share is refused, naming the file.
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
		custodianSelect(t, s).SetSelected("Zoë Ångström")
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("Load a file")
		entryWithPlaceholder(t, s, "share file").SetText(ageFile)
		test.Tap(button(s.body, "Load this share"))
	})
	eventually(t, "the refusal", func() bool { return strings.Contains(texts(s.body), "give the custodian's age identity") })
}

// A run that stopped half way is offered on the home screen, and Abort there ends it.
func TestHomeOffersAbortOfAStoppedRun(t *testing.T) {
	s, _, _ := world(t, false)
	j, err := record.CreateJournal(s.ws.Path("journal", "stopped.jsonl"), "gui-root-crl-stopped")
	if err != nil {
		t.Fatal(err)
	}
	j.Begin("crl.sign", record.System, nil)
	if _, err := s.reg.Journaled(run.JournalFacts(j)).StartRun(context.Background(), registry.Run{ID: "gui-root-crl-stopped", Kind: registry.RunCeremony,
		Operation: "crl", Subject: "gui-root", JournalPath: s.ws.Path("journal", "stopped.jsonl")}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	onUI(func() {
		s.show("settings")
		s.show("home")
	})
	eventually(t, "the stopped run on the home screen", func() bool {
		return strings.Contains(texts(s.body), "stopped in step Sign the root CRL")
	})
	onUI(func() {
		test.Tap(button(s.body, "Abort"))
		top := s.win.Canvas().Overlays().Top()
		if top == nil || button(top, "Abort gui-root-crl-stopped") != nil {
			t.Fatal("Abort did not ask to type the run's id")
		}
		test.Type(findAll[*widget.Entry](top)[0], "gui-root-crl-stopped")
		test.Tap(button(top, "Abort gui-root-crl-stopped"))
	})
	eventually(t, "the abort", func() bool { return strings.Contains(texts(s.body), "gui-root-crl-stopped: aborted") })
	if r, _ := s.reg.Run(context.Background(), "gui-root-crl-stopped"); r.Status != registry.RunAborted {
		t.Errorf("status %s", r.Status)
	}
}

// revealAndTypeBack does what a custodian does with a share on screen: reveal it, read the
// groups, hide it, type them back. It returns false when no share is waiting.
func revealAndTypeBack(t *testing.T, s *shell) bool {
	var ok bool
	onUI(func() {
		b := button(s.body, "Reveal my share")
		if b == nil {
			return
		}
		test.Tap(b)
		var groups []string
		for _, tx := range findAll[*canvas.Text](s.body) {
			if tx.TextSize == 34 {
				groups = append(groups, tx.Text)
			}
		}
		test.Tap(button(s.body, "Hide"))
		es := findAll[*widget.Entry](s.body)
		var shareEntries []*widget.Entry
		for _, e := range es {
			if strings.HasPrefix(e.PlaceHolder, "group ") {
				shareEntries = append(shareEntries, e)
			}
		}
		for i, g := range groups {
			shareEntries[i].SetText(g)
		}
		if next := button(s.body, "My share is typed back"); next != nil {
			inView(t, s, next)
			test.Tap(next)
			ok = true
		}
	})
	return ok
}

func TestQuorumReshareInTheWindow(t *testing.T) {
	s, people, _ := world(t, false)
	onUI(func() { s.win.Resize(fyne.NewSize(1280, 800)) })
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
		typeShare(t, s, "Cara Cruz", people.shares[1])
		typeShare(t, s, "Zoë Ångström", people.shares[2])
		for _, r := range findAll[*widget.RadioGroup](s.body) {
			if len(r.Options) == 5 {
				r.SetSelected(opReshare)
			}
		}
		entryWithPlaceholder(t, s, "new custodians").SetText("Ann Ames, Bo Berg")
		entryWithPlaceholder(t, s, "shares needed").SetText("2")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Run the operation"))
	})
	waitFor(t, "the re-share's confirmation", func() (bool, bool) { return true, button(s.body, "Confirmed: go ahead") != nil })
	snapshot(t, s, "quorum-reshare")
	typed := 0
	waitFor(t, "the re-share", func() (bool, bool) {
		if b := button(s.body, "Confirmed: go ahead"); b != nil {
			if txt := texts(s.body); !strings.Contains(txt, "Custos draws a new quorum secret") {
				t.Errorf("the re-share's step has no script text:\n%s", txt)
			}
			inView(t, s, b)
			test.Tap(b)
		}
		return true, strings.Contains(texts(s.body), "Re-shared: epoch 2") || strings.Contains(texts(s.body), "Reveal my share")
	})
	for !strings.Contains(textsOnUI(s), "Re-shared: epoch 2") {
		onUI(func() {
			if b := button(s.body, "Reveal my share"); b != nil {
				inView(t, s, b)
			}
		})
		if revealAndTypeBack(t, s) {
			typed++
		}
		if typed > 2 {
			t.Fatal("more shares than custodians")
		}
		waitFor(t, "the next share or the end", func() (bool, bool) {
			txt := texts(s.body)
			if strings.Contains(txt, "stopped") || strings.Contains(txt, "hsm:") {
				t.Fatalf("re-share failed:\n%s", txt)
			}
			if b := button(s.body, "The result is right"); b != nil { // the witness checks the split
				if !strings.Contains(txt, "epoch 2, 2 of 2 shares needed") {
					t.Errorf("the split's result is not shown:\n%s", txt)
				}
				inView(t, s, b)
				test.Tap(b)
			}
			return true, strings.Contains(txt, "Re-shared: epoch 2") || button(s.body, "Reveal my share") != nil
		})
	}
	if typed != 2 {
		t.Errorf("%d shares typed back, want 2", typed)
	}
	q, _ := s.reg.Quorum(context.Background(), "gui-root")
	if q.Epoch != 2 || q.Threshold != 2 || len(q.Shares) != 2 {
		t.Errorf("quorum after re-share: epoch %d, %d of %d", q.Epoch, q.Threshold, len(q.Shares))
	}
}

func textsOnUI(s *shell) string {
	var txt string
	onUI(func() { txt = texts(s.body) })
	return txt
}

// A fleet that stopped with devices still to erase is finished from the home screen, with
// the operator and device PINs typed there.
func TestHomeResumesAStoppedFleet(t *testing.T) {
	s, _, issuer := world(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, sn := range []string{"R-1", "R-2"} {
		if _, err := decommission.Provision(ctx, s.runEnv(), decommission.ProvisionRequest{Issuer: issuer,
			Serial: sn, Model: "Pump", Token: "dev-" + sn, OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "fleet.csv")
	text := "serial,method,reason,note\nR-1,erase,,\nR-2,erase,,\n"
	os.WriteFile(path, []byte(text), 0o644)
	m, _ := decommission.ParseManifest(strings.NewReader(text))
	env := s.runEnv()
	env.Progress = func(p run.Event) {
		if p.Step.ID == "verify" && p.Status == record.StatusDone {
			cancel() // stop after the first device
		}
	}
	if _, err := decommission.Fleet(ctx, env, m, decommission.FleetRequest{ManifestPath: path, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err == nil {
		t.Fatal("the cancelled fleet finished")
	}
	onUI(func() {
		s.show("settings")
		s.show("home")
	})
	eventually(t, "the stopped fleet on the home screen", func() bool { return strings.Contains(texts(s.body), decommission.FleetRunID(m)) })
	onUI(func() {
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "device PIN").SetText("device-pin-1")
		test.Tap(button(s.body, "Resume"))
	})
	eventually(t, "the resume", func() bool { return strings.Contains(texts(s.body), "finished: 2 decommissioned, 0 already, 0 failed") })
	for _, sn := range []string{"R-1", "R-2"} {
		if d, _ := s.reg.Device(context.Background(), sn); d.Status != registry.DeviceDecommissioned {
			t.Errorf("%s is %s", sn, d.Status)
		}
	}
}

// Destroying the root asks to type its id; a wrong id leaves it untouched.
func TestQuorumDestroyAsksToTypeTheRootID(t *testing.T) {
	s, people, _ := world(t, false)
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
		typeShare(t, s, "Cara Cruz", people.shares[1])
		typeShare(t, s, "Zoë Ångström", people.shares[2])
		findAll[*widget.RadioGroup](s.body)[0].SetSelected(opDestroy)
		findAll[*widget.Check](s.body)[0].SetChecked(true)
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Run the operation"))
		top := s.win.Canvas().Overlays().Top()
		if top == nil {
			t.Fatal("the destruction did not ask to type the root's id")
		}
		test.Type(findAll[*widget.Entry](top)[0], "gui-roo")
		if button(top, "Destroy root gui-root") != nil {
			t.Error("a partial id confirms the destruction")
		}
		test.Tap(button(top, "Cancel"))
	})
	if iss, err := s.reg.Issuer(context.Background(), "gui-root"); err != nil || iss.Status != registry.StatusActive {
		t.Errorf("the root after a cancelled destruction: %v %v", iss.Status, err)
	}
	onUI(func() {
		test.Tap(button(s.body, "Run the operation"))
		top := s.win.Canvas().Overlays().Top()
		test.Type(findAll[*widget.Entry](top)[0], "gui-root")
		test.Tap(button(top, "Destroy root gui-root"))
	})
	eventually(t, "the destruction", func() bool { return strings.Contains(texts(s.body), "The root was destroyed: its key on gui-root") })
}

// inView fails unless o lies inside the window as it is drawn: not below the fold.
func inView(t *testing.T, s *shell, o fyne.CanvasObject) {
	t.Helper()
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
	size := s.win.Canvas().Size()
	if pos.X < 0 || pos.Y < 0 || pos.X+o.Size().Width > size.Width || pos.Y+o.Size().Height > size.Height {
		t.Errorf("%T at %v (%v) is outside the %v window", o, pos, o.Size(), size)
	}
}

// Shares come from files too; an operation that fails (no CA name) keeps the shares entered
// and says what is wrong; the issuing CA's validity and key algorithm are the form's (checked
// with openssl).
func TestQuorumTakesShareFilesAndKeepsThemOnFailure(t *testing.T) {
	s, people, _ := world(t, false)
	dir := t.TempDir()
	var files []string
	names := map[int]string{1: "Cara Cruz", 3: "李雷"}
	for _, n := range []int{1, 3} {
		p, err := ceremony.WriteShareFile(dir, ceremony.ShareDelivery{CeremonyID: "gui-root", Custodian: names[n],
			Number: n, Of: 3, Threshold: 2, Text: people.shares[n]})
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	onUI(func() {
		s.show("quorum")
		findAll[*widget.Select](s.body)[0].SetSelected("gui-root")
	})
	for i, f := range files {
		onUI(func() {
			custodianSelect(t, s).SetSelected(names[[]int{1, 3}[i]])
			findAll[*widget.RadioGroup](s.body)[0].SetSelected("Load a file")
			entryWithPlaceholder(t, s, "share file").SetText(f)
			test.Tap(button(s.body, "Load this share"))
		})
		eventually(t, "the share file", func() bool {
			return strings.Contains(texts(s.body), fmt.Sprintf("%d of 2 shares present", i+1))
		})
	}
	onUI(func() {
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Run the operation"))
	})
	eventually(t, "the refusal", func() bool { return strings.Contains(texts(s.body), "Check the field “Issuing CA name”") })
	onUI(func() {
		if txt := texts(s.body); !strings.Contains(txt, "2 of 2 shares present") || strings.Contains(txt, "choose the root first") {
			t.Errorf("the shares were dropped:\n%s", txt)
		}
		// In words, with the workflow's own text under a closed Details.
		if txt := texts(s.body); !strings.Contains(txt, "the shares entered are kept.\n[Details]") || !detailsShown(s) {
			t.Errorf("the refusal has no Details under it:\n%s", txt)
		}
		entryWithPlaceholder(t, s, "e.g. Acme Devices CA").SetText("GUI Devices CA")
		entryWithPlaceholder(t, s, "years the issuing CA").SetText("3")
		for _, sel := range findAll[*widget.Select](s.body) {
			if strings.HasPrefix(sel.PlaceHolder, "key algorithm") {
				sel.SetSelected("ecdsa-p256")
			}
		}
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		b := button(s.body, "Run the operation")
		if b == nil {
			t.Fatalf("Run is off after the failure:\n%s", texts(s.body))
		}
		test.Tap(b)
	})
	eventually(t, "the issuing CA", func() bool { return strings.Contains(texts(s.body), "Issuing CA ica-") })
	issuers, _ := s.reg.Issuers(context.Background())
	for _, i := range issuers {
		if i.Kind != registry.IssuerIssuing {
			continue
		}
		out, err := exec.Command("openssl", "x509", "-in", s.ws.Path("certs", i.ID+".pem"), "-noout", "-text", "-dates").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "prime256v1") {
			t.Errorf("openssl: %v\n%s", err, out)
		}
		c, err := x509.ParseCertificate(i.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 2.9 || years > 3.1 {
			t.Errorf("valid %.1f years, want 3", years)
		}
	}
}
