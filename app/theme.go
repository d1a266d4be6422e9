package app

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// readableTheme is Fyne's default theme, which follows the system's light or dark setting,
// with text large enough to read from a chair at arm's length from the screen, and every
// colour text is drawn in at WCAG AA contrast (4.5:1) on its background: Fyne's own light
// warning orange is 2.16:1 on white, its success green 1.48:1 (theme_test.go measures them).
type readableTheme struct{ fyne.Theme }

func newReadableTheme() fyne.Theme { return readableTheme{theme.DefaultTheme()} }

func (t readableTheme) Size(name fyne.ThemeSizeName) float32 {
	switch name {
	case theme.SizeNameText:
		return 16
	case theme.SizeNameHeadingText:
		return 28
	case theme.SizeNameSubHeadingText:
		return 20
	case theme.SizeNameCaptionText:
		return 13
	case theme.SizeNameInputBorder:
		return 2
	}
	return t.Theme.Size(name)
}

func (t readableTheme) Color(name fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	palette := lightText
	if v == theme.VariantDark {
		palette = darkText
	}
	if c, ok := palette[name]; ok {
		return c
	}
	return t.Theme.Color(name, v)
}

// lightText are the light theme's colours that differ from Fyne's: darker, so text in them
// stays readable on white and on the light input background, with white text on them.
var lightText = map[fyne.ThemeColorName]color.Color{
	theme.ColorNamePrimary:     rgb(0x15, 0x65, 0xc0),
	theme.ColorNameHyperlink:   rgb(0x15, 0x65, 0xc0),
	theme.ColorNameError:       rgb(0xb7, 0x1c, 0x1c),
	theme.ColorNameWarning:     rgb(0x9a, 0x4a, 0x00),
	theme.ColorNameSuccess:     rgb(0x1b, 0x6e, 0x20),
	theme.ColorNamePlaceHolder: rgb(0x5f, 0x5f, 0x66),
}

// darkText are the dark theme's: a lighter blue, with dark text on it.
var darkText = map[fyne.ThemeColorName]color.Color{
	theme.ColorNamePrimary:             rgb(0x6c, 0xb4, 0xff),
	theme.ColorNameHyperlink:           rgb(0x6c, 0xb4, 0xff),
	theme.ColorNameForegroundOnPrimary: rgb(0x10, 0x10, 0x14),
}

func rgb(r, g, b uint8) color.Color { return color.NRGBA{R: r, G: g, B: b, A: 0xff} }
