package cli

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

// A worker killed with SIGKILL at random points, many times, then resumed, ends with the
// scored files of an uninterrupted run: no answer lost, none attributed to the wrong sample,
// failed items asked again.
func TestResumeAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it many times")
	}
	bin := clusterBinary(t) // the real binary: it is what gets killed
	clean := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 2, Latency: 15 * time.Millisecond, Slots: 1}))
	flaky := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 2, Latency: 15 * time.Millisecond, Slots: 1, FailEvery: 3}))

	ref := filepath.Join(t.TempDir(), "ref")
	if r := runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", ref, "--data-dir", demoDataDir); r.code != 0 {
		t.Fatalf("reference run: %d %s", r.code, r.err)
	}

	out := filepath.Join(t.TempDir(), "killed")
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for i := 0; i < 8; i++ {
		args := []string{"run", "--predict-url", flaky, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir, "--log-level", "error"}
		if i > 0 {
			args = append(args, "--resume")
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done: // finished before the kill: fine, the next round resumes a complete run
		case <-time.After(time.Duration(50+rng.IntN(700)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
	}
	if kills == 0 {
		t.Fatal("no run was killed: the test proves nothing")
	}
	// The last resume, against a launcher that no longer fails, completes the run.
	r := runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir, "--resume")
	if r.code != 0 {
		t.Fatalf("final resume: %d\n%s\n%s", r.code, r.out, r.err)
	}
	sameScores(t, ref, out)
	t.Logf("%d kills", kills)

	// A resume that asks for something else is refused, and says what differs.
	r = runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir, "--resume", "--limit", "3")
	if r.code != 2 || !strings.Contains(r.err, "limit: was 0, now 3") {
		t.Errorf("resume with another limit: %d %s", r.code, r.err)
	}
	// Without --resume or --overwrite the directory is protected; --overwrite moves it aside.
	r = runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir)
	if r.code != 2 || !strings.Contains(r.err, "--resume") {
		t.Errorf("run into a used directory: %d %s", r.code, r.err)
	}
	r = runCLI(t, "run", "--predict-url", clean, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir, "--overwrite")
	if r.code != 0 {
		t.Fatalf("--overwrite: %d %s", r.code, r.err)
	}
	aside, _ := filepath.Glob(filepath.Join(out, "demo_species.replaced-*"))
	if len(aside) != 1 {
		t.Errorf("the earlier results were not moved aside: %v", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], "summary.json")); err != nil {
		t.Errorf("the moved results are incomplete: %v", err)
	}
	sameScores(t, ref, out)
}

// SIGTERM (Ctrl-C, scancel, SLURM's --signal): the run stops sending, writes what arrived,
// exits 130 and says how to continue.
func TestSigtermSaysHowToResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := clusterBinary(t)
	slow := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 1, Latency: 50 * time.Millisecond, Slots: 1}))
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(bin, "run", "--predict-url", slow, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until answers are being written, then signal.
	pred := filepath.Join(out, "demo_species", "predictions.jsonl")
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(pred); err == nil && st.Size() > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "Continue with:") || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("no resume hint:\n%s", stderr.String())
	}
	b, _ := os.ReadFile(pred)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Errorf("the predictions file does not end with a complete line: %q", b)
	}
}
