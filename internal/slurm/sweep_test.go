package slurm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

func testSpec() (Spec, Profile) {
	spec := Spec{Name: "paper", Suite: "beans_zero_core", Limit: 5, Shards: 2, Version: "v0",
		Models: []ModelSpec{
			{ID: "af3", Preset: "af_next_local_8000", GPUs: 1, Time: "02:00:00", Memory: "32G", Env: map[string]string{"HF_HOME": "/scratch/hf"}},
			{ID: "stub", Preset: "naturelm_v1_1_local_8001", GPUs: 2, Stub: true, LauncherArgs: []string{"--mode", "tone"}},
		},
		RunArgs:      []string{"--data-dir", "/shared/BEANS Zero"},
		RegistryDirs: []string{"registry/00"},
	}
	prof := Profile{Name: "hpc", WorkDir: "/work/me/beans",
		GPU:   Resources{Partition: "gpu", GRES: "gpu:a100:{n}", Time: "04:00:00", Account: "bio"},
		CPU:   Resources{Partition: "cpu", Time: "01:00:00", CPUs: 4},
		Setup: []string{"module load cuda"}, Env: map[string]string{"TMPDIR": "/scratch"}}
	return spec, prof
}

func TestPlan(t *testing.T) {
	spec, prof := testSpec()
	m, files, err := Plan(spec, prof, "/work/me/beans/bin/beans-slurm-abc", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dir != "/work/me/beans/sweeps/paper" || len(m.Models) != 2 || len(files) != 4 {
		t.Fatalf("manifest %+v, %d files", m, len(files))
	}
	byPath := map[string]string{}
	for _, f := range files {
		byPath[f.Path] = string(f.Data)
		if out, err := exec.Command("bash", "-n", "-c", string(f.Data)).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v %s", f.Path, err, out)
		}
	}
	serve := byPath["/work/me/beans/sweeps/paper/scripts/af3-serve.sh"]
	for _, want := range []string{"--gres=gpu:a100:1", "--time=02:00:00", "--mem=32G", "--account=bio", "module load cuda",
		"HF_HOME=", "TMPDIR=", "serve --model af_next_local_8000", "--expect 2", "--infer-name beans-paper-af3-infer",
		"--job-name=beans-paper-af3-serve", "--signal=B:TERM@120", "--registry registry/00"} {
		if !strings.Contains(serve, want) {
			t.Errorf("serve script lacks %q:\n%s", want, serve)
		}
	}
	stubServe := byPath["/work/me/beans/sweeps/paper/scripts/stub-serve.sh"]
	for _, want := range []string{"--gres=gpu:a100:2", "--time=04:00:00", "--stub", "--launcher-arg=--mode", "--launcher-arg=tone"} {
		if !strings.Contains(stubServe, want) {
			t.Errorf("stub serve script lacks %q:\n%s", want, stubServe)
		}
	}
	infer := byPath["/work/me/beans/sweeps/paper/scripts/af3-infer.sh"]
	for _, want := range []string{"--array=0-1", "--partition=cpu", "--cpus-per-task=4", "run --suite beans_zero_core", "--limit 5",
		"--shards 2", "--skip-completed", "--resume", "'/shared/BEANS Zero'", "--serve-job", "--signal=B:TERM@120", "--cache-dir /work/me/beans/cache"} {
		if !strings.Contains(infer, want) {
			t.Errorf("infer script lacks %q:\n%s", want, infer)
		}
	}
	if strings.Contains(infer, "--gres") {
		t.Errorf("the inference job asks for GPUs:\n%s", infer)
	}
}

func TestPlanRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*Spec, *Profile){
		"bad sweep name":   func(s *Spec, _ *Profile) { s.Name = "a b" },
		"hostile model":    func(s *Spec, _ *Profile) { s.Models[0].ID = "x;rm -rf ~" },
		"twice":            func(s *Spec, _ *Profile) { s.Models[1].ID = s.Models[0].ID },
		"no models":        func(s *Spec, _ *Profile) { s.Models = nil },
		"no tasks":         func(s *Spec, _ *Profile) { s.Suite = "" },
		"relative workdir": func(_ *Spec, p *Profile) { p.WorkDir = "beans" },
		"no time":          func(s *Spec, p *Profile) { s.Models[1].Time, p.GPU.Time = "", "" },
		"newline in env":   func(s *Spec, _ *Profile) { s.Models[0].Env["X"] = "a\nb" },
	} {
		t.Run(name, func(t *testing.T) {
			spec, prof := testSpec()
			mutate(&spec, &prof)
			if _, _, err := Plan(spec, prof, "/bin/x", time.Now()); err == nil {
				t.Error("planned")
			}
		})
	}
}

