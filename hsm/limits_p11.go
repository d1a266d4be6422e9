//go:build cgo && !nopkcs11

package hsm

import "context"

// CanReinit returns nil when tokens of this module can be re-initialised through PKCS#11 as
// far as Custos knows, and an error wrapping ErrCannotReinit, saying why, when they cannot:
// callers ask before they change anything, rather than fail half way.
func (m *Module) CanReinit(ctx context.Context) error {
	const op = "check the module can re-initialise tokens"
	info, err := m.Info(ctx)
	if err != nil {
		return err
	}
	if why, ok := noReinit[info.Manufacturer]; ok && !m.tryLimits {
		return failf(op, "", ErrCannotReinit, "%s (module %s)", why, m.path)
	}
	return nil
}
