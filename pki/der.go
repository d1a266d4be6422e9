package pki

import (
	"math/big"
	"time"
)

// A few DER building blocks for the CRL encoder, which writes bytes directly instead of
// going through encoding/asn1 so that a million entries cost no allocations each.

const (
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
	tagContext0        = 0xA0 // [0] constructed, EXPLICIT
	tagContext0Prim    = 0x80 // [0] primitive, IMPLICIT
)

// lengthSize is how many bytes the DER length field of content of n bytes takes.
func lengthSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xFF:
		return 2
	case n <= 0xFFFF:
		return 3
	case n <= 0xFFFFFF:
		return 4
	default:
		return 5
	}
}

// tlvSize is the full size of a one-byte tag, its length and n bytes of content.
func tlvSize(n int) int { return 1 + lengthSize(n) + n }

// appendHeader appends a tag and the DER length of n content bytes.
func appendHeader(b []byte, tag byte, n int) []byte {
	b = append(b, tag)
	switch ls := lengthSize(n); ls {
	case 1:
		return append(b, byte(n))
	default:
		b = append(b, 0x80|byte(ls-1))
		for i := ls - 2; i >= 0; i-- {
			b = append(b, byte(n>>(8*i)))
		}
		return b
	}
}

// appendTLV appends a tag, length and content.
func appendTLV(b []byte, tag byte, content []byte) []byte {
	return append(appendHeader(b, tag, len(content)), content...)
}

// integerContentSize is the size of the DER INTEGER content of a non-negative n: its
// big-endian bytes, plus a leading zero when the top bit is set so it does not read negative.
func integerContentSize(n *big.Int) int {
	bits := n.BitLen()
	if bits == 0 {
		return 1
	}
	return bits/8 + 1 // bits%8 == 0 means the top bit is set and a zero byte leads
}

// appendInteger appends the DER INTEGER of a non-negative n without allocating.
func appendInteger(b []byte, n *big.Int) []byte {
	size := integerContentSize(n)
	b = appendHeader(b, tagInteger, size)
	start := len(b)
	b = append(b, make([]byte, size)...) // the compiler does not allocate for this idiom
	n.FillBytes(b[start:])
	return b
}

// timeTag, timeSize and appendTime encode an RFC 5280 Time: UTCTime through 2049 and
// GeneralizedTime from 2050 (section 4.1.2.5), always in UTC with seconds and a Z.
func timeTag(t time.Time) byte {
	if y := t.UTC().Year(); y >= 1950 && y < 2050 {
		return tagUTCTime
	}
	return tagGeneralizedTime
}

func timeSize(t time.Time) int {
	if timeTag(t) == tagUTCTime {
		return 2 + 13
	}
	return 2 + 15
}

func appendTime(b []byte, t time.Time) []byte {
	return appendTimeAs(b, t, timeTag(t))
}

// appendGeneralizedTime appends YYYYMMDDHHMMSSZ: RFC 5280 forbids fractional seconds.
func appendGeneralizedTime(b []byte, t time.Time) []byte {
	return appendTimeAs(b, t, tagGeneralizedTime)
}

// appendTimeAs appends t as a UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime
// (YYYYMMDDHHMMSSZ), splitting the time into fields only once.
func appendTimeAs(b []byte, t time.Time, tag byte) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	if tag == tagUTCTime {
		b = append(b, tagUTCTime, 13)
	} else {
		b = append(b, tagGeneralizedTime, 15)
		b = append2(b, year/100)
	}
	b = append2(b, year%100)
	b = append2(b, int(month))
	b = append2(b, day)
	b = append2(b, hour)
	b = append2(b, minute)
	b = append2(b, second)
	return append(b, 'Z')
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// tlvHeaderLen is the size of the tag and length of the DER element b starts with.
func tlvHeaderLen(b []byte) int {
	if b[1] < 0x80 {
		return 2
	}
	return 2 + int(b[1]&0x7F)
}

// tlvLen is the full size of the DER element b starts with.
func tlvLen(b []byte) int {
	if b[1] < 0x80 {
		return 2 + int(b[1])
	}
	k := int(b[1] & 0x7F)
	n := 0
	for _, c := range b[2 : 2+k] {
		n = n<<8 | int(c)
	}
	return 2 + k + n
}
