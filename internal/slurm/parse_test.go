package slurm

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCommands(t *testing.T) {
	ids := []string{"12", "13_1"}
	if got, want := SacctCommand(ids), "sacct -X -P -n -o JobID,JobIDRaw,JobName,State,ExitCode,Reason,NodeList,Elapsed --starttime now-2days -j 12,13_1"; got != want {
		t.Errorf("SacctCommand = %q\nwant %q", got, want)
	}
	if got, want := SqueueCommand(ids), "squeue -h -t all -o '%i|%j|%T|%r|%N|%M' -j 12,13_1"; got != want {
		t.Errorf("SqueueCommand = %q\nwant %q", got, want)
	}
	if got, want := FindCommand([]string{"beans-a-serve", "beans-a-infer"}), `squeue -h -u "${USER:-$(id -un)}" -n beans-a-serve,beans-a-infer -o '%i|%j|%T|%r|%N|%M'`; got != want {
		t.Errorf("FindCommand = %q\nwant %q", got, want)
	}
	// Whatever is passed stays one quoted word.
	if got := FindCommand([]string{"a b;$(x)"}); !strings.Contains(got, `-n 'a b;$(x)' -o`) {
		t.Errorf("FindCommand does not quote: %s", got)
	}
}

func TestParseSacct(t *testing.T) {
	out := "3|3|tst-sleep|CANCELLED by 0|0:0|None|vm|00:00:01\n" +
		"4|4|tst-fail|FAILED|3:0|NonZeroExitCode|vm|1-02:03:04\n" +
		"2_0|5|tst-arr|COMPLETED|0:0|None|vm|00:00:03\n" +
		"2_[1-3]|2|tst-arr|PENDING|0:0|Resources|None assigned|00:00:00\n" +
		"\n" +
		"7|7|name|with|pipes|RUNNING|0:0|None|vm|01:02.500\n"
	got, err := ParseSacct([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Job{
		{ID: "3", RawID: "3", Name: "tst-sleep", State: StateCancelled, RawState: "CANCELLED by 0", ExitCode: "0:0", Reason: "None", Nodes: "vm", Elapsed: time.Second},
		{ID: "4", RawID: "4", Name: "tst-fail", State: StateFailed, RawState: "FAILED", ExitCode: "3:0", Reason: "NonZeroExitCode", Nodes: "vm", Elapsed: 26*time.Hour + 3*time.Minute + 4*time.Second},
		{ID: "2_0", RawID: "5", ArrayJobID: "2", ArrayTask: "0", Name: "tst-arr", State: StateCompleted, RawState: "COMPLETED", ExitCode: "0:0", Reason: "None", Nodes: "vm", Elapsed: 3 * time.Second},
		{ID: "2_[1-3]", RawID: "2", ArrayJobID: "2", ArrayTask: "[1-3]", Name: "tst-arr", State: StatePending, RawState: "PENDING", ExitCode: "0:0", Reason: "Resources", Nodes: "None assigned"},
		{ID: "7", RawID: "7", Name: "name|with|pipes", State: StateRunning, RawState: "RUNNING", ExitCode: "0:0", Reason: "None", Nodes: "vm", Elapsed: time.Minute + 2500*time.Millisecond},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSacct:\n got %+v\nwant %+v", got, want)
	}
	if got[2].BaseID() != "2" || got[0].BaseID() != "3" {
		t.Errorf("BaseID: %q %q", got[2].BaseID(), got[0].BaseID())
	}
	if jobs, err := ParseSacct(nil); err != nil || len(jobs) != 0 {
		t.Errorf("empty output: %v %v", jobs, err)
	}
	for _, bad := range []string{
		"3|3|x|RUNNING|0:0|None|vm",           // 7 fields
		"3|3|x|RUNNING|0:0|None|vm|yesterday", // not an elapsed time
		"|3|x|RUNNING|0:0|None|vm|00:00:01",   // no id
	} {
		_, err := ParseSacct([]byte("1|1|ok|RUNNING|0:0|None|vm|00:00:01\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("ParseSacct(%q) error = %v, want one naming line 2", bad, err)
		}
	}
}

func TestParseSqueue(t *testing.T) {
	out := "4|tst-fail|FAILED|NonZeroExitCode|vm|0:01\n" +
		"2_0|tst-arr|RUNNING|None|vm|1:02:03\n" +
		"9_[0-7%2]|tst-arr|PENDING|Dependency||0:00\n" +
		"10|long|RUNNING|None|vm|2-01:00:00\r\n"
	got, err := ParseSqueue([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Job{
		{ID: "4", Name: "tst-fail", State: StateFailed, RawState: "FAILED", Reason: "NonZeroExitCode", Nodes: "vm", Elapsed: time.Second},
		{ID: "2_0", ArrayJobID: "2", ArrayTask: "0", Name: "tst-arr", State: StateRunning, RawState: "RUNNING", Reason: "None", Nodes: "vm", Elapsed: time.Hour + 2*time.Minute + 3*time.Second},
		{ID: "9_[0-7%2]", ArrayJobID: "9", ArrayTask: "[0-7%2]", Name: "tst-arr", State: StatePending, RawState: "PENDING", Reason: "Dependency"},
		{ID: "10", Name: "long", State: StateRunning, RawState: "RUNNING", Reason: "None", Nodes: "vm", Elapsed: 49 * time.Hour},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSqueue:\n got %+v\nwant %+v", got, want)
	}
	if _, err := ParseSqueue([]byte("4|x|RUNNING|None|vm\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: %v", err)
	}
}

func TestParseElapsed(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:00:01", time.Second, true},
		{"12:34:56", 12*time.Hour + 34*time.Minute + 56*time.Second, true},
		{"1-00:00:00", 24 * time.Hour, true},
		{"10-02:03:04", 242*time.Hour + 3*time.Minute + 4*time.Second, true},
		{"00:01.250", time.Second + 250*time.Millisecond, true},
		{"01:02.5", time.Minute + 2*time.Second + 500*time.Millisecond, true},
		{"0:00", 0, true},
		{"0:05", 5 * time.Second, true},
		{"1:02:03", time.Hour + 2*time.Minute + 3*time.Second, true},
		{"2-01", 49 * time.Hour, true},
		{"2-01:30", 49*time.Hour + 30*time.Minute, true},
		{"", 0, true},
		{"INVALID", 0, true},
		{"N/A", 0, true},
		{"UNLIMITED", 0, true},
		{"1:2:3:4", 0, false},
		{"a:b", 0, false},
		{"-1", 0, false},
		{"1-", 0, false},
		{"1:", 0, false},
		{"00:01.x", 0, false},
		{"99999-00:00:00", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseElapsed(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseElapsed(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestIsAccountingDisabled(t *testing.T) {
	if !IsAccountingDisabled([]byte("Slurm accounting storage is disabled\n"), 1) {
		t.Error("not detected")
	}
	if IsAccountingDisabled([]byte("Slurm accounting storage is disabled\n"), 0) {
		t.Error("exit 0 is not a failure")
	}
	if IsAccountingDisabled([]byte("sacct: error: Problem talking to the database: Connection refused"), 1) {
		t.Error("a database error is not disabled accounting")
	}
}

func TestParseQueryOutput(t *testing.T) {
	jobs, acct, err := ParseQueryOutput([]byte("4|4|x|FAILED|3:0|None|vm|00:00:01\n"))
	if err != nil || !acct || len(jobs) != 1 || jobs[0].State != StateFailed {
		t.Errorf("sacct branch: %+v %v %v", jobs, acct, err)
	}
	jobs, acct, err = ParseQueryOutput([]byte(markSqueue + "\n4|x|COMPLETED|None|vm|0:01\n"))
	if err != nil || acct || len(jobs) != 1 || jobs[0].State != StateCompleted {
		t.Errorf("squeue branch: %+v %v %v", jobs, acct, err)
	}
	jobs, acct, err = ParseQueryOutput([]byte(markSqueue + "\n"))
	if err != nil || acct || len(jobs) != 0 {
		t.Errorf("squeue branch, nothing known: %+v %v %v", jobs, acct, err)
	}
	_, _, err = ParseQueryOutput([]byte(markError + "sacct exited 1: sacct: error: Problem talking to the database\n"))
	if err == nil || !strings.Contains(err.Error(), "Problem talking to the database") {
		t.Errorf("error marker: %v", err)
	}
}

func FuzzParseSacct(f *testing.F) {
	f.Add([]byte("3|3|tst-sleep|CANCELLED by 0|0:0|None|vm|00:00:01\n2_[1-3]|2|a|PENDING|0:0|Resources|None assigned|00:00:00\n"))
	f.Add([]byte("1|1|a|b|c|d|e|f|g|h|i\n"))
	f.Add([]byte("1_|1|x|RUNNING|0:0|None|vm|9999-999999:999999:999999.999999999\n"))
	f.Add([]byte("||||||||\n|\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		jobs, err := ParseSacct(b)
		if err == nil {
			for _, j := range jobs {
				if j.ID == "" {
					t.Errorf("job without id from %q", b)
				}
			}
		}
		_, _, _ = ParseQueryOutput(b)
	})
}

func FuzzParseSqueue(f *testing.F) {
	f.Add([]byte("4|tst-fail|FAILED|NonZeroExitCode|vm|0:01\n9_[0-7%2]|tst-arr|PD|Dependency||0:00\n"))
	f.Add([]byte("10|long|RUNNING|None|vm|2-01:00:00\r\n"))
	f.Add([]byte("_|_|_|_|_|_|_\n"))
	f.Add([]byte(markSqueue + "\n1|a|R|b|c|1-\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		jobs, err := ParseSqueue(b)
		if err == nil {
			for _, j := range jobs {
				if j.ID == "" {
					t.Errorf("job without id from %q", b)
				}
			}
		}
		_, _, _ = ParseQueryOutput(b)
	})
}
