package record

// MaxFileSize is the largest record or journal file that verify reads: 512 MiB, refused
// from its size before a byte is read. The largest record Custos writes is a fleet's, which
// lists every device: 25 MB for 100,000 devices (about 250 bytes a device, measured), so
// about 250 MB for a fleet of a million; the limit leaves twice that. Verifying takes about
// 2.6 times the file in memory (65 MB for the 25 MB record).
const MaxFileSize = 512 << 20