func TestStore(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	spec, prof := testSpec()
	old, _, err := Plan(spec, prof, "/b", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	spec.Name = "newer"
	newer, _, _ := Plan(spec, prof, "/b", time.Unix(200, 0))
	for _, m := range []*Manifest{old, newer} {
		if err := s.Save(m); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List()
	if err != nil || len(all) != 2 || all[0].Name != "newer" {
		t.Fatalf("list: %v %+v", err, all)
	}
	latest, err := s.Latest()
	if err != nil || latest.Name != "newer" {
		t.Fatalf("latest %v %v", latest, err)
	}
	_, err = s.Load("nope")
	var unknown *UnknownSweepError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "newer") {
		t.Errorf("unknown sweep: %v", err)
	}
	if _, err := s.Load("../etc/passwd"); err == nil {
		t.Error("a path as a sweep name was accepted")
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "bad.json"), []byte(`{"schema":"other"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("bad"); err == nil {
		t.Error("a manifest of another schema was accepted")
	}
}

func statusOf(t *testing.T, shards int, jobs []Job, files map[string]string) ModelStatus {
	t.Helper()
	m := &Manifest{Name: "s", Shards: shards, Models: []ManifestModel{{Model: "m",
		Serve: JobRef{Role: "serve", ID: "10"}, Infer: JobRef{Role: "infer", ID: "11"}}}}
	return buildStatus(m, jobs, true, files, time.Now()).Models[0]
}

func TestStatusOutcomes(t *testing.T) {
	running := Job{ID: "10", State: StateRunning}
	doneProgress := `{"job":"11_1","shard":1,"shards":2,"state":"done","predict_url":"http://n:1/predict","tasks":[{"task":"t","done":3,"total":3,"finished":true}]}`
	staleProgress := `{"job":"9_1","shard":1,"shards":2,"state":"done","tasks":[]}`
	for _, tt := range []struct {
		name    string
		jobs    []Job
		files   map[string]string
		outcome string
		problem string
	}{
		{"pending", []Job{{ID: "10", State: StatePending}, {ID: "11_[0-1]", ArrayJobID: "11", ArrayTask: "[0-1]", State: StatePending}}, nil, "running", ""},
		{"all done", []Job{running, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateCompleted}, {ID: "11_1", ArrayJobID: "11", ArrayTask: "1", State: StateCompleted}}, nil, "done", ""},
		{"one shard not listed yet", []Job{running, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateCompleted}}, nil, "running", ""},
		{"missing shard done per its progress", []Job{running, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateCompleted}},
			map[string]string{"progress/m/shard-1.json": doneProgress}, "done", ""},
		{"a stale progress file is ignored", []Job{running, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateCompleted}},
			map[string]string{"progress/m/shard-1.json": staleProgress}, "running", ""},
		{"serve failed before its URL", []Job{{ID: "10", State: StateFailed}, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateRunning}, {ID: "11_1", ArrayJobID: "11", ArrayTask: "1", State: StatePending}},
			map[string]string{"handoff/m/serve-10.exit": "the launcher did not start: bad flag"}, "failed", "bad flag"},
		{"a shard failed", []Job{{ID: "10", State: StateCancelled}, {ID: "11_0", ArrayJobID: "11", ArrayTask: "0", State: StateFailed, ExitCode: "1:0"}, {ID: "11_1", ArrayJobID: "11", ArrayTask: "1", State: StateCompleted}},
			map[string]string{"progress/m/shard-1.json": doneProgress}, "failed", "11_0 FAILED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms := statusOf(t, 2, tt.jobs, tt.files)
			if ms.Outcome != tt.outcome || !strings.Contains(ms.Problem, tt.problem) {
				t.Errorf("outcome %s problem %q, want %s %q (infer %+v)", ms.Outcome, ms.Problem, tt.outcome, tt.problem, ms.Infer)
			}
		})
	}
}

// recorder is a transport that records commands and answers every one with exit 0.
type recorder struct {
	remote.Transport
	cmds []string
}

func (r *recorder) Run(_ context.Context, cmd string, _ io.Reader) (*remote.Result, error) {
	r.cmds = append(r.cmds, cmd)
	return &remote.Result{}, nil
}

func TestReconcile(t *testing.T) {
	// A serving job that died before its URL: its waiting inference jobs are cancelled.
	failed := statusOf(t, 1, []Job{{ID: "10", State: StateFailed}, {ID: "11", State: StatePending}}, map[string]string{"handoff/m/serve-10.exit": "launcher exited"})
	// Inference over, the serving job still holds its GPU: it is ended.
	over := statusOf(t, 1, []Job{{ID: "10", State: StateRunning}, {ID: "11", State: StateCompleted}}, nil)
	// Still working: nothing happens.
	busy := statusOf(t, 1, []Job{{ID: "10", State: StateRunning}, {ID: "11", State: StateRunning}}, nil)
	r := &recorder{}
	st := &SweepStatus{Models: []ModelStatus{failed, over, busy}}
	if err := Reconcile(context.Background(), &Client{T: r}, st); err != nil {
		t.Fatal(err)
	}
	if len(r.cmds) != 1 || !strings.Contains(r.cmds[0], "scancel") || !strings.Contains(r.cmds[0], "11") || !strings.Contains(r.cmds[0], "10") {
		t.Fatalf("commands %q, want one scancel of 11 and 10", r.cmds)
	}
	if len(st.Models[0].Actions) != 1 || len(st.Models[1].Actions) != 1 || len(st.Models[2].Actions) != 0 {
		t.Errorf("actions %q %q %q", st.Models[0].Actions, st.Models[1].Actions, st.Models[2].Actions)
	}
	if st.ExitCode() != 3 {
		t.Errorf("exit code %d with a model still running", st.ExitCode())
	}
}

func TestArrayIndexes(t *testing.T) {
	for _, tt := range []struct {
		task string
		want string
	}{{"", "[0]"}, {"3", "[3]"}, {"[0-2]", "[0 1 2]"}, {"[1,3-4%2]", "[1 3 4]"}, {"[5-2]", "[]"}, {"[0-99999999]", "[]"}} {
		if got := fmt.Sprint(arrayIndexes(Job{ArrayTask: tt.task}, 4)); got != tt.want {
			t.Errorf("%q: %s, want %s", tt.task, got, tt.want)
		}
	}
}
