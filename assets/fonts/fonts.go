// Package fonts embeds the TrueType fonts of the PDF records, so a record renders the same
// on every workstation: DejaVu Sans (Latin, Greek, Cyrillic; Bitstream Vera licence) and
// Droid Sans Fallback (CJK; Apache 2.0). The licences are beside the fonts.
package fonts

import _ "embed"

var (
	//go:embed DejaVuSans.ttf
	Sans []byte
	//go:embed DejaVuSans-Bold.ttf
	SansBold []byte
	//go:embed DejaVuSansMono.ttf
	Mono []byte
	//go:embed DroidSansFallback.ttf
	CJK []byte
)
