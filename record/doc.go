// Package record keeps the evidence of every run: the journal, a hash-chained JSON-lines file
// per run in which each step is written (and synced) as begun before it acts and as done or
// failed after, so a run that stopped is found (OpenSteps) and its trail cannot be edited
// unnoticed; and the signed PDF records built from it, a ceremony record, a certificate of
// sanitization or a module check, with the journal attached, signed with a certification
// signature by the record signer (a crypto.Signer, on the operations token in practice).
// Verify and VerifyJournal check a record or a bare journal as an auditor would, with nothing
// but the file and the roots.
//
// Each entry's payload is the JSON object of one Go struct per kind of entry, written with
// Encode (a journal refuses anything but a struct) and read back with Decode; Flatten shows
// any payload as "key: value" lines, as a record's step table does. A journal remembers its
// first failed write: every later entry is refused, so nothing is ever chained onto a line
// that may be torn.
//
// The package sees keys only as crypto.Signer and never imports hsm, so the auditor's
// verifier builds without cgo.
package record
