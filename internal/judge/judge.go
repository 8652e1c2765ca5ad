// Package judge runs LLM judges over a task's predictions.jsonl, inline after a run or after
// the fact: a rubric judge (a judge_scores_v1 service: a score in [0, 1] with a rationale),
// a YES/NO judge (any predictions_v1 launcher asked whether the answer matches the
// reference: judge_accuracy) and an extractor judge (a predictions_v1 launcher rewrites a
// verbose answer into a clean label, label list or sentence, then the normal metrics run).
//
// Judges never overwrite a run's files: the rubric and YES/NO judges write judge_outputs.jsonl,
// judge_scored_predictions.jsonl and judge_summary.json; the extractor writes
// judge_extracted_outputs.jsonl, judge_extracted_scored_predictions.jsonl and
// judge_extracted_summary.json. The predictions_v1 judges go through the inference client
// (batch limit, batches in flight, retries) and the answer cache, keyed by the judge's
// identity and the exact prompt, so re-judging resumes where it stopped. A failed item is
// recorded with its error and counted, never a run failure. docs/judges.md describes it.
package judge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge/prompt"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

// Modes.
const (
	ModeAuto    = "auto"
	ModeYesNo   = "yesno"
	ModeRubric  = "rubric"
	ModeExtract = "extract"
)

// Files the judges write beside a task's results.
const (
	OutputsFile          = "judge_outputs.jsonl"
	ScoredFile           = "judge_scored_predictions.jsonl"
	SummaryFile          = "judge_summary.json"
	ExtractedOutputsFile = "judge_extracted_outputs.jsonl"
	ExtractedScoredFile  = "judge_extracted_scored_predictions.jsonl"
	ExtractedSummaryFile = "judge_extracted_summary.json"
)

// Sampling settings sent to predictions_v1 judges (recorded in every summary).
var (
	YesNoSampling   = contract.GenerationConfig{"max_tokens": 8, "temperature": 0.0}
	ExtractSampling = contract.GenerationConfig{"max_tokens": 256, "temperature": 0.0}
)

// Options configure the judges of a run or of `score`.
type Options struct {
	// URL is --judge-url: a judge_scores_v1 service (rubric) or a predictions_v1 launcher
	// (YES/NO). Mode decides which (ModeAuto or "" = from its /info and path).
	URL  string
	Mode string
	// ExtractURL is --judge-extract-url: a predictions_v1 launcher used as the extractor.
	ExtractURL string
	// TaskType picks the extractor template (classification, detection, captioning); "" =
	// each task's own type.
	TaskType string
	// Rubric overrides the rubric template; "" = the task's `judge:` field, else the default.
	Rubric string
	// Token is sent as a bearer token to the judges.
	Token string
	// Cache keeps the predictions_v1 judges' answers (nil = off).
	Cache *cache.Cache
	// Predict tunes the predictions_v1 judges' client.
	Predict predict.Options
	// RubricBatch is the most items per judge_scores_v1 POST (0 = the service's /info
	// max_batch_size, else 16); RubricInFlight the POSTs in flight (0 = 4).
	RubricBatch, RubricInFlight int
	// Score tunes the intervals and the extractor's normal metrics.
	Score eval.ScoreOptions
	// Log receives progress and warnings (nil = discard).
	Log *log.Logger
	// HTTPClient is used for the rubric judge (nil = predict.NewHTTPClient).
	HTTPClient *http.Client
}

// Enabled reports whether any judge is asked for.
func (o Options) Enabled() bool { return o.URL != "" || o.ExtractURL != "" }

// Judges are connected judges, ready to judge any number of tasks.
type Judges struct {
	opts    Options
	mode    string // ModeYesNo or ModeRubric when URL is set
	yesno   *predict.Client
	rubric  *rubricClient
	extract *predict.Client
}

