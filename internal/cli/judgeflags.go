package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/log"
	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

// judgeFlags are the judge options of `run` and `score`.
type judgeFlags struct {
	url, mode, extractURL, taskType, rubric, tokenFile string
	inFlight, attempts                                 int
}

func (j *judgeFlags) flags(f *pflag.FlagSet) {
	f.StringVar(&j.url, "judge-url", "", "judge every answer with this judge: a predictions_v1 launcher's /predict URL (YES/NO judge: judge_accuracy) or a judge_scores_v1 service's URL (rubric judge: judge_score); files judge_*")
	f.StringVar(&j.mode, "judge-mode", judge.ModeAuto, "what --judge-url speaks: auto (from its /info), yesno or rubric")
	f.StringVar(&j.extractURL, "judge-extract-url", "", "rewrite every answer into a clean label, label list or sentence with this predictions_v1 launcher, then score it normally; files judge_extracted_*")
	f.StringVar(&j.taskType, "task-type", "", "extractor template: classification, detection or captioning (default: each task's type)")
	f.StringVar(&j.rubric, "judge-template", "", "rubric template for the rubric judge (default: the task's `judge:`, else bioacoustic_open_qa_v1)")
	f.StringVar(&j.tokenFile, "judge-token-file", "", "file holding the judges' bearer token (a sweep's token on a cluster)")
	f.IntVar(&j.inFlight, "judge-in-flight", 0, "judge batches in flight at the start (0 = 8 for predictions_v1 judges, 4 for rubric services)")
	f.IntVar(&j.attempts, "judge-attempts", 0, "POSTs a judged item gets before it is recorded as a judge error (0 = 5)")
}

func (j *judgeFlags) enabled() bool { return j.url != "" || j.extractURL != "" }

// connect reads the token and connects the judges; nil when none is asked for. The answer
// cache is the judges' (nil = off).
func (j *judgeFlags) connect(ctx context.Context, ac *cache.Cache, so eval.ScoreOptions, logger *log.Logger) (*judge.Judges, error) {
	if !j.enabled() {
		if j.taskType != "" || j.rubric != "" || (j.mode != "" && j.mode != judge.ModeAuto) {
			return nil, configError(fmt.Errorf("--task-type, --judge-template and --judge-mode tune a judge: give --judge-url or --judge-extract-url"))
		}
		return nil, nil
	}
	switch j.mode {
	case "", judge.ModeAuto, judge.ModeYesNo, judge.ModeRubric:
	default:
		return nil, configError(fmt.Errorf("--judge-mode %q: want auto, yesno or rubric", j.mode))
	}
	token := ""
	if j.tokenFile != "" {
		t, err := launcher.ReadToken(j.tokenFile)
		if err != nil {
			return nil, configError(err)
		}
		token = t
	}
	if logger == nil {
		logger = log.New(io.Discard)
	}
	opts := judge.Options{
		URL: j.url, Mode: j.mode, ExtractURL: j.extractURL, TaskType: j.taskType, Rubric: j.rubric, Token: token,
		Cache: ac, Predict: predict.Options{InFlight: j.inFlight, Attempts: j.attempts}, RubricInFlight: j.inFlight,
		Score: so, Log: logger,
	}
	js, err := judge.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (the judge is checked before anything is judged)", err)
	}
	return js, nil
}

// judgeReport prints what the judges found for one task.
func judgeReport(w io.Writer, task, dir string, r *judge.Report) {
	if r == nil {
		return
	}
	if s := r.Judged; s != nil {
		iv := ""
		if x, ok := s.Intervals[s.Headline.Name]; ok {
			iv = fmt.Sprintf(" [%.3f, %.3f]", x.Low, x.High)
		}
		fmt.Fprintf(w, "%s: %s judge: %s %.3f%s over %d scored of %d (%d judge errors, %d model failures) → %s\n",
			task, s.Mode, s.Headline.Name, s.Headline.Value, iv, s.Scored, s.N, s.JudgeErrors, s.ModelFailed,
			filepath.Join(dir, judge.SummaryFile))
		if len(s.Errors) > 0 {
			fmt.Fprintf(w, "  most frequent judge error (%d×): %s\n", s.Errors[0].Count, clipLine(s.Errors[0].Error, 160))
		}
	}
	if s := r.Extracted; s != nil {
		fmt.Fprintf(w, "%s: extractor judge: %s %.3f over %d samples (%d failed) → %s\n", task, s.Headline.Name, s.Headline.Value, s.N, s.Failed,
			filepath.Join(dir, judge.ExtractedSummaryFile))
	}
}

func clipLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
