package app

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// deviceListLimit is how many devices the list shows at once; the search narrows a larger fleet.
const deviceListLimit = 500

// devicesScreen is the registry's devices: a list with search and status filter, a device's
// certificates, key history, revocations and decommissioning (as `custos device show`), and
// the provision and import forms (devices_forms.go). Registry reads run off the UI goroutine.
type devicesScreen struct {
	s        *shell
	search   *widget.Entry
	status   *widget.Select
	find     *widget.Entry // a certificate serial or key SHA-256, as device find takes
	at       *widget.Entry // a moment, as device show --at takes
	table    *widget.Table
	shown    []registry.Device
	count    *widget.Label
	history  *widget.Label
	note     *notice
	selected string // the serial of the device whose history is shown
	load     int    // the number of the last list load; an older one's answer is dropped
	rekey    *rekeyForm
	tabs     *container.AppTabs
}

var deviceColumns = []string{"Serial", "Model", "Issuer", "Status", "Since"}

// deviceStatuses are the status filter's choices, as the registry names them.
var deviceStatuses = map[string]registry.DeviceStatus{
	"All": "", "Active": registry.DeviceActive, "Decommissioned": registry.DeviceDecommissioned,
}

func (s *shell) devicesScreen() fyne.CanvasObject {
	d := &devicesScreen{s: s, search: widget.NewEntry(), find: widget.NewEntry(), at: widget.NewEntry(),
		count: widget.NewLabel(""), history: wrapped(""), note: newNotice()}
	d.search.SetPlaceHolder("search serial or model")
	d.find.SetPlaceHolder("a certificate serial (hex) or a key's SHA-256 (64 hex digits)")
	d.at.SetPlaceHolder("2026-03-01T14:30:00Z or 2026-03-01")
	d.search.OnChanged = func(string) { d.refresh() }
	d.status = widget.NewSelect([]string{"All", "Active", "Decommissioned"}, nil)
	d.status.SetSelected("All")
	d.status.OnChanged = func(string) { d.refresh() }
	d.table = d.newTable()
	d.history.TextStyle = fyne.TextStyle{Monospace: true}
	d.rekey = newRekeyForm(s)
	d.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Devices", theme.ListIcon(), d.listTab()),
		container.NewTabItemWithIcon("Provision", theme.ContentAddIcon(), newProvisionForm(s).object()),
		container.NewTabItemWithIcon("Import", theme.DownloadIcon(), newImportForm(s, d.refresh).object()),
		container.NewTabItemWithIcon("Re-key", theme.ViewRefreshIcon(), d.rekey.object()),
	)
	content := container.NewBorder(heading("Devices"), nil, nil, nil, d.tabs)
	d.rekey.running = func(serial string, busy bool) {
		if busy {
			s.keep("devices", "A device re-key", serial, content)
		} else {
			s.ended("devices")
		}
	}
	d.rekey.rekeyed = func(serial string) {
		d.refresh()
		d.onSelect(serial)
	}
	d.refresh()
	return content
}

func (d *devicesScreen) listTab() fyne.CanvasObject {
	filter := container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewLabel("Status"), d.status), d.search)
	find := widget.NewButtonWithIcon("Find", theme.SearchIcon(), d.onFind)
	defaultButton(find, d.find)
	finder := container.NewBorder(nil, nil, widget.NewLabel("Who had"), find, d.find)
	top := container.NewVBox(filter, finder, d.count, d.note.object())
	atButton := widget.NewButton("As it was then", d.onAt)
	defaultButton(atButton, d.at)
	whole := widget.NewButton("Whole history", func() {
		if d.selected != "" {
			d.onSelect(d.selected)
		}
	})
	rekey := widget.NewButtonWithIcon("Re-key…", theme.ViewRefreshIcon(), func() {
		if d.selected == "" {
			d.note.errorf(errors.New("choose a device in the list first"))
			return
		}
		d.tabs.SelectIndex(3)
	})
	at := container.NewBorder(nil, nil, widget.NewLabel("At"), container.NewHBox(atButton, whole, rekey), d.at)
	detail := container.NewBorder(at, nil, nil, nil, container.NewVScroll(container.NewPadded(d.history)))
	split := container.NewVSplit(d.table, detail)
	split.Offset = 0.5
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
	d.selected = serial
	d.rekey.choose(serial)
	d.showLines(func() ([]string, error) {
		h, err := d.s.reg.DeviceHistory(d.s.ctx, serial)
		return h.Describe(time.Now()), err
	})
}

// showLines shows the lines read reads off the UI goroutine in the detail, or its error.
func (d *devicesScreen) showLines(read func() ([]string, error)) {
	var lines []string
	d.s.background(func() (err error) {
		lines, err = read()
		return err
	}, func(err error) {
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.note.info("")
		d.history.SetText(strings.Join(lines, "\n"))
	})
}

// onAt shows the chosen device as it was at the moment typed (custos device show --at): which
// certificates and keys it had, and whether each had been revoked as of then.
func (d *devicesScreen) onAt() {
	if d.selected == "" {
		d.note.errorf(errors.New("choose a device in the list first"))
		return
	}
	moment, err := registry.ParseMoment(d.at.Text)
	if err != nil {
		d.note.errorf(run.NewFieldError("At", "%v", err))
		return
	}
	serial := d.selected
	d.showLines(func() ([]string, error) {
		then, err := d.s.reg.DeviceAsOf(d.s.ctx, serial, moment)
		if err != nil {
			return nil, err
		}
		h, err := d.s.reg.DeviceHistory(d.s.ctx, serial)
		return then.Describe(h.Revocations), err
	})
}

// onFind lists the devices that had the certificate or key typed (custos device find), and
// shows the periods of each that match.
func (d *devicesScreen) onFind() {
	q, err := registry.ParseFindQuery(d.find.Text)
	if err != nil {
		d.note.errorf(run.NewFieldError("Find", "%v", err))
		return
	}
	d.load++ // a list load or find under way no longer applies
	load := d.load
	var found []registry.Device
	var lines []string
	d.s.background(func() error {
		serials, err := d.s.reg.FindDevices(d.s.ctx, q)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, serial := range serials {
			h, err := d.s.reg.DeviceHistory(d.s.ctx, serial)
			if err != nil {
				return err
			}
			found = append(found, h.Device)
			lines = append(lines, fmt.Sprintf("device %s (%s), %s", h.Device.Serial, h.Device.Model, h.Device.Status))
			for _, p := range h.Periods(now) {
				if q.Matches(p) {
					lines = append(lines, "  "+p.Describe())
				}
			}
		}
		return nil
	}, func(err error) {
		if load != d.load {
			return // a newer search or find is under way
		}
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.shown, d.selected = found, ""
		d.table.UnselectAll()
		d.table.Refresh()
		if len(found) == 0 {
			d.count.SetText("No device in this workspace has had it.")
			d.history.SetText("")
			return
		}
		d.count.SetText(plural(len(found), "device had it.", "devices had it."))
		d.note.info("")
		d.history.SetText(strings.Join(lines, "\n"))
	})
}
