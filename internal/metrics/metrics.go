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
//
// 0.2: empty answers score as wrong (classification no longer snaps ""),
// strict policy, micro/weighted averaging, detection mAP, bootstrap
// intervals, F1 from confusion counts as scikit-learn >= 1.3.
const Version = "beans-slurm-metrics/0.2"

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
	// PolicyStrict matches an answer (classification) or each answer part
	// (detection) to the vocabulary label equal to it case-insensitively
	// (Unicode simple case folding, strings.EqualFold; first label in
	// vocabulary order wins); no such label means no label.
	PolicyStrict = "strict"
	// PolicyNone means no label matching (captioning: cleanup only).
	PolicyNone = "none"
)

// Versions of the matching policies and postprocessing steps, recorded in
// Result.PolicyVersion and Result.Postprocess. Bump when a step's output changes.
const (
	PolicyBeansZeroVersion = "beans_zero/1"
	PolicyStrictVersion    = "strict/1"
	PolicyNoneVersion      = "none/1"
)

// Answer postprocessing (cleanup) steps, Options.Postprocess.
const (
	// PostprocessClean is Clean: end-of-text cut, time-span prefix, white space.
	PostprocessClean = "clean"
	// PostprocessRaw only trims and collapses white space.
	PostprocessRaw = "raw"

	PostprocessCleanVersion = "clean/1"
	PostprocessRawVersion   = "raw/1"
)

// Headline metric names recorded in Result.Headline.
const (
	HeadlineAccuracy = "accuracy"
	HeadlineF1Macro  = "f1_macro"
	HeadlineCIDEr    = "cider"
)

// Bootstrap defaults.
const (
	DefaultBootstrap  = 1000
	DefaultConfidence = 0.95
	DefaultSeed       = 0
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
	// Prediction is, for classification, the matched label ("" for a failed
	// or empty answer, or no strict match); for captioning, the cleaned text;
	// for detection, the predicted labels joined with ", ", or "None" when
	// there are none.
	Prediction      string   `json:"prediction"`
	PredictedLabels []string `json:"predicted_labels,omitempty"` // detection
	Target          string   `json:"target"`
	// TargetLabels is, for detection, the target split comma-aware with
	// "None" parts removed.
	TargetLabels []string `json:"target_labels,omitempty"`
	Failed       bool     `json:"failed,omitempty"`
	// Scores holds per-sample scores: classification "correct" and "top1";
	// detection "exact_match" and "f1" (sample-wise F1, 1 when both sets are
	// empty); captioning "cider_d" (this caption's CIDEr-D, COCO ×10 scale)
	// and, after AddSPICE, "spice".
	Scores map[string]float64 `json:"scores"`
}

// Interval is a confidence interval of one metric.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// BootstrapInfo records how Result.Intervals were computed.
type BootstrapInfo struct {
	Method     string  `json:"method"` // "percentile"
	Resamples  int     `json:"resamples"`
	Seed       uint64  `json:"seed"`
	Confidence float64 `json:"confidence"`
	Quantile   string  `json:"quantile"` // "numpy-linear" (Hyndman-Fan type 7)
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

	PolicyVersion string `json:"policy_version"` // e.g. "beans_zero/1"
	Postprocess   string `json:"postprocess"`    // cleanup step and version, e.g. "clean/1"
	// Empty counts answers that were empty after cleanup (failed items not
	// included); they score as wrong.
	Empty int `json:"empty"`
	// OutOfVocabulary counts samples whose target is not in the vocabulary:
	// classification, the target is no label and none of its comma-aware
	// alternatives is one; detection, some target label is no label.
	OutOfVocabulary int `json:"out_of_vocabulary"`
	// Intervals holds a percentile-bootstrap interval for every metric;
	// nil when the bootstrap is off or there are no samples.
	Intervals map[string]Interval `json:"intervals,omitempty"`
	Bootstrap *BootstrapInfo      `json:"bootstrap,omitempty"`
	// Unavailable names metrics that could not be computed, with the reason
	// (captioning: "spice" and "spider" until AddSPICE succeeds).
	Unavailable map[string]string `json:"unavailable,omitempty"`

	// boot keeps what AddSPICE needs to extend the bootstrap (captioning).
	boot *bootState
}

