package record

// DeviceTable is a fleet's Devices table, laid out as the devices' results come, ahead of the
// rest of its certificate of sanitization: on two cores a fleet's pages are drawn while the
// fleet is being retired, not after. The certificate's first pages come before the table's
// and its last ones follow the table's last row (WriteDestruction, with Destruction.Table);
// the page numbers and the journal's hash in every footer are filled in at assembly. A
// DeviceTable is used by one goroutine at a time.
type DeviceTable struct {
	d     *doc
	size  int // the fleet's devices, each with a row
	added int
	first DeviceRow // a fleet of one names its device in the summary
}

// NewDeviceTable begins the Devices table of record id, for a fleet of size devices. Its
// finished pages are spooled to a file in dir, the record's folder, unlinked at once.
func NewDeviceTable(id string, size int, dir string) *DeviceTable {
	d := newDoc(id, destructionTitle(size))
	d.spoolDir = dir
	d.newPage()
	d.heading("Devices")
	d.startTable(deviceColumns)
	return &DeviceTable{d: d, size: size}
}

// Add draws the next device's row.
func (t *DeviceTable) Add(dv DeviceRow) {
	if t.added == 0 {
		t.first = dv
	}
	t.added++
	t.d.deviceRow(dv)
}

// Stop lets go of a table no record will hold. It does nothing to a table a record holds.
func (t *DeviceTable) Stop() { t.d.stop() }
