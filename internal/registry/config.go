package registry

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// SweepConfig is a written-down sweep: several model presets on one suite (or list of tasks)
// on one cluster, for `beans-slurm submit --config sweep.yaml`. The registry ships some under
// sweeps/ (see Registry.Sweep); any file can be loaded with LoadSweepConfig.
//
// Cluster may be left empty: the cluster is then the --cluster flag, else the default: of
// clusters.yaml, else its only profile (see Clusters.Select). A --cluster flag always wins
// over the file's cluster:.
type SweepConfig struct {
	// ID names the sweep (in the registry it equals the file name without .yaml; for a file
	// given with --config it defaults to the file name).
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Cluster is the cluster profile (a name of clusters.yaml); optional, see above.
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	// Models are the models to run, each a preset with optional overrides.
	Models []SweepModel `yaml:"models" json:"models"`
	// Suite and Tasks select the tasks, as with `run`: a suite, a list of tasks, or both
	// (only those tasks of the suite).
	Suite string   `yaml:"suite,omitempty" json:"suite,omitempty"`
	Tasks []string `yaml:"tasks,omitempty" json:"tasks,omitempty"`
	// Limit runs only the first Limit samples of each task (0 = all).
	Limit int `yaml:"limit,omitempty" json:"limit,omitempty"`
	// Shards splits each model's inference into this many jobs (0 or 1 = one job).
	Shards int `yaml:"shards,omitempty" json:"shards,omitempty"`

	origin string
	node   *yaml.Node
}

