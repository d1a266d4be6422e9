package assets

import _ "embed"

// Icon is Custos's application icon (512×512 PNG); icon.svg is its source.
//
//go:embed icon.png
var Icon []byte
