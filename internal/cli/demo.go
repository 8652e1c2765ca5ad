package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

func newDemoCmd(ios IO, g *globals) *cobra.Command {
	o := &runOptions{suite: "demo"}
	cmd := &cobra.Command{
		Use:   "demo [--output-dir DIR]",
		Short: "Run the embedded demo benchmark end to end against the built-in dummy launcher",
		Long: `demo generates the embedded demo benchmark (synthetic calls of six made-up species, in the
BEANS-Zero Parquet schema), starts the dummy launcher in tone mode on a free loopback port
as a real HTTP server, runs the demo suite against it through the same code as ` + "`run`" + `,
and prints the results. The dummy listens to the audio, so a correct pipeline scores 1.0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.outputDir == "" {
				o.outputDir = filepath.Join("results", "demo-"+time.Now().Format("20060102-150405"))
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			url, done, err := startDummy(ctx, launcher.DummyOptions{Mode: launcher.ModeTone})
			if err != nil {
				return err
			}
			g.logger(ios).Info("dummy launcher (tone mode) started", "predict_url", url)
			o.predictURL = url
			o.data.noAnswerCache = true // the demo shows the pipeline: every sample goes to the launcher
			sum, runErr := runSuite(cmd, ios, g, o, "")
			cancel()
			if err := <-done; err != nil && runErr == nil {
				runErr = fmt.Errorf("dummy launcher: %w", err)
			}
			if runErr != nil {
				return runErr
			}
			return printSuite(ios, o, sum)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.outputDir, "output-dir", "o", "", "where results go (default results/demo-<date-time>)")
	f.StringVar(&o.data.dataDir, "data-dir", "", "where the demo benchmark is generated (default: the cache directory)")
	f.StringVar(&o.data.cacheDir, "cache-dir", "", "beans-slurm's cache directory (default $BEANS_SLURM_CACHE_DIR, else the user cache directory)")
	f.IntVar(&o.limit, "limit", 0, "run only the first `N` samples of each task (0 = all)")
	f.BoolVar(&o.json, "json", false, "print the suite summary as JSON instead of a table")
	return cmd
}
