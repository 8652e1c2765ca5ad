package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// The tests of this file submit real sweeps to the single-node SLURM cluster of
// scripts/test-cluster.sh over its real sshd. With BEANS_SLURM_TEST_CLUSTER=1 (as .ci/run sets)
// they fail when no cluster answers; without it they are skipped.

type testCluster struct {
	addr, user, key, knownHosts, home, slurmConf string
	accounting                                   bool
}

func needCluster(t *testing.T) testCluster {
	t.Helper()
	if os.Getenv("BEANS_SLURM_TEST_CLUSTER") != "1" {
		t.Skip("set BEANS_SLURM_TEST_CLUSTER=1 with a cluster from scripts/test-cluster.sh up (and its env)")
	}
	c := testCluster{
		addr: os.Getenv("BEANS_SLURM_TEST_SSH_ADDR"), user: os.Getenv("BEANS_SLURM_TEST_SSH_USER"),
		key: os.Getenv("BEANS_SLURM_TEST_SSH_KEY"), knownHosts: os.Getenv("BEANS_SLURM_TEST_KNOWN_HOSTS"),
		home: os.Getenv("BEANS_SLURM_TEST_HOME"), slurmConf: os.Getenv("BEANS_SLURM_TEST_SLURM_CONF"),
		accounting: os.Getenv("BEANS_SLURM_TEST_ACCOUNTING") == "1",
	}
	for name, v := range map[string]string{"BEANS_SLURM_TEST_SSH_ADDR": c.addr, "BEANS_SLURM_TEST_SSH_USER": c.user,
		"BEANS_SLURM_TEST_SSH_KEY": c.key, "BEANS_SLURM_TEST_KNOWN_HOSTS": c.knownHosts, "BEANS_SLURM_TEST_HOME": c.home} {
		if v == "" {
			t.Fatalf("BEANS_SLURM_TEST_CLUSTER=1 but %s is empty: eval \"$(scripts/test-cluster.sh env)\"", name)
		}
	}
	for _, f := range []string{c.key, c.knownHosts} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the test cluster is not up (%v): run scripts/test-cluster.sh up", err)
		}
	}
	return c
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// clusterBinary builds the real beans-slurm (static) once: it is what submit uploads.
func clusterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "beans-slurm-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		builtBin = filepath.Join(dir, "beans-slurm")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/beans-slurm")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// sweepEnv is a test's own state directory, cluster profile and remote work directory.
type sweepEnv struct {
	t        *testing.T
	c        testCluster
	profiles string
	workDir  string
	bin      string
}

