// Package screenshot captures a window of the X display as a PNG, through xwd(1). Fyne's own
// Canvas.Capture reads the OpenGL front buffer, which Xvfb's software renderer leaves empty,
// so `make screenshots` asks the X server for what it shows instead.
package screenshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
)

// Window saves the X window named name (its title) as a PNG at path.
func Window(name, path string) error {
	out, err := exec.Command("xwd", "-name", name, "-silent").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("xwd -name %q: %v: %s", name, err, bytes.TrimSpace(ee.Stderr))
		}
		return fmt.Errorf("xwd (Debian package x11-apps): %w", err)
	}
	img, err := DecodeXWD(out)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// xwdHeader is the fixed part of an X Window Dump (XWDFile.h), all big-endian 32-bit fields.
type xwdHeader struct {
	HeaderSize, FileVersion, PixmapFormat, PixmapDepth, PixmapWidth, PixmapHeight, XOffset,
	ByteOrder, BitmapUnit, BitmapBitOrder, BitmapPad, BitsPerPixel, BytesPerLine, VisualClass,
	RedMask, GreenMask, BlueMask, BitsPerRGB, ColormapEntries, NColors, WindowWidth,
	WindowHeight, WindowX, WindowY, WindowBorderWidth uint32
}

// DecodeXWD decodes the 24/32-bit TrueColor ZPixmap dumps that X servers produce today.
func DecodeXWD(b []byte) (image.Image, error) {
	var h xwdHeader
	if err := binary.Read(bytes.NewReader(b), binary.BigEndian, &h); err != nil {
		return nil, fmt.Errorf("xwd: short header: %w", err)
	}
	if h.FileVersion != 7 || h.PixmapFormat != 2 || h.BitsPerPixel != 32 {
		return nil, fmt.Errorf("xwd: unsupported dump (version %d, format %d, %d bits per pixel)",
			h.FileVersion, h.PixmapFormat, h.BitsPerPixel)
	}
	start := uint64(h.HeaderSize) + uint64(h.NColors)*12
	w, ht, stride := int(h.PixmapWidth), int(h.PixmapHeight), uint64(h.BytesPerLine)
	if stride < uint64(w)*4 || start+stride*uint64(ht) > uint64(len(b)) {
		return nil, errors.New("xwd: dump is truncated")
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h.ByteOrder == 1 {
		order = binary.BigEndian
	}
	shift := func(mask uint32) (uint, uint32) {
		var s uint
		for mask != 0 && mask&1 == 0 {
			mask >>= 1
			s++
		}
		return s, mask
	}
	rs, rm := shift(h.RedMask)
	gs, gm := shift(h.GreenMask)
	bs, bm := shift(h.BlueMask)
	if rm == 0 || gm == 0 || bm == 0 {
		return nil, errors.New("xwd: not a TrueColor dump")
	}
	scale := func(v, max uint32) uint8 { return uint8(v * 255 / max) }
	img := image.NewRGBA(image.Rect(0, 0, w, ht))
	for y := 0; y < ht; y++ {
		row := b[start+uint64(y)*stride:]
		for x := 0; x < w; x++ {
			p := order.Uint32(row[x*4:])
			img.SetRGBA(x, y, color.RGBA{scale(p>>rs&rm, rm), scale(p>>gs&gm, gm), scale(p>>bs&bm, bm), 255})
		}
	}
	return img, nil
}
