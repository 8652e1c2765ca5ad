package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

// faultyDummy is `beans-slurm launcher dummy` as a real process on a fixed port, so that it
// can be killed and started again where the run expects it.
type faultyDummy struct {
	t    *testing.T
	bin  string
	args []string
	cmd  *exec.Cmd
}

func (d *faultyDummy) start() {
	d.t.Helper()
	var lastErr error
	for try := 0; try < 50; try++ { // the port may take a moment to be free again
		cmd := exec.Command(d.bin, d.args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			d.t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			d.t.Fatal(err)
		}
		line := make(chan string, 1)
		go func() {
			s := bufio.NewScanner(out)
			if s.Scan() {
				line <- s.Text()
			}
			close(line)
			for s.Scan() {
			}
		}()
		select {
		case l, ok := <-line:
			if ok && strings.HasSuffix(l, "/predict") {
				d.cmd = cmd
				return
			}
		case <-time.After(30 * time.Second):
		}
		_ = cmd.Process.Kill()
		lastErr = cmd.Wait()
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("the dummy launcher did not start: %v", lastErr)
}

// crash kills the launcher (SIGKILL: requests in flight are cut off).
func (d *faultyDummy) crash() {
	if d.cmd != nil {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		_ = d.cmd.Wait()
		d.cmd = nil
	}
}

// countLines counts the answers written so far over every task of a run.
func countLines(dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*", eval.PredictionsFile))
	n := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		n += strings.Count(string(b), "\n")
	}
	return n
}

// THE acceptance test of fault handling: the demo suite against a dummy launcher that fails
// a fifth of the items, drops some connections, answers some requests 429, and is killed and
// started again twice during the run, completes with every sample answered and the scores of
// a clean run.
func TestRunSurvivesAFaultyLauncher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a launcher process")
	}
	bin := clusterBinary(t)

	ref := filepath.Join(t.TempDir(), "ref")
	clean := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 2}))
	if r := runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", ref, "--data-dir", demoDataDir); r.code != 0 {
		t.Fatalf("clean run: %d %s", r.code, r.err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	d := &faultyDummy{t: t, bin: bin, args: []string{"launcher", "dummy", "--port", fmt.Sprint(port), "--mode", "hash",
		"--max-batch-size", "2", "--latency", "60ms", "--slots", "2", "--seed", "7", "--log-level", "error",
		"--fail-rate", "0.2", "--drop-rate", "0.03", "--status-rate", "0.03", "--status", "429", "--retry-after", "100ms"}}
	d.start()
	t.Cleanup(d.crash)

	out := filepath.Join(t.TempDir(), "faulty")
	done := make(chan result, 1)
	go func() {
		done <- runCLI(t, "run", "--predict-url", fmt.Sprintf("http://127.0.0.1:%d/predict", port), "--suite", "demo",
			"--output-dir", out, "--data-dir", demoDataDir, "--attempts", "40", "--concurrency", "2", "--log-level", "error")
	}()
	var r result
	finished := false
	restarts := 0
	for _, at := range []int{20, 70} { // answers written before each crash (of 144)
		for !finished && countLines(out) < at {
			select {
			case r = <-done:
				finished = true
			case <-time.After(20 * time.Millisecond):
			}
		}
		if finished {
			break
		}
		d.crash()
		time.Sleep(300 * time.Millisecond) // down for a moment: the client must wait, not give up
		d.start()
		restarts++
	}
	if !finished {
		r = <-done
	}
	if restarts != 2 {
		t.Fatalf("the run ended after %d restarts of the launcher, before the test could restart it twice", restarts)
	}
	if r.code != 0 {
		t.Fatalf("run exited %d\n%s\n%s", r.code, r.out, r.err)
	}
	sameScores(t, ref, out)

	// Zero lost samples: every sample answered once, none failed, and the faults happened.
	retried := 0
	for _, task := range readSuite(t, out).Tasks {
		b, err := os.ReadFile(filepath.Join(out, task.TaskID, eval.PredictionsFile))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var p eval.PredictionLine
			if err := json.Unmarshal([]byte(l), &p); err != nil {
				t.Fatal(err)
			}
			if seen[p.SampleID] || p.Error != "" || !strings.HasPrefix(p.Prediction, "hash:") {
				t.Errorf("%s: line %s", task.TaskID, l)
			}
			seen[p.SampleID] = true
			if p.Attempts > 1 {
				retried++
			}
		}
		if len(seen) != task.N || task.Failed != 0 {
			t.Errorf("%s: %d samples answered, n %d, failed %d", task.TaskID, len(seen), task.N, task.Failed)
		}
	}
	if retried == 0 {
		t.Error("no sample needed a retry: the faults did not happen")
	}
	t.Logf("%d samples needed retries", retried)
}
