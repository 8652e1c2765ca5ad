package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"

	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// Artifact file names, shared with BEANS-Next.
const (
	PredictionsFile = "predictions.jsonl"
	ProcessedFile   = "processed_predictions.jsonl"
	ScoredFile      = "scored_predictions.jsonl"
	SummaryFile     = "summary.json"
	TaskFile        = "task.json"
	RunFile         = "run.json"
	SuiteFile       = "suite_summary.json"
)

// PredictionLine is one line of predictions.jsonl: everything needed to score the sample
// again anywhere, without the dataset.
type PredictionLine struct {
	SampleID    string `json:"sample_id"`
	TaskID      string `json:"task_id"`
	DatasetName string `json:"dataset_name"`
	// Instruction is the rendered prompt text sent with the audio (judges need it).
	Instruction string `json:"instruction"`
	Target      string `json:"target"`
	// Prediction is the launcher's first prediction ("" when the item failed).
	Prediction string `json:"prediction"`
	// Error is the failure of the item (launcher error or contract violation), or "".
	Error string `json:"error,omitempty"`
	// Response is the launcher's whole answer item as it arrived (null when none arrived).
	Response   json.RawMessage `json:"response"`
	LatencySec float64         `json:"latency_sec"`
	Attempts   int             `json:"attempts"`
	// Cached marks an answer served from the answer cache (Response is the cached answer,
	// relabelled with this sample_id; nothing was sent, so latency and attempts are 0).
	Cached bool `json:"cached,omitempty"`
}

// TaskRecord is task.json: the task's definition and vocabulary, recorded once per task
// directory so that predictions.jsonl can be scored without the registry or the dataset.
type TaskRecord struct {
	Task         registry.Task   `json:"task"`
	Labels       []string        `json:"labels"`
	LabelsSource string          `json:"labels_source"`
	Prompt       PromptRecord    `json:"prompt"`
	Model        json.RawMessage `json:"model"`
	PredictURL   string          `json:"predict_url"`
	Dataset      DatasetRecord   `json:"dataset"`
	Suite        string          `json:"suite,omitempty"`
	Limit        int             `json:"limit,omitempty"`
	ConfigHash   string          `json:"config_hash"`
	BeansSlurm   string          `json:"beans_slurm"`
	Created      time.Time       `json:"created"`
}

// PromptRecord names the prompt and its exact template.
type PromptRecord struct {
	ID       string `json:"id"`
	Template string `json:"template"`
}

// DatasetRecord says where the rows came from.
type DatasetRecord struct {
	Kind     string `json:"kind"`
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Commit is the resolved commit of the repository (empty for a copy without manifest).
	Commit string `json:"commit,omitempty"`
	// Root is the local directory read, or the Hub endpoint when Remote.
	Root   string `json:"root"`
	Remote bool   `json:"remote,omitempty"`
	// Files are the data files of the source (relative to Root, or paths in the repository).
	Files []string `json:"files"`
	Rows  int      `json:"rows"`
}

// RunRecord is run.json: how the inference went.
type RunRecord struct {
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	InferenceSec float64   `json:"inference_sec"`
	Samples      int       `json:"samples"`
	Failed       int       `json:"failed"`
	SamplesPerS  float64   `json:"samples_per_sec"`
	BatchSize    int       `json:"batch_size"`
	InFlight     int       `json:"in_flight"`
	// PeakRSSMiB is the process's peak resident memory up to the end of this task's
	// inference (0 where the system does not tell).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// AnswerCache says how the answer cache served the task (absent when it was off).
	AnswerCache *AnswerCacheRecord `json:"answer_cache,omitempty"`
}

// WriteJSON writes v to path atomically (temporary file in the same directory, then rename).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return atomicfile.Write(path, append(b, '\n'))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return nil
}