// Connect checks the judges' endpoints and decides the mode of --judge-url: a launcher whose
// /info speaks only predictions_v1 is a YES/NO judge; one that speaks only judge_scores_v1, or
// has no /info at all, is a rubric judge; one that speaks both is a YES/NO judge when its URL
// ends in /predict, else a rubric judge. opts.Mode forces the mode.
func Connect(ctx context.Context, opts Options) (*Judges, error) {
	if opts.Log == nil {
		opts.Log = log.New(io.Discard)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = predict.NewHTTPClient(16)
	}
	popts := opts.Predict
	popts.Token = opts.Token
	if popts.Log == nil {
		popts.Log = opts.Log
	}
	j := &Judges{opts: opts}
	if opts.TaskType != "" && !slices.Contains(prompt.ExtractTypes, opts.TaskType) {
		return nil, fmt.Errorf("--task-type %q: the extractor has templates for %s", opts.TaskType, strings.Join(prompt.ExtractTypes, ", "))
	}
	if opts.Rubric != "" {
		if _, err := prompt.RubricFor(opts.Rubric); err != nil {
			return nil, err
		}
	}
	if opts.URL != "" {
		mode := opts.Mode
		var info json.RawMessage
		if mode == "" || mode == ModeAuto || mode == ModeRubric {
			var err error
			mode, info, err = detect(ctx, opts.HTTPClient, opts.URL, opts.Token, mode)
			if err != nil {
				return nil, err
			}
		}
		switch mode {
		case ModeYesNo:
			c, err := predict.Connect(ctx, opts.URL, popts)
			if err != nil {
				return nil, fmt.Errorf("YES/NO judge: %w", err)
			}
			j.yesno = c
		case ModeRubric:
			j.rubric = newRubricClient(opts, info)
		default:
			return nil, fmt.Errorf("--judge-mode %q: want auto, yesno or rubric (the extractor has its own --judge-extract-url)", opts.Mode)
		}
		j.mode = mode
		opts.Log.Info("judge connected", "url", opts.URL, "mode", mode)
	}
	if opts.ExtractURL != "" {
		c, err := predict.Connect(ctx, opts.ExtractURL, popts)
		if err != nil {
			return nil, fmt.Errorf("extractor judge: %w", err)
		}
		j.extract = c
		opts.Log.Info("extractor judge connected", "url", opts.ExtractURL, "model", c.Info().Model)
	}
	return j, nil
}

// Mode is the mode of --judge-url ("" when none was given).
func (j *Judges) Mode() string { return j.mode }

// detect reads the /info beside a judge URL and decides its mode (forced when mode is
// ModeRubric). A rubric service need not serve /info: then its identity is its URL.
func detect(ctx context.Context, hc *http.Client, judgeURL, token, mode string) (string, json.RawMessage, error) {
	u, err := url.Parse(judgeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("--judge-url %q is not an http(s) URL", judgeURL)
	}
	infoURL := *u
	infoURL.Path = path.Join(path.Dir(strings.TrimSuffix(u.Path, "/")), "info")
	infoURL.RawQuery, infoURL.Fragment = "", ""
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, infoURL.String(), nil)
	if err != nil {
		return "", nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("judge at %s cannot be reached: %v (is it running?)", judgeURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", nil, fmt.Errorf("judge at %s refused GET %s (HTTP %d): give its token (--judge-token-file)", judgeURL, infoURL.String(), resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		if mode == "" || mode == ModeAuto || mode == ModeRubric {
			// predictions_v1 launchers must serve /info: without one, this is a rubric service.
			return ModeRubric, nil, nil
		}
	}
	var probe struct {
		SchemaVersions []string `json:"schema_versions"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ModeRubric, nil, nil
	}
	info := json.RawMessage(strings.TrimSpace(string(body)))
	if mode == ModeRubric {
		return ModeRubric, info, nil
	}
	pv, jv := slices.Contains(probe.SchemaVersions, contract.PredictionsV1), slices.Contains(probe.SchemaVersions, contract.JudgeScoresV1)
	switch {
	case pv && jv:
		if strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/predict") {
			return ModeYesNo, info, nil
		}
		return ModeRubric, info, nil
	case pv:
		return ModeYesNo, info, nil
	case jv:
		return ModeRubric, info, nil
	}
	return "", nil, fmt.Errorf("judge at %s: /info lists schema_versions %q, neither %s nor %s; force the mode with --judge-mode",
		judgeURL, probe.SchemaVersions, contract.PredictionsV1, contract.JudgeScoresV1)
}

// Report is what judging one task produced.
type Report struct {
	Judged    *Summary
	Extracted *eval.TaskSummary
}

// Task judges one task's predictions file with every connected judge and writes their files
// into outDir ("" = beside the predictions file).
func (j *Judges) Task(ctx context.Context, predictionsPath, outDir string) (*Report, error) {
	if outDir == "" {
		outDir = filepath.Dir(predictionsPath)
	}
	rec, err := eval.ReadTask(predictionsPath)
	if err != nil {
		return nil, err
	}
	answers, notes, err := eval.ReadAnswers(predictionsPath, rec.Task.ID, j.opts.Score.SkipBadLines)
	if err != nil {
		return nil, err
	}
	sortAnswers(answers)
	r := &Report{}
	switch {
	case j.yesno != nil:
		if r.Judged, err = j.judgeYesNo(ctx, rec, answers, predictionsPath, outDir, notes); err != nil {
			return r, err
		}
	case j.rubric != nil:
		if r.Judged, err = j.judgeRubric(ctx, rec, answers, predictionsPath, outDir, notes); err != nil {
			return r, err
		}
	}
	if j.extract != nil {
		if r.Extracted, err = j.extractTask(ctx, rec, answers, predictionsPath, outDir); err != nil {
			return r, err
		}
	}
	return r, nil
}
