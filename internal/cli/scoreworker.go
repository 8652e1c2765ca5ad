package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// scoreWorker are the flags of `score` as the judging job of `beans-slurm judge`: it scores
// every task of a results directory with a judge whose URL a serving job publishes.
type scoreWorker struct {
	resultsDir string
	judgeOnly  bool
	handoff    string
	serveJob   string
	urlTimeout time.Duration
	h          slurm.Handoff
	waits      bool
}

func (w *scoreWorker) flags(f *pflag.FlagSet) {
	f.StringVar(&w.resultsDir, "results-dir", "", "score every task of this run's output `dir` (<dir>/*/predictions.jsonl)")
	f.BoolVar(&w.judgeOnly, "judge-only", false, "only judge: leave the normal scored files as they are")
	f.StringVar(&w.handoff, "handoff", "", "a judge serving job's handoff `dir`: wait for its URL there and use it as the judge (--judge-mode yesno or rubric) or the extractor (extract)")
	f.StringVar(&w.serveJob, "serve-job", "", "the judge serving job's SLURM `id` (with --handoff)")
	f.DurationVar(&w.urlTimeout, "url-timeout", 2*time.Hour, "bound on the wait for the judge's URL")
}

// files lists the predictions files to score: the arguments, or those of --results-dir.
func (w *scoreWorker) files(args []string) ([]string, error) {
	if w.resultsDir == "" {
		if len(args) == 0 {
			return nil, errors.New("give predictions.jsonl files, or --results-dir DIR")
		}
		return args, nil
	}
	if len(args) > 0 {
		return nil, errors.New("give predictions files or --results-dir, not both")
	}
	found, err := filepath.Glob(filepath.Join(w.resultsDir, "*", eval.PredictionsFile))
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no */%s under %s: is it a run's output directory?", eval.PredictionsFile, w.resultsDir)
	}
	sort.Strings(found)
	return found, nil
}

// wait waits for the judge serving job's URL and gives it to the judge flags.
func (w *scoreWorker) wait(ctx context.Context, jf *judgeFlags, logger *log.Logger) error {
	if w.handoff == "" {
		if jf.mode == judge.ModeExtract {
			return configError(errors.New("--judge-mode extract names the judge of a --handoff; otherwise give --judge-extract-url"))
		}
		return nil
	}
	if _, err := strconv.ParseUint(w.serveJob, 10, 64); err != nil {
		return configError(fmt.Errorf("--handoff needs --serve-job, the judge serving job's SLURM id (got %q)", w.serveJob))
	}
	if jf.url != "" || jf.extractURL != "" {
		return configError(errors.New("--handoff gives the judge's URL: do not also give --judge-url or --judge-extract-url"))
	}
	w.h, w.waits = slurm.Handoff{Dir: w.handoff, ServeJob: w.serveJob}, true
	logger.Info("waiting for the judge serving job's URL", "file", w.h.URLFile(), "timeout", w.urlTimeout)
	u, err := w.h.WaitURL(ctx, slurm.WaitOptions{Timeout: w.urlTimeout, Alive: slurm.JobAlive(w.serveJob)})
	if err != nil {
		w.done(logger, "failed: "+err.Error())
		return err
	}
	switch jf.mode {
	case judge.ModeExtract:
		jf.extractURL, jf.mode = u, judge.ModeAuto
	case judge.ModeRubric:
		// A serving job publishes its /predict URL; its judge_scores_v1 endpoint is /judge.
		jf.url = strings.TrimSuffix(u, "/predict") + "/judge"
	default:
		jf.url = u
	}
	return nil
}

// done tells the judge serving job that this worker is finished, so that it ends.
func (w *scoreWorker) done(logger *log.Logger, status string) {
	if !w.waits {
		return
	}
	w.waits = false
	if err := w.h.MarkDone(0, status); err != nil {
		logger.Warn("could not tell the judge serving job this worker is done; it stops when no judging job is left", "err", err)
	}
}
