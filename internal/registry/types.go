// Package registry holds the named things a run is made of: tasks, suites, prompts, model
// presets and sweeps. The defaults are YAML files embedded in the binary (the top-level
// registry/ directory); a user directory can add or override entries. It also reads the
// user's cluster profiles (clusters.yaml, see LoadClusters) and the configuration files of
// `submit --config` and `run --config` (LoadSweepConfig, LoadRunConfig). Decoding is strict:
// an unknown key is an error that names the file and the line.
package registry

// Task types.
const (
	Classification = "classification"
	Detection      = "detection"
	Captioning     = "captioning"
)

// Task is one evaluation task: which rows of which dataset, how to prompt, how to score.
type Task struct {
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Type is classification, detection or captioning.
	Type string `yaml:"type" json:"type"`
	// Source names the dataset the rows come from (see Source).
	Source Source `yaml:"source" json:"source"`
	// DatasetNames are the values of the dataset's `dataset_name` column that belong to this
	// task (several when copies of the data spell it differently, e.g. zf-indiv / zf-indv).
	DatasetNames []string `yaml:"dataset_names" json:"dataset_names"`
	// Rows is the number of rows of the task in the full split (documentation and progress;
	// 0 when unknown).
	Rows int `yaml:"rows,omitempty" json:"rows,omitempty"`
	// Labels is the task's declared label vocabulary (empty for captioning, and for tasks
	// whose vocabulary is read from the whole split of the data).
	Labels []string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Prompt is the id of the prompt template.
	Prompt string `yaml:"prompt" json:"prompt"`
	// AudioCapSeconds cuts audio longer than this before sending (0 = no cap).
	AudioCapSeconds float64 `yaml:"audio_cap_seconds,omitempty" json:"audio_cap_seconds,omitempty"`
	// GenerationConfig is sent with every request item of the task.
	GenerationConfig map[string]any `yaml:"generation_config,omitempty" json:"generation_config,omitempty"`
	// Scoring is the label-matching policy name (empty = the default for the task type).
	Scoring string `yaml:"scoring,omitempty" json:"scoring,omitempty"`
	// Judge is the rubric template used by judges (later).
	Judge string `yaml:"judge,omitempty" json:"judge,omitempty"`
	// Published holds results published for this task, to print beside a run's.
	Published *Published `yaml:"published,omitempty" json:"published,omitempty"`
}

// Published is a task's published results: the metric and the value per model.
type Published struct {
	Metric  string             `yaml:"metric" json:"metric"`
	Results map[string]float64 `yaml:"results" json:"results"`
}

// Source says where a task's rows live.
type Source struct {
	// Kind is "demo" (the embedded synthetic benchmark, generated on demand), "hub" (a Hugging
	// Face dataset repository; read from --data-dir when given) or "parquet" (local Parquet
	// files under --data-dir).
	Kind string `yaml:"kind" json:"kind"`
	// Repo, Config, Split and Revision identify a Hub dataset (kind hub).
	Repo     string `yaml:"repo,omitempty" json:"repo,omitempty"`
	Config   string `yaml:"config,omitempty" json:"config,omitempty"`
	Split    string `yaml:"split,omitempty" json:"split,omitempty"`
	Revision string `yaml:"revision,omitempty" json:"revision,omitempty"`
	// Files is a glob of data files relative to the dataset root (e.g. "shard*.parquet").
	Files string `yaml:"files,omitempty" json:"files,omitempty"`
}

// Suite is a named list of tasks.
type Suite struct {
	ID          string   `yaml:"id" json:"id"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Tasks       []string `yaml:"tasks" json:"tasks"`
}

// Prompt is a Go text/template that renders a sample into the user message. The template sees
// PromptData.
type Prompt struct {
	ID          string `yaml:"id" json:"id"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Template    string `yaml:"template" json:"template"`
}

// PromptData is what a prompt template can use.
type PromptData struct {
	// Instruction is the row's instruction, with the audio placeholder.
	Instruction string
	// InstructionText is the instruction without the placeholder.
	InstructionText string
	// Labels is the task's vocabulary (never the sample's own target).
	Labels []string
	// Task is the task definition.
	Task Task
	// Audio is the audio placeholder, for templates that place it themselves.
	Audio string
}

// Model is a model preset: how to reach or serve a model.
type Model struct {
	ID          string   `yaml:"id" json:"id"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Aliases     []string `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	// Launcher is the launcher kind: "dummy", "openai-proxy", "vllm", "python" (a kit under
	// launchers/).
	Launcher string `yaml:"launcher" json:"launcher"`
	// Kit is the serving kit's directory under launchers/ (launcher "python"), e.g.
	// "naturelm-v1.0".
	Kit string `yaml:"kit,omitempty" json:"kit,omitempty"`
	// Args are the launcher's arguments.
	Args []string `yaml:"args,omitempty" json:"args,omitempty"`
	// Model and Revision identify the weights or the API model.
	Model    string `yaml:"model,omitempty" json:"model,omitempty"`
	Revision string `yaml:"revision,omitempty" json:"revision,omitempty"`
	// PredictURL is where an already running launcher answers (e.g. http://127.0.0.1:8000/predict).
	PredictURL string `yaml:"predict_url,omitempty" json:"predict_url,omitempty"`
	// Port is the launcher's default port when served locally.
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// Resources of the serving job.
	GPUs          int    `yaml:"gpus,omitempty" json:"gpus,omitempty"`
	Memory        string `yaml:"memory,omitempty" json:"memory,omitempty"`
	Time          string `yaml:"time,omitempty" json:"time,omitempty"`
	HealthTimeout string `yaml:"health_timeout,omitempty" json:"health_timeout,omitempty"`
	// AudioCapSeconds caps audio sent to this model (0 = the task's cap).
	AudioCapSeconds float64 `yaml:"audio_cap_seconds,omitempty" json:"audio_cap_seconds,omitempty"`
	// Env names environment variables the launcher needs (values come from the user).
	Env []string `yaml:"env,omitempty" json:"env,omitempty"`
	// Stub is how the preset runs on a machine without the model (submit --stub, a sweep
	// entry's stub: true): StubKit runs the Python kit in its own stub mode (<KIT>_STUB=1, any
	// python3, no torch); StubJudge the built-in dummy in judge mode (judge presets);
	// StubDummy (the default) serves the built-in dummy launcher under the
	// preset's name.
	Stub string `yaml:"stub,omitempty" json:"stub,omitempty"`
	// Upstream is the OpenAI-compatible API the openai-proxy launcher forwards to (e.g.
	// https://api.openai.com/v1); vllm presets start their own upstream on the serving node.
	Upstream string `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	// TextOnly marks a model that takes no audio (a judge): the proxy refuses audio items.
	TextOnly bool `yaml:"text_only,omitempty" json:"text_only,omitempty"`
}
