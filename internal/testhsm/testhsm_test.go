package testhsm_test

import (
	"context"
	"os"
	"testing"

	"github.com/custos-pki/custos/internal/testhsm"
)

func TestEnv(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	if os.Getenv("SOFTHSM2_CONF") != env.ConfPath {
		t.Fatal("SOFTHSM2_CONF is not set to the test's configuration")
	}
	slot := env.InitToken(t, "ready", "so-pin-1", "user-pin-1")
	if !slot.Token.Flags.Initialized || !slot.Token.Flags.UserPINInitialized {
		t.Fatalf("token not ready: %s", slot.Token.Flags)
	}
	m := env.Open(t)
	s := testhsm.UserSession(t, m, "ready", "user-pin-1")
	if _, err := s.Random(ctx, 8); err != nil {
		t.Fatal(err)
	}
}

// Each Env has its own token folder: a second one does not see the first one's tokens.
func TestEnvIsolated(t *testing.T) {
	ctx := context.Background()
	for _, label := range []string{"first", "second"} {
		t.Run(label, func(t *testing.T) {
			env := testhsm.New(t)
			env.InitToken(t, label, "so-pin-1", "user-pin-1")
			m := env.Open(t)
			slots, err := m.Slots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var labels []string
			for _, s := range slots {
				if s.Token.Flags.Initialized {
					labels = append(labels, s.Token.Label)
				}
			}
			if len(labels) != 1 || labels[0] != label {
				t.Fatalf("tokens %v, want only %q", labels, label)
			}
		})
	}
}
