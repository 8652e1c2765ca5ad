package registry

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestEmbeddedSweeps(t *testing.T) {
	r := mustDefault(t)
	var ids []string
	for _, s := range r.Sweeps() {
		ids = append(ids, s.ID)
		if err := r.CheckSweep(s); err != nil {
			t.Errorf("sweep %s: %v", s.ID, err)
		}
		if o := r.Origin(KindSweep, s.ID); o != EmbeddedPrefix+"sweeps/"+s.ID+".yaml" || s.Origin() != o {
			t.Errorf("Origin(sweep, %s) = %q / %q", s.ID, o, s.Origin())
		}
	}
	if want := []string{"beans_zero_paper", "custom_checkpoint"}; !slices.Equal(ids, want) {
		t.Errorf("sweeps %v, want %v", ids, want)
	}

	// The paper sweep runs every preset but the judge on beans_zero_core, and names no
	// cluster (the --cluster flag or clusters.yaml's default decides).
	paper, err := r.Sweep("beans_zero_paper")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range r.Models() {
		if !strings.Contains(m.ID, "judge") {
			want = append(want, m.ID)
		}
	}
	got := r.sweepModelIDs(paper)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("paper sweep models %v, want every non-judge preset %v", got, want)
	}
	if paper.Suite != "beans_zero_core" || paper.Cluster != "" {
		t.Errorf("paper sweep: suite %q cluster %q", paper.Suite, paper.Cluster)
	}

	cc, err := r.Sweep("custom_checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Models) != 2 || cc.Models[1].Env["NATURELM_GCS_CHECKPOINT_URI"] == "" || cc.Models[0].ResultName("x") == cc.Models[1].ResultName("x") {
		t.Errorf("custom checkpoint template: %+v", cc.Models)
	}
	if ids := r.sweepModelIDs(cc); len(ids) != 2 || ids[0] != "naturelm_v1_1_local_8001" || ids[1] != ids[0] {
		t.Errorf("custom checkpoint presets %v", ids)
	}
	// Copies: changing a returned sweep does not change the registry.
	cc.Models[1].Env["NATURELM_GCS_CHECKPOINT_URI"] = "changed"
	if again, _ := r.Sweep("custom_checkpoint"); again.Models[1].Env["NATURELM_GCS_CHECKPOINT_URI"] == "changed" {
		t.Error("Sweep returns shared maps")
	}
	if _, err := r.Sweep("beans_zero_papr"); err == nil || !strings.Contains(err.Error(), "did you mean beans_zero_paper") {
		t.Errorf("unknown sweep: %v", err)
	}
}

func TestSweepModelForms(t *testing.T) {
	s, err := ParseSweepConfig([]byte(`models:
  - af3
  - model: naturelm_v1_1_local_8001
    name: mine
    env: {NATURELM_GCS_CHECKPOINT_URI: "gs://b/c.pt"}
    args: [--beams, "2"]
    time: "24:00:00"
    gpus: 2
    memory: 96G
    stub: true
suite: beans_zero_smoke
limit: 5
shards: 2
`), "dir/my_sweep.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "my_sweep" || s.Origin() != "dir/my_sweep.yaml" {
		t.Errorf("id %q origin %q: want the file name as id", s.ID, s.Origin())
	}
	if s.Models[0].Model != "af3" || s.Models[1].Name != "mine" || *s.Models[1].GPUs != 2 || !s.Models[1].Stub || s.Limit != 5 || s.Shards != 2 {
		t.Errorf("decoded %+v", s)
	}
	r := mustDefault(t)
	if err := r.CheckSweep(s); err != nil {
		t.Errorf("CheckSweep: %v", err)
	}
	preset, _ := r.Model("naturelm_v1_1_local_8001")
	m := s.Models[1].Apply(preset)
	if m.GPUs != 2 || m.Time != "24:00:00" || m.Memory != "96G" || !slices.Equal(m.Args, []string{"--beams", "2"}) {
		t.Errorf("Apply: %+v", m)
	}
	if p := s.Models[0].Apply(preset); p.GPUs != preset.GPUs || p.Time != preset.Time {
		t.Errorf("Apply without overrides changed the preset: %+v", p)
	}
}

