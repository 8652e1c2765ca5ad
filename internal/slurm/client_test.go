package slurm

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// envTransport runs every command after a prefix (exports of PATH, SLURM_CONF…).
type envTransport struct {
	remote.Transport
	prefix string
}

func (e envTransport) Run(ctx context.Context, command string, stdin io.Reader) (*remote.Result, error) {
	return e.Transport.Run(ctx, e.prefix+command, stdin)
}

// fakeBins writes executable scripts into a fresh directory and returns a client whose
// commands find them first on PATH.
func fakeBins(t *testing.T, scripts map[string]string) (*Client, string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prefix := "export PATH=" + remote.Quote(dir) + ":\"$PATH\" FAKE_DIR=" + remote.Quote(dir) + "; "
	return &Client{T: envTransport{remote.NewLocal(), prefix}}, dir
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestQueryAccounting(t *testing.T) {
	c, dir := fakeBins(t, map[string]string{
		"sacct": `printf '%s\n' "$*" > "$FAKE_DIR/sacct.args"
echo 'sacct: warning: something harmless' >&2
echo '5|5|a|RUNNING|0:0|None|vm|00:00:07'
echo '6_0|7|b|CANCELLED by 0|0:0|None|vm|00:00:01'`,
		"squeue": `echo squeue must not run >&2; exit 3`,
	})
	jobs, acct, err := c.Query(testCtx(t), []string{"5", "6"})
	if err != nil {
		t.Fatal(err)
	}
	if !acct || len(jobs) != 2 || jobs[0].State != StateRunning || jobs[1].State != StateCancelled || jobs[1].ArrayJobID != "6" {
		t.Errorf("got %+v accounting=%v", jobs, acct)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "sacct.args"))
	if !strings.Contains(string(args), "-j 5,6") {
		t.Errorf("sacct args: %s", args)
	}
}

