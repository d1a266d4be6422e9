package registry

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

func TestRegisterAndFindDevice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	nd, c := w.register(t, "SN-0001", t0)
	d, err := w.r.Device(ctx, "SN-0001")
	if err != nil {
		t.Fatal(err)
	}
	want := Device{Serial: "SN-0001", Model: "InfusionPump X2", Owner: "St. Mary", Site: "Ward 3", IssuerID: "ica-test",
		Status: DeviceActive, RegisteredAt: t0}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Device = %+v, want %+v", d, want)
	}
	byCert, cert, err := w.r.DeviceByCertificate(ctx, sha256.Sum256(c.Raw))
	if err != nil || byCert.Serial != "SN-0001" || cert.Serial.Big().Cmp(c.SerialNumber) != 0 || cert.DeviceSerial != "SN-0001" ||
		!cert.NotBefore.Equal(c.NotBefore) || !cert.NotAfter.Equal(c.NotAfter) || string(cert.DER) != string(c.Raw) || cert.Subject != c.Subject.String() {
		t.Errorf("DeviceByCertificate: %+v %+v %v", byCert, cert, err)
	}
	_, _, err = w.r.DeviceByCertificate(ctx, sha256.Sum256([]byte("x")))
	wantErr(t, err, ErrNotFound, "certificate SHA-256")

	other, _ := w.newDevice(t, "SN-0002", t0)
	tests := []struct {
		name   string
		edit   func(d *NewDevice)
		target error
		want   []string
	}{
		{"same serial", func(d *NewDevice) { d.Device.Serial = "SN-0001" }, ErrExists, []string{`"SN-0001"`}},
		{"same certificate", func(d *NewDevice) { d.Certificate = nd.Certificate }, ErrExists, []string{nd.Certificate.Serial.String(), `"ica-test"`}},
		{"unknown issuer", func(d *NewDevice) { d.Device.IssuerID, d.Certificate.IssuerID = "ica-none", "ica-none" }, ErrNotFound, []string{`"ica-none"`}},
		{"root as issuer", func(d *NewDevice) { d.Device.IssuerID, d.Certificate.IssuerID = "acme-root-2026", "acme-root-2026" }, ErrInvalid, []string{"root"}},
		{"empty serial", func(d *NewDevice) { d.Device.Serial = "" }, ErrInvalid, []string{"device serial"}},
		{"serial with spaces", func(d *NewDevice) { d.Device.Serial = " SN-0002" }, ErrInvalid, []string{`" SN-0002"`}},
		{"no key fingerprint", func(d *NewDevice) { d.Key.PublicKeySHA256 = [32]byte{} }, ErrInvalid, []string{"fingerprint"}},
		{"leading zero serial", func(d *NewDevice) { d.Certificate.Serial = SerialNumber{0, 1} }, ErrInvalid, []string{"leading zero"}},
		{"validity backwards", func(d *NewDevice) { d.Certificate.NotAfter = d.Certificate.NotBefore }, ErrInvalid, []string{"validity"}},
		{"generated after use", func(d *NewDevice) { d.Key.GeneratedAt = d.Key.ActivatedAt.Add(time.Hour) }, ErrInvalid, []string{"generated"}},
		{"other issuer's certificate", func(d *NewDevice) { d.Certificate.IssuerID = "acme-root-2026" }, ErrInvalid, []string{`"acme-root-2026"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := other
			tc.edit(&d)
			err := w.r.RegisterDevice(ctx, d)
			wantErr(t, err, tc.target, append(tc.want, fmt.Sprintf("%q", d.Device.Serial))...)
		})
	}
	if n, _ := w.r.CountDevices(ctx, ""); n != 1 {
		t.Errorf("%d devices after refused registrations", n)
	}
	_, err = w.r.Device(ctx, "SN-404")
	wantErr(t, err, ErrNotFound, `"SN-404"`)
}

func TestImportIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var batch []NewDevice
	for i := 0; i < 5; i++ {
		d, _ := w.newDevice(t, fmt.Sprintf("SN-%03d", i), t0)
		batch = append(batch, d)
	}
	streamErr := errors.New("PEM file 4 is unreadable")
	n, err := w.r.ImportDevices(ctx, func(yield func(NewDevice, error) bool) {
		for i, d := range batch {
			if i == 3 {
				yield(NewDevice{}, streamErr)
				return
			}
			if !yield(d, nil) {
				return
			}
		}
	})
	if !errors.Is(err, streamErr) || n != 0 {
		t.Fatalf("import with a failing stream: %d, %v", n, err)
	}
	dup := append(append([]NewDevice{}, batch...), batch[1])
	n, err = w.r.ImportDevices(ctx, slice2(dup))
	wantErr(t, err, ErrExists, `"SN-001"`)
	if c, _ := w.r.CountDevices(ctx, ""); c != 0 || n != 0 {
		t.Fatalf("failed imports left %d devices", c)
	}
	n, err = w.r.ImportDevices(ctx, slice2(batch))
	if err != nil || n != 5 {
		t.Fatalf("import: %d, %v", n, err)
	}
	if c, _ := w.r.CountDevices(ctx, DeviceActive); c != 5 {
		t.Fatalf("%d active devices", c)
	}
}

func slice2[T any](s []T) func(func(T, error) bool) {
	return func(yield func(T, error) bool) {
		for _, v := range s {
			if !yield(v, nil) {
				return
			}
		}
	}
}

func TestListDevices(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// A second issuing CA, so the issuer filter has something to leave out.
	ica2 := newSubCA(t, w.root, "Acme Device CA 2")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-two", Kind: IssuerIssuing, Certificate: ica2.cert.Raw, ParentID: "acme-root-2026",
		CeremonyID: "acme-root-2026", Key: opsKey(2)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.register(t, fmt.Sprintf("SN-%02d", i), t0)
	}
	c := leaf(t, ica2, "SN-99", t0, t0.AddDate(1, 0, 0))
	cert, _ := CertificateFromX509("ica-two", c)
	if err := w.r.RegisterDevice(ctx, NewDevice{Device: Device{Serial: "SN-99", Model: "m", IssuerID: "ica-two"}, Certificate: cert,
		Key: DeviceKey{PublicKeySHA256: PublicKeySHA256(c)}}); err != nil {
		t.Fatal(err)
	}
	w.startRun(t, "run-1", "fleet")
	for _, s := range []string{"SN-02", "SN-05", "SN-07"} {
		if _, err := w.r.DecommissionDevice(ctx, Decommission{RunID: "run-1", DeviceSerial: s, Method: "unreachable",
			Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	serials := func(q DeviceQuery) []string {
		var out []string
		for d, err := range w.r.ListDevices(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			if q.Status != "" && d.Status != q.Status {
				t.Errorf("%s is %s in a list of %s devices", d.Serial, d.Status, q.Status)
			}
			out = append(out, d.Serial)
		}
		return out
	}
	tests := []struct {
		name string
		q    DeviceQuery
		want []string
	}{
		{"all", DeviceQuery{}, []string{"SN-00", "SN-01", "SN-02", "SN-03", "SN-04", "SN-05", "SN-06", "SN-07", "SN-08", "SN-09", "SN-99"}},
		{"decommissioned", DeviceQuery{Status: DeviceDecommissioned}, []string{"SN-02", "SN-05", "SN-07"}},
		{"active", DeviceQuery{Status: DeviceActive}, []string{"SN-00", "SN-01", "SN-03", "SN-04", "SN-06", "SN-08", "SN-09", "SN-99"}},
		{"first page", DeviceQuery{Status: DeviceActive, Limit: 3}, []string{"SN-00", "SN-01", "SN-03"}},
		{"second page", DeviceQuery{Status: DeviceActive, After: "SN-03", Limit: 3}, []string{"SN-04", "SN-06", "SN-08"}},
		{"last page", DeviceQuery{Status: DeviceActive, After: "SN-08", Limit: 3}, []string{"SN-09", "SN-99"}},
		{"by issuer", DeviceQuery{IssuerID: "ica-two"}, []string{"SN-99"}},
		{"by issuer and status", DeviceQuery{IssuerID: "ica-test", Status: DeviceDecommissioned, After: "SN-02"}, []string{"SN-05", "SN-07"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serials(tc.q); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Stopping early releases the connection: the registry still writes and closes.
	for range w.r.ListDevices(ctx, DeviceQuery{}) {
		break
	}
	if err := w.r.SetSetting(ctx, "after-break", "ok"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []DeviceQuery{{Status: "retired"}, {IssuerID: "ica-none"}} {
		for _, err := range w.r.ListDevices(ctx, q) {
			if err == nil {
				t.Errorf("%+v: no error", q)
			}
		}
	}
	for status, want := range map[DeviceStatus]int64{"": 11, DeviceActive: 8, DeviceDecommissioned: 3} {
		if n, err := w.r.CountDevices(ctx, status); n != want || err != nil {
			t.Errorf("CountDevices(%q) = %d, %v", status, n, err)
		}
	}
}
