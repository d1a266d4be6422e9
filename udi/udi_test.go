package udi

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		udi     string
		agency  Agency
		problem string // "" when valid
	}{
		// The FDA's GUDID examples, as printed on labels.
		{"(01)00844588003288(17)141120(10)7654321D(21)10987654d321", GS1, ""},
		{"(01)00844588003288", GS1, ""},
		{"+H123PARTNO1234567890120/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C", HIBCC, ""},
		{"=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}013032&,1000000000000XYZ123", ICCBBA, ""},
		{"(01)00844588003289", "", "check digit 9; its digits give 8"},
		{"(01)0084458800328", "", "14 digits"},
		{"(01)00844588003288x", "", "(AI)value pairs"},
		{"", "", "empty"},
		{" (01)00844588003288", "", "blanks at its ends"},
		{"(01)00844588003288\n", "", "blanks at its ends"},
		{"(01)0084458800328\u00e9", "", "printable ASCII"},
		{"SN-12345", "", "not in the form of an issuing agency"},
		{"+H1", "", "labeler code"},
		{"(01)00844588003288(21)" + strings.Repeat("9", 200), "", "at most 200"},
	} {
		a, err := Check(c.udi)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%q: %v", c.udi, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%q: error %v, want one saying %q", c.udi, err, c.problem)
		case c.problem == "" && a != c.agency:
			t.Errorf("%q: agency %s, want %s", c.udi, a, c.agency)
		}
	}
}
