package registry

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func mustDefault(t *testing.T) *Registry {
	t.Helper()
	r, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return r
}

func TestDefaultLoads(t *testing.T) {
	r := mustDefault(t)
	if got := len(r.Tasks()); got != 25 {
		t.Errorf("tasks: got %d, want 25 (22 BEANS-Zero + 3 demo)", got)
	}
	var suites []string
	for _, s := range r.Suites() {
		suites = append(suites, s.ID)
	}
	if want := []string{"beans_zero_captions", "beans_zero_classification", "beans_zero_core", "beans_zero_detection", "beans_zero_smoke", "beans_zero_unseen_taxa", "demo"}; !slices.Equal(suites, want) {
		t.Errorf("suites: got %v, want %v", suites, want)
	}
	var prompts []string
	for _, p := range r.Prompts() {
		prompts = append(prompts, p.ID)
	}
	if want := []string{"beans_zero_instruction", "demo_instruction"}; !slices.Equal(prompts, want) {
		t.Errorf("prompts: got %v, want %v", prompts, want)
	}
	for _, task := range r.Tasks() {
		if o := r.Origin(KindTask, task.ID); o != EmbeddedPrefix+"tasks/"+task.ID+".yaml" {
			t.Errorf("Origin(task, %s) = %q", task.ID, o)
		}
		if task.Description == "" || strings.Contains(task.Description, "\n") {
			t.Errorf("task %s: want a one-line description, got %q", task.ID, task.Description)
		}
	}
}

func TestBeansZeroCore(t *testing.T) {
	r := mustDefault(t)
	want := []struct {
		id      string
		names   []string
		typ     string
		rows    int
		capSecs float64
	}{
		{"beans_zero_esc50", []string{"esc50"}, Classification, 400, 5},
		{"beans_zero_watkins", []string{"watkins"}, Classification, 339, 3},
		{"beans_zero_cbi", []string{"cbi"}, Classification, 3620, 10},
		{"beans_zero_humbugdb", []string{"humbugdb"}, Classification, 1859, 3},
		{"beans_zero_lifestage", []string{"lifestage"}, Classification, 466, 10},
		{"beans_zero_call_type", []string{"call-type"}, Classification, 1000, 10},
		{"beans_zero_unseen_species_cmn", []string{"unseen-species-cmn"}, Classification, 1255, 10},
		{"beans_zero_unseen_species_sci", []string{"unseen-species-sci"}, Classification, 1255, 10},
		{"beans_zero_unseen_species_tax", []string{"unseen-species-tax"}, Classification, 1255, 10},
		{"beans_zero_unseen_genus_cmn", []string{"unseen-genus-cmn"}, Classification, 951, 10},
		{"beans_zero_unseen_genus_sci", []string{"unseen-genus-sci"}, Classification, 951, 10},
		{"beans_zero_unseen_genus_tax", []string{"unseen-genus-tax"}, Classification, 951, 10},
		{"beans_zero_unseen_family_cmn", []string{"unseen-family-cmn"}, Classification, 451, 10},
		{"beans_zero_unseen_family_sci", []string{"unseen-family-sci"}, Classification, 451, 10},
		{"beans_zero_unseen_family_tax", []string{"unseen-family-tax"}, Classification, 451, 10},
		{"beans_zero_zf_indiv", []string{"zf-indiv", "zf-indv"}, Classification, 1160, 10},
		{"beans_zero_enabirds", []string{"enabirds"}, Detection, 4543, 10},
		{"beans_zero_hiceas", []string{"hiceas"}, Detection, 1485, 10},
		{"beans_zero_rfcx", []string{"rfcx"}, Detection, 10406, 10},
		{"beans_zero_gibbons", []string{"gibbons"}, Detection, 18560, 10},
		{"beans_zero_dcase", []string{"dcase"}, Detection, 13688, 10},
		{"beans_zero_captioning", []string{"captioning"}, Captioning, 26468, 10},
	}
	tasks, err := r.SuiteTasks("beans_zero_core")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != len(want) {
		t.Fatalf("beans_zero_core: got %d tasks, want %d", len(tasks), len(want))
	}
	sum := 0
	for i, w := range want {
		got := tasks[i]
		sum += got.Rows
		if got.ID != w.id {
			t.Errorf("task %d: got %s, want %s (the table's order)", i, got.ID, w.id)
			continue
		}
		if !slices.Equal(got.DatasetNames, w.names) || got.Type != w.typ || got.Rows != w.rows || got.AudioCapSeconds != w.capSecs {
			t.Errorf("%s: got names %v type %s rows %d cap %v; want %v %s %d %v",
				w.id, got.DatasetNames, got.Type, got.Rows, got.AudioCapSeconds, w.names, w.typ, w.rows, w.capSecs)
		}
		wantSrc := Source{Kind: SourceHub, Repo: "EarthSpeciesProject/BEANS-Zero", Config: "BEANS-Zero", Split: "test", Files: "shard*"}
		if got.Source != wantSrc {
			t.Errorf("%s: source %+v, want %+v", w.id, got.Source, wantSrc)
		}
		if got.Prompt != "beans_zero_instruction" || len(got.Labels) != 0 {
			t.Errorf("%s: prompt %q labels %v; want beans_zero_instruction and no declared labels", w.id, got.Prompt, got.Labels)
		}
		if got.GenerationConfig["max_tokens"] != 300 || got.GenerationConfig["temperature"] != 0.0 {
			t.Errorf("%s: generation_config %v", w.id, got.GenerationConfig)
		}
	}
	if sum != 91965 {
		t.Errorf("rows sum to %d, want 91965", sum)
	}
}