func newSweepEnv(t *testing.T, c testCluster, mutate func(profile map[string]any)) *sweepEnv {
	t.Helper()
	t.Setenv("BEANS_SLURM_STATE_DIR", t.TempDir())
	host, port, _ := strings.Cut(c.addr, ":")
	work := filepath.Join(c.home, fmt.Sprintf("work-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()))
	prof := map[string]any{
		"host": host, "port": atoi(t, port), "user": c.user, "identity_file": c.key, "known_hosts": c.knownHosts,
		"work_dir": work,
		"gpu":      map[string]any{"partition": "gpu", "time": "00:10:00", "memory": "500M"},
		"cpu":      map[string]any{"partition": "cpu", "time": "00:10:00", "memory": "500M"},
		// Each test's jobs ask their launcher: answers cached by an earlier test would end them
		// before the test can cut them.
		"env": map[string]any{"BEANS_SLURM_NO_ANSWER_CACHE": "1"},
	}
	if mutate != nil {
		mutate(prof)
	}
	b, err := json.Marshal(map[string]any{"default": "test", "clusters": map[string]any{"test": prof}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "clusters.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	e := &sweepEnv{t: t, c: c, profiles: p, workDir: work, bin: clusterBinary(t)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("left for inspection: %s", work)
			return
		}
		tr := e.dial(context.Background())
		defer tr.Close()
		_, _ = remote.Output(context.Background(), tr, "rm -rf "+remote.Quote(work))
	})
	return e
}

func atoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

func (e *sweepEnv) cli(args ...string) result {
	e.t.Helper()
	return runCLI(e.t, append(args, "--clusters", e.profiles)...)
}

func (e *sweepEnv) submit(args ...string) result {
	e.t.Helper()
	return e.cli(append([]string{"submit", "--binary", e.bin}, args...)...)
}

// waitStatus polls status (with --watch) until the sweep ends, and returns the last JSON.
func (e *sweepEnv) waitStatus(sweep string, bound time.Duration) (*slurm.SweepStatus, int) {
	e.t.Helper()
	deadline := time.Now().Add(bound)
	for {
		r := e.cli("status", sweep, "--json")
		var st slurm.SweepStatus
		if err := json.Unmarshal([]byte(r.out), &st); err != nil {
			e.t.Fatalf("status --json: %v\nout: %s\nerr: %s", err, r.out, r.err)
		}
		if r.code != ExitRunning || time.Now().After(deadline) {
			return &st, r.code
		}
		time.Sleep(time.Second)
	}
}

func (e *sweepEnv) sshTransport() remote.Transport {
	e.t.Helper()
	tr := e.dial(e.t.Context())
	e.t.Cleanup(func() { tr.Close() })
	return tr
}

func (e *sweepEnv) dial(ctx context.Context) remote.Transport {
	e.t.Helper()
	host, port, _ := strings.Cut(e.c.addr, ":")
	tr, err := remote.Dial(ctx, remote.SSHConfig{Host: host, Port: atoi(e.t, port), User: e.c.user,
		IdentityFiles: []string{e.c.key}, KnownHostsFiles: []string{e.c.knownHosts}, ConfigFile: "none"})
	if err != nil {
		e.t.Fatal(err)
	}
	return tr
}

// jobsNamed counts the live jobs of this user whose name starts with prefix.
func (e *sweepEnv) liveJobs(prefix string) []string {
	e.t.Helper()
	out, err := remote.Output(e.t.Context(), e.sshTransport(), `squeue -h -u "$USER" -o '%i|%j'`)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, name, _ := strings.Cut(l, "|")
		if strings.HasPrefix(name, prefix) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Two models with the dummy launcher: the dummy preset itself, and the stub of an API preset
// (served by the built-in dummy under the name stub:gemini_openai_api, on the GPU partition).
const twoModelSweep = `id: %s
models:
  - dummy_local_8000
  - model: gemini_openai_api
    stub: true
    gpus: 1
    memory: 500M
suite: demo
`

// localReference runs the same suite locally against the dummy launcher (hash mode).
func localReference(t *testing.T) string {
	t.Helper()
	url := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash}))
	out := filepath.Join(t.TempDir(), "local")
	if r := runCLI(t, "run", "--predict-url", url, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir); r.code != 0 {
		t.Fatalf("local run: %d\n%s\n%s", r.code, r.out, r.err)
	}
	return out
}

// sameScores compares every scored field of two result trees of one task list.
func sameScores(t *testing.T, want, got string) {
	t.Helper()
	tasks, err := filepath.Glob(filepath.Join(want, "*", eval.SummaryFile))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no task summaries under %s", want)
	}
	for _, p := range tasks {
		task := filepath.Base(filepath.Dir(p))
		ws, gs := readSummary(t, p), readSummary(t, filepath.Join(got, task, eval.SummaryFile))
		wm, _ := json.Marshal([]any{ws.Metrics, ws.Intervals})
		gm, _ := json.Marshal([]any{gs.Metrics, gs.Intervals})
		if !bytes.Equal(wm, gm) || ws.N != gs.N || ws.Failed != gs.Failed {
			t.Errorf("task %s: metrics differ\nlocal:   %s (n=%d failed=%d)\ncluster: %s (n=%d failed=%d)", task, wm, ws.N, ws.Failed, gm, gs.N, gs.Failed)
		}
		for _, f := range []string{eval.ScoredFile, eval.ProcessedFile} {
			a, err1 := os.ReadFile(filepath.Join(want, task, f))
			b, err2 := os.ReadFile(filepath.Join(got, task, f))
			if err1 != nil || err2 != nil {
				t.Fatalf("read %s: %v %v", f, err1, err2)
			}
			// Scored files are in sample_id order, whatever the order answers arrived in.
			if !bytes.Equal(a, b) {
				t.Errorf("task %s: %s differs between the two runs", task, f)
			}
		}
	}
}

func sortedLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestClusterSweepTwoModels(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	cfg := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(twoModelSweep, "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	// Secrets of the submitting machine: none may reach the cluster or come back.
	secrets := []string{"hf_SECRETtokenOfTheUser123", "sk-SECRETopenaiKey456", "AIzaSECRETgeminiKey789"}
	t.Setenv("HF_TOKEN", secrets[0])
	t.Setenv("OPENAI_API_KEY", secrets[1])
	t.Setenv("GEMINI_API_KEY", secrets[2])
	r := e.submit("--config", cfg, "--shards", "2")
	if r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"dummy_local_8000", "gemini_openai_api", "serve", "infer"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("submit's table lacks %q:\n%s", want, r.out)
		}
	}
	st, code := e.waitStatus("two", 3*time.Minute)
	if code != 0 {
		logs := e.cli("logs", "two", "--tail", "40")
		t.Fatalf("status exit %d: %+v\nlogs:\n%s", code, st, logs.out)
	}
	for _, ms := range st.Models {
		if ms.Outcome != "done" || len(ms.Infer) != 2 {
			t.Errorf("model %s: outcome %s, infer %+v", ms.Model, ms.Outcome, ms.Infer)
		}
		if len(ms.Tasks) == 0 {
			t.Errorf("model %s: no task progress", ms.Model)
		}
	}
	// No secret reached a script, a log or a fetched file.
	to := filepath.Join(t.TempDir(), "fetched")
	if r := e.cli("fetch", "two", "--to", to, "--logs"); r.code != 0 {
		t.Fatalf("fetch: %d\n%s\n%s", r.code, r.out, r.err)
	}
	token, err := remote.Output(t.Context(), e.sshTransport(), "cat "+remote.Quote(filepath.Join(e.workDir, "sweeps", "two", "token")))
	if err != nil || len(bytes.TrimSpace(token)) < 32 {
		t.Fatalf("read the sweep token: %v %q", err, token)
	}
	for _, secret := range append(secrets, strings.TrimSpace(string(token))) {
		scanForSecret(t, to, secret)
	}
	// Everything the sweep left on the cluster (scripts, logs, progress, handoff, results,
	// manifest), the token file itself excepted.
	for _, secret := range append(secrets, strings.TrimSpace(string(token))) {
		out, err := remote.Output(t.Context(), e.sshTransport(), "grep -rl --exclude=token -F "+remote.Quote(secret)+" "+remote.Quote(filepath.Join(e.workDir, "sweeps", "two"))+" || true")
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("a secret is in %s (%v)", out, err)
		}
	}
	scripts, err := remote.Output(t.Context(), e.sshTransport(), "cat "+remote.Quote(filepath.Join(e.workDir, "sweeps", "two", "scripts"))+"/*.sh")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(scripts, bytes.TrimSpace(token)) {
		t.Error("a rendered script holds the sweep token")
	}
	ref := localReference(t)
	for _, m := range []string{"dummy_local_8000", "gemini_openai_api"} {
		sameScores(t, ref, filepath.Join(to, m))
	}
	// A second fetch moves nothing.
	r = e.cli("fetch", "two", "--to", to)
	if r.code != 0 || !strings.Contains(r.out, " 0 copied") {
		t.Errorf("second fetch: %d %s %s", r.code, r.out, r.err)
	}
	// compare shows both models side by side.
	r = runCLI(t, "compare", "two")
	if r.code != 0 || !strings.Contains(r.out, "dummy_local_8000") || !strings.Contains(r.out, "gemini_openai_api") {
		t.Errorf("compare: %d\n%s\n%s", r.code, r.out, r.err)
	}
	// The sweep is listed.
	if r := runCLI(t, "sweeps"); !strings.Contains(r.out, "two") {
		t.Errorf("sweeps: %s", r.out)
	}
}

