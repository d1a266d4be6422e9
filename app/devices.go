package app

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/registry"
)

// deviceListLimit is how many devices the list shows at once; the search narrows a larger fleet.
const deviceListLimit = 500

// devicesScreen is the registry's devices: a list with search and status filter, a device's
// certificates, key history, revocations and decommissioning (as `custos device show`), and
// the provision and import forms (devices_forms.go). Registry reads run off the UI goroutine.
type devicesScreen struct {
	s       *shell
	search  *widget.Entry
	status  *widget.Select
	table   *widget.Table
	shown   []registry.Device
	count   *widget.Label
	history *widget.Label
	note    *notice
	load    int // the number of the last list load; an older one's answer is dropped
}

var deviceColumns = []string{"Serial", "Model", "Issuer", "Status", "Since"}

// deviceStatuses are the status filter's choices, as the registry names them.
var deviceStatuses = map[string]registry.DeviceStatus{
	"All": "", "Active": registry.DeviceActive, "Decommissioned": registry.DeviceDecommissioned,
}

func (s *shell) devicesScreen() fyne.CanvasObject {
	d := &devicesScreen{s: s, search: widget.NewEntry(), count: widget.NewLabel(""), history: wrapped(""), note: newNotice()}
	d.search.SetPlaceHolder("search serial or model")
	d.search.OnChanged = func(string) { d.refresh() }
	d.status = widget.NewSelect([]string{"All", "Active", "Decommissioned"}, nil)
	d.status.SetSelected("All")
	d.status.OnChanged = func(string) { d.refresh() }
	d.table = d.newTable()
	d.history.TextStyle = fyne.TextStyle{Monospace: true}
	tabs := container.NewAppTabs(
		container.NewTabItemWithIcon("Devices", theme.ListIcon(), d.listTab()),
		container.NewTabItemWithIcon("Provision", theme.ContentAddIcon(), newProvisionForm(s).object()),
		container.NewTabItemWithIcon("Import", theme.DownloadIcon(), newImportForm(s, d.refresh).object()),
	)
	d.refresh()
	return container.NewBorder(heading("Devices"), nil, nil, nil, tabs)
}

func (d *devicesScreen) listTab() fyne.CanvasObject {
	filter := container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewLabel("Status"), d.status), d.search)
	top := container.NewVBox(filter, d.count, d.note.object())
	detail := container.NewVScroll(container.NewPadded(d.history))
	split := container.NewVSplit(d.table, detail)
	split.Offset = 0.55
	return container.NewBorder(top, nil, nil, nil, split)
}

func (d *devicesScreen) newTable() *widget.Table {
	t := headedTable(deviceColumns, []float32{180, 200, 150, 140, 120}, func() int { return len(d.shown) },
		func(row, col int, l *widget.Label) { l.SetText(deviceCells(d.shown[row])[col]) })
	t.OnSelected = func(id widget.TableCellID) { d.onSelect(d.shown[id.Row].Serial) }
	return t
}

func deviceCells(dev registry.Device) []string {
	since := dev.RegisteredAt
	if dev.Status == registry.DeviceDecommissioned {
		since = dev.DecommissionedAt
	}
	return []string{dev.Serial, dev.Model, dev.IssuerID, string(dev.Status), since.UTC().Format(time.DateOnly)}
}

// refresh lists the devices the search and filter match, off the UI goroutine.
func (d *devicesScreen) refresh() {
	d.load++
	load, q := d.load, registry.DeviceQuery{Status: deviceStatuses[d.status.Selected]}
	needle := strings.ToLower(strings.TrimSpace(d.search.Text))
	var got []registry.Device
	var more bool
	d.s.background(func() error {
		var err error
		got, more, err = d.matching(q, needle)
		return err
	}, func(err error) {
		if load != d.load {
			return // a newer search is under way
		}
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.shown = got
		d.table.UnselectAll()
		d.table.Refresh()
		d.count.SetText(d.countText(len(got), more))
	})
}

// matching reads up to deviceListLimit devices whose serial or model holds needle.
func (d *devicesScreen) matching(q registry.DeviceQuery, needle string) ([]registry.Device, bool, error) {
	var got []registry.Device
	for dev, err := range d.s.reg.ListDevices(d.s.ctx, q) {
		if err != nil {
			return nil, false, err
		}
		if needle != "" && !strings.Contains(strings.ToLower(dev.Serial), needle) && !strings.Contains(strings.ToLower(dev.Model), needle) {
			continue
		}
		if len(got) == deviceListLimit {
			return got, true, nil
		}
		got = append(got, dev)
	}
	return got, false, nil
}

func (d *devicesScreen) countText(n int, more bool) string {
	if more {
		return fmt.Sprintf("The first %d devices that match; search to narrow the list.", n)
	}
	if n == 0 && d.search.Text == "" && d.status.Selected == "All" {
		return "No devices are registered yet: provision one, or import their certificates."
	}
	return plural(n, "device matches.", "devices match.")
}

// onSelect reads the device's whole record off the UI goroutine and shows it.
func (d *devicesScreen) onSelect(serial string) {
	var h registry.DeviceHistory
	d.s.background(func() error {
		var err error
		h, err = d.s.reg.DeviceHistory(d.s.ctx, serial)
		return err
	}, func(err error) {
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.history.SetText(historyText(h))
	})
}

// historyText is a device's record in the words of `custos device show`.
func historyText(h registry.DeviceHistory) string {
	var b strings.Builder
	dev := h.Device
	fmt.Fprintf(&b, "Device %s\nModel     %s\n", dev.Serial, dev.Model)
	if dev.UDI != "" {
		fmt.Fprintf(&b, "UDI       %s\n", dev.UDI)
	}
	fmt.Fprintf(&b, "Issuer    %s\nStatus    %s\nSince     %s\n", dev.IssuerID, dev.Status, dev.RegisteredAt.UTC().Format(time.RFC3339))
	for _, c := range h.Certificates {
		fmt.Fprintf(&b, "\nCertificate %s\n  %s\n  valid %s to %s\n", c.Serial, c.Subject, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
	}
	for _, k := range h.Keys {
		id := fmt.Sprintf("%x", k.KeyID)
		if id == "" {
			id = fmt.Sprintf("sha256:%x", k.PublicKeySHA256[:8])
		}
		fmt.Fprintf(&b, "\nKey %s on token “%s”, certified by %s\n", id, k.TokenLabel, k.CertSerial)
		for _, ch := range k.History {
			fmt.Fprintf(&b, "  %s  %s\n", ch.At.UTC().Format(time.RFC3339), ch.State)
		}
	}
	for _, r := range h.Revocations {
		fmt.Fprintf(&b, "\nRevoked %s at %s: %s\n", r.Serial, r.RevokedAt.UTC().Format(time.RFC3339), r.Reason)
	}
	for _, r := range h.Results {
		fmt.Fprintf(&b, "\nRun %s: %s by %s (%s)\n", r.RunID, r.Outcome, r.Method, strings.TrimSpace(r.Verification))
	}
	return b.String()
}
