package hsm

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLabel is the size of a PKCS#11 token label: 32 bytes of UTF-8, padded with blanks.
const MaxLabel = 32

// TokenLabelProblem says what keeps label from being held by a token exactly as given, or ""
// when nothing does. A label is at most 32 bytes of UTF-8 padded with blanks, so a longer one
// would be cut and a trailing blank lost; a leading blank or a control character (a newline,
// a tab) makes two labels that look alike differ, and cannot be typed back.
func TokenLabelProblem(label string) string {
	switch {
	case label == "":
		return "is empty: choose a label of 1 to 32 bytes"
	case !utf8.ValidString(label):
		return fmt.Sprintf("%q is not valid UTF-8", label)
	case len(label) > MaxLabel:
		return fmt.Sprintf("%q is %d bytes: PKCS#11 token labels hold at most %d", label, len(label), MaxLabel)
	case strings.TrimSpace(label) != label:
		return fmt.Sprintf("%q starts or ends with a blank: PKCS#11 pads labels with blanks, so a trailing one is lost and a leading one goes unseen", label)
	case strings.IndexFunc(label, unicode.IsControl) >= 0:
		return fmt.Sprintf("%q holds a control character (a newline, a tab): use letters, digits, blanks and punctuation", label)
	}
	return ""
}