func suiteIDs(t *testing.T, r *Registry, suite string) []string {
	t.Helper()
	tasks, err := r.SuiteTasks(suite)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}

func TestSmokeAndDemoSuites(t *testing.T) {
	r := mustDefault(t)
	if got, want := suiteIDs(t, r, "beans_zero_smoke"), []string{"beans_zero_esc50", "beans_zero_enabirds", "beans_zero_captioning"}; !slices.Equal(got, want) {
		t.Errorf("smoke: got %v, want %v", got, want)
	}
	if got, want := suiteIDs(t, r, "demo"), []string{"demo_species", "demo_detection", "demo_captioning"}; !slices.Equal(got, want) {
		t.Errorf("demo: got %v, want %v", got, want)
	}
	labels := []string{"Azure Whistler", "Copper Trill", "Dusky Chirper", "Ember Warbler", "Frost Piper", "Golden Buzzer"}
	for _, w := range []struct {
		id, typ, name string
		rows          int
		labels        []string
	}{
		{"demo_species", Classification, "demo-species", 60, labels},
		{"demo_detection", Detection, "demo-detection", 48, labels},
		{"demo_captioning", Captioning, "demo-captioning", 36, nil},
	} {
		got, err := r.Task(w.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != w.typ || got.Rows != w.rows || got.Source.Kind != SourceDemo || !slices.Equal(got.DatasetNames, []string{w.name}) || !slices.Equal(got.Labels, w.labels) {
			t.Errorf("%s: got %+v", w.id, got)
		}
		if got.Prompt != "demo_instruction" || got.GenerationConfig["max_tokens"] != 64 || got.GenerationConfig["temperature"] != 0.0 {
			t.Errorf("%s: prompt %q generation_config %v", w.id, got.Prompt, got.GenerationConfig)
		}
	}
}

func TestModelPresets(t *testing.T) {
	r := mustDefault(t)
	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
		if m.Description == "" || m.Launcher == "" {
			t.Errorf("model %s: description and launcher are required", m.ID)
		}
	}
	want := []string{"af_next_local_8000", "dummy_local_8000", "gemini_openai_api", "gemma4_judge_vllm",
		"gpt4o_audio_openai_api", "naturelm_v1_0_local_8000", "naturelm_v1_1_local_8001", "qwen3_omni_vllm_local_8000"}
	if !slices.Equal(ids, want) {
		t.Errorf("models: got %v, want %v", ids, want)
	}
	tests := []struct {
		name, id, launcher string
		port               int
	}{
		{"dummy_local_8000", "dummy_local_8000", LauncherDummy, 8000},
		{"af3", "af_next_local_8000", LauncherPython, 8000},
		{"af-next", "af_next_local_8000", LauncherPython, 8000},
		{"naturelm_v1_1_local_8001", "naturelm_v1_1_local_8001", LauncherPython, 8001},
		{"gpt4o_audio_openai_api", "gpt4o_audio_openai_api", LauncherOpenAIProxy, 8000},
		{"gemma4_judge_vllm", "gemma4_judge_vllm", LauncherVLLM, 8010},
	}
	for _, tt := range tests {
		m, err := r.Model(tt.name)
		if err != nil {
			t.Errorf("Model(%q): %v", tt.name, err)
			continue
		}
		if m.ID != tt.id || m.Launcher != tt.launcher || m.Port != tt.port {
			t.Errorf("Model(%q) = %s launcher %s port %d; want %s %s %d", tt.name, m.ID, m.Launcher, m.Port, tt.id, tt.launcher, tt.port)
		}
	}
	if m, _ := r.Model("dummy_local_8000"); m.PredictURL != "http://127.0.0.1:8000/predict" {
		t.Errorf("dummy predict_url = %q", m.PredictURL)
	}
	if m, _ := r.Model("gpt4o_audio_openai_api"); m.Model != "gpt-4o-audio-preview" || !slices.Equal(m.Env, []string{"OPENAI_API_KEY"}) || m.GPUs != 0 {
		t.Errorf("gpt4o preset: %+v", m)
	}
	if m, _ := r.Model("qwen3_omni_vllm_local_8000"); m.AudioCapSeconds != 10 {
		t.Errorf("qwen3 audio cap = %v, want 10", m.AudioCapSeconds)
	}
	if o := r.Origin("model", "af3"); o != EmbeddedPrefix+"models/af_next_local_8000.yaml" {
		t.Errorf("Origin(model, af3) = %q", o)
	}
}

