package registry

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// TestDeviceAsOf follows one device through its life: provisioned, re-keyed with a new
// certificate a year later, decommissioned a year after that; then asks which key and
// certificate it had at moments along the way.
func TestDeviceAsOf(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	t1, t2 := t0.AddDate(1, 0, 0), t0.AddDate(2, 0, 0)
	nd, c1 := w.register(t, "SN-1", t0)
	key1 := nd.Key.PublicKeySHA256

	c2 := leaf(t, w.ica, "SN-1", t1, t1.AddDate(5, 0, 0))
	cert2, _ := CertificateFromX509("", c2)
	key2 := PublicKeySHA256(c2)
	if err := w.r.AddDeviceCertificate(ctx, "SN-1", cert2, DeviceKey{KeyID: []byte("k2"), PublicKeySHA256: key2, TokenLabel: "SN-1",
		GeneratedAt: t1.Add(-time.Hour), ActivatedAt: t1}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "run-1", "single")
	res, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: "SN-1", Method: "erase",
		Verification: "no objects remain", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RevokedSerials) != 2 || len(res.KeyIDs) != 2 {
		t.Fatalf("decommission revoked %v and destroyed %v", res.RevokedSerials, res.KeyIDs)
	}

	type keyWant struct {
		fpr   [32]byte
		state KeyState
		since time.Time
	}
	type certWant struct {
		serial  string
		valid   bool
		revoked bool
	}
	s1, s2 := c1.SerialNumber.Text(16), c2.SerialNumber.Text(16)
	tests := []struct {
		name   string
		at     time.Time
		status DeviceStatus
		keys   []keyWant
		certs  []certWant
	}{
		{"before anything", t0.Add(-2 * time.Hour), "", nil, nil},
		{"key generated", t0.Add(-30 * time.Minute), "", []keyWant{{key1, KeyPreActivation, t0.Add(-time.Hour)}}, nil},
		{"provisioned", t0, DeviceActive, []keyWant{{key1, KeyActive, t0}}, []certWant{{s1, true, false}}},
		{"in service", t0.AddDate(0, 6, 0), DeviceActive, []keyWant{{key1, KeyActive, t0}}, []certWant{{s1, true, false}}},
		{"new key generated", t1.Add(-time.Minute), DeviceActive,
			[]keyWant{{key1, KeyActive, t0}, {key2, KeyPreActivation, t1.Add(-time.Hour)}}, []certWant{{s1, true, false}}},
		{"re-keyed", t1, DeviceActive, []keyWant{{key1, KeyDeactivated, t1}, {key2, KeyActive, t1}},
			[]certWant{{s1, true, false}, {s2, true, false}}},
		{"decommissioned", t2, DeviceDecommissioned, []keyWant{{key1, KeyDestroyed, t2}, {key2, KeyDestroyed, t2}},
			[]certWant{{s1, false, true}, {s2, false, true}}},
		{"years later", t0.AddDate(6, 0, 0), DeviceDecommissioned, []keyWant{{key1, KeyDestroyed, t2}, {key2, KeyDestroyed, t2}},
			[]certWant{{s1, false, true}, {s2, false, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.r.DeviceAsOf(ctx, "SN-1", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status {
				t.Errorf("status %q, want %q", got.Status, tc.status)
			}
			var keys []keyWant
			for _, k := range got.Keys {
				keys = append(keys, keyWant{k.Key.PublicKeySHA256, k.State, k.Since})
			}
			if !reflect.DeepEqual(keys, tc.keys) {
				t.Errorf("keys\n%v\nwant\n%v", keys, tc.keys)
			}
			var certs []certWant
			for _, c := range got.Certificates {
				certs = append(certs, certWant{c.Certificate.Serial.Big().Text(16), c.Valid, c.Revocation != nil})
				if c.Revocation != nil && (!c.Revocation.RevokedAt.Equal(t2) || c.Revocation.Reason != pki.ReasonCessationOfOperation) {
					t.Errorf("revocation %+v", c.Revocation)
				}
			}
			if !reflect.DeepEqual(certs, tc.certs) {
				t.Errorf("certificates %v, want %v", certs, tc.certs)
			}
		})
	}

	h, err := w.r.DeviceHistory(ctx, "SN-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Certificates) != 2 || len(h.Keys) != 2 || len(h.Revocations) != 2 || len(h.Results) != 1 || h.Device.Status != DeviceDecommissioned {
		t.Fatalf("history: %d certs, %d keys, %d revocations, %d results", len(h.Certificates), len(h.Keys), len(h.Revocations), len(h.Results))
	}
	states := func(k DeviceKey) []KeyState {
		var s []KeyState
		for _, c := range k.History {
			s = append(s, c.State)
		}
		return s
	}
	if got := states(h.Keys[0]); !reflect.DeepEqual(got, []KeyState{KeyPreActivation, KeyActive, KeyDeactivated, KeyDestroyed}) {
		t.Errorf("key 1 history %v", got)
	}
	if got := states(h.Keys[1]); !reflect.DeepEqual(got, []KeyState{KeyPreActivation, KeyActive, KeyDeactivated, KeyDestroyed}) {
		t.Errorf("key 2 history %v", got)
	}
	if last := h.Keys[1].History[3]; last.RunID != "run-1" || last.Note != "erase" || !last.At.Equal(t2) {
		t.Errorf("destruction entry %+v", last)
	}
	if h.Keys[1].CertSerial.Big().Cmp(c2.SerialNumber) != 0 || h.Keys[1].CertIssuerID != "ica-test" || string(h.Keys[1].KeyID) != "k2" {
		t.Errorf("key 2 %+v", h.Keys[1])
	}
	_, err = w.r.DeviceAsOf(ctx, "SN-404", t0)
	wantErr(t, err, ErrNotFound, `"SN-404"`)
}

func TestSetKeyState(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, _ := w.register(t, "SN-1", t0)
	fpr := nd.Key.PublicKeySHA256
	steps := []struct {
		state  KeyState
		at     time.Time
		target error
		want   []string
	}{
		{KeyDestroyed, t0.Add(time.Hour), ErrConflict, []string{"active key to become destroyed"}},
		{KeyPreActivation, t0.Add(time.Hour), ErrConflict, []string{"active", "pre-activation"}},
		{KeyDeactivated, t0.Add(-time.Hour), ErrConflict, []string{"since"}},
		{"lost", t0.Add(time.Hour), ErrInvalid, []string{`"lost"`}},
		{KeyDeactivated, t0.Add(time.Hour), nil, nil},
		{KeyActive, t0.Add(2 * time.Hour), ErrConflict, []string{"deactivated"}},
		{KeyCompromised, t0.Add(3 * time.Hour), nil, nil},
		{KeyDestroyed, t0.Add(4 * time.Hour), nil, nil},
		{KeyCompromised, t0.Add(5 * time.Hour), ErrConflict, []string{"destroyed"}},
	}
	for i, s := range steps {
		err := w.r.SetKeyState(ctx, "SN-1", fpr, s.state, s.at, "test")
		if s.target != nil {
			s.want = append(s.want, `"SN-1"`)
		}
		wantErr(t, err, s.target, s.want...)
		if t.Failed() {
			t.Fatalf("step %d", i)
		}
	}
	wantErr(t, w.r.SetKeyState(ctx, "SN-1", [32]byte{1}, KeyDestroyed, t0, ""), ErrNotFound, `"SN-1"`, "no such key")
	h, _ := w.r.DeviceHistory(ctx, "SN-1")
	if len(h.Keys[0].History) != 5 || h.Keys[0].State != KeyDestroyed {
		t.Errorf("history %+v", h.Keys[0].History)
	}
}

func TestKeyStateTransitions(t *testing.T) {
	all := []KeyState{KeyPreActivation, KeyActive, KeyDeactivated, KeyCompromised, KeyDestroyed}
	allowed := map[[2]KeyState]bool{
		{KeyPreActivation, KeyActive}: true, {KeyPreActivation, KeyCompromised}: true, {KeyPreActivation, KeyDestroyed}: true,
		{KeyActive, KeyDeactivated}: true, {KeyActive, KeyCompromised}: true,
		{KeyDeactivated, KeyCompromised}: true, {KeyDeactivated, KeyDestroyed}: true,
		{KeyCompromised, KeyDestroyed}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := from.CanBecome(to); got != allowed[[2]KeyState{from, to}] {
				t.Errorf("%s -> %s: %v", from, to, got)
			}
		}
	}
	if got := KeyActive.pathTo(KeyDestroyed); !reflect.DeepEqual(got, []KeyState{KeyDeactivated, KeyDestroyed}) {
		t.Errorf("active to destroyed goes through %v", got)
	}
	if statesThatReach(KeyDestroyed) != "'pre-activation', 'active', 'deactivated', 'compromised'" {
		t.Errorf("states that reach destroyed: %s", statesThatReach(KeyDestroyed))
	}
}
