package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/predict"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/report"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

type runOptions struct {
	// predictURL is the launcher (the first of predictURLs when several are given);
	// predictURLs are every --predict-url.
	predictURL  string
	predictURLs []string
	attempts    int
	backoff     time.Duration
	cooldown    time.Duration
	suite       string
	tasks       []string
	limit       int
	outputDir   string
	data        dataOptions
	audio       audioFlags
	scoring     scoreFlags
	inFlight    int
	batchSize   int
	timeout     time.Duration
	json        bool
	worker      workerFlags
	config      string
	model       string
	resume      bool
	overwrite   bool
	judge       judgeFlags
}

func newRunCmd(ios IO, g *globals) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run --predict-url URL --suite SUITE [--task TASK]... --output-dir DIR",
		Short: "Run a suite or tasks against a predictions_v1 launcher, then score",
		Example: `  beans-slurm run --predict-url http://127.0.0.1:8000/predict --suite beans_zero_smoke --limit 5 \
      --data-dir /shared/BEANS-Zero --output-dir results/smoke
  beans-slurm run --predict-url http://127.0.0.1:8000/predict --task demo_species --output-dir results/one`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.config != "" {
				cfg, err := registry.LoadRunConfig(o.config)
				if err != nil {
					return configError(err)
				}
				if err := applyRunConfig(cmd.Flags(), cfg); err != nil {
					return configError(err)
				}
			}
			if err := o.splitPredictURLs(); err != nil {
				return configError(err)
			}
			if o.model != "" && o.predictURL == "" {
				reg, err := g.registry()
				if err != nil {
					return err
				}
				m, err := reg.Model(o.model)
				if err != nil {
					return configError(err)
				}
				if m.PredictURL == "" {
					return configError(fmt.Errorf("model %s has no predict_url: give --predict-url", m.ID))
				}
				o.predictURL = m.PredictURL
			}
			if o.resume && o.overwrite {
				return configError(errors.New("give --resume or --overwrite, not both"))
			}
			if err := o.worker.resolveShard(); err != nil {
				return configError(err)
			}
			_, waits, err := o.worker.handoffFiles()
			if err != nil {
				return configError(err)
			}
			if waits && o.predictURL != "" {
				return configError(fmt.Errorf("give --predict-url or a serving job's URL file (--predict-url-file, --handoff), not both"))
			}
			if o.predictURL == "" && !waits {
				return configError(fmt.Errorf("--predict-url is required (the launcher's POST /predict URL, e.g. http://127.0.0.1:8000/predict)"))
			}
			if o.suite == "" && len(o.tasks) == 0 {
				return configError(fmt.Errorf("give --suite SUITE or --task TASK (see `beans-slurm list suites`)"))
			}
			if o.outputDir == "" {
				o.outputDir = filepath.Join("results", time.Now().Format("20060102-150405"))
			}
			sum, err := runSuite(cmd, ios, g, o, "")
			if err != nil && cmd.Context().Err() != nil {
				// Interrupted (Ctrl-C, SIGTERM, SLURM's --signal): what arrived is written.
				args := append([]string{"beans-slurm"}, os.Args[1:]...)
				if !slices.Contains(args, "--resume") {
					args = append(args, "--resume")
				}
				return fmt.Errorf("%w\nstopped; every answer that arrived is written. Continue with:\n  %s", err, strings.Join(args, " "))
			}
			var tf *eval.TasksFailedError
			if errors.As(err, &tf) && sum != nil {
				if perr := printSuite(ios, o, sum); perr != nil && !errors.Is(perr, errReported) {
					return perr
				}
				return err
			}
			if err != nil {
				return err
			}
			return printSuite(ios, o, sum)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.predictURLs, "predict-url", nil, "the launcher's POST /predict `URL`; repeat it (or separate by commas) for several launchers serving one model")
	f.IntVar(&o.attempts, "attempts", predict.DefaultAttempts, "POSTs per item, over all launchers, before it is recorded as failed")
	f.DurationVar(&o.backoff, "retry-backoff", predict.DefaultBackoff, "first wait before a retry; it doubles per attempt (up to 30s), drawn in the upper half (jitter); a launcher's Retry-After wins")
	f.DurationVar(&o.cooldown, "cooldown", predict.DefaultCooldown, "first cool-down of a launcher taken out after failing 3 times in a row; doubles while its /health probe fails (up to 1m)")
	f.StringVar(&o.suite, "suite", "", "suite to run (see `beans-slurm list suites`)")
	f.StringArrayVar(&o.tasks, "task", nil, "task to run (repeatable); with --suite, only these tasks of the suite")
	f.IntVar(&o.limit, "limit", 0, "run only the first `N` samples of each task (0 = all)")
	f.StringVarP(&o.outputDir, "output-dir", "o", "", "where results go (default results/<date-time>)")
	o.data.flags(f)
	o.data.answerCacheFlags(f)
	o.audio.flags(f)
	o.scoring.flags(f)
	o.judge.flags(f)
	f.IntVar(&o.inFlight, "concurrency", 0, fmt.Sprintf("batches in flight per launcher to start with; it adapts up to 4× (default %d)", predict.DefaultInFlight))
	f.IntVar(&o.batchSize, "batch-size", 0, "items per request, at most the launcher's max_batch_size (default: that maximum)")
	f.DurationVar(&o.timeout, "timeout", predict.DefaultTimeout, "bound on each request to the launcher")
	f.BoolVar(&o.json, "json", false, "print the suite summary as JSON instead of a table")
	o.worker.flags(f)
	f.StringVar(&o.config, "config", "", "a run `file` (run.yaml: model or predict_url, suite, limit, output_dir, options); flags override it")
	f.StringVar(&o.model, "model", "", "a model preset whose predict_url to use (when --predict-url is not given)")
	f.BoolVar(&o.resume, "resume", false, "continue the run in --output-dir: answers already recorded are kept, failed and missing ones are asked; refused when the configuration differs")
	f.BoolVar(&o.overwrite, "overwrite", false, "start tasks that already have results again (their directories are moved aside, not deleted)")
	return cmd
}

