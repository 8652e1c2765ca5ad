// Package eval runs one evaluation: plan the tasks, stream each task's samples, send them
// to a launcher, append the answers to predictions.jsonl as they arrive, then score that
// file. Scoring always reads the file, so `beans-slurm score` reproduces a live run.
package eval

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/metrics"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/predict"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

// Config is one run.
type Config struct {
	Registry *registry.Registry
	// Suite is the suite's name, recorded in the results ("" when tasks were picked one by one).
	Suite string
	// Tasks are the tasks to run, in order.
	Tasks []registry.Task
	// PredictURL is the launcher's POST /predict URL (recorded in the results; the first of
	// PredictURLs when those are given).
	PredictURL string
	// PredictURLs, when set, are several launchers serving the same model (several GPUs):
	// batches are spread over them (predict.ConnectAll). PredictURL is then ignored for
	// sending.
	PredictURLs []string
	// Predict tunes the client (batches in flight, timeouts).
	Predict predict.Options
	// OutputDir receives one directory per task and suite_summary.json.
	OutputDir string
	// Resolver finds each task's data files (demo, local copy, or the Hub).
	Resolver *dataset.Resolver
	// Audio says how audio is prepared and sent.
	Audio AudioOptions
	// Scoring tunes the scorer (policy, intervals).
	Scoring ScoreOptions
	// Limit runs only the first N samples of each task (0 = all).
	Limit int
	// Resume continues task directories that hold an earlier run's answers: successful
	// answers are kept and not asked again, failed ones are asked again. A task directory whose
	// earlier run had another configuration (task, prompt, labels, limit, model identity,
	// dataset revision) is refused with the differences (*ConfigChangedError).
	Resume bool
	// Overwrite moves task directories holding earlier results aside (<task>.replaced-<time>)
	// and starts them again. Without Resume or Overwrite such a directory is refused.
	Overwrite bool
	// AnswerCache, when set, answers samples that the same model (by /info identity, not
	// URL) already answered for the same request, and keeps every new successful answer.
	AnswerCache *cache.Cache
	// SuiteFile names the suite summary in OutputDir (default suite_summary.json); shards of
	// one run that share an output directory each write their own.
	SuiteFile string
	// Progress, when set, is called as samples complete (from one goroutine at a time).
	Progress func(Progress)
	// Log receives progress lines and warnings (nil = discard).
	Log *log.Logger
}

// Progress reports how a run is going.
type Progress struct {
	Task      string
	TaskIndex int // 1-based
	Tasks     int
	Done      int
	Total     int
	Failed    int
	Started   time.Time
	Finished  bool
}

// SuiteSummary is suite_summary.json.
type SuiteSummary struct {
	Suite      string          `json:"suite,omitempty"`
	PredictURL string          `json:"predict_url"`
	Model      json.RawMessage `json:"model"`
	OutputDir  string          `json:"output_dir"`
	Limit      int             `json:"limit,omitempty"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`
	Tasks      []SuiteTask     `json:"tasks"`
	BeansSlurm BuildRecord     `json:"beans_slurm"`
}

// SuiteTask is one task's line in the suite summary.
type SuiteTask struct {
	TaskID   string             `json:"task_id"`
	TaskType string             `json:"task_type"`
	Headline Headline           `json:"headline"`
	Metrics  map[string]float64 `json:"metrics"`
	// Intervals are the metrics' confidence intervals, when computed.
	Intervals map[string]Interval `json:"intervals,omitempty"`
	N         int                 `json:"n"`
	Failed    int                 `json:"failed"`
	Dir       string              `json:"dir"`
	// Published are the task's published results, for comparison.
	Published *registry.Published `json:"published,omitempty"`
	// Error says why the task could not be run (its other fields are then empty).
	Error string `json:"error,omitempty"`
}

// Interval is a confidence interval of a metric.
type Interval = metrics.Interval

// ExistingResultsError says that an output directory already holds results of a task.
type ExistingResultsError struct{ Path string }

func (e *ExistingResultsError) Error() string {
	return fmt.Sprintf("%s already exists: continue that run with --resume, start it again with --overwrite (the old directory is moved aside), or choose another --output-dir", e.Path)
}