func TestSweepProblems(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		want  []string
		check bool // the problems appear only when checked against the registry
	}{
		{"unknown key in a model entry", "models:\n  - model: af3\n    enV: {A: b}\nsuite: beans_zero_smoke\n",
			[]string{`s.yaml:3: unknown key "enV"; did you mean env?`}, false},
		{"unknown top-level key", "models: [af3]\nsuite: beans_zero_smoke\nshard: 2\n",
			[]string{`s.yaml:3: unknown key "shard"; did you mean shards?`}, false},
		{"bad values", "models:\n  - model: af3\n    time: noon\n    memory: lots\n    gpus: -1\nsuite: beans_zero_smoke\nlimit: -1\nshards: -2\ncluster: \"a b\"\n",
			[]string{`s.yaml:3: models[0]: time "noon"`, `s.yaml:4: models[0]: memory "lots"`, "s.yaml:5: models[0]: gpus -1",
				"s.yaml:7: limit -1", "s.yaml:8: shards -2", `s.yaml:9: cluster "a b"`}, false},
		{"no models, no tasks", "id: s\n", []string{"models: list at least one", "give suite:"}, false},
		{"model entry of the wrong kind", "models:\n  - [a, b]\nsuite: x\n", []string{"s.yaml:2: a model entry is a preset name"}, false},
		{"same results twice", "models: [af3, af3]\nsuite: beans_zero_smoke\n", []string{`s.yaml:1: models[1]: results name "af3" is already used`}, false},
		{"secret in env", "models:\n  - model: af3\n    env: {OPENAI_API_KEY: sk}\nsuite: beans_zero_smoke\n", []string{"s.yaml:3: models[0]: env: OPENAI_API_KEY looks like a secret"}, false},
		{"unknown model, suite and task", "models:\n  - af33\nsuite: beans_zero_smok\ntasks: [beans_zero_esc5]\n",
			[]string{`s.yaml:2: sweep s: unknown model "af33"; did you mean af3`, `s.yaml:3: unknown suite "beans_zero_smok"`, `s.yaml:4: unknown task "beans_zero_esc5"`}, true},
		{"task outside the suite", "models: [af3]\nsuite: beans_zero_smoke\ntasks: [beans_zero_watkins]\n",
			[]string{"s.yaml:3: task beans_zero_watkins is not in suite beans_zero_smoke"}, true},
		{"same preset by id and alias", "models: [af3, af_next_local_8000]\nsuite: beans_zero_smoke\n",
			[]string{"s.yaml:1: sweep s: models[1] (af_next_local_8000) and models[0] (af3) are the same preset"}, true},
	}
	r := mustDefault(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSweepConfig([]byte(tt.yaml), "s.yaml")
			if tt.check {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				err = r.CheckSweep(s)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var le *LoadError
			if !errors.As(err, &le) || !strings.HasPrefix(err.Error(), "sweep config: ") {
				t.Errorf("%T %v: want a *LoadError starting with sweep config:", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestUserSweepsInRegistry(t *testing.T) {
	r, err := LoadFS(fstest.MapFS{
		"sweeps/mine.yaml": {Data: []byte("id: mine\nmodels: [dummy_local_8000]\ntasks: [demo_species]\n")},
	}, "user")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.Sweep("mine"); err != nil || r.Origin(KindSweep, "mine") != "user/sweeps/mine.yaml" || s.Tasks[0] != "demo_species" {
		t.Errorf("user sweep: %+v, %v", s, err)
	}
	// Overriding an embedded sweep.
	r, err = LoadFS(fstest.MapFS{
		"sweeps/beans_zero_paper.yaml": {Data: []byte("id: beans_zero_paper\ncluster: mine\nmodels: [af3]\nsuite: beans_zero_smoke\n")},
	}, "user")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Sweep("beans_zero_paper"); s.Cluster != "mine" || len(r.Overrides(KindSweep, "beans_zero_paper")) != 1 {
		t.Errorf("override: %+v", s)
	}
	// Problems of a registry sweep carry its file and line.
	_, err = LoadFS(fstest.MapFS{
		"sweeps/bad.yaml": {Data: []byte("id: bad\nmodels:\n  - nope_model\nsuite: beans_zero_smoke\n")},
	}, "user")
	if err == nil || !strings.Contains(err.Error(), `user/sweeps/bad.yaml:3: sweep bad: unknown model "nope_model"`) {
		t.Errorf("bad sweep: %v", err)
	}
	_, err = LoadFS(fstest.MapFS{
		"sweeps/other.yaml": {Data: []byte("id: bad\nmodels: [af3]\nsuite: beans_zero_smoke\n")},
	}, "user")
	if err == nil || !strings.Contains(err.Error(), "user/sweeps/other.yaml:1: id \"bad\" does not match the file name") {
		t.Errorf("id mismatch: %v", err)
	}
}

func TestRunConfig(t *testing.T) {
	c, err := ParseRunConfig([]byte(`model: af3
suite: beans_zero_smoke
tasks: [beans_zero_esc50]
limit: 5
output_dir: results/x
data_dir: /data/BEANS-Zero
revision: main
cache_dir: /cache
no_cache: true
block_size: 1048576
resample: 16000
audio_format: float32
payload: file_path
payload_dir: /shared/payload
policy: strict
postprocess: raw
bootstrap: -1
seed: 7
spice_dir: /spice
no_spice: true
concurrency: 4
batch_size: 8
timeout: 10m
`), "run.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "af3" || c.Timeout != 10*time.Minute || c.Bootstrap != -1 || c.Seed != 7 || !c.NoSPICE || c.BlockSize != 1<<20 || c.Payload != "file_path" {
		t.Errorf("decoded %+v", c)
	}
	if err := mustDefault(t).CheckRunConfig(c); err != nil {
		t.Errorf("CheckRunConfig: %v", err)
	}
	// Every key of RunConfig is a flag of run with '-' for '_' (spot check of the list).
	for _, k := range knownKeys["registry.RunConfig"] {
		if strings.Contains(k, "-") {
			t.Errorf("key %s: use _", k)
		}
	}

	tests := []struct {
		name  string
		yaml  string
		want  []string
		check bool
	}{
		{"unknown key", "predict_url: http://h:1/predict\nsuite: demo\noutput-dir: x\n", []string{`r.yaml:3: unknown key "output-dir"; did you mean output_dir?`}, false},
		{"nothing to run", "limit: 1\n", []string{"give model:", "give suite:"}, false},
		{"bad values", "predict_url: localhost:8000\nsuite: demo\nlimit: -1\naudio_format: mp3\npayload: file_path\npolicy: fuzzy\npostprocess: none\nbootstrap: -5\ntimeout: soon\n",
			[]string{"r.yaml:1: predict_url", "r.yaml:3: limit -1", `r.yaml:4: audio_format "mp3"`, "r.yaml:5: payload file_path needs payload_dir",
				`r.yaml:6: policy "fuzzy"`, `r.yaml:7: postprocess "none"`, "r.yaml:8: bootstrap -5", "r.yaml:9: cannot unmarshal"}, false},
		{"unknown references", "model: af33\nsuite: demo\ntasks: [beans_zero_esc50]\n",
			[]string{`r.yaml:1: unknown model "af33"`, "r.yaml:3: task beans_zero_esc50 is not in suite demo"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseRunConfig([]byte(tt.yaml), "r.yaml")
			if tt.check {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				err = mustDefault(t).CheckRunConfig(c)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadConfigFiles(t *testing.T) {
	dir := t.TempDir()
	sp := filepath.Join(dir, "paper.yaml")
	os.WriteFile(sp, []byte("models: [af3]\nsuite: beans_zero_core\n"), 0o644)
	if s, err := LoadSweepConfig(sp); err != nil || s.ID != "paper" {
		t.Errorf("LoadSweepConfig: %+v, %v", s, err)
	}
	rp := filepath.Join(dir, "run.yaml")
	os.WriteFile(rp, []byte("predict_url: http://127.0.0.1:8000/predict\ntasks: [demo_species]\n"), 0o644)
	if c, err := LoadRunConfig(rp); err != nil || c.Origin() != rp {
		t.Errorf("LoadRunConfig: %+v, %v", c, err)
	}
	if _, err := LoadSweepConfig(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Error("missing sweep file: no error")
	}
	if _, err := LoadRunConfig(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Error("missing run file: no error")
	}
}
