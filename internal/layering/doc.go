// Package layering has no code: its test keeps Custos's imports pointing one way (DESIGN.md,
// "Layout and direction of dependencies"). It fails, naming the import chain, when a package
// other than app and the main package reaches fyne, when anything but the main package
// imports app, or when a pure package (keyalg, quorum, pki, record, registry, rebuild, workspace, the
// auditor's command line and verifier) reaches hsm or github.com/miekg/pkcs11; and when the
// build without PKCS#11 no longer offers the same hsm API as the real one.
package layering
