package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/spice"
)

func newDataCmd(ios IO, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Mirror and inspect the dataset files a suite needs",
	}
	cmd.AddCommand(newDataFetchCmd(ios, g), newDataInfoCmd(ios, g))
	return cmd
}

type dataCmdOptions struct {
	suite  string
	tasks  []string
	data   dataOptions
	verify bool
	json   bool
}

func (o *dataCmdOptions) plan(cmd *cobra.Command, ios IO, g *globals) (*dataset.MirrorPlan, *dataset.Resolver, error) {
	if o.suite == "" && len(o.tasks) == 0 {
		return nil, nil, configError(fmt.Errorf("give --suite SUITE or --task TASK"))
	}
	reg, err := g.registry()
	if err != nil {
		return nil, nil, err
	}
	tasks, err := selectTasks(reg, o.suite, o.tasks)
	if err != nil {
		return nil, nil, configError(err)
	}
	dir := o.data.dataDir
	o.data.dataDir = "" // the plan reads the Hub; the directory is the mirror
	r, err := o.data.resolver(g.logger(ios), "")
	o.data.dataDir = dir
	if err != nil {
		return nil, nil, err
	}
	plan, err := r.Plan(cmd.Context(), tasks)
	return plan, r, err
}

func newDataFetchCmd(ios IO, g *globals) *cobra.Command {
	o := &dataCmdOptions{}
	cmd := &cobra.Command{
		Use:   "fetch --suite SUITE --data-dir PATH [--revision REV]",
		Short: "Mirror exactly the files a suite needs, for clusters whose compute nodes have no internet",
		Long: `fetch downloads from the Hugging Face Hub the data files that hold the rows of the suite's
tasks (found by reading only footers and the dataset_name column), into --data-dir. Downloads
resume where they stopped and are verified by size and hash against the Hub's listing; the
directory records the repository and commit, and runs read it with --data-dir.`,
		Example: `  beans-slurm data fetch --suite beans_zero_smoke --data-dir /shared/BEANS-Zero`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.data.dataDir == "" {
				return configError(fmt.Errorf("--data-dir PATH is required: where the mirror goes"))
			}
			plan, r, err := o.plan(cmd, ios, g)
			if err != nil {
				return err
			}
			logger := g.logger(ios)
			logger.Info("fetching", "repo", plan.Repo, "commit", plan.Commit, "files", len(plan.Files), "bytes", humanBytes(plan.Size()), "to", o.data.dataDir)
			err = r.Fetch(cmd.Context(), plan, o.data.dataDir, func(f dataset.PlannedFile, err error) {
				if err != nil {
					logger.Error("failed", "file", f.Entry.Path, "err", err)
					return
				}
				logger.Info("verified", "file", f.Entry.Path, "bytes", humanBytes(f.Entry.FileSize()))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(ios.Out, "%s@%s: %d files, %s in %s\n", plan.Repo, plan.Commit, len(plan.Files), humanBytes(plan.Size()), o.data.dataDir)
			return nil
		},
	}
	dataCmdFlags(cmd, o)
	return cmd
}

func newDataInfoCmd(ios IO, g *globals) *cobra.Command {
	o := &dataCmdOptions{}
	cmd := &cobra.Command{
		Use:   "info --suite SUITE [--data-dir PATH]",
		Short: "Show which files a suite needs and which are already present",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, _, err := o.plan(cmd, ios, g)
			if err != nil {
				return err
			}
			type row struct {
				Path  string   `json:"path"`
				Size  int64    `json:"size"`
				Hash  string   `json:"hash"`
				State string   `json:"state,omitempty"`
				Tasks []string `json:"tasks"`
			}
			var rows []row
			for _, f := range plan.Files {
				r := row{Path: f.Entry.Path, Size: f.Entry.FileSize(), Hash: f.Entry.CacheKey(), Tasks: f.Tasks}
				if o.data.dataDir != "" {
					r.State = string(f.State(o.data.dataDir, o.verify))
				}
				rows = append(rows, r)
			}
			if o.json {
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"repo": plan.Repo, "commit": plan.Commit, "bytes": plan.Size(), "files": rows})
			}
			fmt.Fprintf(ios.Out, "%s@%s: %d files, %s\n", plan.Repo, plan.Commit, len(plan.Files), humanBytes(plan.Size()))
			tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tSIZE\tSTATE\tTASKS")
			for _, r := range rows {
				state := r.State
				if state == "" {
					state = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Path, humanBytes(r.Size), state, strings.Join(r.Tasks, ","))
			}
			return tw.Flush()
		},
	}
	dataCmdFlags(cmd, o)
	cmd.Flags().BoolVar(&o.verify, "verify", false, "check the hash of present files too")
	return cmd
}

func dataCmdFlags(cmd *cobra.Command, o *dataCmdOptions) {
	f := cmd.Flags()
	f.StringVar(&o.suite, "suite", "", "suite whose files are needed")
	f.StringArrayVar(&o.tasks, "task", nil, "task whose files are needed (repeatable)")
	o.data.flags(f)
	f.BoolVar(&o.json, "json", false, "print as JSON")
}

func newVocabCmd(ios IO, g *globals) *cobra.Command {
	var data dataOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "vocab TASK",
		Short: "Print a task's label vocabulary and where it came from",
		Long: `vocab prints the labels that answers are matched against: the labels the task declares,
else the distinct answers of the task's whole split (read from the data's dataset_name and
output columns only, cached by dataset commit).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := g.registry()
			if err != nil {
				return err
			}
			task, err := reg.Task(args[0])
			if err != nil {
				return configError(err)
			}
			r, err := data.resolver(g.logger(ios), "")
			if err != nil {
				return err
			}
			labels, source, err := r.TaskLabels(cmd.Context(), task)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"task": task.ID, "labels": labels, "source": source})
			}
			fmt.Fprintf(ios.Out, "# %s: %d labels, %s\n", task.ID, len(labels), source)
			for _, l := range labels {
				fmt.Fprintln(ios.Out, l)
			}
			return nil
		},
	}
	data.flags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newSetupSPICECmd(ios IO, g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "setup-spice [--spice-dir DIR]",
		Short: "Download SPICE's dependencies (Stanford CoreNLP 3.6.0) so that captioning reports SPIDEr",
		Long: `setup-spice downloads Stanford CoreNLP 3.6.0 and its models from Maven Central into the
SPICE directory, verified against the published checksums. Put spice-1.0.jar (from the SPICE
release) in the same directory; scoring then runs it under Java with its cache disabled.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := spice.DefaultCacheDir()
				if err != nil {
					return err
				}
				dir = d
			}
			if err := spice.Setup(cmd.Context(), dir); err != nil {
				return err
			}
			ok, why := spice.Available(dir)
			if ok {
				fmt.Fprintf(ios.Out, "SPICE ready in %s\n", dir)
				return nil
			}
			fmt.Fprintf(ios.Out, "dependencies installed in %s; SPICE is not usable yet: %s\n", dir, why)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "spice-dir", "", "where SPICE lives (default: the cache directory)")
	return cmd
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
