package decommission

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// A decommission failing at each PKCS#11 call in turn (and again with the token pulled before
// each call) ends with a clear error and a journal that names the failed step; resume, or
// abort and a new attempt, brings every case to a decommissioned device with nothing left on
// its token. The device token of each round is deleted after it, so every round makes the
// same calls.
func TestDecommissionFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	req := func(serial string) Request {
		return Request{Serial: serial, Method: Erase, Technician: "Tess", Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	}
	resumed, aborted := 0, 0
	calls := faultSweep(t, f, "F", func(serial string) error {
		_, err := Decommission(ctx, f.env, req(serial))
		return err
	}, func(p *Provisioned, _ error, what string) {
		runs, _ := f.env.Registry.UnfinishedRuns(ctx)
		for _, r := range runs {
			if _, rerr := handlers.Resume(ctx, f.env, r.ID, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)}); rerr == nil {
				resumed++
				continue
			}
			if _, aerr := handlers.Abort(ctx, f.env, r.ID, run.PINs{}); aerr != nil {
				t.Fatalf("%s: abort: %v", what, aerr)
			}
			aborted++
		}
		if dev, _ := f.env.Registry.Device(ctx, p.Serial); dev.Status != registry.DeviceDecommissioned {
			if _, err := Decommission(ctx, f.env, req(p.Serial)); err != nil {
				t.Fatalf("%s: a new attempt after the fault: %v", what, err)
			}
		}
		// Nothing of the device identity is left on its token.
		m, _ := hsm.Open(f.hsm.ModulePath)
		s, err := m.OpenSession(ctx, p.Token)
		if err == nil {
			s.Login(ctx, hsm.User, []byte(devPIN))
			if left, _ := s.Remaining(ctx, p.KeyID, ""); len(left) > 0 {
				t.Errorf("%s: left on the token: %v", what, left)
			}
			s.Logout(ctx)
			s.Close()
		}
		m.Close()
	})
	t.Logf("injected %d faults (%d calls, failed or with the token pulled) into a decommission: %d runs resumed, %d aborted and done again", 2*calls, calls, resumed, aborted)
}

// faultSweep runs do on a new device (named prefix-NNN) once with a call log, to count its
// PKCS#11 calls, then once for each call failed and once for the token pulled before each
// call. After each faulted round it checks that the journal of every run left unfinished
// names a failed step and that the error is not empty, then calls after with the device, the
// error and what was injected. Each round's token is deleted after it, and a last round must
// make the same calls as the first. It returns the number of calls; in -short it skips the
// sweep.
func faultSweep(t *testing.T, f *fixture, prefix string, do func(serial string) error, after func(p *Provisioned, err error, what string)) int {
	t.Helper()
	ctx := context.Background()
	round := func(i int, fault hsm.Fault) (*Provisioned, error) {
		p := f.provision(t, fmt.Sprintf("%s-%03d", prefix, i))
		f.env.HSMOptions = []hsm.Option{hsm.WithFault(fault)}
		err := do(p.Serial)
		f.env.HSMOptions = nil
		return p, err
	}
	log := &hsm.CallLog{}
	p, err := round(0, log.Fault)
	if err != nil {
		t.Fatal(err)
	}
	deleteToken(t, p)
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the sweep in -short", calls)
	}
	for i := 1; i <= 2*calls; i++ {
		k, fault, what := i, hsm.FailCall(i, 0x30), "call %d failed"
		if i > calls {
			k, fault, what = i-calls, hsm.RemoveToken(i-calls), "token pulled before call %d"
		}
		what = fmt.Sprintf(what, k)
		p, err := round(i, fault)
		if err != nil && err.Error() == "" {
			t.Fatalf("%s: empty error", what)
		}
		runs, _ := f.env.Registry.UnfinishedRuns(ctx)
		for _, r := range runs {
			jf, jerr := record.ReadJournalFile(r.JournalPath)
			if jerr != nil {
				t.Fatalf("%s: journal: %v", what, jerr)
			}
			named := false
			for _, e := range jf.Entries {
				named = named || e.Status == record.StatusFailed
			}
			if !named {
				t.Errorf("%s: the journal of %s names no failed step", what, r.ID)
			}
		}
		after(p, err, what)
		deleteToken(t, p)
	}
	log = &hsm.CallLog{}
	p, err = round(2*calls+1, log.Fault)
	if err != nil || log.Count() != calls {
		t.Errorf("a last round made %d calls (%v), the first %d: the rounds differ", log.Count(), err, calls)
	}
	deleteToken(t, p)
	return calls
}

