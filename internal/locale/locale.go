// Package locale turns the POSIX "C" locale into one Fyne can parse. Fyne reads the locale
// when its packages initialise and logs an error for "C" or "C.UTF-8" (the default in
// containers and CI), which would show on every command. main imports this package first;
// it depends only on os and strings, so Go initialises it before Fyne.
package locale

import (
	"os"
	"strings"
)

func init() {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		val := os.Getenv(v)
		base, _, _ := strings.Cut(val, ".")
		if base == "C" || base == "POSIX" {
			os.Setenv(v, "en_US.UTF-8")
		}
	}
}
