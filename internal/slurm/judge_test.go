package slurm

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPlanJudge(t *testing.T) {
	spec, prof := testSpec()
	m, _, err := Plan(spec, prof, "/work/me/beans/bin/beans-slurm-abc", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m.Models[0].Serve.ID, m.Models[0].Infer.ID = "10", "11"
	js := JudgeSpec{Judge: ModelSpec{ID: "gemma4_judge_vllm", Preset: "gemma4_judge_vllm", GPUs: 1, Time: "12:00:00", Memory: "64G"},
		Mode: "extract", Models: []string{"af3"}, Args: []string{"--task-type=classification"}, RegistryDirs: []string{"registry/00"}}
	files, err := PlanJudge(m, prof, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || m.Models[0].Judge == nil || m.Models[1].Judge != nil {
		t.Fatalf("files %d, judges %+v %+v", len(files), m.Models[0].Judge, m.Models[1].Judge)
	}
	byPath := map[string]string{}
	for _, f := range files {
		byPath[f.Path] = string(f.Data)
		if out, err := exec.Command("bash", "-n", "-c", string(f.Data)).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v %s", f.Path, err, out)
		}
	}
	serve := byPath["/work/me/beans/sweeps/paper/scripts/af3-judge-serve.sh"]
	for _, want := range []string{"--job-name=beans-paper-af3-judge-serve", "--gres=gpu:a100:1", "--mem=64G", "--time=12:00:00",
		"serve --model gemma4_judge_vllm", "--handoff /work/me/beans/sweeps/paper/handoff/af3.judge", "--expect 1",
		"--infer-name beans-paper-af3-judge", "--token-file /work/me/beans/sweeps/paper/token"} {
		if !strings.Contains(serve, want) {
			t.Errorf("judge serve script lacks %q:\n%s", want, serve)
		}
	}
	job := byPath["/work/me/beans/sweeps/paper/scripts/af3-judge.sh"]
	for _, want := range []string{"--job-name=beans-paper-af3-judge\n", "--partition=cpu", "score --results-dir /work/me/beans/sweeps/paper/results/af3",
		"--judge-only", "--judge-mode extract", "--handoff /work/me/beans/sweeps/paper/handoff/af3.judge",
		"--judge-token-file /work/me/beans/sweeps/paper/token", "--cache-dir /work/me/beans/cache", "--task-type=classification",
		`--serve-job "$1"`} {
		if !strings.Contains(job, want) {
			t.Errorf("judging script lacks %q:\n%s", want, job)
		}
	}
	if strings.Contains(job, "--gres") {
		t.Errorf("the judging job asks for a GPU:\n%s", job)
	}
	// The judge jobs are the sweep's: cancel, the submit probe and status see them.
	names := strings.Join(m.JobNames(), " ")
	if !strings.Contains(names, "beans-paper-af3-judge-serve") || !strings.Contains(names, "beans-paper-af3-judge ") {
		t.Errorf("job names %s", names)
	}
	m.Models[0].Judge.Serve.ID, m.Models[0].Judge.Job.ID = "20", "21"
	if ids := strings.Join(m.JobIDs("af3"), ","); ids != "10,11,20,21" {
		t.Errorf("job ids %s", ids)
	}
	// A second pass keeps the first's jobs in the history; the manifest round-trips.
	js.Mode = "yesno"
	if _, err := PlanJudge(m, prof, js); err != nil {
		t.Fatal(err)
	}
	if h := m.Models[0].History; len(h) != 2 || h[0].ID != "20" || m.Models[0].Judge.Mode != "yesno" || m.Models[0].Judge.Job.ID != "" {
		t.Errorf("second pass: history %+v judge %+v", h, m.Models[0].Judge)
	}
	b, _ := MarshalManifest(m)
	back, err := ParseManifest(b)
	if err != nil || back.Models[0].Judge == nil || back.Models[0].Judge.Mode != "yesno" {
		t.Errorf("round trip: %v %s", err, b)
	}
	// Refusals.
	for _, bad := range []JudgeSpec{
		{Judge: js.Judge, Mode: "vote"},
		{Judge: ModelSpec{}, Mode: "yesno"},
		{Judge: js.Judge, Mode: "yesno", Models: []string{"nope"}},
		{Judge: ModelSpec{Preset: "j", GPUs: 1}, Mode: "yesno"}, // no time limit anywhere
	} {
		p2 := prof
		p2.GPU.Time = ""
		if _, err := PlanJudge(m, p2, bad); err == nil {
			t.Errorf("PlanJudge accepted %+v", bad)
		}
	}
}

func TestStatusWithJudge(t *testing.T) {
	spec, prof := testSpec()
	spec.Shards = 1
	spec.Models = spec.Models[:1]
	m, _, _ := Plan(spec, prof, "/b", time.Unix(0, 0))
	m.Models[0].Serve.ID, m.Models[0].Infer.ID = "10", "11"
	if _, err := PlanJudge(m, prof, JudgeSpec{Judge: ModelSpec{Preset: "j", Time: "1"}, Mode: "yesno"}); err != nil {
		t.Fatal(err)
	}
	m.Models[0].Judge.Serve.ID, m.Models[0].Judge.Job.ID = "20", "21"
	jobs := func(judge State) []Job {
		return []Job{{ID: "10", State: StateCompleted}, {ID: "11", State: StateCompleted}, {ID: "20", State: StateRunning}, {ID: "21", State: judge, ExitCode: "2:0"}}
	}
	files := map[string]string{"handoff/af3.judge/serve-20.url": "http://n1:5/predict"}
	for _, tt := range []struct {
		judge   State
		outcome string
	}{{StateRunning, "running"}, {StatePending, "running"}, {StateCompleted, "done"}, {StateFailed, "failed"}} {
		st := buildStatus(m, jobs(tt.judge), true, files, time.Unix(0, 0))
		ms := st.Models[0]
		if ms.Outcome != tt.outcome || ms.Judge == nil || ms.Judge.URL != "http://n1:5/predict" || ms.Judge.Job.State != tt.judge {
			b, _ := json.Marshal(ms)
			t.Errorf("judge %s: %s", tt.judge, b)
		}
		if tt.judge == StateFailed && !strings.Contains(ms.Problem, "judge job 21") {
			t.Errorf("problem %q", ms.Problem)
		}
	}
}