func TestQueryFallback(t *testing.T) {
	disabled := `echo 'Slurm accounting storage is disabled' >&2; exit 1`
	t.Run("squeue", func(t *testing.T) {
		c, dir := fakeBins(t, map[string]string{
			"sacct":  disabled,
			"squeue": `printf '%s\n' "$*" > "$FAKE_DIR/squeue.args"; echo '5|a|COMPLETED|None|vm|0:07'`,
		})
		jobs, acct, err := c.Query(testCtx(t), []string{"5"})
		if err != nil {
			t.Fatal(err)
		}
		if acct || len(jobs) != 1 || jobs[0].State != StateCompleted || jobs[0].Elapsed != 7*time.Second {
			t.Errorf("got %+v accounting=%v", jobs, acct)
		}
		args, _ := os.ReadFile(filepath.Join(dir, "squeue.args"))
		if strings.TrimSpace(string(args)) != "-h -t all -o %i|%j|%T|%r|%N|%M -j 5" {
			t.Errorf("squeue args: %s", args)
		}
	})
	t.Run("forgotten", func(t *testing.T) {
		c, _ := fakeBins(t, map[string]string{
			"sacct":  disabled,
			"squeue": `echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1`,
		})
		jobs, acct, err := c.Query(testCtx(t), []string{"5"})
		if err != nil || acct || len(jobs) != 0 {
			t.Errorf("got %+v accounting=%v err=%v", jobs, acct, err)
		}
	})
	t.Run("squeue fails", func(t *testing.T) {
		c, _ := fakeBins(t, map[string]string{
			"sacct":  disabled,
			"squeue": `echo 'squeue: error: Unable to contact slurm controller' >&2; echo 'second line' >&2; exit 1`,
		})
		_, _, err := c.Query(testCtx(t), []string{"5"})
		if err == nil || !strings.Contains(err.Error(), "Unable to contact slurm controller second line") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("sacct fails otherwise", func(t *testing.T) {
		c, _ := fakeBins(t, map[string]string{
			"sacct":  `echo 'sacct: error: Problem talking to the database: Connection refused' >&2; exit 1`,
			"squeue": `echo squeue must not run; exit 3`,
		})
		_, _, err := c.Query(testCtx(t), []string{"5"})
		if err == nil || !strings.Contains(err.Error(), "sacct exited 1: sacct: error: Problem talking to the database") {
			t.Errorf("err = %v", err)
		}
	})
}

// The query snippet can sit inside a larger script under set -e and leaves it running.
func TestQueryScriptEmbeds(t *testing.T) {
	c, _ := fakeBins(t, map[string]string{
		"sacct":  `echo 'Slurm accounting storage is disabled' >&2; exit 1`,
		"squeue": `echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1`,
	})
	res, err := c.T.Run(testCtx(t), "set -e; e=outer; rc=outer\n"+QueryScript([]string{"1"})+"\necho \"after $e $rc\"", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(res.Stdout), markSqueue+"\nafter outer outer\n") {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

func TestQueryNothing(t *testing.T) {
	c := &Client{T: failTransport{}}
	if jobs, _, err := c.Query(testCtx(t), nil); err != nil || jobs != nil {
		t.Errorf("Query(nil) = %v, %v", jobs, err)
	}
	if _, _, err := c.Query(testCtx(t), []string{"1; rm -rf /"}); err == nil {
		t.Error("a bad job id was accepted")
	}
	if err := c.Cancel(testCtx(t), []string{"-u", "root"}); err == nil {
		t.Error("Cancel accepted an option as a job id")
	}
	if got, err := c.SubmitAll(testCtx(t), nil); err != nil || got != nil {
		t.Errorf("SubmitAll(nil) = %v, %v", got, err)
	}
}

// failTransport fails every command: the tests that use it expect none.
type failTransport struct{ remote.Transport }

func (failTransport) Run(context.Context, string, io.Reader) (*remote.Result, error) {
	return nil, errors.New("no command expected")
}
func (failTransport) String() string { return "nowhere" }

func TestFind(t *testing.T) {
	c, dir := fakeBins(t, map[string]string{
		"squeue": `printf '%s\n' "$*" > "$FAKE_DIR/squeue.args"; echo '8|beans-x-serve|RUNNING|None|vm|0:03'; echo '7|beans-x-infer|COMPLETING|None|vm|0:09'`,
	})
	jobs, err := c.Find(testCtx(t), []string{"beans-x-serve", "beans-x-infer"})
	if err != nil {
		t.Fatal(err)
	}
	// The completing job (cancelled or ended, its epilog still running) is not live.
	if len(jobs) != 1 || jobs[0].ID != "8" || jobs[0].Name != "beans-x-serve" {
		t.Errorf("jobs %+v", jobs)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "squeue.args"))
	if !strings.Contains(string(args), "-n beans-x-serve,beans-x-infer") || !strings.Contains(string(args), "-u ") {
		t.Errorf("squeue args: %s", args)
	}
	if _, err := c.Find(testCtx(t), []string{"a,b"}); err == nil {
		t.Error("a name with a comma was accepted")
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name, scancel string
		ok            bool
	}{
		{"ok", `exit 0`, true},
		{"gone", `echo "scancel: error: Kill job error on job id $1: Invalid job id specified" >&2; exit 1`, true},
		{"over", `echo "scancel: error: Kill job error on job id $1: Job/step already completing or completed" >&2; exit 1`, true},
		{"denied", `echo "scancel: error: Kill job error on job id $1: Invalid job id specified" >&2; echo "scancel: error: Kill job error on job id $2: Access/permission denied" >&2; exit 1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, dir := fakeBins(t, map[string]string{"scancel": `printf '%s\n' "$*" > "$FAKE_DIR/scancel.args"` + "\n" + tt.scancel})
			err := c.Cancel(testCtx(t), []string{"5", "6_1"})
			if (err == nil) != tt.ok {
				t.Errorf("Cancel: %v", err)
			}
			args, _ := os.ReadFile(filepath.Join(dir, "scancel.args"))
			if strings.TrimSpace(string(args)) != "5 6_1" {
				t.Errorf("scancel args %q", args)
			}
		})
	}
}

// fakeSbatch numbers jobs from 100, logs each call's arguments (one per line, in brackets),
// and fails when an argument names a failure.
const fakeSbatch = `n=$(cat "$FAKE_DIR/next" 2>/dev/null || echo 100)
echo $((n + 1)) > "$FAKE_DIR/next"
{ printf '[%s]' "$@"; echo; } >> "$FAKE_DIR/sbatch.log"
for a in "$@"; do
  case $a in
  *fail-permanent*) echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1 ;;
  *fail-transient*) echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; printf 'more\tdetail\n' >&2; exit 1 ;;
  *no-id*) echo "Submitted batch job"; exit 0 ;;
  *federated*) echo "sbatch: warning: federated" >&2; echo "$n;cluster-a"; exit 0 ;;
  esac
done
read -t 0.1 -r stolen && echo "sbatch read stdin: $stolen" >&2
echo "$n"
`

func TestSubmitAll(t *testing.T) {
	c, dir := fakeBins(t, map[string]string{"sbatch": fakeSbatch})
	hostile := `$(touch "$FAKE_DIR/pwned") ` + "`touch $FAKE_DIR/pwned2`" + ` ; ' " \ {after}`
	subs := []Submission{
		{Key: "m/serve", Script: "/s/serve.sh", Chdir: "/w d"},
		{Key: "m/infer", Script: "/s/infer.sh", After: "m/serve", Args: []string{"{after}", "--x={after}-{after}", hostile}, Chdir: "/w d"},
		{Key: "bad/serve", Script: "/s/fail-permanent.sh"},
		{Key: "bad/infer", Script: "/s/infer.sh", After: "bad/serve", Args: []string{"{after}"}},
		{Key: "busy", Script: "/s/fail-transient.sh"},
		{Key: "fed", Script: "/s/federated.sh", After: "77", Args: []string{"{after}"}},
		{Key: "noid", Script: "/s/no-id.sh"},
		{Key: "tail", Script: "/s/tail.sh", After: "m/infer"},
	}
	got, err := c.SubmitAll(testCtx(t), subs)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]Submitted{}
	for i, s := range got {
		if s.Key != subs[i].Key {
			t.Fatalf("answer %d is %q, want %q", i, s.Key, subs[i].Key)
		}
		byKey[s.Key] = s
	}
	if s := byKey["m/serve"]; s.JobID != "100" || s.Err != nil {
		t.Errorf("m/serve: %+v", s)
	}
	if s := byKey["m/infer"]; s.JobID != "101" || s.Err != nil {
		t.Errorf("m/infer: %+v", s)
	}
	var se *SubmitError
	if s := byKey["bad/serve"]; !errors.As(s.Err, &se) || !se.Permanent() || se.Transient() || !strings.Contains(se.Message, "Invalid partition name specified") {
		t.Errorf("bad/serve: %+v", s)
	}
	if s := byKey["bad/infer"]; !errors.As(s.Err, &se) || !se.Skipped || se.Permanent() || s.JobID != "" {
		t.Errorf("bad/infer: %+v", s)
	}
	if s := byKey["busy"]; !errors.As(s.Err, &se) || se.Permanent() || !se.Transient() || strings.ContainsAny(se.Message, "\n\t") {
		t.Errorf("busy: %+v", s)
	}
	if s := byKey["fed"]; s.JobID != "104" || s.Err != nil {
		t.Errorf("fed: %+v", s)
	}
	if s := byKey["noid"]; !errors.As(s.Err, &se) || !strings.Contains(se.Message, "no job id") {
		t.Errorf("noid: %+v", s)
	}
	if s := byKey["tail"]; s.JobID != "106" || s.Err != nil {
		t.Errorf("tail: %+v", s)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "sbatch.log"))
	calls := strings.Split(strings.TrimSpace(string(log)), "\n")
	wantCalls := []string{
		"[--parsable][--chdir=/w d][/s/serve.sh]",
		"[--parsable][--dependency=after:100][--chdir=/w d][/s/infer.sh][100][--x=100-100][" + strings.ReplaceAll(hostile, "{after}", "100") + "]",
		"[--parsable][/s/fail-permanent.sh]",
		"[--parsable][/s/fail-transient.sh]",
		"[--parsable][--dependency=after:77][/s/federated.sh][77]",
		"[--parsable][/s/no-id.sh]",
		"[--parsable][--dependency=after:101][/s/tail.sh]",
	}
	if strings.Join(calls, "\n") != strings.Join(wantCalls, "\n") {
		t.Errorf("sbatch calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("an argument was run as a command (%s exists)", f)
		}
	}
}

