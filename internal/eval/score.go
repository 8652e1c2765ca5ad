package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/spice"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"

	"github.com/beans-slurm/beans-slurm/internal/metrics"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

// TaskSummary is summary.json.
type TaskSummary struct {
	TaskID     string              `json:"task_id"`
	TaskType   string              `json:"task_type"`
	Suite      string              `json:"suite,omitempty"`
	Headline   Headline            `json:"headline"`
	Metrics    map[string]float64  `json:"metrics"`
	Intervals  map[string]Interval `json:"intervals,omitempty"`
	N          int                 `json:"n"`
	Failed     int                 `json:"failed"`
	Errors     []ErrorCount        `json:"errors,omitempty"`
	Model      json.RawMessage     `json:"model"`
	PredictURL string              `json:"predict_url"`
	Dataset    DatasetRecord       `json:"dataset"`
	Labels     LabelsRecord        `json:"labels"`
	Prompt     PromptSummary       `json:"prompt"`
	Scorer     ScorerRecord        `json:"scorer"`
	// Empty counts answers that were empty after cleanup; OutOfVocabulary the samples whose
	// target is not in the vocabulary; Unavailable the metrics that could not be computed
	// and why; Bootstrap how the intervals were computed.
	Empty           int                    `json:"empty"`
	OutOfVocabulary int                    `json:"out_of_vocabulary"`
	Unavailable     map[string]string      `json:"unavailable,omitempty"`
	Bootstrap       *metrics.BootstrapInfo `json:"bootstrap,omitempty"`
	BeansSlurm      BuildRecord            `json:"beans_slurm"`
	ConfigHash      string                 `json:"config_hash"`
	Limit           int                    `json:"limit,omitempty"`
	Run             *RunRecord             `json:"run,omitempty"`
	// Judge describes the extractor judge that rewrote the answers (judge_extracted_summary.json).
	Judge json.RawMessage `json:"judge,omitempty"`
	Notes []string        `json:"notes,omitempty"`
}

// Headline is the task's headline metric (accuracy, macro F1 or CIDEr).
type Headline struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// ErrorCount is one distinct error message and how many items failed with it.
type ErrorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// LabelsRecord summarises the vocabulary used.
type LabelsRecord struct {
	Count  int    `json:"count"`
	Source string `json:"source"`
}

// PromptSummary names the prompt used.
type PromptSummary struct {
	ID string `json:"id"`
}

// ScorerRecord names the scorer, the label-matching policy and the cleanup step.
type ScorerRecord struct {
	Version       string `json:"version"`
	Policy        string `json:"policy"`
	PolicyVersion string `json:"policy_version"`
	Postprocess   string `json:"postprocess"`
}

// ScoreOptions tune scoring. The zero value scores with the task's policy, 1,000 bootstrap
// resamples and SPICE when it is installed.
type ScoreOptions struct {
	// Policy overrides the task's label-matching policy (beans_zero, strict).
	Policy string
	// Postprocess overrides the answer cleanup (clean, raw).
	Postprocess string
	// Bootstrap is the number of resamples for the intervals (0 = 1,000; < 0 = none).
	Bootstrap int
	// Seed seeds the bootstrap (0 = the default seed).
	Seed uint64
	// SPICECacheDir is where `beans-slurm setup-spice` installed SPICE ("" = the default);
	// NoSPICE skips it.
	SPICECacheDir string
	NoSPICE       bool
	// SkipBadLines skips unreadable lines of a predictions file (counted in the notes)
	// instead of failing.
	SkipBadLines bool

	// The extractor judge scores rewritten answers into files of its own:
	// Rewrite, when set, replaces each sample's answer before scoring (a rewrite carrying an
	// error fails the sample); Files, when set, names the files written (Processed "" = not
	// written); Judge is recorded in the summary.
	Rewrite map[string]Rewrite
	Files   *OutputFiles
	Judge   json.RawMessage
}

// Rewrite is a sample's answer as rewritten by the extractor judge.
type Rewrite struct {
	Prediction string
	Error      string
}

// OutputFiles name what ScoreFile writes.
type OutputFiles struct {
	Processed, Scored, Summary string
}

// DefaultFiles are the files of the normal scoring.
var DefaultFiles = OutputFiles{Processed: ProcessedFile, Scored: ScoredFile, Summary: SummaryFile}

// BuildRecord names the binary that scored.
type BuildRecord struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

