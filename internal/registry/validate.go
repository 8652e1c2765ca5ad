package registry

import (
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// Source kinds.
const (
	SourceDemo    = "demo"
	SourceHub     = "hub"
	SourceParquet = "parquet"
)

// Launcher kinds of model presets.
const (
	LauncherDummy       = "dummy"
	LauncherOpenAIProxy = "openai-proxy"
	LauncherVLLM        = "vllm"
	LauncherPython      = "python"
	// Stub modes of model presets.
	StubDummy = "dummy"
	StubKit   = "kit"
	// StubJudge serves the built-in dummy in judge mode (a deterministic judge).
	StubJudge = "dummy-judge"
)

var (
	taskTypes     = []string{Classification, Detection, Captioning}
	sourceKinds   = []string{SourceDemo, SourceHub, SourceParquet}
	launcherKinds = []string{LauncherDummy, LauncherOpenAIProxy, LauncherVLLM, LauncherPython}

	reID     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	reMemory = regexp.MustCompile(`^[1-9][0-9]*[KMGT]?$`)
	// reTime accepts SLURM's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
	reTime   = regexp.MustCompile(`^([0-9]+-[0-9]+(:[0-9]+){0,2}|[0-9]+(:[0-9]+){0,2})$`)
	reEnvVar = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

type reportFunc = func(line int, format string, args ...any)

func checkID(id string, n *yaml.Node, report reportFunc) {
	if id != "" && !reID.MatchString(id) {
		report(lineOf(n, "id"), "id %q: use letters, digits, '_', '-' and '.' only, starting with a letter or digit", id)
	}
}

// checkList reports empty and repeated items of a list of names.
func checkList(what string, items []string, n *yaml.Node, key string, report reportFunc) {
	seen := map[string]bool{}
	for i, it := range items {
		switch {
		case strings.TrimSpace(it) == "":
			report(lineOf(n, key, i), "%s: item %d is empty", key, i+1)
		case seen[it]:
			report(lineOf(n, key, i), "%s: %s %q is listed twice", key, what, it)
		}
		seen[it] = true
	}
}

func validateTask(t *Task, n *yaml.Node, report reportFunc) {
	checkID(t.ID, n, report)
	if !slices.Contains(taskTypes, t.Type) {
		report(lineOf(n, "type"), "type %q: must be one of %s", t.Type, strings.Join(taskTypes, ", "))
	}
	switch t.Source.Kind {
	case SourceHub:
		if t.Source.Repo == "" {
			report(lineOf(n, "source"), "source: kind hub needs repo (e.g. repo: EarthSpeciesProject/BEANS-Zero)")
		}
	case SourceDemo, SourceParquet:
	default:
		report(lineOf(n, "source", "kind"), "source: kind %q must be one of %s", t.Source.Kind, strings.Join(sourceKinds, ", "))
	}
	if len(t.DatasetNames) == 0 {
		report(lineOf(n, "dataset_names"), "dataset_names: list at least one value of the data's dataset_name column")
	}
	checkList("dataset name", t.DatasetNames, n, "dataset_names", report)
	if t.Rows < 0 {
		report(lineOf(n, "rows"), "rows: %d is negative; give the row count of the full split, or 0 when unknown", t.Rows)
	}
	if t.AudioCapSeconds < 0 || math.IsNaN(t.AudioCapSeconds) || math.IsInf(t.AudioCapSeconds, 0) {
		report(lineOf(n, "audio_cap_seconds"), "audio_cap_seconds: %v must be a positive number of seconds, or 0 for no cap", t.AudioCapSeconds)
	}
	checkList("label", t.Labels, n, "labels", report)
	if t.Source.Kind == SourceDemo && (t.Type == Classification || t.Type == Detection) && len(t.Labels) == 0 {
		report(lineOf(n, "labels"), "a %s task from a demo source must declare its labels (labels: [...])", t.Type)
	}
	if t.Prompt == "" {
		report(lineOf(n, "prompt"), "prompt: missing; name a prompt id (e.g. prompt: beans_zero_instruction)")
	}
	if p := t.Published; p != nil {
		if p.Metric == "" {
			report(lineOf(n, "published", "metric"), "published: name the metric of the results (e.g. metric: accuracy)")
		}
		if len(p.Results) == 0 {
			report(lineOf(n, "published", "results"), "published: results is empty; give model: value pairs")
		}
		for m, v := range p.Results {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				report(lineOf(n, "published", "results", m), "published: result of %s is %v; want a number ≥ 0", m, v)
			}
		}
	}
}

func validateSuite(s *Suite, n *yaml.Node, report reportFunc) {
	checkID(s.ID, n, report)
	if len(s.Tasks) == 0 {
		report(lineOf(n, "tasks"), "tasks: a suite lists at least one task id")
	}
	checkList("task", s.Tasks, n, "tasks", report)
}

// samplePromptData is what a prompt template is tried on at load time, so that a misspelt
// field is found before a run.
var samplePromptData = PromptData{
	Instruction:     "<Audio><AudioHere></Audio> What is the species?",
	InstructionText: "What is the species?",
	Labels:          []string{"a", "b"},
	Task:            Task{ID: "t", Type: Classification, DatasetNames: []string{"d"}, Labels: []string{"a", "b"}, Prompt: "p", GenerationConfig: map[string]any{}},
	Audio:           "<Audio><AudioHere></Audio>",
}

// parseTemplate compiles a prompt template the way RenderPrompt runs it.
func parseTemplate(id, text string) (*template.Template, error) {
	return template.New(id).Option("missingkey=error").Parse(text)
}

func validatePrompt(p *Prompt, n *yaml.Node, report reportFunc) {
	checkID(p.ID, n, report)
	if p.Template == "" {
		report(lineOf(n, "template"), "template: missing or empty; e.g. template: \"{{.Instruction}}\"")
		return
	}
	tmpl, err := parseTemplate(p.ID, p.Template)
	if err != nil {
		report(lineOf(n, "template"), "template does not parse: %v", err)
		return
	}
	// Only misspelt fields are certain errors; anything else (a missing map key, an index out
	// of range) depends on the sample and is left to RenderPrompt.
	if err := tmpl.Execute(io.Discard, samplePromptData); err != nil && strings.Contains(err.Error(), "can't evaluate field") {
		report(lineOf(n, "template"), "template uses a field that prompts do not have (they have .Instruction, .InstructionText, .Labels, .Task, .Audio): %v", err)
	}
}

func validateModel(m *Model, n *yaml.Node, report reportFunc) {
	checkID(m.ID, n, report)
	if !slices.Contains(launcherKinds, m.Launcher) {
		report(lineOf(n, "launcher"), "launcher %q: must be one of %s", m.Launcher, strings.Join(launcherKinds, ", "))
	}
	if m.Launcher == LauncherPython && m.Kit == "" {
		report(lineOf(n, "launcher"), "launcher python needs kit: the serving kit's directory under launchers/")
	}
	switch {
	case m.Stub != "" && m.Stub != StubDummy && m.Stub != StubKit && m.Stub != StubJudge:
		report(lineOf(n, "stub"), "stub %q: must be %s (the kit's own stub mode), %s (the built-in dummy) or %s (the dummy as a deterministic judge)", m.Stub, StubKit, StubDummy, StubJudge)
	case m.Stub == StubKit && m.Launcher != LauncherPython:
		report(lineOf(n, "stub"), "stub: %s needs launcher: python (only the Python kits have their own stub mode)", StubKit)
	}
	if (m.Launcher == LauncherOpenAIProxy || m.Launcher == LauncherVLLM) && m.Model == "" {
		report(lineOf(n, "launcher"), "launcher %s needs model: the model name the API or vLLM serves", m.Launcher)
	}
	if m.Launcher == LauncherOpenAIProxy && m.Upstream == "" {
		report(lineOf(n, "launcher"), "launcher openai-proxy needs upstream: the OpenAI-compatible API's base URL (e.g. https://api.openai.com/v1)")
	}
	if m.Upstream != "" {
		if u, err := url.Parse(m.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			report(lineOf(n, "upstream"), "upstream %q: give an http(s) base URL without credentials, such as https://api.openai.com/v1", m.Upstream)
		}
	}
	checkList("alias", m.Aliases, n, "aliases", report)
	for i, a := range m.Aliases {
		if a != "" && !reID.MatchString(a) {
			report(lineOf(n, "aliases", i), "alias %q: use letters, digits, '_', '-' and '.' only", a)
		}
	}
	if m.PredictURL != "" {
		if u, err := url.Parse(m.PredictURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			report(lineOf(n, "predict_url"), "predict_url %q: give an http(s) URL such as http://127.0.0.1:8000/predict", m.PredictURL)
		}
	}
	if m.Port < 0 || m.Port > 65535 {
		report(lineOf(n, "port"), "port %d: must be between 1 and 65535", m.Port)
	}
	if m.GPUs < 0 {
		report(lineOf(n, "gpus"), "gpus %d: must be 0 or more", m.GPUs)
	}
	if m.Memory != "" && !reMemory.MatchString(m.Memory) {
		report(lineOf(n, "memory"), "memory %q: give a SLURM size such as 64G or 16000M", m.Memory)
	}
	if m.Time != "" && !reTime.MatchString(m.Time) {
		report(lineOf(n, "time"), "time %q: give a SLURM time such as \"12:00:00\" or \"1-00:00:00\" (quote it)", m.Time)
	}
	if m.HealthTimeout != "" {
		if d, err := time.ParseDuration(m.HealthTimeout); err != nil || d <= 0 {
			report(lineOf(n, "health_timeout"), "health_timeout %q: give a positive Go duration such as 30m or 90s", m.HealthTimeout)
		}
	}
	if m.AudioCapSeconds < 0 || math.IsNaN(m.AudioCapSeconds) || math.IsInf(m.AudioCapSeconds, 0) {
		report(lineOf(n, "audio_cap_seconds"), "audio_cap_seconds: %v must be a positive number of seconds, or 0 for the task's cap", m.AudioCapSeconds)
	}
	checkList("variable", m.Env, n, "env", report)
	for i, v := range m.Env {
		if v != "" && !reEnvVar.MatchString(v) {
			report(lineOf(n, "env", i), "env: %q is not an environment variable name (list names, not values)", v)
		}
	}
}

// crossCheck checks the references between entries once all layers are merged, builds the
// alias table and compiles the prompts.
func (r *Registry) crossCheck(ps *problems, broken map[string]bool) {
	for _, id := range sortedIDs(r.tasks) {
		e := r.tasks[id]
		p := e.val.Prompt
		if _, ok := r.prompts[p]; !ok && p != "" && !broken[KindPrompt+"/"+p] {
			ps.add(e.origin, lineOf(e.node, "prompt"), "%v", fmt.Errorf("task %s: %w", id, lookupError(KindPrompt, p, sortedIDs(r.prompts))))
		}
	}
	for _, id := range sortedIDs(r.suites) {
		e := r.suites[id]
		for i, t := range e.val.Tasks {
			if _, ok := r.tasks[t]; !ok && t != "" && !broken[KindTask+"/"+t] {
				ps.add(e.origin, lineOf(e.node, "tasks", i), "suite %s: %v", id, lookupError(KindTask, t, sortedIDs(r.tasks)))
			}
		}
	}
	for _, id := range sortedIDs(r.models) {
		e := r.models[id]
		for i, a := range e.val.Aliases {
			line := lineOf(e.node, "aliases", i)
			switch {
			case a == "":
			case a == id:
				ps.add(e.origin, line, "alias %q repeats the model's own id; remove it", a)
			case r.models[a] != nil:
				ps.add(e.origin, line, "alias %q is the id of another model (%s); choose another alias", a, r.models[a].origin)
			case r.aliases[a] != "" && r.aliases[a] != id:
				other := r.aliases[a]
				ps.add(e.origin, line, "alias %q is already an alias of model %s (%s); choose another alias", a, other, r.models[other].origin)
			default:
				r.aliases[a] = id
			}
		}
	}
	// Sweeps last: they name models by alias too.
	for _, id := range sortedIDs(r.sweeps) {
		e := r.sweeps[id]
		r.checkSweepRefs(&e.val, e.node, e.origin, ps, broken)
	}
	for _, id := range sortedIDs(r.prompts) {
		e := r.prompts[id]
		if t, err := parseTemplate(id, e.val.Template); err == nil {
			r.templates[id] = t
		}
	}
}

// RenderPrompt renders the prompt promptID for one sample. Templates are compiled once, at
// load time, with missingkey=error: a template that uses a field PromptData lacks fails.
func (r *Registry) RenderPrompt(promptID string, data PromptData) (string, error) {
	t, ok := r.templates[promptID]
	if !ok {
		return "", lookupError(KindPrompt, promptID, sortedIDs(r.prompts))
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render prompt %s (%s): %w", promptID, r.prompts[promptID].origin, err)
	}
	return b.String(), nil
}
