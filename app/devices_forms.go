package app

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// issuerChoice is a select of the workspace's issuing CAs, read off the UI goroutine; its
// value is the id the workflows take.
type issuerChoice struct {
	sel *widget.Select
	ids map[string]string // option text -> issuer id
}

func newIssuerChoice(s *shell) *issuerChoice {
	c := &issuerChoice{sel: widget.NewSelect(nil, nil), ids: map[string]string{}}
	c.sel.PlaceHolder = "reading the issuing CAs…"
	var issuers []registry.Issuer
	s.background(func() error {
		var err error
		issuers, err = s.reg.Issuers(s.ctx)
		return err
	}, func(err error) {
		if err != nil {
			c.sel.PlaceHolder = explain(err)
			c.sel.Refresh()
			return
		}
		issuers = slices.DeleteFunc(issuers, func(iss registry.Issuer) bool {
			return iss.Kind != registry.IssuerIssuing || iss.Status != registry.StatusActive
		})
		c.set(issuers, "no issuing CA yet: issue one under Quorum operations")
	})
	return c
}

// set offers issuers, the first chosen, or says none when there are none.
func (c *issuerChoice) set(issuers []registry.Issuer, none string) {
	clear(c.ids)
	c.sel.Options = nil
	c.sel.ClearSelected()
	c.sel.PlaceHolder = none
	for _, iss := range issuers {
		text := fmt.Sprintf("%s (%s)", iss.CommonName, iss.ID)
		c.ids[text] = iss.ID
		c.sel.Options = append(c.sel.Options, text)
	}
	if len(c.sel.Options) > 0 {
		c.sel.PlaceHolder = "choose the issuing CA"
		c.sel.SetSelectedIndex(0)
	}
	c.sel.Refresh()
}

// id is the chosen issuer's id, or "".
func (c *issuerChoice) id() string { return c.ids[c.sel.Selected] }

// provisionForm makes a device identity on a token, as the factory does at key injection
// (`custos device provision`).
type provisionForm struct {
	s                    *shell
	issuer               *issuerChoice
	serial, model, token *widget.Entry
	udi                  *widget.Entry
	years                *widget.Entry
	opsPIN, devPIN       *widget.Entry
	provision            *widget.Button
	note                 *notice
	box                  fyne.CanvasObject
}

func newProvisionForm(s *shell) *provisionForm {
	f := &provisionForm{s: s, issuer: newIssuerChoice(s), serial: widget.NewEntry(), model: widget.NewEntry(), token: widget.NewEntry(), udi: widget.NewEntry(),
		years: widget.NewEntry(), opsPIN: pinEntry("operator PIN"), devPIN: pinEntry("device PIN, set as the token's user and SO PIN"), note: newNotice()}
	f.serial.SetPlaceHolder("device serial number")
	f.model.SetPlaceHolder("device model")
	f.udi.SetPlaceHolder("UDI as the label prints it, e.g. (01)00844588003288(21)SN-1 (optional)")
	f.token.SetPlaceHolder("label for the device token")
	f.years.SetPlaceHolder("certificate validity in years (default 10, at most the issuing CA's)")
	f.provision = widget.NewButtonWithIcon("Provision", theme.ContentAddIcon(), f.onProvision)
	f.provision.Importance = widget.HighImportance
	defaultButton(f.provision, f.serial, f.model, f.udi, f.token, f.years, f.opsPIN, f.devPIN)
	intro := wrapped("Initialises a free token of the module (standing in for the device's secure element) with the device PIN, generates the device key on it, issues its certificate from the issuing CA and registers the device.")
	f.box = container.NewVScroll(container.NewPadded(container.NewVBox(intro,
		field("Issuing CA", f.issuer.sel), field("Serial", f.serial), field("Model", f.model), field("UDI", f.udi), field("Token label", f.token),
		field("Validity", f.years), field("Operator PIN", f.opsPIN), field("Device PIN", f.devPIN),
		container.NewHBox(f.provision), f.note.object())))
	return f
}

func (f *provisionForm) object() fyne.CanvasObject { return f.box }

func (f *provisionForm) onProvision() {
	req := decommission.ProvisionRequest{Issuer: f.issuer.id(), Serial: strings.TrimSpace(f.serial.Text),
		Model: strings.TrimSpace(f.model.Text), UDI: strings.TrimSpace(f.udi.Text), Token: f.token.Text}
	var err error
	if req.ValidityYears, err = validityYears(f.years.Text); err != nil {
		f.note.errorf(err)
		return
	}
	if req.Issuer == "" {
		f.note.errorf(run.NewFieldError("Issuer", "choose the issuing CA that certifies the device"))
		return
	}
	req.OpsPIN, req.DevicePIN = takePIN(f.opsPIN), takePIN(f.devPIN)
	f.provision.Disable()
	f.note.info("Provisioning " + req.Serial + "… the key is made on the token.")
	var p *decommission.Provisioned
	f.s.background(func() error {
		defer zeroAll(req.OpsPIN, req.DevicePIN)
		var err error
		p, err = decommission.Provision(f.s.ctx, f.s.runEnv(), req)
		return err
	}, func(err error) {
		f.provision.Enable()
		if err != nil {
			f.note.errorf(err)
			return
		}
		f.note.ok(fmt.Sprintf("Device %s is provisioned on token “%s”: certificate serial %s, SHA-256 %s.",
			p.Serial, p.Token, pki.SerialHex(p.Certificate.SerialNumber), pki.CertificateFingerprint(p.Certificate)))
	})
}