// runSuite resolves the tasks and runs them; demo uses it too, so that the demo goes through
// exactly the code path of `run`.
func runSuite(cmd *cobra.Command, ios IO, g *globals, o *runOptions, demoDir string) (*eval.SuiteSummary, error) {
	reg, err := g.registry()
	if err != nil {
		return nil, err
	}
	tasks, err := selectTasks(reg, o.suite, o.tasks)
	if err != nil {
		return nil, configError(err)
	}
	if o.limit < 0 || o.inFlight < 0 || o.batchSize < 0 {
		return nil, configError(fmt.Errorf("--limit, --concurrency and --batch-size take numbers ≥ 0"))
	}
	logger := g.logger(ios)
	w := &o.worker
	tasks = w.selectShard(tasks)
	var skipped []registry.Task
	if w.skipCompleted {
		var moved []string
		if tasks, skipped, moved, err = skipDone(o.outputDir, tasks, !o.resume, time.Now()); err != nil {
			return nil, err
		}
		for _, m := range moved {
			logger.Warn("an unfinished task's directory was moved aside; the task runs again", "dir", m)
		}
		if len(skipped) > 0 {
			logger.Info("tasks already complete are skipped", "tasks", len(skipped))
		}
	}
	var progress *progressFile
	if w.progressFile != "" {
		progress = newProgressFile(w.progressFile, w.shard, max(w.shards, 1), tasks, skipped)
		progress.Set("waiting", "", nil)
	}
	handoff, waits, err := w.handoffFiles()
	if err != nil {
		return nil, configError(err)
	}
	if len(tasks) == 0 {
		logger.Info("no task left to run in this shard", "shard", w.shard, "shards", w.shards)
		progress.Set("done", "", nil)
		markDone(logger, handoff, waits, w.shard, "ok: nothing to run")
		return &eval.SuiteSummary{Suite: o.suite, OutputDir: o.outputDir}, nil
	}
	if waits {
		logger.Info("waiting for the serving job's predict URL", "file", handoff.URLFile(), "timeout", w.urlTimeout)
		u, err := w.waitForURL(cmd.Context(), handoff)
		if err != nil {
			progress.Set("failed", "", err)
			markDone(logger, handoff, waits, w.shard, "failed: "+err.Error())
			return nil, err
		}
		o.predictURL = u
		progress.Set("waiting", u, nil)
	}
	token, err := w.token()
	if err != nil {
		return nil, configError(err)
	}
	ctx := cmd.Context()
	if waits && handoff.ServeJob != "" {
		// A serving job that ends takes its launcher with it: stop at once (what arrived is
		// written; a resubmission continues) instead of waiting for a launcher that is gone.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go watchServe(ctx, handoff, slurm.JobAlive(handoff.ServeJob), cancel)
	}
	sum, err := runTasks(ctx, cmd, ios, o, reg, tasks, token, demoDir, logger, progress)
	switch {
	case cmd.Context().Err() != nil:
		progress.Set("failed", "", fmt.Errorf("interrupted: %w", context.Cause(cmd.Context())))
	case err != nil:
		progress.Set("failed", "", err)
		markDone(logger, handoff, waits, w.shard, "failed: "+err.Error())
	default:
		progress.Set("done", "", nil)
		markDone(logger, handoff, waits, w.shard, "ok")
	}
	return sum, err
}

