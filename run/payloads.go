package run

import "github.com/custos-pki/custos/record"

// The journal entries both workflows write, and their payloads. Each workflow's own entries
// are defined beside it (ceremony/journal.go, decommission/journal.go).
const (
	// StepKeyIntent is noted before a key is generated on a token, with the key's id: a run
	// killed during generation leaves a key that abort can find and destroy.
	StepKeyIntent = "key.intent"
	// StepTokenIntent is noted before a run initialises a token it will need afterwards.
	StepTokenIntent = "token.intent"
	// StepAbort is the last entry of an aborted run.
	StepAbort = "run.abort"
	// StepResume is noted when a stopped run is taken up again.
	StepResume = "run.resume"
	// StepStaleClock is noted when a stopped run is taken up more than StaleClockGap after its
	// last entry.
	StepStaleClock = "run.stale-clock"
)

// StaleClock is the payload of StepStaleClock: the clock as read and the warning given.
type StaleClock struct {
	Clock   ClockReading `json:"clock"`
	Warning string       `json:"warning"`
}

// KeyIntent is the payload of StepKeyIntent.
type KeyIntent struct {
	Token string     `json:"token"`
	KeyID record.Hex `json:"key_id"`
}

// TokenIntent is the payload of StepTokenIntent.
type TokenIntent struct {
	Token string `json:"token"`
	Role  string `json:"role"` // "operations"
}

// RolledBack is the payload of a rollback note: one thing a failed run undid, and how that
// went.
type RolledBack struct {
	Undone string `json:"undone"`
}

// Aborted is the payload of StepAbort: what the abort cleaned away and what is left.
type Aborted struct {
	Summary   string   `json:"summary"`
	Done      []string `json:"done,omitempty"`
	Remaining []string `json:"remaining,omitempty"`
}

// Resumed is the payload of StepResume.
type Resumed struct {
	Note string `json:"note,omitempty"`
}
