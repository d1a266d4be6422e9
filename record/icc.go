package record

import (
	"bytes"
	"encoding/binary"
	"math"
	"sync"
)

// The output intent of a PDF/A file names the colour space its colours are meant in: an ICC
// profile. The records draw in DeviceRGB (and DeviceGray for black), meant as sRGB, so they
// carry an sRGB profile. It is written here rather than copied from elsewhere: a version 2
// matrix/TRC display profile, the smallest form every PDF reader and colour engine accepts,
// with the sRGB primaries adapted to the D50 connection space (Bradford) and the sRGB tone
// curve sampled at 1024 points. It has no licence of anyone else's to carry.

// sRGBProfile returns the ICC profile, built once.
var sRGBProfile = sync.OnceValue(buildSRGBProfile)

// iccDescription is the profile's name, as colour tools and PDF/A validators show it.
const iccDescription = "sRGB IEC61966-2.1 (Custos)"

func buildSRGBProfile() []byte {
	fixed := func(v float64) uint32 { return uint32(int32(math.Round(v * 65536))) }
	xyz := func(x, y, z float64) []byte {
		b := []byte("XYZ \x00\x00\x00\x00")
		b = binary.BigEndian.AppendUint32(b, fixed(x))
		b = binary.BigEndian.AppendUint32(b, fixed(y))
		return binary.BigEndian.AppendUint32(b, fixed(z))
	}
	// textDescriptionType: the ASCII name, no Unicode or ScriptCode name.
	desc := []byte("desc\x00\x00\x00\x00")
	desc = binary.BigEndian.AppendUint32(desc, uint32(len(iccDescription)+1))
	desc = append(desc, iccDescription...)
	desc = append(desc, 0)
	desc = append(desc, make([]byte, 4+4+2+1+67)...)
	cprt := append([]byte("text\x00\x00\x00\x00"), "No copyright: written for Custos, use freely\x00"...)
	const points = 1024
	curve := []byte("curv\x00\x00\x00\x00")
	curve = binary.BigEndian.AppendUint32(curve, points)
	for i := range points {
		c := float64(i) / (points - 1)
		var lin float64
		if c <= 0.04045 {
			lin = c / 12.92
		} else {
			lin = math.Pow((c+0.055)/1.055, 2.4)
		}
		curve = binary.BigEndian.AppendUint16(curve, uint16(math.Round(lin*65535)))
	}
	type tag struct {
		sig  string
		data []byte
	}
	tags := []tag{
		{"desc", desc}, {"cprt", cprt},
		{"wtpt", xyz(0.9642, 1.0, 0.8249)},
		{"rXYZ", xyz(0.4360747, 0.2225045, 0.0139322)},
		{"gXYZ", xyz(0.3850649, 0.7168786, 0.0971045)},
		{"bXYZ", xyz(0.1430804, 0.0606169, 0.7141733)},
		{"rTRC", curve}, {"gTRC", nil}, {"bTRC", nil}, // the three channels share one curve
	}
	tableLen := 4 + 12*len(tags)
	var data bytes.Buffer
	var table []byte
	table = binary.BigEndian.AppendUint32(table, uint32(len(tags)))
	var curveOff, curveLen uint32
	for _, t := range tags {
		if t.data == nil {
			table = append(table, t.sig...)
			table = binary.BigEndian.AppendUint32(table, curveOff)
			table = binary.BigEndian.AppendUint32(table, curveLen)
			continue
		}
		off := uint32(128 + tableLen + data.Len())
		table = append(table, t.sig...)
		table = binary.BigEndian.AppendUint32(table, off)
		table = binary.BigEndian.AppendUint32(table, uint32(len(t.data)))
		if t.sig == "rTRC" {
			curveOff, curveLen = off, uint32(len(t.data))
		}
		data.Write(t.data)
		for data.Len()%4 != 0 { // each tag starts on a 4-byte boundary
			data.WriteByte(0)
		}
	}
	size := 128 + len(table) + data.Len()
	h := make([]byte, 0, 128)
	h = binary.BigEndian.AppendUint32(h, uint32(size))
	h = append(h, 0, 0, 0, 0)       // preferred CMM: none
	h = append(h, 0x02, 0x10, 0, 0) // version 2.1
	h = append(h, "mntrRGB XYZ "...)
	for _, v := range []uint16{2026, 1, 1, 0, 0, 0} { // creation date
		h = binary.BigEndian.AppendUint16(h, v)
	}
	h = append(h, "acsp"...)
	h = append(h, make([]byte, 4+4+4+4+8)...) // platform, flags, manufacturer, model, attributes
	h = binary.BigEndian.AppendUint32(h, 0)   // rendering intent: perceptual
	h = binary.BigEndian.AppendUint32(h, fixed(0.9642))
	h = binary.BigEndian.AppendUint32(h, fixed(1.0))
	h = binary.BigEndian.AppendUint32(h, fixed(0.8249)) // the D50 illuminant
	h = append(h, make([]byte, 128-len(h))...)          // creator, profile id, reserved
	return append(append(h, table...), data.Bytes()...)
}
