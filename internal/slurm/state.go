// Package slurm talks to SLURM: it renders sbatch scripts, submits them, follows job states
// through sacct (or squeue where accounting is off), cancels jobs, and hosts the files through
// which a serving job and its inference jobs meet.
package slurm

import "strings"

// State is a job state as SLURM prints it, in its long form ("RUNNING", "CANCELLED").
// ParseState maps squeue's short forms ("R", "CA") to the long ones. A state this package does
// not know keeps the text SLURM printed: it is neither Done nor Active, and Known reports false,
// so a caller never mistakes it for a state it is not.
type State string

// The states of sacct(1) and squeue(1) (Slurm 22.05 and later).
const (
	StatePending     State = "PENDING"
	StateConfiguring State = "CONFIGURING"
	StateRunning     State = "RUNNING"
	StateCompleting  State = "COMPLETING"
	StateRequeued    State = "REQUEUED"
	StateResizing    State = "RESIZING"
	StateSuspended   State = "SUSPENDED"
	StatePreempted   State = "PREEMPTED"
	StateCompleted   State = "COMPLETED"
	StateFailed      State = "FAILED"
	StateCancelled   State = "CANCELLED"
	StateTimeout     State = "TIMEOUT"
	StateNodeFail    State = "NODE_FAIL"
	StateOutOfMemory State = "OUT_OF_MEMORY"
	StateBootFail    State = "BOOT_FAIL"
	StateDeadline    State = "DEADLINE"
	StateRevoked     State = "REVOKED"
	StateRequeueFed  State = "REQUEUE_FED"
	StateRequeueHold State = "REQUEUE_HOLD"
	StateResvDelHold State = "RESV_DEL_HOLD"
	StateSpecialExit State = "SPECIAL_EXIT"
	StateSignaling   State = "SIGNALING"
	StateStageOut    State = "STAGE_OUT"
	StateStopped     State = "STOPPED"
	StateUnknown     State = "" // nothing was printed
)

// stateInfo says whether a known state is terminal.
var stateInfo = map[State]bool{
	StatePending: false, StateConfiguring: false, StateRunning: false, StateCompleting: false, StateRequeued: false,
	StateResizing: false, StateSuspended: false, StateRequeueFed: false, StateRequeueHold: false, StateResvDelHold: false,
	StateSpecialExit: false, StateSignaling: false, StateStageOut: false, StateStopped: false,

	StatePreempted: true, StateCompleted: true, StateFailed: true, StateCancelled: true, StateTimeout: true,
	StateNodeFail: true, StateOutOfMemory: true, StateBootFail: true, StateDeadline: true, StateRevoked: true,
}

// shortStates are squeue's compact codes (%t).
var shortStates = map[string]State{
	"PD": StatePending, "CF": StateConfiguring, "R": StateRunning, "CG": StateCompleting, "RQ": StateRequeued,
	"RS": StateResizing, "S": StateSuspended, "PR": StatePreempted, "CD": StateCompleted, "F": StateFailed,
	"CA": StateCancelled, "TO": StateTimeout, "NF": StateNodeFail, "OOM": StateOutOfMemory, "BF": StateBootFail,
	"DL": StateDeadline, "RV": StateRevoked, "RF": StateRequeueFed, "RH": StateRequeueHold, "RD": StateResvDelHold,
	"SE": StateSpecialExit, "SI": StateSignaling, "SO": StateStageOut, "ST": StateStopped,
}

// ParseState reads the state column of sacct or squeue. Only the first word counts
// ("CANCELLED by 1001" is Cancelled) and a trailing "+" (sacct's mark of a truncated column)
// is dropped. squeue's short codes map to the long names. Anything else is returned as
// printed (its first word), never guessed.
func ParseState(raw string) State {
	f := strings.Fields(raw)
	if len(f) == 0 {
		return StateUnknown
	}
	w := strings.TrimRight(f[0], "+")
	if s, ok := shortStates[w]; ok {
		return s
	}
	return State(w)
}

// Known reports whether s is one of the states this package knows.
func (s State) Known() bool {
	_, ok := stateInfo[s]
	return ok
}

// Done reports whether s is terminal: the job will not run (again) by itself.
func (s State) Done() bool { return stateInfo[s] }

// Failed reports whether s is terminal and not COMPLETED (cancelled, timed out, out of
// memory, node failure, preempted…).
func (s State) Failed() bool { return s.Done() && s != StateCompleted }

// Active reports whether the job is known to be queued, held, running or finishing.
func (s State) Active() bool {
	done, ok := stateInfo[s]
	return ok && !done
}

// String returns the state as SLURM names it, or "UNKNOWN" for an empty one.
func (s State) String() string {
	if s == StateUnknown {
		return "UNKNOWN"
	}
	return string(s)
}
