package workstation

import (
	"context"
	"fmt"

	"github.com/custos-pki/custos/hsm"
)

// HSM is what a PKCS#11 module attached to the workstation says about itself and its tokens.
type HSM struct {
	Module      string // library path
	Description string // manufacturer, description and library version
	Slots       []TokenSlot
}

// TokenSlot is one slot and the token in it, as text a person reads.
type TokenSlot struct {
	Slot         uint
	Present      bool
	Initialised  bool
	Label        string
	Manufacturer string
	Model        string
	Serial       string
	Firmware     string
	State        string // e.g. "initialized,login-required,user-pin-initialized"
	Warning      string // a PIN that is locked or on its final try; empty when all is well
}

// InspectHSM opens the module at path and lists its slots and tokens. It only reads: nothing
// on a token changes.
func InspectHSM(ctx context.Context, path string) (HSM, error) {
	m, err := hsm.Open(path)
	if err != nil {
		return HSM{}, err
	}
	defer m.Close()
	info, err := m.Info(ctx)
	if err != nil {
		return HSM{}, err
	}
	slots, err := m.Slots(ctx)
	if err != nil {
		return HSM{}, err
	}
	h := HSM{
		Module:      path,
		Description: fmt.Sprintf("%s, %s, library %s", info.Manufacturer, info.Description, info.LibraryVersion),
	}
	for _, s := range slots {
		t := s.Token
		ts := TokenSlot{Slot: s.ID, Present: s.TokenPresent}
		if s.TokenPresent {
			ts.Initialised = t.Flags.Initialized
			ts.Label = t.Label
			ts.Manufacturer = t.Manufacturer
			ts.Model = t.Model
			ts.Serial = t.Serial
			ts.Firmware = t.FirmwareVersion.String()
			ts.State = t.Flags.String()
			switch {
			case !t.Flags.Initialized: // a blank token's PIN flags mean nothing yet
			case t.Flags.UserPINLocked:
				ts.Warning = "user PIN locked"
			case t.Flags.SOPINLocked:
				ts.Warning = "SO PIN locked"
			case t.Flags.UserPINFinalTry:
				ts.Warning = "one more wrong user PIN locks this token"
			}
		}
		h.Slots = append(h.Slots, ts)
	}
	return h, nil
}
