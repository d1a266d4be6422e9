// Package ceremony runs the root key ceremony and every later operation on the root under
// its quorum, on real tokens: the plan (Plan, ParsePlan), the ceremony itself (Root), the
// quorum operations (IssueCA, RootCRL, Reshare, Restore, Destroy), shares on a custodian's
// own token, and its stopped runs (Handler).
//
// Each operation is a run.Run of steps: a step is journaled before it starts and when it
// ends, with a payload defined in journal.go, and a failed step undoes what the run made on
// the tokens, so the tokens, the registry and the journal always agree. A run has its own id;
// a root's id is its plan's. Stopped runs cannot resume (their secret died with them);
// Handler aborts them. The steps of each operation (RootSteps, Steps) and the reasons a root
// CRL gives (RootCRLReasons) are this package's rules, which screens ask for. Errors about a
// request's field are *run.FieldError, never a front end's flag.
//
// The people at the workstation are reached through Participants (the window and the command
// line implement it); quorum operations take the custodians' shares in a quorum.Collector
// from LoadQuorum, and check it against the registry again before the secret is rebuilt.
// The arithmetic of the quorum (secret, shares, commitments, derived PINs and KEK) is package
// quorum's; this package decides which token gets which PIN, when, and what is journaled.
//
// # Secrets
//
// The owner zeroes (see internal/secret). The quorum secret and everything derived from it
// live in the run that made or rebuilt them and are zeroed by it when the run ends, whatever
// the outcome. The shares in a quorum.Collector and the PINs in a request (an operator PIN, a
// custodian's PIN) stay the caller's: an operation uses them for the call and never zeroes or
// keeps them; the caller wipes the collector and zeroes the PINs after.
package ceremony
