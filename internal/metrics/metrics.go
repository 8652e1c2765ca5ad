// Package metrics turns raw model answers into scores: answer cleanup, label
// matching against a task vocabulary, and the classification, detection and
// captioning metrics of BEANS-Zero.
//
// The package is pure computation (no I/O). Each step is a separate, named
// function so that it can be replaced or checked on its own:
//
//   - Clean: answer cleanup (end-of-text cut, time-span prefix, whitespace);
//   - Vocabulary.Snap and Vocabulary.Split: label matching;
//   - MacroPRF, MultilabelMacroPRF, CIDErD: the metrics themselves;
//   - Score: the whole pipeline for one task.
//
// docs/metrics.md defines every step precisely for comparison with Python.
package metrics

import "fmt"

// Version names the scorer; recorded in every summary. Bump on any change of numbers.
const Version = "beans-slurm-metrics/0.1"

// Task types, the same strings as in the registry.
const (
	TaskClassification = "classification"
	TaskDetection      = "detection"
	TaskCaptioning     = "captioning"
)

// Label-matching policies recorded in Result.Policy.
const (
	// PolicyBeansZero is the reference BEANS-Zero matching: classification
	// answers always snap to the nearest label; detection parts snap when
	// within DetectionMaxDistance and are dropped otherwise.
	PolicyBeansZero = "beans_zero"
	// PolicyNone means no label matching (captioning: cleanup only).
	PolicyNone = "none"
)

// Headline metric names recorded in Result.Headline.
const (
	HeadlineAccuracy = "accuracy"
	HeadlineF1Macro  = "f1_macro"
	HeadlineCIDEr    = "cider"
)

// Input is one sample to score.
type Input struct {
	SampleID string
	Answer   string // raw first prediction ("" when the item failed)
	Target   string // ground truth as in the dataset's `output` column
	Failed   bool   // the launcher gave no answer (error); scored as a wrong/empty answer
}

// Sample is one scored sample, as written to processed/scored prediction files.
type Sample struct {
	SampleID string `json:"sample_id"`
	Raw      string `json:"raw"`
	Cleaned  string `json:"cleaned"`
	// Prediction is, for classification, the snapped label ("" for a failed
	// item); for captioning, the cleaned text; for detection, the predicted
	// labels joined with ", ", or "None" when there are none.
	Prediction      string   `json:"prediction"`
	PredictedLabels []string `json:"predicted_labels,omitempty"` // detection
	Target          string   `json:"target"`
	// TargetLabels is, for detection, the target split comma-aware with
	// "None" parts removed.
	TargetLabels []string `json:"target_labels,omitempty"`
	Failed       bool     `json:"failed,omitempty"`
	// Scores holds per-sample scores: classification "correct" and "top1";
	// detection "exact_match" and "f1" (sample-wise F1, 1 when both sets are
	// empty); captioning "cider_d" (this caption's CIDEr-D, COCO ×10 scale).
	Scores map[string]float64 `json:"scores"`
}

// Result is the outcome of scoring one task.
type Result struct {
	TaskType string             `json:"task_type"`
	Headline string             `json:"headline"` // name of the headline metric: "accuracy" | "f1_macro" | "cider"
	Metrics  map[string]float64 `json:"metrics"`
	N        int                `json:"n"`
	Failed   int                `json:"failed"`
	Samples  []Sample           `json:"-"`
	Policy   string             `json:"policy"` // label-matching policy used, e.g. "beans_zero"
}

// Score cleans, matches and scores. labels is the task vocabulary (ignored for
// captioning). Returns an error for an unknown task type or an empty
// vocabulary on classification/detection.
//
// Failed inputs are scored with an empty answer (their Answer is ignored):
// classification predicts the empty label "", detection predicts no labels,
// captioning an empty caption. With no inputs, every metric is 0.
func Score(taskType string, labels []string, in []Input) (Result, error) {
	switch taskType {
	case TaskClassification, TaskDetection:
		v := NewVocabulary(labels)
		if len(v.labels) == 0 {
			return Result{}, fmt.Errorf("score %s: empty label vocabulary", taskType)
		}
		if taskType == TaskClassification {
			return scoreClassification(v, in), nil
		}
		return scoreDetection(v, in), nil
	case TaskCaptioning:
		return scoreCaptioning(in), nil
	default:
		return Result{}, fmt.Errorf("score: unknown task type %q (want %q, %q or %q)",
			taskType, TaskClassification, TaskDetection, TaskCaptioning)
	}
}

// newSample fills the fields common to all task types.
func newSample(x Input) Sample {
	raw := x.Answer
	cleaned := ""
	if !x.Failed {
		cleaned = Clean(raw)
	}
	return Sample{
		SampleID: x.SampleID,
		Raw:      raw,
		Cleaned:  cleaned,
		Target:   x.Target,
		Failed:   x.Failed,
		Scores:   map[string]float64{},
	}
}

// mean returns the arithmetic mean of xs, 0 for an empty slice.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
