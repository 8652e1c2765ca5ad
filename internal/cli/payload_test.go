package cli

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
)

// startKitStub starts a Python kit in stub mode with the machine's python3 and returns its
// predict URL. A missing python3 fails the test (CI installs it).
func startKitStub(t *testing.T, kit string, args ...string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to run the launcher kits in stub mode: %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	serve := filepath.Join(filepath.Dir(file), "..", "..", "launchers", kit, "serve.py")
	cmd := exec.Command(python, append([]string{serve, "--host", "127.0.0.1", "--port", "0"}, args...)...)
	cmd.Env = append(os.Environ(), kitStubVar(kit)+"=1", "PYTHONDONTWRITEBYTECODE=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case u, ok := <-lines:
		if !ok || !strings.HasPrefix(u, "http://") {
			t.Fatalf("kit %s printed no URL (%q)", kit, u)
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("kit %s did not start within 30 s", kit)
	}
	return ""
}

// Audio as file_path: the run writes WAV files into --payload-dir and the launcher reads them
// (only below its allowed directory).
func TestRunFilePathPayload(t *testing.T) {
	payloads := t.TempDir()
	url := startKitStub(t, "hf_transformers", "--allow-dir", payloads)
	out := filepath.Join(t.TempDir(), "out")
	r := runCLI(t, "run", "--predict-url", url, "--task", "demo_species", "--limit", "4", "--output-dir", out,
		"--data-dir", demoDataDir, "--payload", "file_path", "--payload-dir", payloads)
	if r.code != 0 {
		t.Fatalf("run with file_path payloads: %d\n%s\n%s", r.code, r.out, r.err)
	}
	s := readSummary(t, filepath.Join(out, "demo_species", eval.SummaryFile))
	if s.N != 4 || s.Failed != 0 {
		t.Errorf("n=%d failed=%d: the launcher did not read every file", s.N, s.Failed)
	}
	wavs, _ := filepath.Glob(filepath.Join(payloads, "*", "*.wav"))
	wavs2, _ := filepath.Glob(filepath.Join(payloads, "*.wav"))
	if len(wavs)+len(wavs2) == 0 {
		t.Errorf("no WAV file written under %s", payloads)
	}

	// A launcher whose allowed directory is elsewhere refuses every item, one by one.
	elsewhere := startKitStub(t, "hf_transformers", "--allow-dir", t.TempDir())
	out2 := filepath.Join(t.TempDir(), "out")
	r = runCLI(t, "run", "--predict-url", elsewhere, "--task", "demo_species", "--limit", "3", "--output-dir", out2,
		"--data-dir", demoDataDir, "--payload", "file_path", "--payload-dir", payloads)
	s = readSummary(t, filepath.Join(out2, "demo_species", eval.SummaryFile))
	if r.code != 1 || s.Failed != 3 {
		t.Errorf("files outside the launcher's allowed directory: exit %d, failed %d of %d", r.code, s.Failed, s.N)
	}
}
