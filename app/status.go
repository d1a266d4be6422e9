package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/workstation"
)

// statusLine is the bottom line of the window: the workspace, the module, and the air gap.
type statusLine struct {
	workspace *widget.Label
	module    *widget.Label
	netIcon   *widget.Icon
	network   *widget.Label
	box       fyne.CanvasObject
}

func newStatusLine(dir string) *statusLine {
	l := &statusLine{
		workspace: widget.NewLabel("Workspace: " + dir),
		module:    widget.NewLabel(""),
		netIcon:   widget.NewIcon(theme.InfoIcon()),
		network:   widget.NewLabel("checking the network…"),
	}
	l.workspace.Truncation = fyne.TextTruncateEllipsis
	l.module.Truncation = fyne.TextTruncateEllipsis
	l.network.Truncation = fyne.TextTruncateEllipsis
	l.box = container.NewVBox(widget.NewSeparator(), container.NewGridWithColumns(3,
		l.workspace, l.module, container.NewBorder(nil, nil, l.netIcon, nil, l.network)))
	return l
}

func (l *statusLine) object() fyne.CanvasObject { return l.box }

func (l *statusLine) refresh(module string) {
	if module == "" {
		l.module.SetText("PKCS#11 module: none chosen (Settings)")
		return
	}
	l.module.SetText("PKCS#11 module: " + module)
}

// setNetwork shows the air-gap state. Not air-gapped is a warning, never a block: the
// decision belongs to the ceremony administrator, and the record says what was seen.
func (l *statusLine) setNetwork(n workstation.Network) {
	l.network.SetText(n.Summary())
	if n.AirGapped() {
		l.netIcon.SetResource(theme.ConfirmIcon())
		l.network.Importance = widget.SuccessImportance
	} else {
		l.netIcon.SetResource(theme.WarningIcon())
		l.network.Importance = widget.WarningImportance
	}
	l.network.Refresh()
}
