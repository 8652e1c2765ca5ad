package slurm

import "testing"

func TestParseState(t *testing.T) {
	tests := []struct {
		raw                 string
		want                State
		known, done, failed bool
		active              bool
	}{
		{"PENDING", StatePending, true, false, false, true},
		{"CONFIGURING", StateConfiguring, true, false, false, true},
		{"RUNNING", StateRunning, true, false, false, true},
		{"COMPLETING", StateCompleting, true, false, false, true},
		{"REQUEUED", StateRequeued, true, false, false, true},
		{"RESIZING", StateResizing, true, false, false, true},
		{"SUSPENDED", StateSuspended, true, false, false, true},
		{"REQUEUE_FED", StateRequeueFed, true, false, false, true},
		{"REQUEUE_HOLD", StateRequeueHold, true, false, false, true},
		{"RESV_DEL_HOLD", StateResvDelHold, true, false, false, true},
		{"SPECIAL_EXIT", StateSpecialExit, true, false, false, true},
		{"SIGNALING", StateSignaling, true, false, false, true},
		{"STAGE_OUT", StateStageOut, true, false, false, true},
		{"STOPPED", StateStopped, true, false, false, true},
		{"PREEMPTED", StatePreempted, true, true, true, false},
		{"COMPLETED", StateCompleted, true, true, false, false},
		{"FAILED", StateFailed, true, true, true, false},
		{"CANCELLED", StateCancelled, true, true, true, false},
		{"TIMEOUT", StateTimeout, true, true, true, false},
		{"NODE_FAIL", StateNodeFail, true, true, true, false},
		{"OUT_OF_MEMORY", StateOutOfMemory, true, true, true, false},
		{"BOOT_FAIL", StateBootFail, true, true, true, false},
		{"DEADLINE", StateDeadline, true, true, true, false},
		{"REVOKED", StateRevoked, true, true, true, false},
		// sacct's decorations.
		{"CANCELLED by 1001", StateCancelled, true, true, true, false},
		{"CANCELLED by 0", StateCancelled, true, true, true, false},
		{"CANCELLED+", StateCancelled, true, true, true, false},
		{"  RUNNING  ", StateRunning, true, false, false, true},
		// squeue's short codes.
		{"PD", StatePending, true, false, false, true},
		{"CF", StateConfiguring, true, false, false, true},
		{"R", StateRunning, true, false, false, true},
		{"CG", StateCompleting, true, false, false, true},
		{"RQ", StateRequeued, true, false, false, true},
		{"RS", StateResizing, true, false, false, true},
		{"S", StateSuspended, true, false, false, true},
		{"PR", StatePreempted, true, true, true, false},
		{"CD", StateCompleted, true, true, false, false},
		{"F", StateFailed, true, true, true, false},
		{"CA", StateCancelled, true, true, true, false},
		{"TO", StateTimeout, true, true, true, false},
		{"NF", StateNodeFail, true, true, true, false},
		{"OOM", StateOutOfMemory, true, true, true, false},
		{"BF", StateBootFail, true, true, true, false},
		{"DL", StateDeadline, true, true, true, false},
		{"RV", StateRevoked, true, true, true, false},
		{"RF", StateRequeueFed, true, false, false, true},
		{"RH", StateRequeueHold, true, false, false, true},
		{"RD", StateResvDelHold, true, false, false, true},
		{"SE", StateSpecialExit, true, false, false, true},
		{"SI", StateSignaling, true, false, false, true},
		{"SO", StateStageOut, true, false, false, true},
		{"ST", StateStopped, true, false, false, true},
		// Unknown: kept as printed, never guessed.
		{"LAUNCH_FAILED", State("LAUNCH_FAILED"), false, false, false, false},
		{"Running", State("Running"), false, false, false, false},
		{"", StateUnknown, false, false, false, false},
		{"+", StateUnknown, false, false, false, false},
	}
	for _, tt := range tests {
		got := ParseState(tt.raw)
		if got != tt.want {
			t.Errorf("ParseState(%q) = %q, want %q", tt.raw, got, tt.want)
			continue
		}
		if got.Known() != tt.known || got.Done() != tt.done || got.Failed() != tt.failed || got.Active() != tt.active {
			t.Errorf("%q: Known=%v Done=%v Failed=%v Active=%v, want %v %v %v %v", tt.raw,
				got.Known(), got.Done(), got.Failed(), got.Active(), tt.known, tt.done, tt.failed, tt.active)
		}
	}
	// Every known state is covered above.
	seen := map[State]bool{}
	for _, tt := range tests {
		seen[tt.want] = true
	}
	for s := range stateInfo {
		if !seen[s] {
			t.Errorf("state %s not covered by the table", s)
		}
	}
	if StateUnknown.String() != "UNKNOWN" || StateRunning.String() != "RUNNING" {
		t.Errorf("String: %q %q", StateUnknown.String(), StateRunning.String())
	}
}
