package slurm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// clusterClient returns a client for the test cluster of scripts/test-cluster.sh, through the
// local transport. With BEANS_SLURM_TEST_CLUSTER=1 the cluster must answer (the test fails,
// never skips); otherwise the test is skipped.
func clusterClient(t *testing.T) (*Client, string) {
	t.Helper()
	if os.Getenv("BEANS_SLURM_TEST_CLUSTER") != "1" {
		t.Skip("BEANS_SLURM_TEST_CLUSTER is not 1 (see scripts/test-cluster.sh)")
	}
	conf := os.Getenv("BEANS_SLURM_TEST_SLURM_CONF")
	if conf == "" {
		t.Fatal("BEANS_SLURM_TEST_CLUSTER=1 but BEANS_SLURM_TEST_SLURM_CONF is empty: run with env $(scripts/test-cluster.sh env | xargs)")
	}
	prefix := "export SLURM_CONF=" + remote.Quote(conf) + "; "
	c := &Client{T: envTransport{remote.NewLocal(), prefix}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := remote.Output(ctx, c.T, "sinfo -h -o %T")
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		t.Fatalf("the test cluster does not answer (scripts/test-cluster.sh status): %v %s", err, out)
	}
	return c, prefix
}

// waitDone polls Query every half second until every wanted id is known and done.
func waitDone(t *testing.T, c *Client, ids []string, want func(map[string]Job) bool) (map[string]Job, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var last map[string]Job
	var acct bool
	for {
		jobs, accounting, err := c.Query(ctx, ids)
		if err != nil {
			t.Fatalf("query %v: %v", ids, err)
		}
		last, acct = map[string]Job{}, accounting
		for _, j := range jobs {
			last[j.ID] = j
		}
		if want(last) {
			return last, acct
		}
		select {
		case <-ctx.Done():
			t.Fatalf("jobs %v not done in time; last answer %+v", ids, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func allDone(ids ...string) func(map[string]Job) bool {
	return func(m map[string]Job) bool {
		for _, id := range ids {
			if j, ok := m[id]; !ok || !j.State.Done() {
				return false
			}
		}
		return true
	}
}

func TestCluster(t *testing.T) {
	c, prefix := clusterClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fake-beans")
	if err := os.WriteFile(fake, []byte("#!/bin/bash\necho \"fake-beans $*\"\necho \"gpus=${CUDA_VISIBLE_DEVICES:-none} X=$X\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("itest%d", time.Now().UnixNano()%1e9)
	var submitted []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Cancel(ctx, submitted)
	})

	write := func(name string, s Script) string {
		t.Helper()
		b, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := c.T.WriteFile(ctx, p, strings.NewReader(string(b)), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serveName, inferName := "beans-"+tag+"-m-serve", "beans-"+tag+"-m-infer"
	serve := write("serve.sh", Script{
		Role: "serve", JobName: serveName, Comment: "beans-slurm sweep=" + tag, WorkDir: dir, LogDir: logs,
		Resources: Resources{Partition: "gpu", GRES: "gpu:1", Time: "5", Memory: "100M", CPUs: 1},
		Signal:    "B:TERM@10", Env: []EnvVar{{Name: "X", Value: "a b'c"}},
		Binary: fake, Args: []string{"serve", "--model", "a b"},
	})
	infer := write("infer.sh", Script{
		Role: "infer", JobName: inferName, WorkDir: dir, LogDir: logs, ArraySize: 2,
		Resources: Resources{Partition: "cpu", Time: "5", Memory: "100M"},
		Env:       []EnvVar{{Name: "X", Value: "infer"}},
		Binary:    fake, Args: []string{"run", "--limit", "1"},
	})

	t.Run("serve and infer array", func(t *testing.T) {
		got, err := c.SubmitAll(ctx, []Submission{
			{Key: "serve", Script: serve, Chdir: dir},
			{Key: "infer", Script: infer, After: "serve", Args: []string{"{after}"}, Chdir: dir},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Err != nil {
				t.Fatalf("%s: %v", s.Key, s.Err)
			}
			submitted = append(submitted, s.JobID)
		}
		sid, iid := got[0].JobID, got[1].JobID
		jobs, acct := waitDone(t, c, []string{sid, iid}, allDone(sid, iid+"_0", iid+"_1"))
		if want := os.Getenv("BEANS_SLURM_TEST_ACCOUNTING") == "1"; acct != want {
			t.Errorf("accounting = %v, want %v", acct, want)
		}
		for _, id := range []string{sid, iid + "_0", iid + "_1"} {
			if j := jobs[id]; j.State != StateCompleted {
				t.Errorf("%s: %s (%s, exit %s)", id, j.State, j.RawState, j.ExitCode)
			}
		}
		if j := jobs[iid+"_1"]; j.ArrayJobID != iid || j.ArrayTask != "1" || j.Name != inferName {
			t.Errorf("array task: %+v", j)
		}
		if j := jobs[sid]; j.Name != serveName || j.Nodes == "" {
			t.Errorf("serving job: %+v", j)
		}
		log := func(name string) string {
			b, err := os.ReadFile(filepath.Join(logs, name))
			if err != nil {
				t.Errorf("log: %v", err)
			}
			return string(b)
		}
		if l := log(serveName + "-" + sid + ".out"); !strings.Contains(l, "fake-beans serve --model a b\n") ||
			!strings.Contains(l, "X=a b'c") || strings.Contains(l, "gpus=none") || !strings.Contains(l, "beans-slurm serve: job "+sid+" on ") {
			t.Errorf("serve log:\n%s", l)
		}
		for _, task := range []string{"0", "1"} {
			l := log(inferName + "-" + iid + "_" + task + ".out")
			if !strings.Contains(l, "fake-beans run --limit 1 --serve-job "+sid+"\n") || !strings.Contains(l, "(array task "+iid+"_"+task+")") {
				t.Errorf("infer log %s:\n%s", task, l)
			}
		}

		// The squeue fallback, against the real squeue: sacct says accounting is disabled.
		fakeDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(fakeDir, "sacct"), []byte("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		noAcct := &Client{T: envTransport{remote.NewLocal(), prefix + "export PATH=" + remote.Quote(fakeDir) + ":\"$PATH\"; "}}
		fb, acct, err := noAcct.Query(ctx, []string{sid, iid})
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]State{}
		for _, j := range fb {
			states[j.ID] = j.State
		}
		if acct || states[sid] != StateCompleted || states[iid+"_0"] != StateCompleted || states[iid+"_1"] != StateCompleted {
			t.Errorf("fallback: accounting=%v jobs %+v", acct, fb)
		}
		// A job squeue does not know gives nothing, not an error.
		if fb, _, err := noAcct.Query(ctx, []string{"999999999"}); err != nil || len(fb) != 0 {
			t.Errorf("fallback, unknown job: %+v %v", fb, err)
		}
	})

	t.Run("impossible request", func(t *testing.T) {
		bad := write("bad.sh", Script{
			Role: "serve", JobName: "beans-" + tag + "-bad-serve", WorkDir: dir, LogDir: logs,
			Resources: Resources{Partition: "gpu", GRES: "gpu:3", Time: "1"},
			Binary:    fake,
		})
		got, err := c.SubmitAll(ctx, []Submission{
			{Key: "bad", Script: bad, Chdir: dir},
			{Key: "after-bad", Script: infer, After: "bad", Args: []string{"{after}"}, Chdir: dir},
		})
		if err != nil {
			t.Fatal(err)
		}
		var se *SubmitError
		if !errors.As(got[0].Err, &se) || !se.Permanent() || !strings.Contains(se.Message, "Requested node configuration is not available") {
			t.Errorf("bad: %+v", got[0])
		}
		if !errors.As(got[1].Err, &se) || !se.Skipped {
			t.Errorf("after-bad: %+v", got[1])
		}
	})

	t.Run("find and cancel", func(t *testing.T) {
		name := "beans-" + tag + "-sleep-serve"
		sleeper := write("sleep.sh", Script{
			Role: "serve", JobName: name, WorkDir: dir, LogDir: logs,
			Resources: Resources{Partition: "cpu", Time: "10"},
			Binary:    "/bin/sleep", Args: []string{"300"},
		})
		got, err := c.SubmitAll(ctx, []Submission{{Key: "sleep", Script: sleeper, Chdir: dir}})
		if err != nil || got[0].Err != nil {
			t.Fatalf("%+v %v", got, err)
		}
		id := got[0].JobID
		submitted = append(submitted, id)
		live, err := c.Find(ctx, []string{name, "beans-" + tag + "-nothing"})
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != 1 || live[0].ID != id || live[0].Name != name || !live[0].State.Active() {
			t.Errorf("Find: %+v", live)
		}
		if err := c.Cancel(ctx, []string{id}); err != nil {
			t.Fatal(err)
		}
		jobs, _ := waitDone(t, c, []string{id}, allDone(id))
		if j := jobs[id]; j.State != StateCancelled || !strings.HasPrefix(j.RawState, "CANCELLED") {
			t.Errorf("cancelled job: %+v", j)
		}
		// Cancelling again, or a job that never existed, is not an error.
		if err := c.Cancel(ctx, []string{id, "999999999"}); err != nil {
			t.Errorf("second cancel: %v", err)
		}
		if live, err := c.Find(ctx, []string{name}); err != nil || len(live) != 0 {
			t.Errorf("Find after cancel: %+v %v", live, err)
		}
	})
}
