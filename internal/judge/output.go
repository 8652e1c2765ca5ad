package judge

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/metrics"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

// Metric names.
const (
	MetricAccuracy = "judge_accuracy"
	MetricScore    = "judge_score"
)

// Summary is judge_summary.json.
type Summary struct {
	TaskID    string                      `json:"task_id"`
	TaskType  string                      `json:"task_type"`
	Suite     string                      `json:"suite,omitempty"`
	Mode      string                      `json:"mode"`
	Headline  eval.Headline               `json:"headline"`
	Metrics   map[string]float64          `json:"metrics"`
	Intervals map[string]metrics.Interval `json:"intervals,omitempty"`
	Bootstrap *metrics.BootstrapInfo      `json:"bootstrap,omitempty"`
	// N is the samples of the predictions file; Scored those with a verdict or a score (the
	// metric's denominator): judged ones plus ModelFailed, which the model failed to answer
	// and count as wrong (0) without being sent. JudgeErrors were not scored: the judge
	// failed, or answered neither YES nor NO, or broke the contract (Errors says how).
	N           int               `json:"n"`
	Scored      int               `json:"scored"`
	Yes         int               `json:"yes,omitempty"`
	No          int               `json:"no,omitempty"`
	ModelFailed int               `json:"model_failed"`
	JudgeErrors int               `json:"judge_errors"`
	Errors      []eval.ErrorCount `json:"errors,omitempty"`
	Judge       Record            `json:"judge"`
	// Model is the identity of the model judged; Predictions the file judged.
	Model       json.RawMessage    `json:"model"`
	Predictions string             `json:"predictions"`
	Dataset     eval.DatasetRecord `json:"dataset"`
	BeansSlurm  eval.BuildRecord   `json:"beans_slurm"`
	JudgeSec    float64            `json:"judge_sec"`
	Notes       []string           `json:"notes,omitempty"`
}

// Record describes a judge: where, who (/info), how (template and sampling).
type Record struct {
	Mode string `json:"mode"`
	URL  string `json:"url"`
	// Schema is the contract spoken (predictions_v1 or judge_scores_v1).
	Schema string `json:"schema"`
	// Identity is the judge's /info (null for a rubric service without one).
	Identity json.RawMessage           `json:"identity"`
	Template Template                  `json:"template"`
	Sampling contract.GenerationConfig `json:"sampling,omitempty"`
	// TaskType is the extractor template's task type.
	TaskType string       `json:"task_type,omitempty"`
	Cache    *CacheRecord `json:"answer_cache,omitempty"`
}

// Template names a judge template.
type Template struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// OutputLine is one line of judge_outputs.jsonl (and judge_extracted_outputs.jsonl): what the
// judge was asked and what it answered.
type OutputLine struct {
	SampleID string `json:"sample_id"`
	TaskID   string `json:"task_id"`
	Template string `json:"template"`
	// Prompt is the predictions_v1 judge's prompt; the rubric judge's request is its
	// reference and candidate texts.
	Prompt    string `json:"prompt,omitempty"`
	Reference string `json:"reference_text,omitempty"`
	Candidate string `json:"candidate_text,omitempty"`
	// Answer is the judge's raw answer (predictions_v1); Verdict its YES or NO; Score the
	// sample's score (null when there is none); Rationale the rubric judge's reason.
	Answer     string   `json:"judge_answer,omitempty"`
	Verdict    string   `json:"verdict,omitempty"`
	Extracted  *string  `json:"extracted,omitempty"`
	Score      *float64 `json:"score"`
	Rationale  string   `json:"rationale,omitempty"`
	Error      string   `json:"error,omitempty"`
	Cached     bool     `json:"cached,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	LatencySec float64  `json:"latency_sec,omitempty"`
}

// ScoredLine is one line of judge_scored_predictions.jsonl.
type ScoredLine struct {
	SampleID   string   `json:"sample_id"`
	TaskID     string   `json:"task_id"`
	Target     string   `json:"target"`
	Prediction string   `json:"prediction"`
	Verdict    string   `json:"judge_verdict,omitempty"`
	Score      *float64 `json:"judge_score"`
	// ModelFailed marks a sample the model did not answer (scored 0, not sent to the judge);
	// Error is the model's or the judge's failure.
	ModelFailed bool   `json:"model_failed,omitempty"`
	Error       string `json:"error,omitempty"`
}

// outcome is one sample's judgement.
type outcome struct {
	out    OutputLine
	scored ScoredLine
}

// finish computes the summary of a judged task and writes the judge's three files. outs are
// in sample_id order.
func (j *Judges) finish(rec *eval.TaskRecord, predictionsPath, outDir string, outs []outcome, mode, metric string,
	judge Record, outputsFile string, started time.Time, notes []string) (*Summary, error) {
	s := &Summary{
		TaskID: rec.Task.ID, TaskType: rec.Task.Type, Suite: rec.Suite, Mode: mode,
		N: len(outs), Judge: judge, Model: rec.Model, Predictions: predictionsPath, Dataset: rec.Dataset,
		BeansSlurm: eval.BuildRecord{Version: version.Version, Revision: version.Revision()},
		Notes:      notes,
	}
	errCounts := map[string]int{}
	var values []float64
	for _, o := range outs {
		switch {
		case o.scored.ModelFailed:
			s.ModelFailed++
			values = append(values, 0)
		case o.scored.Score == nil:
			s.JudgeErrors++
			errCounts[o.out.Error]++
		default:
			values = append(values, *o.scored.Score)
			switch o.scored.Verdict {
			case "YES":
				s.Yes++
			case "NO":
				s.No++
			}
		}
	}
	s.Scored = len(values)
	s.Errors = eval.TopErrors(errCounts, 10)
	mo := metrics.Options{Bootstrap: j.opts.Score.Bootstrap, Seed: j.opts.Score.Seed}
	m, iv, info := metrics.MeanWithInterval(values, mo)
	s.Headline = eval.Headline{Name: metric, Value: m}
	s.Metrics = map[string]float64{metric: m}
	if iv != nil {
		s.Intervals = map[string]metrics.Interval{metric: *iv}
		s.Bootstrap = info
	}
	if s.Scored == 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("no sample could be scored: %s is 0 by convention", metric))
	}
	s.JudgeSec = float64(time.Since(started).Milliseconds()) / 1000
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("judge: create %s: %w", outDir, err)
	}
	if outputsFile != "" {
		if err := writeLines(filepath.Join(outDir, outputsFile), outs, func(o outcome) any { return o.out }); err != nil {
			return nil, err
		}
	}
	if err := writeLines(filepath.Join(outDir, ScoredFile), outs, func(o outcome) any { return o.scored }); err != nil {
		return nil, err
	}
	if err := eval.WriteJSON(filepath.Join(outDir, SummaryFile), s); err != nil {
		return nil, err
	}
	return s, nil
}

func writeLines[T any](path string, xs []T, f func(T) any) error {
	w, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer w.Abort()
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, x := range xs {
		if err := enc.Encode(f(x)); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return w.Commit()
}