// importForm registers devices from their certificates, files or folders of PEM or DER, with
// their UDIs from a list when one is given (`custos device import --udi-list`); nothing is
// registered if any file or line is bad.
type importForm struct {
	s      *shell
	issuer *issuerChoice
	path   *widget.Entry
	udis   *widget.Entry // the UDI list's path, optional
	run    *widget.Button
	note   *notice
	done   func() // the device list reloads after an import
	box    fyne.CanvasObject
}

func newImportForm(s *shell, done func()) *importForm {
	f := &importForm{s: s, issuer: newIssuerChoice(s), path: widget.NewEntry(), udis: widget.NewEntry(), note: newNotice(), done: done}
	f.path.SetPlaceHolder("certificate files or folders, separated by commas")
	f.udis.SetPlaceHolder("CSV file with columns serial,udi (optional)")
	f.run = widget.NewButtonWithIcon("Import", theme.DownloadIcon(), f.onImport)
	f.run.Importance = widget.HighImportance
	defaultButton(f.run, f.path, f.udis)
	file := widget.NewButton("File…", func() { f.choose(false) })
	folder := widget.NewButton("Folder…", func() { f.choose(true) })
	list := widget.NewButton("File…", f.chooseUDIList)
	intro := wrapped("Registers devices made elsewhere from their certificates: PEM or DER files, or folders of *.pem, *.crt, *.cer and *.der. Each must be signed by the issuing CA. A UDI list gives the devices their Unique Device Identifiers, each checked, and may name only devices being imported. If one file or line is bad, nothing is registered and the error names it.")
	f.box = container.NewVScroll(container.NewPadded(container.NewVBox(intro, field("Issuing CA", f.issuer.sel),
		field("Certificates", container.NewBorder(nil, nil, nil, container.NewHBox(file, folder), f.path)),
		field("UDI list", container.NewBorder(nil, nil, nil, list, f.udis)),
		container.NewHBox(f.run), f.note.object())))
	return f
}

func (f *importForm) object() fyne.CanvasObject { return f.box }

// choose adds a file or folder to the paths.
func (f *importForm) choose(folder bool) {
	add := func(path string) {
		if strings.TrimSpace(f.path.Text) != "" {
			path = f.path.Text + ", " + path
		}
		f.path.SetText(path)
	}
	if folder {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				add(u.Path())
			}
		}, f.s.win).Show()
		return
	}
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err == nil && r != nil {
			r.Close()
			add(r.URI().Path())
		}
	}, f.s.win).Show()
}

// chooseUDIList sets the UDI list's path from a file dialog.
func (f *importForm) chooseUDIList() {
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err == nil && r != nil {
			r.Close()
			f.udis.SetText(r.URI().Path())
		}
	}, f.s.win).Show()
}

func (f *importForm) onImport() {
	var paths []string
	for _, p := range strings.Split(f.path.Text, ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	issuer := f.issuer.id()
	if issuer == "" {
		f.note.errorf(run.NewFieldError("Issuer", "choose the issuing CA that signed the certificates"))
		return
	}
	if len(paths) == 0 {
		f.note.errorf(run.NewFieldError("Paths", "name the certificate files or folders to import"))
		return
	}
	udiList := strings.TrimSpace(f.udis.Text)
	f.run.Disable()
	f.note.info("Reading the certificates and checking each against the issuing CA…")
	var n, withUDI int
	f.s.background(func() error {
		var udis map[string]string
		if udiList != "" {
			var err error
			if udis, err = decommission.LoadUDIList(f.s.ctx, udiList); err != nil {
				return err
			}
		}
		var err error
		n, err = decommission.Import(f.s.ctx, f.s.runEnv(), issuer, paths, udis)
		withUDI = len(udis)
		return err
	}, func(err error) {
		f.run.Enable()
		if err != nil {
			f.note.errorf(err)
			return
		}
		msg := fmt.Sprintf("%s registered under %s.", plural(n, "device", "devices"), f.issuer.sel.Selected)
		if withUDI > 0 {
			msg += fmt.Sprintf(" %s given a UDI from %s.", plural(withUDI, "device", "devices"), filepath.Base(udiList))
		}
		f.note.ok(msg)
		f.done()
	})
}
