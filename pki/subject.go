package pki

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Upper bounds of the subject attributes Custos writes, from RFC 5280 appendix A.1
// (ub-common-name, ub-organization-name), counted in characters as X.520 does.
const (
	MaxCommonName   = 64
	MaxOrganization = 64
)

// SubjectTextProblem says what keeps a non-empty s from being a subject attribute of at most
// max characters, or "" when nothing does: invalid UTF-8, too long, surrounding white space
// (zlint flags it, and it makes two names look alike), or a control character. A ceremony plan
// is checked with it at load, by the same rule the certificate is made with.
func SubjectTextProblem(s string, max int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("is %d characters long: at most %d are allowed (RFC 5280)", n, max)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Sprintf("%q starts or ends with white space: remove it", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			return fmt.Sprintf("%q contains a control character", s)
		}
	}
	return ""
}

// CountryProblem says what keeps c from being a subject's country, or "" when nothing does:
// it is a two-letter ISO 3166 code in capitals (RFC 5280: exactly two characters).
func CountryProblem(c string) string {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return fmt.Sprintf("is %q: it must be a two-letter ISO 3166 code in capitals, such as US or DE", c)
	}
	return ""
}
