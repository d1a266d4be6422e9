package decommission

import (
	"context"
	"fmt"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// A decommission failing at each PKCS#11 call in turn ends with a clear error and a journal
// that names the failed step; resume (after a verified erasure) or abort and a new attempt
// brings every case to a decommissioned device with nothing left on its token.
func TestDecommissionFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	req := func(serial string) Request {
		return Request{Serial: serial, Method: Erase, Technician: "Tess", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	}
	log := &hsm.CallLog{}
	f.provision(t, "COUNT")
	f.env.HSMOptions = []hsm.Option{hsm.WithFault(log.Fault)}
	if _, err := Decommission(ctx, f.env, req("COUNT")); err != nil {
		t.Fatal(err)
	}
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the sweep in -short", calls)
	}
	for k := 1; k <= calls; k++ {
		serial := fmt.Sprintf("F-%03d", k)
		f.env.HSMOptions = nil
		p := f.provision(t, serial)
		f.env.HSMOptions = []hsm.Option{hsm.WithFault(hsm.FailCall(k, 0x30))}
		_, err := Decommission(ctx, f.env, req(serial))
		f.env.HSMOptions = nil
		if err == nil {
			continue
		}
		if err.Error() == "" {
			t.Fatalf("call %d: empty error", k)
		}
		runs, _ := f.env.Registry.UnfinishedRuns(ctx)
		for _, r := range runs {
			jf, jerr := record.ReadJournalFile(r.JournalPath)
			if jerr != nil {
				t.Fatalf("call %d: journal: %v", k, jerr)
			}
			failed := false
			for _, e := range jf.Entries {
				failed = failed || e.Status == record.StatusFailed
			}
			if !failed {
				t.Errorf("call %d: the journal of %s names no failed step", k, r.ID)
			}
			if _, rerr := Resume(ctx, f.env, r.ID, []byte(opsPIN), []byte(devPIN)); rerr != nil {
				if _, aerr := Abort(ctx, f.env, r.ID); aerr != nil {
					t.Fatalf("call %d: abort: %v", k, aerr)
				}
			}
		}
		if dev, _ := f.env.Registry.Device(ctx, serial); dev.Status != registry.DeviceDecommissioned {
			if _, err := Decommission(ctx, f.env, req(serial)); err != nil {
				t.Fatalf("call %d: a new attempt after the fault: %v", k, err)
			}
		}
		// Nothing of the device identity is left on its token.
		m, _ := hsm.Open(f.hsm.ModulePath)
		s, err := m.OpenSession(ctx, p.Token)
		if err == nil {
			s.Login(ctx, hsm.User, []byte(devPIN))
			if left, _ := s.Remaining(ctx, p.KeyID, ""); len(left) > 0 {
				t.Errorf("call %d: left on the token: %v", k, left)
			}
			s.Logout(ctx)
			s.Close()
		}
		m.Close()
	}
	t.Logf("injected %d faults into a decommission", calls)
}