// SweepModel is one model of a sweep: a preset (id or alias) and what this sweep changes
// about it. In YAML it is either the preset's name alone (- af3) or a mapping.
type SweepModel struct {
	// Model is the preset's id or alias.
	Model string `yaml:"model" json:"model"`
	// Name names the model's results (its directory under the sweep and its column in
	// comparisons); default: the preset's id. Needed when a preset is listed twice.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Env are non-secret environment variables for this model's jobs, e.g.
	// NATURELM_GCS_CHECKPOINT_URI: gs://bucket/ckpt.pt.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Args, when given, replace the preset's launcher arguments.
	Args []string `yaml:"args,omitempty" json:"args,omitempty"`
	// Time, GPUs and Memory replace the preset's serving-job resources.
	Time   string `yaml:"time,omitempty" json:"time,omitempty"`
	GPUs   *int   `yaml:"gpus,omitempty" json:"gpus,omitempty"`
	Memory string `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Stub serves the preset in its stub mode (the preset's stub: arguments) instead of the
	// real model: a pipeline check without weights.
	Stub bool `yaml:"stub,omitempty" json:"stub,omitempty"`
}

// UnmarshalYAML reads a model entry: a preset name, or a mapping decoded strictly.
func (m *SweepModel) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*m = SweepModel{}
			return nil
		}
		*m = SweepModel{Model: n.Value}
		return nil
	case yaml.MappingNode:
		// A custom unmarshaler loses the decoder's KnownFields: check the keys here.
		keys := knownKeys["registry.SweepModel"]
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !slices.Contains(keys, k.Value) {
				errs = append(errs, fmt.Sprintf("line %d: field %s not found in type registry.SweepModel", k.Line, k.Value))
			}
		}
		type plain SweepModel
		var p plain
		if err := n.Decode(&p); err != nil {
			te, ok := err.(*yaml.TypeError)
			if !ok {
				return err
			}
			errs = append(errs, te.Errors...)
		}
		*m = SweepModel(p)
		if len(errs) > 0 {
			return &yaml.TypeError{Errors: errs}
		}
		return nil
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a model entry is a preset name (- af3) or a mapping (- model: af3 …), not %s", n.Line, nodeKindName(n))}}
	}
}

// ResultName is the name of the model's results: Name, else the preset's id (id is what
// Registry.Model resolved Model to).
func (m SweepModel) ResultName(id string) string {
	if m.Name != "" {
		return m.Name
	}
	return id
}

// Apply returns the preset with this entry's overrides applied (Args, Time, GPUs, Memory).
// Env values are not part of a preset: take them from m.Env.
func (m SweepModel) Apply(preset Model) Model {
	out := cloneModel(preset)
	if m.Args != nil {
		out.Args = slices.Clone(m.Args)
	}
	if m.Time != "" {
		out.Time = m.Time
	}
	if m.GPUs != nil {
		out.GPUs = *m.GPUs
	}
	if m.Memory != "" {
		out.Memory = m.Memory
	}
	return out
}

// Origin is where the sweep was read from ("" when built in memory).
func (s SweepConfig) Origin() string { return s.origin }

// RunConfig is a written-down `beans-slurm run`, for `run --config run.yaml`. Its keys are
// the flags of run with '-' written '_' (predict_url, output_dir, audio_format, …); a flag
// given on the command line wins over the file. Relative paths are relative to the current
// directory, as for flags.
type RunConfig struct {
	// Model is a model preset (id or alias); its predict_url is used unless PredictURL is set.
	Model      string `yaml:"model,omitempty" json:"model,omitempty"`
	PredictURL string `yaml:"predict_url,omitempty" json:"predict_url,omitempty"`
	// Suite and Tasks select the tasks (both: only those tasks of the suite).
	Suite     string   `yaml:"suite,omitempty" json:"suite,omitempty"`
	Tasks     []string `yaml:"tasks,omitempty" json:"tasks,omitempty"`
	Limit     int      `yaml:"limit,omitempty" json:"limit,omitempty"`
	OutputDir string   `yaml:"output_dir,omitempty" json:"output_dir,omitempty"`

	// Data: --data-dir, --revision, --cache-dir, --no-cache, --block-size, --no-answer-cache.
	DataDir   string `yaml:"data_dir,omitempty" json:"data_dir,omitempty"`
	Revision  string `yaml:"revision,omitempty" json:"revision,omitempty"`
	CacheDir  string `yaml:"cache_dir,omitempty" json:"cache_dir,omitempty"`
	NoCache   bool   `yaml:"no_cache,omitempty" json:"no_cache,omitempty"`
	BlockSize int64  `yaml:"block_size,omitempty" json:"block_size,omitempty"`
	// NoAnswerCache: --no-answer-cache (answers are neither reused nor kept).
	NoAnswerCache bool `yaml:"no_answer_cache,omitempty" json:"no_answer_cache,omitempty"`

	// Audio: --resample, --audio-format, --payload, --payload-dir.
	Resample    int    `yaml:"resample,omitempty" json:"resample,omitempty"`
	AudioFormat string `yaml:"audio_format,omitempty" json:"audio_format,omitempty"`
	Payload     string `yaml:"payload,omitempty" json:"payload,omitempty"`
	PayloadDir  string `yaml:"payload_dir,omitempty" json:"payload_dir,omitempty"`

	// Scoring: --policy, --postprocess, --bootstrap, --seed, --spice-dir, --no-spice.
	Policy      string `yaml:"policy,omitempty" json:"policy,omitempty"`
	Postprocess string `yaml:"postprocess,omitempty" json:"postprocess,omitempty"`
	Bootstrap   int    `yaml:"bootstrap,omitempty" json:"bootstrap,omitempty"`
	Seed        uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	SPICEDir    string `yaml:"spice_dir,omitempty" json:"spice_dir,omitempty"`
	NoSPICE     bool   `yaml:"no_spice,omitempty" json:"no_spice,omitempty"`

	// Client: --concurrency, --batch-size, --timeout (a Go duration such as 10m).
	Concurrency int           `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	BatchSize   int           `yaml:"batch_size,omitempty" json:"batch_size,omitempty"`
	Timeout     time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`

	origin string
	node   *yaml.Node
}

// Origin is where the run config was read from ("" when built in memory).
func (c RunConfig) Origin() string { return c.origin }

// LoadSweepConfig reads and validates a sweep file. References to models, suites and tasks
// are checked by Registry.CheckSweep, which reports them with the file's lines.
func LoadSweepConfig(path string) (SweepConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SweepConfig{}, fmt.Errorf("read sweep config: %w", err)
	}
	return ParseSweepConfig(data, path)
}

// ParseSweepConfig decodes and validates a sweep held in memory; origin names it in problems
// and gives the default id (its base name without extension).
func ParseSweepConfig(data []byte, origin string) (SweepConfig, error) {
	var s SweepConfig
	var node *yaml.Node
	err := decodeFile(data, origin, "sweep config", "empty file; a sweep config holds models: and suite: (see registry/sweeps/)", &s,
		func(s *SweepConfig, n *yaml.Node, report reportFunc) { node = n; validateSweep(s, n, report) })
	if err != nil {
		return SweepConfig{}, err
	}
	if s.ID == "" {
		s.ID = strings.TrimSuffix(filepath.Base(origin), filepath.Ext(origin))
	}
	s.origin, s.node = origin, node
	return s, nil
}

// LoadRunConfig reads and validates a run config file. References to the model, suite and
// tasks are checked by Registry.CheckRunConfig.
func LoadRunConfig(path string) (RunConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return RunConfig{}, fmt.Errorf("read run config: %w", err)
	}
	return ParseRunConfig(data, path)
}

// ParseRunConfig decodes and validates a run config held in memory; origin names it in
// problems.
func ParseRunConfig(data []byte, origin string) (RunConfig, error) {
	var c RunConfig
	var node *yaml.Node
	err := decodeFile(data, origin, "run config", "empty file; a run config holds model: (or predict_url:) and suite: (or tasks:)", &c,
		func(c *RunConfig, n *yaml.Node, report reportFunc) { node = n; validateRunConfig(c, n, report) })
	if err != nil {
		return RunConfig{}, err
	}
	c.origin, c.node = origin, node
	return c, nil
}

func validateSweep(s *SweepConfig, n *yaml.Node, report reportFunc) {
	checkID(s.ID, n, report)
	if s.Cluster != "" && !reID.MatchString(s.Cluster) {
		report(lineOf(n, "cluster"), "cluster %q: a profile name of clusters.yaml (letters, digits, '_', '-', '.')", s.Cluster)
	}
	if len(s.Models) == 0 {
		report(lineOf(n, "models"), "models: list at least one model preset (e.g. models: [naturelm_v1_1_local_8001])")
	}
	for i, m := range s.Models {
		at := func(path ...any) int { return lineOf(n, append([]any{"models", i}, path...)...) }
		p := fmt.Sprintf("models[%d]: ", i)
		if strings.TrimSpace(m.Model) == "" {
			report(at("model"), "%smodel: missing; name a model preset (see `beans-slurm list models`)", p)
		}
		if m.Name != "" && !reID.MatchString(m.Name) {
			report(at("name"), "%sname %q: use letters, digits, '_', '-' and '.' only, starting with a letter or digit", p, m.Name)
		}
		if m.Time != "" && !reTime.MatchString(m.Time) {
			report(at("time"), "%stime %q: give a SLURM time such as \"12:00:00\" or \"1-00:00:00\" (quote it)", p, m.Time)
		}
		if m.Memory != "" && !reMemory.MatchString(m.Memory) {
			report(at("memory"), "%smemory %q: give a SLURM size such as 64G or 16000M", p, m.Memory)
		}
		if m.GPUs != nil && *m.GPUs < 0 {
			report(at("gpus"), "%sgpus %d: must be 0 or more", p, *m.GPUs)
		}
		for j, a := range m.Args {
			if strings.ContainsAny(a, "\n\r") {
				report(at("args", j), "%sargs: item %d spans lines", p, j+1)
			}
		}
		checkEnvValues(p, m.Env, func(k string) int { return at("env", k) }, report)
	}
	// Two entries with the same results name would write into the same directory; entries
	// naming the same preset by id and alias are found once the registry resolves them.
	seen := map[string]int{}
	for i, m := range s.Models {
		key := m.ResultName(m.Model)
		if key == "" {
			continue
		}
		if j, ok := seen[key]; ok {
			report(lineOf(n, "models", i), "models[%d]: results name %q is already used by models[%d]; give one of them name: …", i, key, j)
			continue
		}
		seen[key] = i
	}
	checkSelection(s.Suite, s.Tasks, n, report)
	if s.Limit < 0 {
		report(lineOf(n, "limit"), "limit %d: must be 0 (all samples) or more", s.Limit)
	}
	if s.Shards < 0 {
		report(lineOf(n, "shards"), "shards %d: must be 0 or more (0 or 1 = one inference job per model)", s.Shards)
	}
}

// checkSelection checks suite: and tasks: alone; Registry.checkSelectionRefs checks the
// names.
func checkSelection(suite string, tasks []string, n *yaml.Node, report reportFunc) {
	if suite == "" && len(tasks) == 0 {
		report(lineOf(n), "give suite: (e.g. beans_zero_core) or tasks: [..] (see `beans-slurm list suites`)")
	}
	checkList("task", tasks, n, "tasks", report)
}

var (
	audioFormats = []string{"pcm16", "pcm", "int16", "s16", "pcm_s16le", "float32", "float", "f32", "pcm_f32le"}
	payloads     = []string{"base64_wav", "file_path"}
	policies     = []string{"beans_zero", "strict"}
	postprocess  = []string{"clean", "raw"}
)

func validateRunConfig(c *RunConfig, n *yaml.Node, report reportFunc) {
	if c.Model == "" && c.PredictURL == "" {
		report(lineOf(n), "give model: (a preset, see `beans-slurm list models`) or predict_url: (a running launcher's POST /predict URL)")
	}
	if c.PredictURL != "" {
		if u, err := url.Parse(c.PredictURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			report(lineOf(n, "predict_url"), "predict_url %q: give an http(s) URL such as http://127.0.0.1:8000/predict", c.PredictURL)
		}
	}
	checkSelection(c.Suite, c.Tasks, n, report)
	for _, f := range []struct {
		key string
		v   int64
	}{{"limit", int64(c.Limit)}, {"block_size", c.BlockSize}, {"resample", int64(c.Resample)}, {"concurrency", int64(c.Concurrency)}, {"batch_size", int64(c.BatchSize)}} {
		if f.v < 0 {
			report(lineOf(n, f.key), "%s %d: must be 0 (the default) or more", f.key, f.v)
		}
	}
	if c.Bootstrap < -1 {
		report(lineOf(n, "bootstrap"), "bootstrap %d: give the number of resamples, 0 for 1000, or -1 for no intervals", c.Bootstrap)
	}
	if c.Timeout < 0 {
		report(lineOf(n, "timeout"), "timeout %v: give a positive Go duration such as 10m", c.Timeout)
	}
	if c.AudioFormat != "" && !slices.Contains(audioFormats, strings.ToLower(c.AudioFormat)) {
		report(lineOf(n, "audio_format"), "audio_format %q: must be pcm16 or float32", c.AudioFormat)
	}
	if c.Payload != "" && !slices.Contains(payloads, c.Payload) {
		report(lineOf(n, "payload"), "payload %q: must be %s", c.Payload, strings.Join(payloads, " or "))
	}
	if c.Payload == "file_path" && c.PayloadDir == "" {
		report(lineOf(n, "payload"), "payload file_path needs payload_dir: a directory the launcher can read")
	}
	if c.Policy != "" && !slices.Contains(policies, c.Policy) {
		report(lineOf(n, "policy"), "policy %q: must be %s (empty: the task's)", c.Policy, strings.Join(policies, " or "))
	}
	if c.Postprocess != "" && !slices.Contains(postprocess, c.Postprocess) {
		report(lineOf(n, "postprocess"), "postprocess %q: must be %s", c.Postprocess, strings.Join(postprocess, " or "))
	}
}

// CheckSweep checks a sweep's references: every model preset, the suite and the tasks must
// exist, tasks given with a suite must belong to it, and no two entries may write the same
// results. Problems carry the sweep file's lines when it was loaded from a file.
func (r *Registry) CheckSweep(s SweepConfig) error {
	var ps problems
	r.checkSweepRefs(&s, s.node, origin(s.origin, "sweep "+s.ID), &ps, nil)
	return ps.errAs("sweep config")
}

// CheckRunConfig checks a run config's references: the model preset, the suite and the
// tasks must exist.
func (r *Registry) CheckRunConfig(c RunConfig) error {
	var ps problems
	o := origin(c.origin, "run config")
	if c.Model != "" {
		if _, err := r.Model(c.Model); err != nil {
			ps.add(o, lineOf(c.node, "model"), "%v", err)
		}
	}
	r.checkSelectionRefs(c.Suite, c.Tasks, c.node, o, &ps, nil)
	return ps.errAs("run config")
}

func origin(o, def string) string {
	if o == "" {
		return def
	}
	return o
}

func (r *Registry) checkSweepRefs(s *SweepConfig, n *yaml.Node, o string, ps *problems, broken map[string]bool) {
	seen := map[string]int{}
	for i, m := range s.Models {
		if m.Model == "" {
			continue
		}
		preset, err := r.Model(m.Model)
		if err != nil {
			if !broken[KindModel+"/"+m.Model] {
				ps.add(o, lineOf(n, "models", i, "model"), "sweep %s: %v", s.ID, err)
			}
			continue
		}
		key := m.ResultName(preset.ID)
		if j, ok := seen[key]; ok && m.ResultName(m.Model) != s.Models[j].ResultName(s.Models[j].Model) {
			// Same results name only after resolving an alias (the plain case is reported
			// by validateSweep).
			ps.add(o, lineOf(n, "models", i), "sweep %s: models[%d] (%s) and models[%d] (%s) are the same preset %s; give one of them name: …", s.ID, i, m.Model, j, s.Models[j].Model, preset.ID)
		}
		if _, ok := seen[key]; !ok {
			seen[key] = i
		}
	}
	r.checkSelectionRefs(s.Suite, s.Tasks, n, o, ps, broken)
}

// checkSelectionRefs checks that a suite and tasks exist and that tasks given with a suite
// belong to it.
func (r *Registry) checkSelectionRefs(suite string, tasks []string, n *yaml.Node, o string, ps *problems, broken map[string]bool) {
	var inSuite []string
	if suite != "" {
		if e, ok := r.suites[suite]; ok {
			inSuite = e.val.Tasks
		} else if !broken[KindSuite+"/"+suite] {
			ps.add(o, lineOf(n, "suite"), "%v", lookupError(KindSuite, suite, sortedIDs(r.suites)))
		}
	}
	for i, t := range tasks {
		if t == "" {
			continue
		}
		if _, ok := r.tasks[t]; !ok {
			if !broken[KindTask+"/"+t] {
				ps.add(o, lineOf(n, "tasks", i), "%v", lookupError(KindTask, t, sortedIDs(r.tasks)))
			}
			continue
		}
		if inSuite != nil && !slices.Contains(inSuite, t) {
			ps.add(o, lineOf(n, "tasks", i), "task %s is not in suite %s; drop suite: to run it, or pick one of the suite's tasks", t, suite)
		}
	}
}

// sweepModelIDs is used by tests and listings: the preset ids a sweep resolves to.
func (r *Registry) sweepModelIDs(s SweepConfig) []string {
	var out []string
	for _, m := range s.Models {
		if p, err := r.Model(m.Model); err == nil {
			out = append(out, p.ID)
		}
	}
	return out
}

func cloneSweep(s SweepConfig) SweepConfig {
	s.Tasks = slices.Clone(s.Tasks)
	s.Models = slices.Clone(s.Models)
	for i, m := range s.Models {
		m.Env = maps.Clone(m.Env)
		m.Args = slices.Clone(m.Args)
		if m.GPUs != nil {
			g := *m.GPUs
			m.GPUs = &g
		}
		s.Models[i] = m
	}
	return s
}
