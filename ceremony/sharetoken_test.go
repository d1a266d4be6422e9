package ceremony

import (
	"context"
	"errors"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/quorum"
)

func TestShareOnCustodianToken(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "cara-token", "so-pin-1234", "cara-pin-1234")
	s := quorum.Share{CeremonyID: "acme-root-2026", Epoch: 1, Number: 4, Threshold: 3, Bytes: make([]byte, quorum.SecretLen+1)}
	d := ShareDelivery{CeremonyID: s.CeremonyID, Epoch: 1, Custodian: "Cara Cruz", Number: s.Number, Of: 5, Threshold: 3, Text: s.Encode()}
	if err := WriteShareToToken(ctx, env.ModulePath, "cara-token", []byte("cara-pin-1234"), d); err != nil {
		t.Fatal(err)
	}
	got, err := ReadShareFromToken(ctx, env.ModulePath, "cara-token", []byte("cara-pin-1234"), d)
	if err != nil || got != d.Text {
		t.Fatalf("read back %q, %v", got, err)
	}
	// Without the custodian's PIN the share cannot be read: the object is private.
	if _, err := ReadShareFromToken(ctx, env.ModulePath, "cara-token", []byte("wrong-pin-99"), d); !errors.Is(err, hsm.ErrPINIncorrect) {
		t.Errorf("wrong PIN: %v", err)
	}
	m := env.Open(t)
	sess, _ := m.OpenSession(ctx, "cara-token")
	defer sess.Close()
	if objs, _ := sess.Find(ctx, hsm.Match{Class: hsm.ClassData}); len(objs) != 0 {
		t.Errorf("the share is visible without login: %v", objs)
	}
}