// ScoreFile scores a predictions.jsonl file. It reads task.json (and run.json, when present)
// from the same directory, and writes processed_predictions.jsonl,
// scored_predictions.jsonl and summary.json into outDir (the predictions file's directory
// when outDir is ""). It never writes the predictions file or task.json in place; when
// outDir is another directory, task.json is copied there so that it is self-contained.
func ScoreFile(ctx context.Context, predictionsPath, outDir string, opts ScoreOptions) (*TaskSummary, error) {
	dir := filepath.Dir(predictionsPath)
	if outDir == "" {
		outDir = dir
	}
	rec, err := ReadTask(predictionsPath)
	if err != nil {
		return nil, err
	}
	files := DefaultFiles
	if opts.Files != nil {
		files = *opts.Files
	}
	var run *RunRecord
	var r RunRecord
	if err := readJSON(filepath.Join(dir, RunFile), &r); err == nil {
		run = &r
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("score %s: %w", predictionsPath, err)
	}

	lines, notes, err := ReadAnswers(predictionsPath, rec.Task.ID, opts.SkipBadLines)
	if err != nil {
		return nil, err
	}
	if opts.Rewrite != nil {
		for i := range lines {
			if l := &lines[i]; l.Error == "" {
				r, ok := opts.Rewrite[l.SampleID]
				if !ok {
					r.Error = "no rewritten answer for this sample"
				}
				l.Prediction, l.Error = r.Prediction, r.Error
			}
		}
	}
	// Answers are written as they arrive, in an order that depends on batches in flight, on a
	// resume or on the answer cache. Scoring does not: samples are scored, resampled by the
	// bootstrap and written in sample_id order, so any two runs with the same answers have the
	// same scored files, byte for byte.
	slices.SortStableFunc(lines, func(a, b Answer) int { return strings.Compare(a.SampleID, b.SampleID) })
	inputs := make([]metrics.Input, len(lines))
	errCounts := map[string]int{}
	for i, l := range lines {
		inputs[i] = metrics.Input{SampleID: l.SampleID, Answer: l.Prediction, Target: l.Target, Failed: l.Error != ""}
		if l.Error != "" {
			errCounts[l.Error]++
		}
	}
	mo := metrics.DefaultOptions()
	mo.Policy = rec.Task.Scoring
	if opts.Policy != "" {
		mo.Policy = opts.Policy
	}
	if opts.Postprocess != "" {
		mo.Postprocess = opts.Postprocess
	}
	if opts.Bootstrap != 0 {
		mo.Bootstrap = opts.Bootstrap
	}
	if opts.Seed != 0 {
		mo.Seed = opts.Seed
	}
	res, err := metrics.ScoreWith(rec.Task.Type, rec.Labels, inputs, mo)
	if err != nil {
		return nil, fmt.Errorf("score %s (task %s): %w", predictionsPath, rec.Task.ID, err)
	}
	if rec.Task.Type == metrics.TaskCaptioning {
		notes = append(notes, addSPICE(ctx, &res, opts))
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("score: create %s: %w", outDir, err)
	}
	if !SameDir(outDir, dir) {
		if err := WriteJSON(filepath.Join(outDir, TaskFile), rec); err != nil {
			return nil, err
		}
	}
	if files.Processed != "" {
		if err := writeSamples(filepath.Join(outDir, files.Processed), rec.Task.ID, res.Samples, false); err != nil {
			return nil, err
		}
	}
	if err := writeSamples(filepath.Join(outDir, files.Scored), rec.Task.ID, res.Samples, true); err != nil {
		return nil, err
	}
	sum := &TaskSummary{
		TaskID:     rec.Task.ID,
		TaskType:   rec.Task.Type,
		Suite:      rec.Suite,
		Headline:   Headline{Name: res.Headline, Value: res.Metrics[res.Headline]},
		Metrics:    res.Metrics,
		N:          res.N,
		Failed:     res.Failed,
		Errors:     TopErrors(errCounts, 10),
		Model:      rec.Model,
		PredictURL: rec.PredictURL,
		Dataset:    rec.Dataset,
		Labels:     LabelsRecord{Count: len(rec.Labels), Source: rec.LabelsSource},
		Prompt:     PromptSummary{ID: rec.Prompt.ID},
		Scorer:     ScorerRecord{Version: metrics.Version, Policy: res.Policy, PolicyVersion: res.PolicyVersion, Postprocess: res.Postprocess},
		Intervals:  res.Intervals, Empty: res.Empty, OutOfVocabulary: res.OutOfVocabulary,
		Unavailable: res.Unavailable, Bootstrap: res.Bootstrap,
		BeansSlurm: BuildRecord{Version: version.Version, Revision: version.Revision()},
		ConfigHash: rec.ConfigHash,
		Limit:      rec.Limit,
		Run:        run,
		Judge:      opts.Judge,
		Notes:      notes,
	}
	if err := WriteJSON(filepath.Join(outDir, files.Summary), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// ReadTask reads the task.json beside a predictions file.
func ReadTask(predictionsPath string) (*TaskRecord, error) {
	var rec TaskRecord
	if err := readJSON(filepath.Join(filepath.Dir(predictionsPath), TaskFile), &rec); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("score %s: no %s beside it; scoring needs the task definition that `beans-slurm run` writes there", predictionsPath, TaskFile)
		}
		return nil, fmt.Errorf("score %s: %w", predictionsPath, err)
	}
	return &rec, nil
}

