package app

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

func TestCRLScreenPublishesWithItsNextUpdate(t *testing.T) {
	s, _, issuer := world(t, true)
	onUI(func() { s.show("crl") })
	eventually(t, "the issuing CA", func() bool { return strings.Contains(findAll[*widget.Select](s.body)[0].Selected, issuer) })
	publish := func(days string) {
		onUI(func() {
			days0 := entryWithPlaceholder(t, s, "days until")
			days0.SetText(days)
			entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
			entryWithPlaceholder(t, s, "operator PIN").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		})
		eventually(t, "the CRL", func() bool { return !strings.Contains(texts(s.body), "Signing the CRL") })
	}
	// Past the issuing CA's life: the workflow's limit, said in words, nothing signed.
	publish("40000")
	onUI(func() {
		txt := strings.SplitN(texts(s.body), "[Details]", 2)[0]
		if !strings.Contains(txt, "would be") || !strings.Contains(txt, "Nothing was signed") {
			t.Errorf("a next update past the CA's life:\n%s", txt)
		}
	})
	publish("7")
	var der string
	onUI(func() {
		txt := texts(s.body)
		if !strings.Contains(txt, "CRL number") || !strings.Contains(txt, "0 entries") {
			t.Fatalf("no CRL:\n%s", txt)
		}
		for _, line := range strings.Split(txt, "\n") {
			if strings.HasPrefix(line, "DER") {
				der = strings.TrimSpace(strings.TrimPrefix(line, "DER"))
			}
		}
	})
	out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", der, "-noout", "-nextupdate", "-lastupdate").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	var last, next time.Time
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		at, _ := time.Parse("Jan _2 15:04:05 2006 MST", strings.TrimSpace(v))
		switch k {
		case "lastUpdate":
			last = at
		case "nextUpdate":
			next = at
		}
	}
	if got := next.Sub(last); got != 7*24*time.Hour {
		t.Errorf("openssl reads a next update %v after this one, want 7 days\n%s", got, out)
	}
}