// A Python kit's own stub mode runs inside the serving job (the node's python3, the kits
// unpacked from the binary, no packages) and serves the sweep.
func TestClusterSweepKitStub(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	cfg := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(cfg, []byte("id: kit\nmodels:\n  - model: naturelm_v1_1\n    stub: true\n    memory: 500M\nsuite: demo\nlimit: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.submit("--config", cfg); r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	st, code := e.waitStatus("kit", 3*time.Minute)
	if code != 0 {
		logs := e.cli("logs", "kit", "--tail", "40")
		t.Fatalf("status exit %d: %+v\nlogs:\n%s", code, st, logs.out)
	}
	to := filepath.Join(t.TempDir(), "fetched")
	if r := e.cli("fetch", "kit", "--to", to); r.code != 0 {
		t.Fatalf("fetch: %s %s", r.out, r.err)
	}
	suite := readSummary(t, filepath.Join(to, "naturelm_v1_1_local_8001", "demo_species", eval.SummaryFile))
	if suite.N != 4 || suite.Failed != 0 {
		t.Errorf("n=%d failed=%d, want 4 answers from the kit", suite.N, suite.Failed)
	}
	preds, err := os.ReadFile(filepath.Join(to, "naturelm_v1_1_local_8001", "demo_species", eval.PredictionsFile))
	if err != nil || !strings.Contains(string(preds), "stub") {
		t.Errorf("the answers do not come from the kit's stub mode: %v\n%s", err, preds)
	}
}

func scanForSecret(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the sweep token", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("nothing fetched under %s", dir)
	}
}

func TestClusterServeFailsBeforeURL(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	cfg := filepath.Join(t.TempDir(), "sweep.yaml")
	// The launcher refuses its arguments and exits: the serving job ends without a URL.
	if err := os.WriteFile(cfg, []byte("id: broken\nmodels:\n  - model: dummy_local_8000\n    args: [--mode, bogus]\nsuite: demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.submit("--config", cfg); r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	st, code := e.waitStatus("broken", 2*time.Minute)
	if code != 1 {
		t.Fatalf("status exit %d, want 1: %+v", code, st)
	}
	ms := st.Models[0]
	if ms.Outcome != "failed" || !strings.Contains(ms.Problem, "before its URL appeared") || !strings.Contains(ms.Problem, "bogus") {
		t.Errorf("problem %q (outcome %s), want the serving job's failure with the launcher's message", ms.Problem, ms.Outcome)
	}
	// The inference job gave up at once (the serving job's exit file), or status cancelled it.
	deadline := time.Now().Add(30 * time.Second)
	for len(e.liveJobs("beans-broken-")) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if live := e.liveJobs("beans-broken-"); len(live) != 0 {
		t.Errorf("jobs still live: %v", live)
	}
}

func TestClusterServeCancelledMidRun(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	cfg := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(cfg, []byte("id: cut\nmodels:\n  - model: dummy_local_8000\n    args: [--latency, 1s, --slots, '1', --max-batch-size, '1']\nsuite: demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.submit("--config", cfg); r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	_, m, err := loadSweep("cut")
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, e, "cut")
	// Only the serving job goes: its inference job loses the launcher mid-run.
	if _, err := remote.Output(t.Context(), e.sshTransport(), "scancel "+m.Models[0].Serve.ID); err != nil {
		t.Fatal(err)
	}
	st, code := e.waitStatus("cut", 2*time.Minute)
	if code != 1 || st.Models[0].Outcome != "failed" {
		t.Fatalf("status exit %d outcome %s, want failed: %+v", code, st.Models[0].Outcome, st)
	}
	if st.Models[0].Serve.State != slurm.StateCancelled {
		t.Errorf("serve state %s, want CANCELLED (job %s)", st.Models[0].Serve.State, m.Models[0].Serve.ID)
	}
	if !strings.Contains(st.Models[0].Problem, "inference") {
		t.Errorf("problem %q does not name the failed inference", st.Models[0].Problem)
	}
	t.Logf("status says: %s", st.Models[0].Problem)
	if r := e.cli("cancel", "cut"); r.code != 0 || !strings.Contains(r.out, "cancelled") {
		t.Errorf("cancel of an ended sweep: %d %s %s", r.code, r.out, r.err)
	}
}

// waitProgress waits until the sweep's first model has answered some samples.
func waitProgress(t *testing.T, e *sweepEnv, sweep string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		r := e.cli("status", sweep, "--json", "--no-end")
		var st slurm.SweepStatus
		if json.Unmarshal([]byte(r.out), &st) == nil && len(st.Models) > 0 {
			for _, ts := range st.Models[0].Tasks {
				if ts.Done > 0 {
					return
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("no progress within 2 minutes")
}

func TestClusterInferCancelledThenResumed(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	cfg := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(cfg, []byte("id: again\nmodels:\n  - model: dummy_local_8000\n    args: [--latency, 300ms, --slots, '1', --max-batch-size, '2']\nsuite: demo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.submit("--config", cfg); r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	waitProgress(t, e, "again")
	_, m, err := loadSweep("again")
	if err != nil {
		t.Fatal(err)
	}
	serveID, inferID := m.Models[0].Serve.ID, m.Models[0].Infer.ID
	if _, err := remote.Output(t.Context(), e.sshTransport(), "scancel "+inferID); err != nil {
		t.Fatal(err)
	}
	// Wait until the inference job has ended.
	deadline := time.Now().Add(time.Minute)
	for slicesContains(e.liveJobs("beans-again-dummy_local_8000-infer"), inferID) && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	r := e.submit("--resume", "again")
	if r.code != 0 {
		t.Fatalf("resume: %d\n%s\n%s", r.code, r.out, r.err)
	}
	_, m, _ = loadSweep("again")
	if m.Models[0].Serve.ID != serveID {
		t.Errorf("the live serving job %s was replaced by %s", serveID, m.Models[0].Serve.ID)
	}
	if m.Models[0].Infer.ID == inferID || m.Models[0].Infer.ID == "" {
		t.Errorf("the inference job was not resubmitted (%s)", m.Models[0].Infer.ID)
	}
	st, code := e.waitStatus("again", 3*time.Minute)
	if code != 0 {
		logs := e.cli("logs", "again", "--tail", "40")
		t.Fatalf("status exit %d: %+v\n%s", code, st, logs.out)
	}
	to := filepath.Join(t.TempDir(), "fetched")
	if r := e.cli("fetch", "again", "--to", to); r.code != 0 {
		t.Fatalf("fetch: %s %s", r.out, r.err)
	}
	sameScores(t, localReference(t), filepath.Join(to, "dummy_local_8000"))
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestClusterUnknownHostKey(t *testing.T) {
	c := needCluster(t)
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newSweepEnv(t, c, func(p map[string]any) { p["known_hosts"] = empty })
	r := e.submit("--model", "dummy_local_8000", "--suite", "demo", "--sweep", "nohost")
	if r.code == 0 || !strings.Contains(r.err, "SHA256:") || !strings.Contains(r.err, "ssh-keyscan") {
		t.Fatalf("submit to an unknown host: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if live := e.liveJobs("beans-nohost-"); len(live) != 0 {
		t.Errorf("jobs were submitted: %v", live)
	}
}

func TestClusterWrongWorkDir(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, func(p map[string]any) { p["work_dir"] = "/root/not-yours/beans" })
	r := e.cli("cluster", "check")
	if r.code == 0 || !strings.Contains(r.out, "FAIL work_dir") {
		t.Errorf("cluster check: %d\n%s\n%s", r.code, r.out, r.err)
	}
	r = e.submit("--model", "dummy_local_8000", "--suite", "demo", "--sweep", "nowork")
	if r.code == 0 || !strings.Contains(r.err, "not writable") {
		t.Errorf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
}

func TestClusterCheck(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	r := e.cli("cluster", "check")
	if r.code != 0 {
		t.Fatalf("cluster check: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"ok   sbatch", "ok   work_dir", "ok   architecture"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("cluster check lacks %q:\n%s", want, r.out)
		}
	}
	wantAcct := "ok   accounting"
	if !c.accounting {
		wantAcct = "warn accounting"
	}
	if !strings.Contains(r.out, wantAcct) {
		t.Errorf("cluster check lacks %q:\n%s", wantAcct, r.out)
	}
}

func TestClusterDryRunTouchesNothing(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	r := e.submit("--model", "dummy_local_8000", "--model", "af3", "--suite", "demo", "--sweep", "dry", "--dry-run", "--stub")
	if r.code != 0 {
		t.Fatalf("dry run: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"#SBATCH", "sbatch --parsable", "af_next_local_8000-serve.sh", "--gres=gpu:1"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("dry run lacks %q", want)
		}
	}
	if _, err := e.sshTransport().Stat(t.Context(), e.workDir); err == nil {
		t.Errorf("the dry run created %s", e.workDir)
	}
	names, _ := filepath.Glob(filepath.Join(os.Getenv("BEANS_SLURM_STATE_DIR"), "sweeps", "*"))
	sort.Strings(names)
	if len(names) != 0 {
		t.Errorf("the dry run saved sweeps: %v", names)
	}
}

// A judge pass over a finished sweep, on the cluster: a judge serving job (the judge preset's
// stub, a deterministic judge) and a CPU judging job per model; its files come back with
// fetch and equal a local judging of the same predictions; a second pass (the extractor)
// keeps the first's files.
func TestClusterJudgePass(t *testing.T) {
	c := needCluster(t)
	e := newSweepEnv(t, c, nil)
	if r := e.submit("--model", "dummy_local_8000", "--suite", "demo", "--sweep", "judged"); r.code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if st, code := e.waitStatus("judged", 3*time.Minute); code != 0 {
		t.Fatalf("sweep: exit %d %+v", code, st)
	}
	judgeArgs := []string{"judge", "judged", "--judge", "gemma4_judge_vllm", "--stub", "--memory", "500M", "--time", "00:10:00"}
	r := e.cli(append(judgeArgs, "--mode", "yesno")...)
	if r.code != 0 || !strings.Contains(r.out, "dummy_local_8000/judge") {
		t.Fatalf("judge: %d\n%s\n%s", r.code, r.out, r.err)
	}
	st, code := e.waitStatus("judged", 3*time.Minute)
	if code != 0 || st.Models[0].Judge == nil || st.Models[0].Judge.Job.State != slurm.StateCompleted {
		logs := e.cli("logs", "judged", "--tail", "40")
		t.Fatalf("judge pass: exit %d %+v\nlogs:\n%s", code, st.Models[0].Judge, logs.out)
	}
	r = e.cli(append(judgeArgs, "--mode", "extract")...)
	if r.code != 0 {
		t.Fatalf("judge --mode extract: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if st, code := e.waitStatus("judged", 3*time.Minute); code != 0 || st.Models[0].Judge.Mode != "extract" {
		logs := e.cli("logs", "judged", "--tail", "40")
		t.Fatalf("extract pass: exit %d %+v\nlogs:\n%s", code, st.Models[0].Judge, logs.out)
	}
	if r := e.cli("status", "judged"); r.code != 0 || !strings.Contains(r.out, "judge (extract)") || !strings.Contains(r.out, "judge-serve (extract)") {
		t.Errorf("status table: %d\n%s", r.code, r.out)
	}
	if r := e.cli("logs", "judged", "--role", "judge"); r.code != 0 || !strings.Contains(r.out, "-judge-") || strings.Contains(r.out, "judge-serve") {
		t.Errorf("logs --role judge: %d\n%s", r.code, r.out)
	}
	to := filepath.Join(t.TempDir(), "fetched")
	if r := e.cli("fetch", "judged", "--to", to); r.code != 0 {
		t.Fatalf("fetch: %d\n%s\n%s", r.code, r.out, r.err)
	}
	res := filepath.Join(to, "dummy_local_8000")
	// The same judging, locally, over a copy of the fetched predictions.
	local := filepath.Join(t.TempDir(), "local")
	url := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeJudge}))
	tasks, _ := filepath.Glob(filepath.Join(res, "*", "predictions.jsonl"))
	if len(tasks) != 3 {
		t.Fatalf("fetched tasks: %v", tasks)
	}
	for _, p := range tasks {
		task := filepath.Base(filepath.Dir(p))
		for _, f := range []string{"predictions.jsonl", "task.json"} {
			b, err := os.ReadFile(filepath.Join(res, task, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(local, task), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(local, task, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := runCLI(t, "score", "--results-dir", local, "--judge-only", "--judge-url", url, "--judge-extract-url", url, "--no-answer-cache"); r.code != 0 {
		t.Fatalf("local judging: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, p := range tasks {
		task := filepath.Base(filepath.Dir(p))
		for _, f := range []string{"judge_scored_predictions.jsonl", "judge_extracted_scored_predictions.jsonl"} {
			got, err1 := os.ReadFile(filepath.Join(res, task, f))
			want, err2 := os.ReadFile(filepath.Join(local, task, f))
			if err1 != nil || err2 != nil || !bytes.Equal(got, want) || len(got) == 0 {
				t.Errorf("%s/%s: the cluster's differs from a local judging (%v %v)", task, f, err1, err2)
			}
		}
		var sum struct {
			Mode  string `json:"mode"`
			N     int    `json:"n"`
			Judge struct {
				Identity struct {
					Model string `json:"model"`
				} `json:"identity"`
			} `json:"judge"`
		}
		b, _ := os.ReadFile(filepath.Join(res, task, "judge_summary.json"))
		if err := json.Unmarshal(b, &sum); err != nil || sum.Mode != "yesno" || sum.N == 0 || sum.Judge.Identity.Model != "stub:gemma4_judge_vllm" {
			t.Errorf("%s judge_summary.json: %+v %v", task, sum, err)
		}
	}
	// compare shows the judged metric beside the deterministic ones.
	if r := runCLI(t, "compare", res); r.code != 0 || !strings.Contains(r.out, "judge_accuracy") {
		t.Errorf("compare: %d\n%s\n%s", r.code, r.out, r.err)
	}
}