// watchServe cancels the run when the serving job has ended: its exit file appeared (looked
// for every 5 s), or SLURM no longer lists it (asked every 30 s).
func watchServe(ctx context.Context, h slurm.Handoff, alive func(context.Context) (bool, error), cancel context.CancelCauseFunc) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if b, err := os.ReadFile(h.ExitFile()); err == nil {
			cancel(&slurm.ServeEndedError{Job: h.ServeJob, Reason: strings.TrimSpace(string(b))})
			return
		}
		if time.Since(last) >= 30*time.Second {
			last = time.Now()
			if ok, err := alive(ctx); err == nil && !ok {
				cancel(&slurm.ServeEndedError{Job: h.ServeJob, Reason: "it is no longer in the queue"})
				return
			}
		}
	}
}

func markDone(logger *log.Logger, h slurm.Handoff, waits bool, shard int, status string) {
	if !waits || h.ServeJob == "" {
		return
	}
	if err := h.MarkDone(shard, status); err != nil {
		logger.Warn("could not tell the serving job this worker is done; it stops when no inference job is left", "err", err)
	}
}

func runTasks(ctx context.Context, cmd *cobra.Command, ios IO, o *runOptions, reg *registry.Registry, tasks []registry.Task, token, demoDir string, logger *log.Logger, progress *progressFile) (*eval.SuiteSummary, error) {
	prog := &report.Progress{W: ios.Err, Terminal: ios.Terminal, Log: logger}
	update := prog.Update
	if progress != nil {
		update = func(p eval.Progress) { prog.Update(p); progress.Update(p) }
	}
	resolver, err := o.data.resolver(logger, demoDir)
	if err != nil {
		return nil, err
	}
	audioOpts, err := o.audio.options()
	if err != nil {
		return nil, configError(err)
	}
	cfg := eval.Config{
		Registry:    reg,
		Suite:       o.suite,
		Tasks:       tasks,
		PredictURL:  o.predictURL,
		PredictURLs: o.urls(),
		Predict:     predict.Options{InFlight: o.inFlight, BatchSize: o.batchSize, Timeout: o.timeout, Token: token, Attempts: o.attempts, Backoff: o.backoff, Cooldown: o.cooldown, Log: logger},
		OutputDir:   o.outputDir,
		Resolver:    resolver,
		Audio:       audioOpts,
		Scoring:     o.scoring.options(),
		Limit:       o.limit,
		Progress:    update,
		Log:         logger,
		SuiteFile:   o.worker.suiteFile(),
		Resume:      o.resume,
		Overwrite:   o.overwrite,
		AnswerCache: o.data.answerCache(logger),
	}
	defer cfg.AnswerCache.Close()
	// The judges are checked before inference: a wrong judge URL must not surface hours later.
	judges, err := o.judge.connect(ctx, cfg.AnswerCache, cfg.Scoring, logger)
	if err != nil {
		return nil, err
	}
	sum, err := eval.Run(ctx, cfg)
	if judges != nil && sum != nil {
		if jerr := judgeSuite(ctx, ios, judges, o.outputDir, sum); jerr != nil && err == nil {
			err = jerr
		}
	}
	if sum != nil && len(sum.Tasks) > 0 && o.worker.shards <= 1 {
		if werr := writePaperFiles(o.outputDir, sum); werr != nil && err == nil {
			err = werr
		}
	}
	var exists *eval.ExistingResultsError
	var changed *eval.ConfigChangedError
	var tf *eval.TasksFailedError
	switch {
	case errors.As(err, &exists), errors.As(err, &changed):
		return nil, configError(err)
	case errors.As(err, &tf):
		return sum, err // the other tasks' results are there to show
	case err != nil:
		return nil, err
	}
	return sum, nil
}