func TestLookupErrors(t *testing.T) {
	r := mustDefault(t)
	tests := []struct {
		name    string
		lookup  func() error
		want    string
		suggest []string
	}{
		{"task substring", func() error { _, err := r.Task("esc5"); return err },
			`unknown task "esc5"; did you mean beans_zero_esc50?`, []string{"beans_zero_esc50"}},
		{"task typo", func() error { _, err := r.Task("beans_zero_esc05"); return err },
			`did you mean beans_zero_esc50`, []string{"beans_zero_esc50"}},
		{"task at most five", func() error { _, err := r.Task("unseen"); return err },
			`unknown task "unseen"`, []string{"beans_zero_unseen_genus_cmn", "beans_zero_unseen_genus_sci", "beans_zero_unseen_genus_tax", "beans_zero_unseen_family_cmn", "beans_zero_unseen_family_sci"}},
		{"suite prefix", func() error { _, err := r.SuiteTasks("beans_zero"); return err },
			`unknown suite "beans_zero"`, []string{"beans_zero_core", "beans_zero_smoke", "beans_zero_captions", "beans_zero_detection", "beans_zero_unseen_taxa"}},
		{"model alias case", func() error { _, err := r.Model("AF3"); return err },
			`did you mean af3?`, []string{"af3"}},
		{"nothing close", func() error { _, err := r.Prompt("zzzzzzzz"); return err },
			`none of the 2 registered prompts`, nil},
		{"render unknown prompt", func() error { _, err := r.RenderPrompt("beans_zero", PromptData{}); return err },
			`unknown prompt "beans_zero"; did you mean beans_zero_instruction?`, []string{"beans_zero_instruction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lookup()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("error %v is not ErrNotFound", err)
			}
			var nf *NotFoundError
			if !errors.As(err, &nf) {
				t.Fatalf("error %T is not a *NotFoundError", err)
			}
			if tt.suggest != nil && !slices.Equal(nf.Suggestions, tt.suggest) {
				t.Errorf("suggestions %v, want %v", nf.Suggestions, tt.suggest)
			}
			if tt.suggest == nil && len(nf.Suggestions) != 0 {
				t.Errorf("suggestions %v, want none", nf.Suggestions)
			}
		})
	}
}

func TestReturnedValuesAreCopies(t *testing.T) {
	r := mustDefault(t)
	a, _ := r.Task("demo_species")
	a.Labels[0] = "changed"
	a.GenerationConfig["max_tokens"] = 1
	b, _ := r.Task("demo_species")
	if b.Labels[0] != "Azure Whistler" || b.GenerationConfig["max_tokens"] != 64 {
		t.Errorf("changing a returned task changed the registry: %v %v", b.Labels, b.GenerationConfig)
	}
}

