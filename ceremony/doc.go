// Package ceremony runs the root key ceremony and every later operation on the root under
// its quorum, on real tokens: the plan (Plan, ParsePlan), the ceremony itself (Root), the
// quorum operations (IssueCA, RootCRL, Reshare, Restore, Destroy), shares on a custodian's
// own token, and the stopped runs (Resume, Abort).
//
// Each operation is a journaled run of steps: a step is journaled before it starts and when
// it ends, and a failed step undoes what the run made on the tokens, so the tokens, the
// registry and the journal always agree. The people at the workstation are reached through
// Participants (the window and the command line implement it); quorum operations take the
// custodians' shares in a quorum.Collector from LoadQuorum, and check it against the
// registry again before the secret is rebuilt. The arithmetic of the quorum (secret, shares,
// commitments, derived PINs and KEK) is package quorum's; this package decides which token
// gets which PIN, when, and what is journaled.
//
// # Secrets
//
// The quorum secret and everything derived from it live in the run that made or rebuilt
// them and are zeroed by it when the run ends, whatever the outcome (package quorum's rule:
// the owner zeroes). PINs in a request (an operator PIN, a custodian's PIN) are zeroed by
// the operation they are given to, as each one's documentation says.
package ceremony
