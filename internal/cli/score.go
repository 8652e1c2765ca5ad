package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/report"
)

func newScoreCmd(ios IO, g *globals) *cobra.Command {
	var outDir string
	var asJSON, skipBad bool
	var sf scoreFlags
	var jf judgeFlags
	var data dataOptions
	var wk scoreWorker
	cmd := &cobra.Command{
		Use:   "score PATH/predictions.jsonl... [-o DIR]",
		Short: "Score predictions files again (anywhere: no dataset, no launcher needed)",
		Long: `score re-scores predictions.jsonl files with the task definition recorded beside them
(task.json). It writes processed_predictions.jsonl, scored_predictions.jsonl and
summary.json into -o DIR (default: beside the predictions file) and never writes the
predictions file itself. A live run scores the same file the same way, so the numbers
are the live run's.

Judges run after the normal scoring, on the same answers, into files of their own
(docs/judges.md): --judge-url (a YES/NO judge: judge_* files with judge_accuracy, or a
rubric judge_scores_v1 service: judge_score) and --judge-extract-url (the extractor:
judge_extracted_* files with the task's normal metrics on the rewritten answers). All three
at once never overwrite each other.`,
		Example: `  beans-slurm score results/smoke/beans_zero_esc50/predictions.jsonl -o rescored/esc50
  beans-slurm score results/run/*/predictions.jsonl --judge-url http://127.0.0.1:8010/predict \
      --judge-extract-url http://127.0.0.1:8010/predict`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			args, err = wk.files(args)
			if err != nil {
				return configError(err)
			}
			if outDir != "" && len(args) > 1 {
				return configError(fmt.Errorf("-o takes one predictions file; with several, each is scored beside itself"))
			}
			var sums []*eval.TaskSummary
			for _, p := range args {
				if filepath.Base(p) != eval.PredictionsFile {
					return configError(fmt.Errorf("%s: score reads a %s file written by `beans-slurm run`", p, eval.PredictionsFile))
				}
			}
			logger := g.logger(ios)
			if err := wk.wait(cmd.Context(), &jf, logger); err != nil {
				return err
			}
			// Tell a judge serving job that this worker is done, and how it ended.
			defer func() {
				status := "ok"
				if err != nil {
					status = "failed: " + err.Error()
				}
				wk.done(logger, status)
			}()
			ac := data.answerCache(logger)
			defer ac.Close()
			so := sf.options()
			so.SkipBadLines = skipBad
			judges, err := jf.connect(cmd.Context(), ac, so, logger)
			if err != nil {
				return err
			}
			if wk.judgeOnly && judges == nil {
				return configError(fmt.Errorf("--judge-only needs a judge (--judge-url, --judge-extract-url or --handoff)"))
			}
			var judged []string
			for _, p := range args {
				opts := sf.options()
				opts.SkipBadLines = skipBad
				if (opts.Policy != "" || opts.Postprocess != "") && (outDir == "" || eval.SameDir(outDir, filepath.Dir(p))) {
					return configError(fmt.Errorf("re-scoring with --policy or --postprocess writes into a new directory: give -o DIR"))
				}
				taskID := filepath.Base(filepath.Dir(p))
				if !wk.judgeOnly {
					s, err := eval.ScoreFile(cmd.Context(), p, outDir, opts)
					if err != nil {
						return err
					}
					sums = append(sums, s)
					taskID = s.TaskID
				}
				if judges != nil {
					dir := outDir
					if dir == "" {
						dir = filepath.Dir(p)
					}
					r, err := judges.Task(cmd.Context(), p, dir)
					if err != nil {
						return err
					}
					var b strings.Builder
					judgeReport(&b, taskID, dir, r)
					judged = append(judged, b.String())
				}
			}
			if asJSON {
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(sums)
			}
			for i, s := range sums {
				if i > 0 {
					fmt.Fprintln(ios.Out)
				}
				if err := report.TaskTable(ios.Out, s); err != nil {
					return err
				}
			}
			if len(judged) > 0 {
				fmt.Fprintln(ios.Out)
				fmt.Fprint(ios.Out, strings.Join(judged, ""))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "output-dir", "o", "", "where the scored files go (default: beside the predictions file)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summaries as JSON")
	cmd.Flags().BoolVar(&skipBad, "skip-bad-lines", false, "skip unreadable lines (counted in the summary's notes) instead of failing")
	sf.flags(cmd.Flags())
	jf.flags(cmd.Flags())
	wk.flags(cmd.Flags())
	cmd.Flags().StringVar(&data.cacheDir, "cache-dir", "", "beans-slurm's cache directory: the judges' answers are kept in <cache-dir>/answers (default $BEANS_SLURM_CACHE_DIR, else the user cache directory)")
	cmd.Flags().BoolVar(&data.noAnswerCache, "no-answer-cache", false, "ask the judges about every sample: neither reuse nor keep their answers (also $BEANS_SLURM_NO_ANSWER_CACHE=1)")
	return cmd
}
