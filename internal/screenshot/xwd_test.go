package screenshot

import (
	"bytes"
	"encoding/binary"
	"image/color"
	"testing"
)

// dump builds a 2×1 little-endian 32-bit TrueColor dump: a red pixel and a blue one.
func dump() []byte {
	h := xwdHeader{HeaderSize: 100 + 4, FileVersion: 7, PixmapFormat: 2, PixmapDepth: 24,
		PixmapWidth: 2, PixmapHeight: 1, BitsPerPixel: 32, BytesPerLine: 8, VisualClass: 4,
		RedMask: 0xff0000, GreenMask: 0xff00, BlueMask: 0xff}
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, h)
	b.WriteString("win\x00")
	binary.Write(&b, binary.LittleEndian, []uint32{0xff0000, 0x0000ff})
	return b.Bytes()
}

func TestDecodeXWD(t *testing.T) {
	img, err := DecodeXWD(dump())
	if err != nil {
		t.Fatal(err)
	}
	if got := img.At(0, 0); got != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("pixel 0 = %v, want red", got)
	}
	if got := img.At(1, 0); got != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("pixel 1 = %v, want blue", got)
	}
	for _, bad := range [][]byte{nil, dump()[:50], dump()[:len(dump())-1]} {
		if _, err := DecodeXWD(bad); err == nil {
			t.Errorf("DecodeXWD accepted %d bytes of a damaged dump", len(bad))
		}
	}
}
