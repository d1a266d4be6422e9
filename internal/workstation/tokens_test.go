package workstation

import (
	"context"
	"errors"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
)

func TestInspectHSM(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "acme-ops", "so-pin-1234", "user-pin-1234")
	h, err := InspectHSM(context.Background(), env.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	var found, blank bool
	for _, s := range h.Slots {
		if s.Label == "acme-ops" && s.Initialised && s.Serial != "" && s.Manufacturer != "" {
			found = true
		}
		if s.Present && !s.Initialised {
			blank = true
		}
	}
	if !found || !blank {
		t.Errorf("slots = %+v; want acme-ops with its identity and a blank token", h.Slots)
	}
	if _, err := InspectHSM(context.Background(), "/nonexistent/libpkcs11.so"); !errors.Is(err, hsm.ErrModuleNotFound) {
		t.Errorf("missing module: err = %v, want ErrModuleNotFound", err)
	}
}