// Options controls ScoreWith. The zero value is not the default: use
// DefaultOptions and change fields.
type Options struct {
	// Policy is the label-matching policy for classification and
	// detection: PolicyBeansZero (default when "") or PolicyStrict.
	// Captioning ignores it and records PolicyNone.
	Policy string
	// Postprocess is the answer cleanup: PostprocessClean (default when "")
	// or PostprocessRaw.
	Postprocess string
	// Bootstrap is the number of bootstrap resamples; 0 means
	// DefaultBootstrap; a negative value turns intervals off.
	Bootstrap int
	// Seed seeds the resampling (resample b uses PCG(Seed, b)).
	Seed uint64
	// Confidence is the interval's coverage in (0, 1); 0 means DefaultConfidence.
	Confidence float64
	// Workers bounds the goroutines used by the bootstrap; 0 means GOMAXPROCS.
	Workers int
}

// DefaultOptions returns the options Score uses.
func DefaultOptions() Options {
	return Options{Policy: PolicyBeansZero, Postprocess: PostprocessClean, Bootstrap: DefaultBootstrap,
		Seed: DefaultSeed, Confidence: DefaultConfidence}
}

// Score is ScoreWith with DefaultOptions.
func Score(taskType string, labels []string, in []Input) (Result, error) {
	return ScoreWith(taskType, labels, in, DefaultOptions())
}

// ScoreWith cleans, matches and scores one task. labels is the task
// vocabulary (ignored for captioning). Returns an error for an unknown task
// type, policy or postprocess step, a confidence outside (0, 1), or an
// empty vocabulary on classification/detection.
//
// Failed inputs are scored with an empty answer (their Answer is ignored):
// classification predicts the empty label "", detection predicts no labels,
// captioning an empty caption. With no inputs, every metric is 0.
func ScoreWith(taskType string, labels []string, in []Input, opts Options) (Result, error) {
	if opts.Policy == "" {
		opts.Policy = PolicyBeansZero
	}
	if opts.Postprocess == "" {
		opts.Postprocess = PostprocessClean
	}
	if opts.Bootstrap == 0 {
		opts.Bootstrap = DefaultBootstrap
	}
	if opts.Confidence == 0 {
		opts.Confidence = DefaultConfidence
	}
	if !(opts.Confidence > 0 && opts.Confidence < 1) {
		return Result{}, fmt.Errorf("score: confidence %v outside (0, 1)", opts.Confidence)
	}
	var ppVersion string
	switch opts.Postprocess {
	case PostprocessClean:
		ppVersion = PostprocessCleanVersion
	case PostprocessRaw:
		ppVersion = PostprocessRawVersion
	default:
		return Result{}, fmt.Errorf("score: unknown postprocess step %q (want %q or %q)", opts.Postprocess, PostprocessClean, PostprocessRaw)
	}
	var polVersion string
	switch opts.Policy {
	case PolicyBeansZero:
		polVersion = PolicyBeansZeroVersion
	case PolicyStrict:
		polVersion = PolicyStrictVersion
	default:
		return Result{}, fmt.Errorf("score: unknown policy %q (want %q or %q)", opts.Policy, PolicyBeansZero, PolicyStrict)
	}
	var (
		res Result
		bs  *bootState
	)
	switch taskType {
	case TaskClassification, TaskDetection:
		v := NewVocabulary(labels)
		if len(v.labels) == 0 {
			return Result{}, fmt.Errorf("score %s: empty label vocabulary", taskType)
		}
		if taskType == TaskClassification {
			res, bs = scoreClassification(v, in, opts)
		} else {
			res, bs = scoreDetection(v, in, opts)
		}
		res.Policy, res.PolicyVersion = opts.Policy, polVersion
	case TaskCaptioning:
		res, bs = scoreCaptioning(in, opts)
		res.Policy, res.PolicyVersion = PolicyNone, PolicyNoneVersion
	default:
		return Result{}, fmt.Errorf("score: unknown task type %q (want %q, %q or %q)",
			taskType, TaskClassification, TaskDetection, TaskCaptioning)
	}
	res.Postprocess = ppVersion
	if opts.Bootstrap > 0 && res.N > 0 {
		bs.run(opts)
		res.Intervals = bs.intervals(opts.Confidence)
		res.Bootstrap = &BootstrapInfo{Method: "percentile", Resamples: opts.Bootstrap, Seed: opts.Seed,
			Confidence: opts.Confidence, Quantile: "numpy-linear"}
	}
	res.boot = bs
	return res, nil
}

// postprocess applies the cleanup step named by opts.Postprocess.
func postprocess(opts Options, answer string) string {
	if opts.Postprocess == PostprocessRaw {
		return collapseSpace(answer)
	}
	return Clean(answer)
}

// newSample fills the fields common to all task types.
func newSample(x Input, opts Options) Sample {
	raw := x.Answer
	cleaned := ""
	if !x.Failed {
		cleaned = postprocess(opts, raw)
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