// judgeSuite runs the judges over every task of a finished run, once inference is over.
func judgeSuite(ctx context.Context, ios IO, judges *judge.Judges, outDir string, sum *eval.SuiteSummary) error {
	for _, t := range sum.Tasks {
		if t.Error != "" {
			continue
		}
		dir := filepath.Join(outDir, t.Dir)
		r, err := judges.Task(ctx, filepath.Join(dir, eval.PredictionsFile), dir)
		if err != nil {
			return fmt.Errorf("judge %s: %w", t.TaskID, err)
		}
		judgeReport(ios.Err, t.TaskID, dir, r)
	}
	return nil
}

func selectTasks(reg *registry.Registry, suite string, names []string) ([]registry.Task, error) {
	var tasks []registry.Task
	if suite != "" {
		all, err := reg.SuiteTasks(suite)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return all, nil
		}
		for _, n := range names {
			i := slices.IndexFunc(all, func(t registry.Task) bool { return t.ID == n })
			if i < 0 {
				if _, err := reg.Task(n); err != nil {
					return nil, err
				}
				return nil, fmt.Errorf("task %s is not in suite %s (drop --suite to run it alone)", n, suite)
			}
			tasks = append(tasks, all[i])
		}
		return tasks, nil
	}
	for _, n := range names {
		t, err := reg.Task(n)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

func printSuite(ios IO, o *runOptions, sum *eval.SuiteSummary) error {
	if len(sum.Tasks) == 0 && !o.json {
		fmt.Fprintf(ios.Out, "nothing to run: every task of this shard is complete in %s\n", o.outputDir)
		return nil
	}
	if o.json {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	if err := report.SuiteTable(ios.Out, sum); err != nil {
		return err
	}
	fmt.Fprintln(ios.Out)
	if err := report.PaperTable(ios.Out, report.PaperRows(sum)); err != nil {
		return err
	}
	fmt.Fprintf(ios.Out, "\nresults: %s (per task: predictions.jsonl, processed_predictions.jsonl, scored_predictions.jsonl, summary.json)\n", o.outputDir)
	failed := 0
	for _, t := range sum.Tasks {
		failed += t.Failed
	}
	if failed > 0 {
		fmt.Fprintf(ios.Out, "%d samples failed; their errors are in the predictions files and summaries\n", failed)
		return &exitError{code: ExitFail, err: errReported}
	}
	return nil
}

// writePaperFiles writes the suite's table in the paper's layout beside suite_summary.json,
// as suite_summary.md and suite_summary.csv.
func writePaperFiles(dir string, sum *eval.SuiteSummary) error {
	rows := report.PaperRows(sum)
	title := "beans-slurm results"
	if sum.Suite != "" {
		title += ": " + sum.Suite
	}
	var md, csv bytes.Buffer
	if err := report.PaperMarkdown(&md, title, rows); err != nil {
		return err
	}
	if err := report.PaperCSV(&csv, rows); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "suite_summary.md"), md.Bytes()); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "suite_summary.csv"), csv.Bytes())
}

// splitPredictURLs reads every --predict-url (commas separate several in one value); the
// first is predictURL.
func (o *runOptions) splitPredictURLs() error {
	var urls []string
	for _, v := range o.predictURLs {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				if slices.Contains(urls, u) {
					return fmt.Errorf("--predict-url %s is given twice", u)
				}
				urls = append(urls, u)
			}
		}
	}
	o.predictURLs = urls
	if len(urls) > 0 {
		o.predictURL = urls[0]
	}
	return nil
}

// urls are the launchers to send to: every --predict-url, else the one found otherwise
// (a preset, a serving job's URL file, the demo's own launcher).
func (o *runOptions) urls() []string {
	if len(o.predictURLs) > 0 {
		return o.predictURLs
	}
	if o.predictURL != "" {
		return []string{o.predictURL}
	}
	return nil
}
