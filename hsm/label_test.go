package hsm

import (
	"strings"
	"testing"
)

func TestTokenLabelProblem(t *testing.T) {
	for _, tt := range []struct{ label, want string }{
		{"acme-ops", ""},
		{"Zoë's token", ""},
		{strings.Repeat("x", 32), ""},
		{strings.Repeat("é", 16), ""}, // 32 bytes of UTF-8
		{"", "is empty"},
		{strings.Repeat("x", 33), "is 33 bytes: PKCS#11 token labels hold at most 32"},
		{strings.Repeat("é", 17), "is 34 bytes"},
		{"acme-ops ", "starts or ends with a blank"},
		{" acme-ops", "starts or ends with a blank"},
		{"acme-ops\n", "starts or ends with a blank"},
		{"acme\nops", "holds a control character"},
		{"acme\tops", "holds a control character"},
		{"acme\x7fops", "holds a control character"},
		{"acme\xffops", "is not valid UTF-8"},
	} {
		got := TokenLabelProblem(tt.label)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("TokenLabelProblem(%q) = %q, want %q", tt.label, got, tt.want)
		}
	}
}
