package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

func newCheckLauncherCmd(ios IO, g *globals) *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	var tokenFile string
	var batchItems int
	cmd := &cobra.Command{
		Use:   "check-launcher URL [--token-file F] [--timeout D] [--json]",
		Short: "Check a launcher against the predictions_v1 contract",
		Long: `check-launcher runs the conformance suite of the predictions_v1 contract against a launcher
at its predict URL: /health; every /info field and its type; predictions_v1 in
schema_versions; the bearer token (with --token-file: /info and /predict must answer 401
without it); a batch of valid items; every sample_id answered exactly once and no unknown
id, whatever the order; a partial failure; HTTP 413 at max_batch_size+1 with a body stating
the limit; duplicate ids; a wrong schema_version; unknown generation_config keys; a 60 s
clip; non-ASCII text; and every answer within --timeout.

It prints a pass/fail table (or, with --json, a check_launcher_v1 document; see
docs/launchers.md). Checks that cannot run are reported as NOT RUN with the reason.
Exit status: 0 when every check that ran passed, 1 when one failed, 2 when the launcher is
unreachable (no HTTP answer) or the arguments are unusable.`,
		Example: `  beans-slurm check-launcher http://127.0.0.1:8000/predict
  beans-slurm check-launcher http://node12:8000/predict --token-file ~/.beans/token --timeout 5m --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := launcher.CheckOptions{PredictURL: args[0], Client: predict.NewHTTPClient(2), Timeout: timeout, BatchItems: batchItems}
			if tokenFile != "" {
				token, err := launcher.ReadToken(tokenFile)
				if err != nil {
					return configError(err)
				}
				opts.Token = token
			}
			rep := launcher.CheckLauncherWith(cmd.Context(), opts)
			if asJSON {
				if err := launcher.WriteReportJSON(ios.Out, rep); err != nil {
					return err
				}
			} else {
				launcher.WriteReport(ios.Out, rep)
			}
			switch {
			case !rep.Reachable:
				msg := "the launcher is unreachable"
				if c, ok := rep.Check(launcher.CheckHealth); ok {
					msg += ": " + c.Detail
				}
				return &exitError{code: ExitConfig, err: errors.New(msg)}
			case !rep.OK():
				return &exitError{code: ExitFail, err: errReported}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&timeout, "timeout", launcher.DefaultCheckTimeout, "how long to wait for each answer (as a run's client would)")
	f.BoolVar(&asJSON, "json", false, "print the report as a check_launcher_v1 JSON document")
	f.StringVar(&tokenFile, "token-file", "", "send the bearer token in this 0600 `file`, and check that the launcher refuses requests without it")
	f.IntVar(&batchItems, "batch-items", launcher.DefaultCheckBatchItems, "most items in the batch check (it sends min(max_batch_size, this))")
	return cmd
}
