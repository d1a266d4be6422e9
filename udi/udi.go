// Package udi checks a medical device's Unique Device Identifier (UDI) as its label prints it
// in human-readable form, so that a record names the device by an identifier that can be
// looked up (the FDA's GUDID, the EU's EUDAMED) and a mistyped one is refused, not recorded.
//
// Three issuing agencies are accredited (21 CFR 830; EU MDR Article 27): GS1, whose UDI
// starts with the device identifier (01) and a 14-digit GTIN with its check digit; HIBCC,
// whose UDI starts with "+"; and ICCBBA, whose ISBT 128 data structures start with "=" or "&".
package udi

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen bounds a UDI: the longest a label carries in human-readable form is well under it.
const MaxLen = 200

// Agency names who issued a UDI's device identifier.
type Agency string

const (
	GS1    Agency = "GS1"
	HIBCC  Agency = "HIBCC"
	ICCBBA Agency = "ICCBBA"
)

// Check returns the agency of s, a UDI in human-readable form, or why it is not one: printable
// ASCII with nothing around it, at most MaxLen characters, in the form of one of the three
// agencies; a GS1 UDI's GTIN must have its check digit right.
func Check(s string) (Agency, error) {
	switch {
	case s == "":
		return "", errors.New("the UDI is empty")
	case len(s) > MaxLen:
		return "", fmt.Errorf("the UDI is %d characters; a UDI is at most %d", len(s), MaxLen)
	case strings.TrimSpace(s) != s:
		return "", errors.New("the UDI has blanks at its ends")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", fmt.Errorf("the UDI has a character that is not printable ASCII at position %d", i+1)
		}
	}
	switch {
	case strings.HasPrefix(s, "(01)"):
		return GS1, checkGTIN(s[4:])
	case strings.HasPrefix(s, "+"):
		if len(s) < 6 {
			return "", errors.New("a HIBCC UDI (+...) has at least a labeler code and a product number after the +")
		}
		return HIBCC, nil
	case strings.HasPrefix(s, "=") || strings.HasPrefix(s, "&"):
		if len(s) < 3 {
			return "", errors.New("an ICCBBA UDI (= or &...) has a data structure after its flag")
		}
		return ICCBBA, nil
	}
	return "", errors.New("the UDI is not in the form of an issuing agency: GS1 starts (01) and the 14-digit GTIN, HIBCC starts +, ICCBBA starts = or &")
}

// checkGTIN checks the 14 digits at the start of rest, the device identifier of a GS1 UDI,
// and their check digit.
func checkGTIN(rest string) error {
	if len(rest) < 14 {
		return errors.New("a GS1 UDI's device identifier (01) has 14 digits")
	}
	gtin := rest[:14]
	sum := 0
	for i := 0; i < 14; i++ {
		c := gtin[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("a GS1 UDI's device identifier (01) has 14 digits; %q is not", gtin)
		}
		if i == 13 {
			break
		}
		d := int(c - '0')
		if i%2 == 0 { // from the right, the digits before the check digit weigh 3, 1, 3...
			d *= 3
		}
		sum += d
	}
	if want := byte('0' + (10-sum%10)%10); gtin[13] != want {
		return fmt.Errorf("the GTIN %s in the UDI has the check digit %c; its digits give %c: a digit is mistyped", gtin, gtin[13], want)
	}
	if more := rest[14:]; more != "" && !strings.HasPrefix(more, "(") {
		return fmt.Errorf("after the GTIN, a GS1 UDI has more (AI)value pairs, not %q", more)
	}
	return nil
}
