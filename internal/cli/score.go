package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/report"
)

func newScoreCmd(ios IO, g *globals) *cobra.Command {
	var outDir string
	var asJSON, skipBad bool
	var sf scoreFlags
	cmd := &cobra.Command{
		Use:   "score PATH/predictions.jsonl... [-o DIR]",
		Short: "Score predictions files again (anywhere: no dataset, no launcher needed)",
		Long: `score re-scores predictions.jsonl files with the task definition recorded beside them
(task.json). It writes processed_predictions.jsonl, scored_predictions.jsonl and
summary.json into -o DIR (default: beside the predictions file) and never writes the
predictions file itself. A live run scores the same file the same way, so the numbers
are the live run's.`,
		Example: `  beans-slurm score results/smoke/beans_zero_esc50/predictions.jsonl -o rescored/esc50`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outDir != "" && len(args) > 1 {
				return configError(fmt.Errorf("-o takes one predictions file; with several, each is scored beside itself"))
			}
			var sums []*eval.TaskSummary
			for _, p := range args {
				if filepath.Base(p) != eval.PredictionsFile {
					return configError(fmt.Errorf("%s: score reads a %s file written by `beans-slurm run`", p, eval.PredictionsFile))
				}
				opts := sf.options()
				opts.SkipBadLines = skipBad
				if (opts.Policy != "" || opts.Postprocess != "") && (outDir == "" || eval.SameDir(outDir, filepath.Dir(p))) {
					return configError(fmt.Errorf("re-scoring with --policy or --postprocess writes into a new directory: give -o DIR"))
				}
				s, err := eval.ScoreFile(cmd.Context(), p, outDir, opts)
				if err != nil {
					return err
				}
				sums = append(sums, s)
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
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "output-dir", "o", "", "where the scored files go (default: beside the predictions file)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summaries as JSON")
	cmd.Flags().BoolVar(&skipBad, "skip-bad-lines", false, "skip unreadable lines (counted in the summary's notes) instead of failing")
	sf.flags(cmd.Flags())
	return cmd
}