// Run runs every task of cfg against the launcher and writes the artifacts. Items that the
// launcher fails are recorded with their error and scored as wrong; they do not stop the run.
func Run(ctx context.Context, cfg Config) (*SuiteSummary, error) {
	if cfg.Log == nil {
		cfg.Log = log.New(discard{})
	}
	if len(cfg.Tasks) == 0 {
		return nil, errors.New("no tasks to run")
	}
	if cfg.Resolver == nil {
		return nil, errors.New("no data resolver configured")
	}
	if cfg.SuiteFile == "" {
		cfg.SuiteFile = SuiteFile
	}
	if err := cfg.Audio.check(); err != nil {
		return nil, err
	}
	for _, t := range cfg.Tasks {
		dir := filepath.Join(cfg.OutputDir, t.ID)
		p := filepath.Join(dir, PredictionsFile)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		switch {
		case cfg.Resume:
		case cfg.Overwrite:
			aside, err := moveAside(dir, "replaced", time.Now())
			if err != nil {
				return nil, err
			}
			cfg.Log.Warn("earlier results moved aside", "task", t.ID, "to", aside)
		default:
			return nil, &ExistingResultsError{Path: p}
		}
	}
	// The launcher is checked before any data is read.
	urls := cfg.PredictURLs
	if len(urls) == 0 {
		urls = []string{cfg.PredictURL}
	}
	cfg.PredictURL = urls[0]
	client, err := predict.ConnectAll(ctx, urls, cfg.Predict)
	if err != nil {
		return nil, err
	}
	info := client.Info()
	if !info.Accepts(cfg.Audio.payload()) {
		return nil, &predict.UnavailableError{URL: cfg.PredictURL, Reason: fmt.Sprintf("/info audio_payload_types %q lacks %q, the payload this run sends (see --payload)", info.AudioPayloadTypes, cfg.Audio.payload())}
	}
	cfg.Log.Info("launcher ready", "url", cfg.PredictURL, "name", info.Name, "model", info.Model, "revision", info.ModelRevision, "batch", client.BatchSize(), "in_flight", client.InFlight())

	sum := &SuiteSummary{
		Suite: cfg.Suite, PredictURL: cfg.PredictURL, Model: client.InfoRaw(), OutputDir: cfg.OutputDir,
		Limit: cfg.Limit, Started: time.Now().UTC(),
		BeansSlurm: BuildRecord{Version: version.Version, Revision: version.Revision()},
	}
	var failed []string
	for i, task := range cfg.Tasks {
		ts, err := runTask(ctx, cfg, client, task, i+1)
		if err != nil {
			var exists *ExistingResultsError
			var changed *ConfigChangedError
			if ctx.Err() != nil || errors.As(err, &exists) || errors.As(err, &changed) {
				return sum, fmt.Errorf("task %s: %w", task.ID, err)
			}
			// One task's broken data (a corrupt shard, a missing column) must not cost the
			// others: record it and go on.
			cfg.Log.Error("task failed; going on with the others", "task", task.ID, "err", err)
			failed = append(failed, task.ID)
			sum.Tasks = append(sum.Tasks, SuiteTask{TaskID: task.ID, TaskType: task.Type, Dir: task.ID, Error: err.Error(), Published: task.Published})
			sum.Finished = time.Now().UTC()
			if err := WriteJSON(filepath.Join(cfg.OutputDir, cfg.SuiteFile), sum); err != nil {
				return sum, err
			}
			continue
		}
		sum.Tasks = append(sum.Tasks, SuiteTask{
			TaskID: ts.TaskID, TaskType: ts.TaskType, Headline: ts.Headline, Metrics: ts.Metrics,
			Intervals: ts.Intervals, N: ts.N, Failed: ts.Failed, Dir: ts.TaskID, Published: task.Published,
		})
		sum.Finished = time.Now().UTC()
		if err := WriteJSON(filepath.Join(cfg.OutputDir, cfg.SuiteFile), sum); err != nil {
			return sum, err
		}
	}
	if len(failed) > 0 {
		return sum, &TasksFailedError{Tasks: failed}
	}
	return sum, nil
}

// TasksFailedError says that some tasks of a run could not be run; the others were, and
// their results are written.
type TasksFailedError struct{ Tasks []string }

func (e *TasksFailedError) Error() string {
	return fmt.Sprintf("%d task(s) failed: %s (their errors are in suite_summary.json and the log above); the other tasks' results are written", len(e.Tasks), strings.Join(e.Tasks, ", "))
}

// pending is what is kept of a sent sample until its answer is written.
type pending struct {
	datasetName, instruction, target string
}

