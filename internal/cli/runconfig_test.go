package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// Every key of a run file maps to a flag of run.
func TestRunConfigKeysAreFlags(t *testing.T) {
	cfg, err := registry.ParseRunConfig([]byte(`model: dummy_local_8000
predict_url: http://127.0.0.1:9/predict
suite: demo
tasks: [demo_species]
limit: 3
output_dir: out
data_dir: /data
revision: main
cache_dir: /cache
no_cache: true
block_size: 1048576
resample: 16000
audio_format: float32
payload: base64_wav
payload_dir: /p
policy: strict
postprocess: none
bootstrap: 10
seed: 7
spice_dir: /s
no_spice: true
concurrency: 2
batch_size: 4
timeout: 10m
`), "run.yaml")
	if err != nil {
		t.Skipf("the run file's values are checked by the registry: %v", err)
	}
	cmd := newRunCmd(IO{}, &globals{})
	if err := applyRunConfig(cmd.Flags(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("timeout").Value.String(); got != (10 * time.Minute).String() {
		t.Errorf("timeout %s", got)
	}
}

func TestRunConfigFlagsOverrideTheFile(t *testing.T) {
	url := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeTone}))
	dir := t.TempDir()
	out := filepath.Join(dir, "from-file")
	cfg := filepath.Join(dir, "run.yaml")
	body := "predict_url: " + url + "\nsuite: demo\ntasks: [demo_species]\nlimit: 5\noutput_dir: " + out + "\ndata_dir: " + demoDataDir + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "run", "--config", cfg, "--limit", "2")
	if r.code != 0 {
		t.Fatalf("run --config: %d\n%s\n%s", r.code, r.out, r.err)
	}
	s := readSummary(t, filepath.Join(out, "demo_species", eval.SummaryFile))
	if s.N != 2 {
		t.Errorf("n = %d: the flag --limit 2 must override the file's limit 5", s.N)
	}
	r = runCLI(t, "run", "--config", filepath.Join(dir, "missing.yaml"))
	if r.code != 2 || !strings.Contains(r.err, "missing.yaml") {
		t.Errorf("missing run file: %d %s", r.code, r.err)
	}
}

func TestSkipDone(t *testing.T) {
	dir := t.TempDir()
	mk := func(task string, files ...string) {
		for _, f := range files {
			p := filepath.Join(dir, task, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("done", eval.PredictionsFile, eval.SummaryFile)
	mk("half", eval.PredictionsFile)
	tasks := []registry.Task{{ID: "done"}, {ID: "half"}, {ID: "new"}}
	now := time.Unix(0, 0)
	for _, move := range []bool{false, true} {
		run, skipped, moved, err := skipDone(dir, tasks, move, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 1 || skipped[0].ID != "done" || len(run) != 2 || run[0].ID != "half" || run[1].ID != "new" {
			t.Errorf("move=%t: run %v skipped %v", move, run, skipped)
		}
		if move != (len(moved) == 1) {
			t.Errorf("move=%t: moved %v", move, moved)
		}
	}
}