// writeTree writes files (slash paths relative to dir) and returns dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const okTask = `id: my_task
type: classification
source:
  kind: parquet
  files: "*.parquet"
dataset_names: [esc50]
prompt: beans_zero_instruction
`

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// want are substrings of the error; "FILE(x)" stands for the path of x in the
		// user directory.
		want     []string
		problems int
	}{
		{"unknown key", map[string]string{"tasks/my_task.yaml": okTask + "colour: blue\n"},
			[]string{"FILE(tasks/my_task.yaml):8: unknown key \"colour\""}, 1},
		{"unknown nested key with suggestion", map[string]string{"tasks/my_task.yaml": strings.Replace(okTask, "  kind: parquet", "  kind: parquet\n  spilt: test", 1)},
			[]string{"FILE(tasks/my_task.yaml):5: unknown key \"spilt\"; did you mean split?"}, 1},
		{"id differs from file name", map[string]string{"tasks/other.yaml": okTask},
			[]string{"FILE(tasks/other.yaml):1: id \"my_task\" does not match the file name other.yaml"}, 1},
		{"missing id", map[string]string{"tasks/my_task.yaml": strings.Replace(okTask, "id: my_task\n", "", 1)},
			[]string{"FILE(tasks/my_task.yaml):1: missing id; add id: my_task"}, 1},
		{"suite with a missing task", map[string]string{"suites/s.yaml": "id: s\ntasks:\n  - beans_zero_esc50\n  - beans_zero_esc5\n"},
			[]string{"FILE(suites/s.yaml):4: suite s: unknown task \"beans_zero_esc5\"; did you mean beans_zero_esc50"}, 1},
		{"task with a missing prompt", map[string]string{"tasks/my_task.yaml": strings.Replace(okTask, "prompt: beans_zero_instruction", "prompt: beans_zero_instr", 1)},
			[]string{"FILE(tasks/my_task.yaml):7: task my_task: unknown prompt \"beans_zero_instr\"; did you mean beans_zero_instruction?"}, 1},
		{"bad type, source kind and empty dataset names, all reported",
			map[string]string{"tasks/my_task.yaml": "id: my_task\ntype: regression\nsource:\n  kind: ftp\ndataset_names: []\nprompt: beans_zero_instruction\n"},
			[]string{
				"FILE(tasks/my_task.yaml):2: type \"regression\": must be one of classification, detection, captioning",
				"FILE(tasks/my_task.yaml):4: source: kind \"ftp\" must be one of demo, hub, parquet",
				"FILE(tasks/my_task.yaml):5: dataset_names: list at least one",
				"registry: 3 problems:",
			}, 3},
		{"demo classification without labels", map[string]string{"tasks/my_task.yaml": strings.Replace(okTask, "kind: parquet", "kind: demo", 1)},
			[]string{"a classification task from a demo source must declare its labels"}, 1},
		{"hub without repo", map[string]string{"tasks/my_task.yaml": strings.Replace(okTask, "kind: parquet", "kind: hub", 1)},
			[]string{"FILE(tasks/my_task.yaml):3: source: kind hub needs repo"}, 1},
		{"duplicate label", map[string]string{"tasks/my_task.yaml": okTask + "labels: [a, b, a]\n"},
			[]string{"FILE(tasks/my_task.yaml):8: labels: label \"a\" is listed twice"}, 1},
		{"prompt does not parse", map[string]string{"prompts/p.yaml": "id: p\ntemplate: \"{{.Instruction\"\n"},
			[]string{"FILE(prompts/p.yaml):2: template does not parse"}, 1},
		{"prompt uses an unknown field", map[string]string{"prompts/p.yaml": "id: p\ntemplate: |\n  {{.Instrucion}}\n"},
			[]string{"FILE(prompts/p.yaml):2: template uses a field that prompts do not have", "Instrucion"}, 1},
		{"alias is another model's id", map[string]string{"models/m.yaml": "id: m\nlauncher: dummy\naliases: [dummy_local_8000]\n"},
			[]string{"FILE(models/m.yaml):3: alias \"dummy_local_8000\" is the id of another model"}, 1},
		{"alias taken", map[string]string{"models/m.yaml": "id: m\nlauncher: dummy\naliases:\n  - ok\n  - af3\n"},
			[]string{"FILE(models/m.yaml):5: alias \"af3\" is already an alias of model af_next_local_8000"}, 1},
		{"bad model fields", map[string]string{"models/m.yaml": "id: m\nlauncher: docker\nport: 70000\nmemory: lots\ntime: noon\nhealth_timeout: soon\npredict_url: localhost:8000\nenv: [API_KEY=x]\n"},
			[]string{
				"FILE(models/m.yaml):2: launcher \"docker\"", "FILE(models/m.yaml):3: port 70000",
				"FILE(models/m.yaml):4: memory \"lots\"", "FILE(models/m.yaml):5: time \"noon\"",
				"FILE(models/m.yaml):6: health_timeout \"soon\"", "FILE(models/m.yaml):7: predict_url",
				"FILE(models/m.yaml):8: env: \"API_KEY=x\"",
			}, 7},
		{"python launcher without kit", map[string]string{"models/m.yaml": "id: m\nlauncher: python\n"},
			[]string{"FILE(models/m.yaml):2: launcher python needs kit"}, 1},
		{"wrong value type", map[string]string{"tasks/my_task.yaml": okTask + "rows: many\n"},
			[]string{"FILE(tasks/my_task.yaml):8: cannot unmarshal"}, 1},
		{"syntax error", map[string]string{"suites/s.yaml": "id: s\ntasks: [a\n"},
			[]string{"FILE(suites/s.yaml):"}, 1},
		{"empty file", map[string]string{"suites/s.yaml": ""},
			[]string{"FILE(suites/s.yaml): empty file"}, 1},
		{"two documents", map[string]string{"suites/s.yaml": "id: s\ntasks: [beans_zero_esc50]\n---\nid: t\n"},
			[]string{"FILE(suites/s.yaml):3: more than one YAML document"}, 1},
		{"not a mapping", map[string]string{"suites/s.yaml": "- a\n- b\n"},
			[]string{"FILE(suites/s.yaml):1: expected a mapping"}, 1},
		{"yml extension", map[string]string{"suites/s.yml": "id: s\ntasks: [beans_zero_esc50]\n"},
			[]string{"FILE(suites/s.yml): registry files end in .yaml; rename it to s.yaml"}, 1},
		{"unknown key and other problems of the same file, all reported",
			map[string]string{"tasks/my_task.yaml": "id: my_tsak\ntype: classif\ncolour: red\nsource: {kind: parquet}\ndataset_names: [a]\nprompt: p\nrows: many\n"},
			[]string{
				"FILE(tasks/my_task.yaml):1: id \"my_tsak\" does not match",
				"FILE(tasks/my_task.yaml):2: type \"classif\"",
				"FILE(tasks/my_task.yaml):3: unknown key \"colour\"",
				"FILE(tasks/my_task.yaml):7: cannot unmarshal",
			}, 4},
		{"broken task is not reported again by its suite",
			map[string]string{"tasks/my_task.yaml": okTask + "colour: blue\n", "suites/s.yaml": "id: s\ntasks: [my_task]\n"},
			[]string{"unknown key \"colour\""}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load: no error")
			}
			for _, w := range tt.want {
				if i := strings.Index(w, "FILE("); i >= 0 {
					j := strings.Index(w[i:], ")")
					w = w[:i] + filepath.Join(dir, filepath.FromSlash(w[i+5:i+j])) + w[i+j+1:]
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError", err)
			}
			if len(le.Problems) != tt.problems {
				t.Errorf("got %d problems, want %d:\n%v", len(le.Problems), tt.problems, err)
			}
		})
	}
}

func TestLoadDirs(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing directory: got %v, want an error naming it", err)
	}
	file := writeTree(t, map[string]string{"f": "x"})
	if _, err := Load(filepath.Join(file, "f")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as directory: got %v", err)
	}
	// An empty directory and unrelated files are fine.
	empty := writeTree(t, map[string]string{"README.md": "notes", "tasks/notes.txt": "x", "judges/j.yaml": "id: j"})
	if _, err := Load(empty); err != nil {
		t.Errorf("directory without entries: %v", err)
	}
}

func TestOverride(t *testing.T) {
	override := strings.Replace(okTask, "my_task", "beans_zero_esc50", 1) + "rows: 5\n"
	user1 := writeTree(t, map[string]string{
		"tasks/beans_zero_esc50.yaml": override,
		"suites/mine.yaml":            "id: mine\ntasks: [beans_zero_esc50, my_task]\n",
		"tasks/my_task.yaml":          okTask,
	})
	user2 := writeTree(t, map[string]string{
		"models/af_next_local_8000.yaml": "id: af_next_local_8000\nlauncher: dummy\naliases: [afn]\n",
	})
	r, err := Load(user1, user2)
	if err != nil {
		t.Fatal(err)
	}
	task, err := r.Task("beans_zero_esc50")
	if err != nil {
		t.Fatal(err)
	}
	if task.Rows != 5 || task.Source.Kind != SourceParquet {
		t.Errorf("override lost: %+v", task)
	}
	if got, want := r.Origin("tasks", "beans_zero_esc50"), filepath.Join(user1, "tasks", "beans_zero_esc50.yaml"); got != want {
		t.Errorf("Origin = %q, want %q", got, want)
	}
	if got, want := r.Overrides(KindTask, "beans_zero_esc50"), []string{EmbeddedPrefix + "tasks/beans_zero_esc50.yaml"}; !slices.Equal(got, want) {
		t.Errorf("Overrides = %v, want %v", got, want)
	}
	if got := r.Overrides(KindTask, "my_task"); got != nil {
		t.Errorf("Overrides(new task) = %v, want nil", got)
	}
	if got := r.Origin(KindTask, "no_such"); got != "" {
		t.Errorf("Origin(unknown) = %q", got)
	}
	// The suite of the user directory sees the override; the embedded suites too.
	if tasks, _ := r.SuiteTasks("beans_zero_smoke"); tasks[0].Rows != 5 {
		t.Errorf("embedded suite does not see the override: %+v", tasks[0])
	}
	if got := suiteIDs(t, r, "mine"); !slices.Equal(got, []string{"beans_zero_esc50", "my_task"}) {
		t.Errorf("user suite: %v", got)
	}
	// A replaced model takes its aliases with it.
	if m, err := r.Model("afn"); err != nil || m.Launcher != LauncherDummy {
		t.Errorf("Model(afn) = %+v, %v", m, err)
	}
	if _, err := r.Model("af3"); err == nil {
		t.Error("Model(af3): the overriding preset has no such alias; want an error")
	}
}

func TestRenderPrompt(t *testing.T) {
	r, err := LoadFS(fstest.MapFS{
		"prompts/with_labels.yaml": {Data: []byte("id: with_labels\ntemplate: \"{{.Audio}} Pick one of: {{join .Labels}}. seed={{.Task.GenerationConfig.seed}}\"\n")},
	}, "mem")
	if err == nil {
		t.Fatal("a template using an undefined function must not load")
	}
	r, err = LoadFS(fstest.MapFS{
		"prompts/with_seed.yaml": {Data: []byte("id: with_seed\ntemplate: \"{{.Audio}} {{.InstructionText}} seed={{.Task.GenerationConfig.seed}}\"\n")},
	}, "mem")
	if err != nil {
		t.Fatal(err)
	}
	instr := "<Audio><AudioHere></Audio> What species is this? Answer with \"one\" & <only> one.\n  Ünïcode  \t"
	tests := []struct {
		prompt  string
		data    PromptData
		want    string
		wantErr string
	}{
		{"beans_zero_instruction", PromptData{Instruction: instr}, instr, ""},
		{"demo_instruction", PromptData{Instruction: instr, InstructionText: "x"}, instr, ""},
		{"beans_zero_instruction", PromptData{}, "", ""},
		{"with_seed", PromptData{Audio: "<A>", InstructionText: "Q?", Task: Task{GenerationConfig: map[string]any{"seed": 7}}}, "<A> Q? seed=7", ""},
		{"with_seed", PromptData{Task: Task{GenerationConfig: map[string]any{}}}, "", `map has no entry for key "seed"`},
	}
	for _, tt := range tests {
		got, err := r.RenderPrompt(tt.prompt, tt.data)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "mem/prompts/with_seed.yaml") {
				t.Errorf("RenderPrompt(%s): got %q, %v; want an error containing %q and the file", tt.prompt, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RenderPrompt(%s) = %q, %v; want %q", tt.prompt, got, err, tt.want)
		}
	}
}

func TestRenderPromptUnknownField(t *testing.T) {
	// Load rejects such a template; a registry holding one anyway must still fail cleanly.
	r := mustDefault(t)
	tmpl, err := parseTemplate("bad", "{{.Nope}}")
	if err != nil {
		t.Fatal(err)
	}
	r.templates["bad"] = tmpl
	r.prompts["bad"] = &entry[Prompt]{val: Prompt{ID: "bad", Template: "{{.Nope}}"}, origin: "test"}
	if _, err := r.RenderPrompt("bad", PromptData{Instruction: "x"}); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("unknown field: got %v", err)
	}
}

func TestRenderPromptConcurrent(t *testing.T) {
	r := mustDefault(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			in := strings.Repeat("x", i)
			for range 100 {
				if got, err := r.RenderPrompt("beans_zero_instruction", PromptData{Instruction: in}); err != nil || got != in {
					t.Errorf("got %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSuggest(t *testing.T) {
	names := []string{"beans_zero_esc50", "beans_zero_cbi", "beans_zero_captioning", "demo_species", "af3", "af_next_local_8000"}
	tests := []struct {
		q    string
		want []string
	}{
		{"esc5", []string{"beans_zero_esc50"}},
		{"BEANS-ZERO-CBI", []string{"beans_zero_cbi"}},
		{"beans_zero_cbj", []string{"beans_zero_cbi"}},
		{"demo", []string{"demo_species"}},
		{"af", []string{"af3", "af_next_local_8000"}},
		{"qwerty", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := suggest(tt.q, names, maxSuggestions); !slices.Equal(got, tt.want) {
			t.Errorf("suggest(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestPublishedResults(t *testing.T) {
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		task, metric, model string
		want                float64
	}{
		{"beans_zero_esc50", "accuracy", "naturelm_audio", 0.820},
		{"beans_zero_hiceas", "f1_macro", "biolingual", 0.429},
		{"beans_zero_captioning", "spider", "naturelm_audio", 0.532},
		{"beans_zero_unseen_family_tax", "accuracy", "naturelm_audio", 0.308},
	}
	for _, tt := range tests {
		task, err := r.Task(tt.task)
		if err != nil {
			t.Fatal(err)
		}
		if task.Published == nil || task.Published.Metric != tt.metric || task.Published.Results[tt.model] != tt.want {
			t.Errorf("%s: published %+v, want %s %s=%v", tt.task, task.Published, tt.metric, tt.model, tt.want)
		}
	}
	n := 0
	for _, task := range r.Tasks() {
		if task.Published != nil {
			n++
		}
	}
	if n != 22 {
		t.Errorf("%d tasks carry published results, want the 22 of beans_zero_core", n)
	}
}

func TestPublishedValidation(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "id: demo_species\ntype: classification\nsource: {kind: demo}\ndataset_names: [demo-species]\nlabels: [A]\nprompt: demo_instruction\npublished:\n  metric: accuracy\n  results:\n    m: -1\n"
	if err := os.WriteFile(filepath.Join(dir, "tasks", "demo_species.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "demo_species.yaml:10") || !strings.Contains(err.Error(), "result of m is -1") {
		t.Fatalf("err %v", err)
	}
}

func TestFamilySuitesCoverCore(t *testing.T) {
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	core, err := r.Suite("beans_zero_core")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, s := range []string{"beans_zero_classification", "beans_zero_detection", "beans_zero_unseen_taxa", "beans_zero_captions"} {
		tasks, err := r.SuiteTasks(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			seen[task.ID]++
		}
	}
	for _, id := range core.Tasks {
		if seen[id] != 1 {
			t.Errorf("%s is in %d family suites, want exactly 1", id, seen[id])
		}
	}
	if len(seen) != len(core.Tasks) {
		t.Errorf("family suites hold %d tasks, core %d", len(seen), len(core.Tasks))
	}
}
