// Package deps pins the project's module dependencies while the packages that use them are
// being written; it is removed once every dependency has a real importer.
package deps

import (
	_ "fyne.io/fyne/v2/app"
	_ "fyne.io/fyne/v2/test"
	_ "github.com/digitorus/pdfsign/sign"
	_ "github.com/digitorus/pdfsign/verify"
	_ "github.com/go-pdf/fpdf"
	_ "github.com/hashicorp/vault/shamir"
	_ "github.com/miekg/pkcs11"
	_ "github.com/zmap/zlint/v3"
	_ "go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite"
)