// ReadAnswers reads every line of a predictions file. A torn last line (a write cut
// short by a crash) is skipped with a note; any other unreadable line is an error that
// names the line, since skipping it would silently change the numbers.
func ReadAnswers(path, taskID string, skipBad bool) (out []Answer, notes []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("score: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	seen := map[string]int{}
	skipped := 0
	defer func() {
		if skipped > 0 && err == nil {
			notes = append(notes, fmt.Sprintf("skipped %d unreadable line(s) of %s (--skip-bad-lines)", skipped, filepath.Base(path)))
		}
	}()
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("read %s line %d: %w", path, n, err)
		}
		complete := err == nil
		if len(bytes.TrimSpace(line)) > 0 {
			var p Answer
			uerr := json.Unmarshal(line, &p)
			if uerr == nil && p.TaskID != taskID {
				uerr = fmt.Errorf("task_id %q, but task.json says %q", p.TaskID, taskID)
			}
			if uerr != nil || p.SampleID == "" {
				if !complete {
					notes = append(notes, fmt.Sprintf("skipped a torn last line (%d bytes) of %s", len(line), filepath.Base(path)))
					break
				}
				if skipBad {
					skipped++
					continue
				}
				why := "no sample_id"
				if uerr != nil {
					why = uerr.Error()
				}
				return nil, nil, fmt.Errorf("%s line %d is not a prediction record (%s); fix or remove that line, or score with --skip-bad-lines", path, n, why)
			}
			if prev, dup := seen[p.SampleID]; dup {
				return nil, nil, fmt.Errorf("%s line %d repeats sample_id %q of line %d; a predictions file holds each sample once", path, n, p.SampleID, prev)
			}
			seen[p.SampleID] = n
			out = append(out, p)
		}
		if !complete {
			break
		}
	}
	return out, notes, nil
}

// Answer is the part of a PredictionLine that scoring and judging read: scoring holds every
// line in memory (corpus metrics need them all), so it keeps only these few strings.
type Answer struct {
	SampleID    string `json:"sample_id"`
	TaskID      string `json:"task_id"`
	Instruction string `json:"instruction"`
	Target      string `json:"target"`
	Prediction  string `json:"prediction"`
	Error       string `json:"error"`
}

type sampleLine struct {
	TaskID string `json:"task_id"`
	metrics.Sample
}

func writeSamples(path, taskID string, samples []metrics.Sample, withScores bool) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	w := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, s := range samples {
		if !withScores {
			s.Scores = nil
		}
		if err := enc.Encode(sampleLine{TaskID: taskID, Sample: s}); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// TopErrors returns the n most frequent errors, most frequent first.
func TopErrors(counts map[string]int, n int) []ErrorCount {
	out := make([]ErrorCount, 0, len(counts))
	for e, c := range counts {
		out = append(out, ErrorCount{Error: e, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Error < out[j].Error
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// addSPICE runs SPICE on the captions when it is installed, adding spice and spider; else
// it marks them unavailable with the reason. It returns a note for the summary.
func addSPICE(ctx context.Context, res *metrics.Result, opts ScoreOptions) string {
	why := "skipped (--no-spice)"
	if !opts.NoSPICE {
		dir := opts.SPICECacheDir
		if dir == "" {
			d, err := spice.DefaultCacheDir()
			if err != nil {
				why = err.Error()
			}
			dir = d
		}
		if dir != "" {
			ok, reason := spice.Available(dir)
			if ok {
				cands := make([]string, len(res.Samples))
				refs := make([][]string, len(res.Samples))
				for i, s := range res.Samples {
					cands[i], refs[i] = s.Prediction, []string{s.Target}
				}
				scores, err := spice.NewRunner(dir).Score(ctx, cands, refs)
				if err == nil {
					err = metrics.AddSPICE(res, scores)
				}
				if err == nil {
					return "SPIDEr = (CIDEr-D + SPICE) / 2, SPICE from " + dir
				}
				reason = "SPICE failed: " + err.Error()
			}
			why = reason
		}
	}
	metrics.SPICEUnavailable(res, why)
	return "SPIDEr is not reported, CIDEr-D is: SPICE unavailable (" + why + "); `beans-slurm setup-spice` installs it"
}

// SameDir reports whether two paths name the same directory.
func SameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}

// elapsed rounds a duration to seconds with millisecond precision.
func elapsed(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
