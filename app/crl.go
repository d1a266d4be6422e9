package app

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/run"
)

// crlScreen signs a full CRL for an issuing CA (`custos crl publish`): the issuer, the days
// until the next CRL is due and the operator PIN. How late the next update may be is the
// workflow's rule (the issuer's notAfter, the policy's maximum); the screen shows its refusal.
type crlScreen struct {
	s       *shell
	issuer  *issuerChoice
	days    *widget.Entry
	budget  *widget.Entry
	opsPIN  *widget.Entry
	publish *widget.Button
	result  *widget.Label
	note    *notice
}

// defaultNextUpdateDays is the command line's --next-update-days default.
const defaultNextUpdateDays = 30

func (s *shell) crlScreen() fyne.CanvasObject {
	c := &crlScreen{s: s, issuer: newIssuerChoice(s), days: widget.NewEntry(), budget: widget.NewEntry(), opsPIN: pinEntry("operator PIN"),
		result: wrapped(""), note: newNotice()}
	c.days.SetText(strconv.Itoa(defaultNextUpdateDays))
	c.days.SetPlaceHolder("days until the next CRL is due: at most 366, never past the CA's notAfter")
	c.budget.SetText(strconv.Itoa(pki.DefaultShardBudget))
	c.budget.SetPlaceHolder("bytes a CRL shard should stay within")
	c.publish = widget.NewButtonWithIcon("Sign and publish the CRL", theme.DocumentSaveIcon(), c.onPublish)
	c.publish.Importance = widget.HighImportance
	defaultButton(c.publish, c.days, c.budget, c.opsPIN)
	c.result.TextStyle = fyne.TextStyle{Monospace: true}
	intro := wrapped("Signs a full CRL of the issuing CA's revoked device certificates with its key on the operations token, and writes it to the workspace's crl folder in DER and PEM. Publish it where devices and relying parties fetch it before the next update is due.")
	page := container.NewVBox(heading("Publish a CRL"), intro, field("Issuing CA", c.issuer.sel), field("Next update in days", c.days),
		field("Shard budget (bytes)", c.budget), field("Operator PIN", c.opsPIN), container.NewHBox(c.publish), c.note.object(), c.result)
	return container.NewVScroll(container.NewPadded(page))
}

func (c *crlScreen) onPublish() {
	issuer := c.issuer.id()
	if issuer == "" {
		c.note.errorf(run.NewFieldError("Issuer", "choose the issuing CA whose CRL to sign"))
		return
	}
	days, ok := wholeNumber(c.days.Text)
	if !ok {
		c.note.errorf(run.NewFieldError("NextUpdateDays", "the next update is a whole number of days from now, such as 30"))
		return
	}
	budget, ok := wholeNumber(c.budget.Text)
	if !ok {
		c.note.errorf(run.NewFieldError("ShardBudget", "the shard budget is a whole number of bytes, such as %d", pki.DefaultShardBudget))
		return
	}
	req := run.CRLRequest{NextUpdate: time.Duration(days) * 24 * time.Hour, ShardBudget: budget}
	pin := takePIN(c.opsPIN)
	c.publish.Disable()
	c.result.SetText("")
	c.note.info("Signing the CRL on the operations token…")
	var pub *decommission.Published
	c.s.background(func() error {
		defer zeroAll(pin)
		var err error
		pub, err = decommission.PublishCRL(c.s.ctx, c.s.runEnv(), decommission.PublishRequest{Issuer: issuer, OpsPIN: pin, CRL: req})
		return err
	}, func(err error) {
		c.publish.Enable()
		if err != nil {
			c.note.errorf(err)
			return
		}
		crl := pub.CRL
		c.note.ok(fmt.Sprintf("CRL number %d of %s is signed: %s, next update %s.", crl.Number, c.issuer.sel.Selected,
			plural(crl.Entries, "entry", "entries"), crl.NextUpdate.UTC().Format("2 January 2006")))
		c.result.SetText(crlFiles(crl) + "\n\nRecord  " + pub.RecordPath)
	})
}

// crlFiles says where the CRL was written, and its shards when the CA splits its CRL.
func crlFiles(crl run.CRL) string {
	text := fmt.Sprintf("DER     %s\nPEM     %s\nSHA-256 %s", crl.DERPath, crl.PEMPath, crl.Fingerprint)
	if crl.Shards == 0 {
		return text
	}
	text += fmt.Sprintf("\n\n%d shards in %s (publish the folder as <CRL base URL>/%s/)\nLargest shard %d: %d bytes",
		crl.Shards, crl.ShardDir, filepath.Base(crl.ShardDir), crl.LargestShard, crl.LargestSize)
	for _, i := range crl.OverBudget {
		text += fmt.Sprintf("\nShard %d passes the budget of %d bytes: devices may not hold it; an issuing CA with more shards would keep new devices' shards smaller", i, crl.ShardBudget)
	}
	return text
}
