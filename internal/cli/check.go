package cli

import (
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

func newCheckLauncherCmd(ios IO, g *globals) *cobra.Command {
	var timeout time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check-launcher URL",
		Short: "Check a launcher against the predictions_v1 contract",
		Long: `check-launcher checks a launcher at its predict URL: /health, every /info field, a batch,
a partial failure, HTTP 413 at max_batch_size+1, duplicate ids, a wrong schema_version,
unknown generation_config keys, and matching by id rather than order. It prints a
pass/fail table and exits 1 on any failure.`,
		Example: `  beans-slurm check-launcher http://127.0.0.1:8000/predict`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep := launcher.CheckLauncher(cmd.Context(), predict.NewHTTPClient(2), args[0], timeout)
			if asJSON {
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				launcher.WriteReport(ios.Out, rep)
			}
			if !rep.OK() {
				return &exitError{code: ExitFail, err: errReported}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "bound on each request")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
