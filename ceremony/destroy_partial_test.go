package ceremony

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/registry"
)

// A destroy that stops part-way (the second token that holds the root fails while its
// objects are destroyed) leaves the first token erased and recorded so, and the second
// holding the root; every other quorum operation is then refused, naming the way out, and
// destroy run again finishes it on the token that still holds the root.
func TestDestroyFinishesAfterAStop(t *testing.T) {
	ctx := context.Background()
	f, three := restoredRoot(t)
	ops := []byte("ops-pin-1234")

	// eraseAll lists a token's objects, destroys each and lists again; the first
	// C_DestroyObject after those two lists of the first token is the second token's first.
	var mu sync.Mutex
	destroyed, listsAfter := 0, 0
	f.env.HSMOptions = []hsm.Option{hsm.WithFault(func(call string) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case call == "C_DestroyObject" && listsAfter >= 2:
			return errors.New("CKR_DEVICE_ERROR (injected)")
		case call == "C_DestroyObject":
			destroyed++
		case call == "C_FindObjectsFinal" && destroyed > 0:
			listsAfter++
		}
		return nil
	})}
	if _, err := Destroy(ctx, f.env, three(), ops); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("destroy with the second token failing: %v", err)
	}
	f.env.HSMOptions = nil
	states := func() map[string]registry.HolderState {
		hs, err := f.env.Registry.RootHolders(ctx, f.plan.ID)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]registry.HolderState{}
		for _, h := range hs {
			out[h.Token] = h.State
		}
		return out
	}
	if got := states(); got["acme-root-b"] != registry.HolderDestroyed || got[f.plan.ID] != registry.HolderHolding {
		t.Fatalf("holders after the stop: %v", got)
	}
	// pkcs11-tool's public view: the root's certificate and public key while they exist.
	if out := tokenObjects(t, f, "acme-root-b", ""); strings.Contains(out, "Object") {
		t.Errorf("acme-root-b keeps objects after its erasure:\n%s", out)
	}
	if out := tokenObjects(t, f, f.plan.ID, ""); !strings.Contains(out, "Public Key Object") {
		t.Fatalf("%s has no root left: the fault did not stop the destroy there:\n%s", f.plan.ID, out)
	}

	// Nothing else may use a root that is half destroyed.
	_, err := RootCRL(ctx, f.env, three(), RootCRLRequest{})
	if err == nil || !strings.Contains(err.Error(), "run custos ceremony destroy again") {
		t.Fatalf("a root CRL after the stopped destroy: %v", err)
	}

	res, err := Destroy(ctx, f.env, three(), ops)
	if err != nil {
		t.Fatalf("destroy again: %v", err)
	}
	if strings.Join(res.Tokens, ",") != f.plan.ID {
		t.Errorf("the second destroy erased %v, want %s alone", res.Tokens, f.plan.ID)
	}
	if got := states(); got["acme-root-b"] != registry.HolderDestroyed || got[f.plan.ID] != registry.HolderDestroyed {
		t.Errorf("holders after the second destroy: %v", got)
	}
	for _, label := range []string{f.plan.ID, "acme-root-b"} {
		if out := tokenObjects(t, f, label, ""); strings.Contains(out, "Object") {
			t.Errorf("%s keeps objects:\n%s", label, out)
		}
	}
	if _, err := LoadQuorum(ctx, f.env.Registry, f.plan.ID); err == nil {
		t.Error("a destroyed root still takes shares")
	}
}