func TestSubmitScriptErrors(t *testing.T) {
	tests := []struct {
		name string
		subs []Submission
	}{
		{"empty key", []Submission{{Key: "", Script: "/s"}}},
		{"tab in key", []Submission{{Key: "a\tb", Script: "/s"}}},
		{"duplicate key", []Submission{{Key: "a", Script: "/s"}, {Key: "a", Script: "/s"}}},
		{"no script", []Submission{{Key: "a"}}},
		{"after later", []Submission{{Key: "a", Script: "/s", After: "b"}, {Key: "b", Script: "/s"}}},
		{"after self", []Submission{{Key: "a", Script: "/s", After: "a"}}},
		{"after option", []Submission{{Key: "a", Script: "/s", After: "-x"}}},
		{"token without after", []Submission{{Key: "a", Script: "/s", Args: []string{"{after}"}}}},
		{"newline in chdir", []Submission{{Key: "a", Script: "/s", Chdir: "/a\nb"}}},
	}
	for _, tt := range tests {
		if _, err := SubmitScript(tt.subs); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		c := &Client{T: failTransport{}}
		if _, err := c.SubmitAll(testCtx(t), tt.subs); err == nil {
			t.Errorf("%s: SubmitAll ran", tt.name)
		}
	}
}

// A script cut off by its context reports the submissions without an answer as unknown.
func TestSubmitAllCutOff(t *testing.T) {
	c, dir := fakeBins(t, map[string]string{"sbatch": `if [ -e "$FAKE_DIR/one" ]; then sleep 30; fi; touch "$FAKE_DIR/one"; echo 1`})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan struct{})
	var got []Submitted
	var err error
	go func() {
		defer close(done)
		got, err = c.SubmitAll(ctx, []Submission{{Key: "a", Script: "/s"}, {Key: "b", Script: "/s"}})
	}()
	// Cancel once the first submission is through (the second hangs).
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "one")); err == nil {
			break
		}
	}
	cancel()
	<-done
	cancel()
	if err == nil || len(got) != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
	var se *SubmitError
	if !errors.As(got[1].Err, &se) || !se.Unknown || !se.Transient() {
		t.Errorf("b: %+v", got[1])
	}
}

func TestClassifySubmitErrors(t *testing.T) {
	permanent := []string{
		"sbatch: error: QOSMaxSubmitJobPerUserLimit",
		"sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits) AssocMaxSubmitJobLimit",
		"sbatch: error: Batch job submission failed: Invalid partition name specified",
		"sbatch: error: Batch job submission failed: Invalid generic resource (gres) specification",
		"sbatch: error: Batch job submission failed: Requested node configuration is not available",
		"sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified",
	}
	transient := []string{
		"sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
		"sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
		"sbatch: error: Batch job submission failed: Resource temporarily unavailable",
	}
	for _, m := range permanent {
		if !IsPermanentSubmitError(m) || IsTransientSubmitError(m) {
			t.Errorf("%q: permanent=%v transient=%v", m, IsPermanentSubmitError(m), IsTransientSubmitError(m))
		}
	}
	for _, m := range transient {
		if IsPermanentSubmitError(m) || !IsTransientSubmitError(m) {
			t.Errorf("%q: permanent=%v transient=%v", m, IsPermanentSubmitError(m), IsTransientSubmitError(m))
		}
	}
}