func runTask(ctx context.Context, cfg Config, client *predict.Client, task registry.Task, index int) (*TaskSummary, error) {
	dir := filepath.Join(cfg.OutputDir, task.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	src, err := openSource(ctx, cfg, task)
	if err != nil {
		return nil, err
	}
	defer src.data.Close()
	labels, labelsSource, err := cfg.Resolver.Labels(ctx, task, src.loc, src.data)
	if err != nil {
		return nil, err
	}
	q := dataset.Query{DatasetNames: task.DatasetNames, Limit: cfg.Limit}
	total, err := src.data.Count(ctx, q)
	if err != nil {
		return nil, err
	}
	if total == 0 {
		return nil, fmt.Errorf("no rows with dataset_name %s in %s; is --data-dir the right dataset?", strings.Join(task.DatasetNames, " or "), src.record.Root)
	}
	src.record.Rows = total
	prompt, err := cfg.Registry.Prompt(task.Prompt)
	if err != nil {
		return nil, err
	}
	rec := TaskRecord{
		Task: task, Labels: labels, LabelsSource: labelsSource,
		Prompt: PromptRecord{ID: prompt.ID, Template: prompt.Template},
		Model:  client.InfoRaw(), PredictURL: cfg.PredictURL, Dataset: src.record,
		Suite: cfg.Suite, Limit: cfg.Limit,
		BeansSlurm: version.String(), Created: time.Now().UTC(),
	}
	rec.ConfigHash = configHash(rec, client.Info())
	predPath := filepath.Join(dir, PredictionsFile)
	done := map[string]bool{}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if cfg.Resume {
		old, err := readTaskRecord(dir)
		if err != nil {
			return nil, err
		}
		if old != nil {
			if diffs := compareRecords(*old, rec); len(diffs) > 0 {
				return nil, &ConfigChangedError{Dir: dir, Differences: diffs}
			}
		}
		kept := 0
		if done, kept, err = resumable(predPath); err != nil {
			return nil, err
		}
		if kept > 0 {
			cfg.Log.Info("resuming: answers already recorded are not asked again", "task", task.ID, "kept", kept)
		}
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	if err := WriteJSON(filepath.Join(dir, TaskFile), rec); err != nil {
		return nil, err
	}

	f, err := os.OpenFile(predPath, flags, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &ExistingResultsError{Path: predPath}
		}
		return nil, fmt.Errorf("create %s: %w", predPath, err)
	}
	defer f.Close()
	out := &lineWriter{w: bufio.NewWriterSize(f, 256<<10), path: predPath}
	out.enc = json.NewEncoder(out.w)
	out.enc.SetEscapeHTML(false)

	prep, err := newPreparer(cfg, task, dir)
	if err != nil {
		return nil, err
	}
	ac := newAnswerCache(cfg, client, task.ID)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	meta := make(map[string]pending, 64)
	seen := make(map[string]bool, total)
	items := make(chan predict.Item, 2*client.BatchSize())
	// Request buffers are reused once their batch is sent: a run then allocates little per
	// sample however large the clips. The free list holds at most what can be in flight.
	free := make(chan []byte, cap(items)+(client.InFlight()+2)*client.BatchSize())

	started := time.Now()
	prog := Progress{Task: task.ID, TaskIndex: index, Tasks: len(cfg.Tasks), Total: total, Started: started}
	var progMu sync.Mutex
	report := func(done, failed int) {
		progMu.Lock()
		defer progMu.Unlock()
		prog.Done += done
		prog.Failed += failed
		if cfg.Progress != nil {
			cfg.Progress(prog)
		}
	}
	report(len(done), 0)

	var produceErr error
	var produced, dataErrors int
	go func() {
		defer close(items)
		produceErr = src.data.Stream(ctx, q, func(s *dataset.Sample) error {
			if seen[s.ID] {
				return fmt.Errorf("sample id %s appears twice in the task's rows (file %s row %d); ids must be unique", s.ID, s.File, s.Row)
			}
			seen[s.ID] = true
			if done[s.ID] {
				return nil // answered by an earlier run
			}
			text, err := cfg.Registry.RenderPrompt(task.Prompt, registry.PromptData{
				Instruction: s.Instruction, InstructionText: s.InstructionText, Labels: labels,
				Task: task, Audio: contract.AudioPlaceholder,
			})
			if err != nil {
				return fmt.Errorf("render prompt %s for sample %s: %w", task.Prompt, s.ID, err)
			}
			// A bad row is recorded as a failed sample; the task goes on.
			problem := ""
			if s.Err != nil {
				problem = fmt.Sprintf("data error in %s row %d: %v", s.File, s.Row, s.Err)
			} else if n := strings.Count(text, contract.AudioPlaceholder); n != 1 {
				problem = fmt.Sprintf("data error in %s row %d: the prompt has %d audio placeholders %s for 1 audio input", s.File, s.Row, n, contract.AudioPlaceholder)
			}
			if problem != "" {
				produced++
				dataErrors++
				line := PredictionLine{SampleID: s.ID, TaskID: task.ID, DatasetName: s.DatasetName, Instruction: text,
					Target: s.Output, Error: problem, Response: json.RawMessage("null")}
				if err := out.write([]PredictionLine{line}); err != nil {
					return err
				}
				report(1, 1)
				return nil
			}
			var buf []byte
			select {
			case buf = <-free:
			default:
			}
			js, err := prep.item(buf, s, text)
			if err != nil {
				return err
			}
			if line, hit := ac.lookup(js, PredictionLine{SampleID: s.ID, TaskID: task.ID, DatasetName: s.DatasetName, Instruction: text, Target: s.Output, Response: json.RawMessage("null")}); hit {
				produced++
				if err := out.write([]PredictionLine{line}); err != nil {
					return err
				}
				report(1, 0)
				return nil
			}
			mu.Lock()
			meta[s.ID] = pending{datasetName: s.DatasetName, instruction: text, target: s.Output}
			mu.Unlock()
			produced++
			select {
			case items <- predict.Item{ID: s.ID, JSON: js, Release: func() {
				select {
				case free <- js:
				default:
				}
			}}:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		if produceErr != nil {
			cancel(produceErr)
		}
	}()

	runErr := client.Run(ctx, items, func(results []predict.Result) error {
		lines := make([]PredictionLine, len(results))
		failed := 0
		for i, r := range results {
			mu.Lock()
			p := meta[r.SampleID]
			delete(meta, r.SampleID)
			mu.Unlock()
			lines[i] = PredictionLine{
				SampleID: r.SampleID, TaskID: task.ID, DatasetName: p.datasetName,
				Instruction: p.instruction, Target: p.target, Prediction: r.Prediction, Error: r.Err,
				Response: r.Item, LatencySec: r.Latency.Seconds(), Attempts: r.Attempts,
			}
			if lines[i].Response == nil {
				lines[i].Response = json.RawMessage("null")
			}
			if r.Err != "" {
				failed++
			}
		}
		if err := out.write(lines); err != nil {
			return err
		}
		ac.store(results)
		report(len(results), failed)
		return nil
	})
	// What arrived is on disk whatever happened.
	flushErr := out.flush()
	if flushErr == nil {
		flushErr = f.Sync()
	}
	if produceErr != nil && !errors.Is(produceErr, context.Canceled) {
		return nil, fmt.Errorf("%w (the %d answers received are in %s)", produceErr, prog.Done, predPath)
	}
	if runErr != nil {
		return nil, fmt.Errorf("%w (the %d answers received are in %s)", runErr, prog.Done, predPath)
	}
	if flushErr != nil {
		return nil, fmt.Errorf("write %s: %w", predPath, flushErr)
	}
	if prog.Done != produced+len(done) {
		return nil, fmt.Errorf("sent %d samples (and kept %d earlier answers) but wrote %d answers to %s", produced, len(done), prog.Done, predPath)
	}
	if dataErrors > 0 {
		cfg.Log.Warn("some rows could not be read; they are recorded as failed samples", "task", task.ID, "rows", dataErrors)
	}
	prog.Finished = true
	report(0, 0)
	dur := time.Since(started)
	run := RunRecord{
		Started: started.UTC(), Finished: time.Now().UTC(), InferenceSec: elapsed(dur),
		Samples: prog.Done, Failed: prog.Failed, SamplesPerS: float64(prog.Done) / dur.Seconds(),
		BatchSize: client.BatchSize(), InFlight: client.InFlight(), PeakRSSMiB: peakRSSMiB(),
		AnswerCache: ac.record(),
	}
	if err := WriteJSON(filepath.Join(dir, RunFile), run); err != nil {
		return nil, err
	}
	if prog.Failed > 0 {
		cfg.Log.Warn("some samples failed; they are recorded with their error and scored as wrong", "task", task.ID, "failed", prog.Failed, "of", prog.Done)
	}
	return ScoreFile(ctx, predPath, "", cfg.Scoring)
}

// configHash identifies what was evaluated: task, vocabulary, prompt, model identity, data
// and limit. Two runs with the same hash are comparable sample by sample.
func configHash(rec TaskRecord, info contract.Info) string {
	type key struct {
		Task    registry.Task  `json:"task"`
		Labels  []string       `json:"labels"`
		Prompt  PromptRecord   `json:"prompt"`
		Model   contract.Info  `json:"model"`
		Dataset DatasetRecord  `json:"dataset"`
		Limit   int            `json:"limit"`
		Extra   map[string]int `json:"-"`
	}
	d := rec.Dataset
	d.Root = "" // where the copy lives does not change what is evaluated
	b, _ := json.Marshal(key{Task: rec.Task, Labels: rec.Labels, Prompt: rec.Prompt, Model: info, Dataset: d, Limit: rec.Limit})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
