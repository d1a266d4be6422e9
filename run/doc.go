// Package run is what the ceremony and decommission workflows share, so each is written once:
//
//   - Env, the environment a run works in: the locked workspace and its registry (Open), the
//     PKCS#11 module to load (ModulePath, OpenModule; the workspace remembers its module with
//     SaveModule), fault-injecting HSM options for tests, the clock, and the Progress sink
//     that hears every step.
//   - Run, one run: its id (NewID, DerivedID), its hash-chained journal, its registry entry
//     (Start, StartRun, Continue, Finish), and its steps (Step journals a step begun before it
//     acts and done or failed after, and tells Progress one Event). Where its journal and
//     record are is said once, by Env.JournalPath and Env.RecordPath.
//   - The keys on the operations token, opened with the operator PIN (OpenIssuer,
//     OpenRecordSigner), a token's RNG as an io.Reader (TokenRand), and CRL signing (SignCRL).
//   - Stopped runs: Handlers list the runs that stopped half way with the step each stopped
//     in, and resume or abort them. Each workflow provides the Handler of its run kinds; the
//     front end passes those in, and holds no rule of its own.
//   - FieldError, a workflow's error about one field of its request, which front ends map to
//     their own names for it (a flag, a form field).
//   - The journal payloads both workflows write (KeyIntent, TokenIntent, RolledBack, Aborted,
//     Resumed). Every payload is a struct, encoded by record.Encode and read by record.Decode.
//
// # Secrets
//
// The owner zeroes: a function never zeroes a PIN or secret it is given, and whoever made or
// read one zeroes it when done (see internal/secret). PINs are kept only for the call.
package run