// deleteToken removes a device's SoftHSM token, so that the next round of a sweep sees the
// same tokens as the first.
func deleteToken(t *testing.T, p *Provisioned) {
	t.Helper()
	if out, err := exec.Command("softhsm2-util", "--delete-token", "--token", p.Token).CombinedOutput(); err != nil {
		t.Fatalf("delete %s: %v %s", p.Token, err, out)
	}
}

// A fleet erasing a device, failing at each PKCS#11 call in turn (and again with the token
// pulled before each call), then run again without the
// fault: the device ends either decommissioned with nothing of its identity on its token, or
// not decommissioned with its identity whole (so it can still be decommissioned); never half
// erased and left behind. The device tokens of each round are deleted after it, so that every
// round makes the same calls.
func TestFleetFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	fleet := func(k int, opts ...hsm.Option) (*Provisioned, *Manifest, string, error) {
		p := f.provision(t, fmt.Sprintf("FF-%03d", k))
		text := "serial,method,reason,note\n" + p.Serial + ",erase,,\n"
		path := writeFile(t, filepath.Join(f.dir, fmt.Sprintf("fleet-%03d.csv", k)), text)
		m, err := ParseManifest(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		f.env.HSMOptions = opts
		_, err = Fleet(ctx, f.env, m, FleetRequest{ManifestPath: path, Technician: "T", Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
		f.env.HSMOptions = nil
		return p, m, path, err
	}
	log := &hsm.CallLog{}
	p, _, _, err := fleet(0, hsm.WithFault(log.Fault))
	if err != nil {
		t.Fatal(err)
	}
	deleteToken(t, p)
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the sweep in -short", calls)
	}
	stopped, failedWhole := 0, 0
	for i := 1; i <= 2*calls; i++ {
		// Each call fails in turn, then the token is pulled before each call in turn.
		k, fault := i, hsm.FailCall(i, 0x30)
		if i > calls {
			k = i - calls
			fault = hsm.RemoveToken(k)
		}
		p, m, path, err := fleet(i, hsm.WithFault(fault))
		if err != nil {
			stopped++
		}
		// Again without the fault: it resumes a stopped run, and changes nothing in a complete one.
		if _, err := Fleet(ctx, f.env, m, FleetRequest{ManifestPath: path, Technician: "T", Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
			t.Fatalf("call %d: the fleet again: %v", k, err)
		}
		mod, err := hsm.Open(f.hsm.ModulePath)
		if err != nil {
			t.Fatal(err)
		}
		dev, _ := f.env.Registry.Device(ctx, p.Serial)
		s, err := mod.OpenSession(ctx, p.Token)
		if err != nil {
			t.Fatalf("call %d: %s: %v", k, p.Token, err)
		}
		s.Login(ctx, hsm.User, []byte(devPIN))
		left, _ := s.Remaining(ctx, p.KeyID, "")
		s.Logout(ctx)
		s.Close()
		mod.Close()
		switch {
		case dev.Status == registry.DeviceDecommissioned && len(left) > 0:
			t.Errorf("call %d: %s decommissioned, but its token keeps %v", k, p.Serial, left)
		case dev.Status != registry.DeviceDecommissioned && len(left) != 3:
			t.Errorf("call %d: %s left %s with its identity half erased: %v", k, p.Serial, dev.Status, left)
		case dev.Status != registry.DeviceDecommissioned:
			failedWhole++
		}
		deleteToken(t, p)
	}
	// Every round made the same calls, or the sweep missed some.
	log = &hsm.CallLog{}
	p, _, _, err = fleet(2*calls+1, hsm.WithFault(log.Fault))
	if err != nil || log.Count() != calls {
		t.Errorf("a last round made %d calls (%v), the first %d: the rounds differ", log.Count(), err, calls)
	}
	deleteToken(t, p)
	t.Logf("injected %d faults (%d calls, failed or with the token pulled) into a fleet erasure: %d runs stopped and were finished by running again, %d devices failed whole (to be decommissioned again)", 2*calls, calls, stopped, failedWhole)
}
