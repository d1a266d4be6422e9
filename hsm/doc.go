// Package hsm is Custos's whole PKCS#11 layer: tokens, sessions, key pairs, a
// crypto.Signer for keys that never leave the token, certificates and data objects on the
// token, destruction with a check of what remains, key backup by wrapping, and the token's
// random number generator. It is written over github.com/miekg/pkcs11 and hides object
// handles and attribute templates: every template Custos uses is in this package, so the
// protection a key gets is decided here once.
//
// A session of use:
//
//	m, err := hsm.Open("/usr/lib/softhsm/libsofthsm2.so")
//	defer m.Close()
//	s, err := m.OpenSession(ctx, "acme-ops")
//	err = s.Login(ctx, hsm.User, pin)
//	key, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP384, ID: id, Label: "issuing CA"})
//	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), key)
//
// # Tokens are found by label
//
// Slot ids are not stable: SoftHSM2, for one, moves an initialised token to a slot id
// derived from its serial the next time the module is initialised. Custos remembers a
// token's label (and serial), and looks the slot up each time (Module.TokenByLabel).
//
// # Backups and the trusted key-encryption key
//
// A key that may be backed up is generated with CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED,
// so the token lets it out only wrapped under a key marked CKA_TRUSTED, which only the
// security officer can set. Session.BackupKey has the SO import the key-encryption key as
// a trusted session object, then logs the user in on the same session to wrap, and
// destroys the key-encryption key: it is never stored on the token, and no other key on
// the token can wrap the backed-up key out. Session.RestoreKey unwraps into another token.
//
// # Errors
//
// Every error is an *Error naming the operation and the token, with the PKCS#11 return
// value by name and a sentence on what to do, and wraps one of the Err sentinels for
// errors.Is: a wrong PIN (with what the token's flags say about tries left), a locked PIN,
// a removed token, an unsupported mechanism, and so on.
//
// # Concurrency and process-wide state
//
// PKCS#11 initialisation is process-wide, so Modules opened on the same library share one
// initialised context, counted, finalised by the last Close. Login state is per token for
// the whole process, shared by all its sessions. A Session serialises its own calls, so
// it and its Signers may be used from several goroutines.
//
// # Secrets
//
// PINs and key-encryption keys are passed as []byte, lent to the module for the call only
// and never kept or logged; the caller zeroes them afterwards.
//
// # Builds without PKCS#11
//
// github.com/miekg/pkcs11 needs cgo, so everything that touches a module is built only with
// cgo and without the nopkcs11 tag. Other builds (CGO_ENABLED=0, or -tags nopkcs11, such as
// the auditor's static verifier) get the same API, in which Open fails with ErrNoPKCS11: the
// packages that import hsm still build, and say plainly that this build cannot reach a
// token. The values the package takes and returns (types.go), its errors and its faults need
// no module and are the same in both builds.
//
// # Fault injection
//
// Every call to the module goes through a small interface. Open with WithFault to have a
// function consulted before each call, which can fail it; FailCall, RemoveToken and
// CallLog are ready-made faults for tests of the workflows' error paths on real tokens.
package hsm
