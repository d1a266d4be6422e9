package app

import (
	"fmt"
	"image/color"
	"math"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
)

// luminance is a colour's relative luminance as WCAG 2.1 defines it, composed over bg when
// it is not opaque.
func luminance(c, bg color.Color) float64 {
	r, g, b, a := c.RGBA()
	br, bgc, bb, _ := bg.RGBA()
	channel := func(v, under uint32) float64 {
		f := (float64(v) + float64(under)*(1-float64(a)/0xffff)) / 0xffff // premultiplied over bg
		if f <= 0.04045 {
			return f / 12.92
		}
		return math.Pow((f+0.055)/1.055, 2.4)
	}
	return 0.2126*channel(r, br) + 0.7152*channel(g, bgc) + 0.0722*channel(b, bb)
}

// contrast is the WCAG contrast ratio of text colour fg on bg.
func contrast(fg, bg color.Color) float64 {
	l1, l2 := luminance(fg, bg), luminance(bg, color.Black)
	if l1 < l2 {
		l1, l2 = l2, l1
	}
	return (l1 + 0.05) / (l2 + 0.05)
}

// textOn lists every theme colour the window draws text in, against the backgrounds it is
// drawn on: labels of each importance on the window, entries and their placeholders, buttons
// of each importance, table headers, menus, dialogs and selected rows.
var textOn = []struct{ text, background fyne.ThemeColorName }{
	{theme.ColorNameForeground, theme.ColorNameBackground},
	{theme.ColorNameError, theme.ColorNameBackground},
	{theme.ColorNameWarning, theme.ColorNameBackground},
	{theme.ColorNameSuccess, theme.ColorNameBackground},
	{theme.ColorNamePrimary, theme.ColorNameBackground},
	{theme.ColorNameHyperlink, theme.ColorNameBackground},
	{theme.ColorNamePlaceHolder, theme.ColorNameBackground},
	{theme.ColorNameForeground, theme.ColorNameInputBackground},
	{theme.ColorNamePlaceHolder, theme.ColorNameInputBackground},
	{theme.ColorNameForeground, theme.ColorNameButton},
	{theme.ColorNameForegroundOnPrimary, theme.ColorNamePrimary},
	{theme.ColorNameForegroundOnError, theme.ColorNameError},
	{theme.ColorNameForegroundOnSuccess, theme.ColorNameSuccess},
	{theme.ColorNameForegroundOnWarning, theme.ColorNameWarning},
	{theme.ColorNameForeground, theme.ColorNameHeaderBackground},
	{theme.ColorNameForeground, theme.ColorNameMenuBackground},
	{theme.ColorNameForeground, theme.ColorNameOverlayBackground},
	{theme.ColorNameForeground, theme.ColorNameSelection},
}

// Every text colour of the light and the dark theme reaches WCAG AA (4.5:1) on its background.
func TestThemeTextContrastIsAA(t *testing.T) {
	test.NewTempApp(t)
	th := newReadableTheme()
	for _, v := range []struct {
		name    string
		variant fyne.ThemeVariant
	}{{"light", theme.VariantLight}, {"dark", theme.VariantDark}} {
		for _, p := range textOn {
			t.Run(fmt.Sprintf("%s/%s on %s", v.name, p.text, p.background), func(t *testing.T) {
				bg := th.Color(p.background, v.variant)
				if _, _, _, a := bg.RGBA(); a != 0xffff { // a translucent background lies over the window's
					bg = over(bg, th.Color(theme.ColorNameBackground, v.variant))
				}
				r := contrast(th.Color(p.text, v.variant), bg)
				if r < 4.5 {
					t.Errorf("contrast %.2f:1, want at least 4.5:1", r)
				}
				t.Logf("%.2f:1", r)
			})
		}
	}
}

// over composes the translucent colour c over the opaque bg.
func over(c, bg color.Color) color.Color {
	r, g, b, a := c.RGBA()
	br, bgc, bb, _ := bg.RGBA()
	mix := func(v, under uint32) uint8 { return uint8((v + under*(0xffff-a)/0xffff) >> 8) }
	return color.NRGBA{mix(r, br), mix(g, bgc), mix(b, bb), 0xff}
}

func TestContrastOfKnownPairs(t *testing.T) {
	for _, c := range []struct {
		fg, bg color.Color
		want   float64
	}{
		{color.Black, color.White, 21},
		{color.White, color.White, 1},
		{color.NRGBA{0x77, 0x77, 0x77, 0xff}, color.White, 4.48}, // the classic just-failing grey
		{color.NRGBA{0xff, 0x98, 0x00, 0xff}, color.White, 2.16}, // the warning orange
	} {
		if got := contrast(c.fg, c.bg); math.Abs(got-c.want) > 0.01 {
			t.Errorf("contrast(%v, %v) = %.3f, want %.2f", c.fg, c.bg, got, c.want)
		}
	}
}
