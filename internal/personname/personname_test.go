package personname

import "testing"

func TestSame(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"Cara Cruz", "cara  cruz", true},
		{"ＣＡＲＡ", "cara", true},
		{"Zoe\u0308", "Zoë", true},
		{"Tess Tech", "Tess Techer", false},
		{"Vic Val", "Tess Tech", false},
	} {
		if got := Same(c.a, c.b); got != c.same {
			t.Errorf("Same(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
