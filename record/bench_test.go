package record

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/custos-pki/custos/internal/procstat"
)

// fleetRow is row i of a fleet of unreachable devices.
func fleetRow(i int) DeviceRow {
	return DeviceRow{Serial: fmt.Sprintf("DEV-%07d", i), Model: "Infusion pump X2", Method: "unreachable",
		CertSerials: fmt.Sprintf("01%08x5aa5%022x", i, i*7919), Verification: "not sanitized by Custos: the witness Wes Witness attests the device is unreachable",
		Reason:  fmt.Sprintf("keyCompromise; compromised at 2026-12-01T10:%02d:00Z (the run's time)", i/2000),
		Outcome: "decommissioned", Destination: "destroyed", UDI: fmt.Sprintf("(01)00850012%06d(21)DEV-%07d", i%1000000, i)}
}

// BenchmarkFleetRecord100k lays out, assembles and signs the certificate of sanitization of
// a fleet of 100,000 devices: the record part of BenchmarkFleet100k (package decommission),
// without the registry.
func BenchmarkFleetRecord100k(b *testing.B) {
	const n = 100_000
	s, _ := testSigner(b, "Acme")
	journal := testJournal(b, 3)
	dir := b.TempDir()
	meter := procstat.Start(b)
	i := 0
	for b.Loop() {
		t := NewDeviceTable("fleet-bench", n, dir)
		for i := range n {
			t.Add(fleetRow(i))
		}
		r := &Destruction{ID: "fleet-bench", Outcome: fmt.Sprintf("%d decommissioned", n), Technician: "Tess Tech", Witness: "Wes Witness",
			Validator: "Vic Validator", Issuer: "ica-1 (Acme Devices CA 1)", Manufacturer: "Acme Medical",
			Table: t, Results: ready(Pack([]byte("serial\n")))}
		i++
		if err := WriteDestruction(context.Background(), filepath.Join(dir, fmt.Sprintf("r%d.pdf", i)), r, journal, s); err != nil {
			b.Fatal(err)
		}
	}
	meter.Report(b)
}
