// Package decommission retires medical devices: it proves a device is the one registered,
// erases its keys on its key store (a PKCS#11 token), verifies the erasure, revokes its
// certificates, signs a new CRL with the issuing CA and leaves a signed destruction record.
// One device (Decommission), or a fleet from a manifest (Fleet). It also provisions and
// imports devices, as the factory does at key injection, and signs an issuing CA's CRL.
//
// Every run works in a run.Env and is a run.Run: each step that changes a token or the
// registry is journaled as begun before it acts and as done (with its payload, defined in
// journal.go) after, so a run that stops half way is found, resumed or aborted through
// Handler. The methods (Methods), their consequences, the reasons each may give (Reasons) and
// the steps each goes through (Steps) are this package's rules; screens ask for them. Errors
// about a request's field are *run.FieldError, naming the field, never a front end's control.
//
// # Secrets
//
// The owner zeroes: the operator and device PINs in a request stay the caller's, who zeroes
// them after the call; nothing here zeroes or keeps them.
package decommission
