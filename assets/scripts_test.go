package assets

import "testing"

func TestEveryConfirmedStepHasAScript(t *testing.T) {
	for _, id := range []string{"preflight", "init-token", "generate-key", "certificate", "horizon", "record-signer", "split", "verify-shares", "backup", "statement", "close", "reshare"} {
		read, check := Script(id)
		if read == "" || check == "" {
			t.Errorf("step %s: read %q, check %q", id, read, check)
		}
	}
	if r, c := Script("nope"); r != "" || c != "" {
		t.Error("a script for an unknown step")
	}
}
