package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/beans-slurm/beans-slurm/internal/report"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

func newCompareCmd(ios IO, g *globals) *cobra.Command {
	var format, reference, title string
	var noPublished bool
	cmd := &cobra.Command{
		Use:   "compare SWEEP | DIR...",
		Short: "Compare models side by side: tasks × models in the paper's layout, with intervals",
		Long: `Reads each model's result directory (one directory per task with summary.json) and prints
the side-by-side table of models × tasks in the paper's layout, each value with its 95%
interval, the published NatureLM-audio value beside it, and per-model averages over the tasks
every model has. SWEEP is a fetched sweep (see fetch); a DIR is a run's output directory or a
directory of them (a fetched sweep).`,
		Example: `  beans-slurm compare paper-20261126-101500
  beans-slurm compare results/af3 results/naturelm --format markdown > table.md
  beans-slurm compare results/paper --format csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			roots, err := compareRoots(args)
			if err != nil {
				return err
			}
			var runs []report.Run
			for _, root := range roots {
				dirs, err := report.FindRuns(root)
				if err != nil {
					return configError(err)
				}
				// In a fetched sweep, a model's name is its directory's: the name the sweep gave it.
				_, statErr := os.Stat(filepath.Join(root, "sweep.json"))
				for _, d := range dirs {
					r, err := report.LoadRun(d)
					if err != nil {
						return configError(err)
					}
					if statErr == nil && d != root {
						r.Name = filepath.Base(d)
					}
					runs = append(runs, r)
				}
			}
			if len(runs) == 0 {
				return configError(fmt.Errorf("no results under %v (a run's directory holds one directory per task with summary.json)", roots))
			}
			reg, err := g.registry()
			if err != nil {
				return err
			}
			c := report.Compare(runs, report.CompareOptions{Tasks: report.LayoutTasks(reg, runs), Reference: reference, NoPublished: noPublished})
			switch format {
			case "table", "":
				width := 0
				if f, ok := ios.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					width, _, _ = term.GetSize(int(f.Fd()))
				}
				return report.CompareTable(ios.Out, c, width)
			case "markdown", "md":
				return report.CompareMarkdown(ios.Out, c, title)
			case "csv":
				return report.CompareCSV(ios.Out, c)
			case "json":
				return report.CompareJSON(ios.Out, c)
			}
			return configError(fmt.Errorf("--format is table, markdown, csv or json, not %q", format))
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "table", "table, markdown, csv or json")
	f.StringVar(&reference, "reference", "", "a model whose differences to the others are shown")
	f.BoolVar(&noPublished, "no-published", false, "leave out the published NatureLM-audio column")
	f.StringVar(&title, "title", "beans-slurm comparison", "the Markdown table's title")
	return cmd
}

// compareRoots maps arguments to directories: a known sweep's fetched results, else a path.
func compareRoots(args []string) ([]string, error) {
	var roots []string
	for _, a := range args {
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			roots = append(roots, a)
			continue
		}
		_, m, err := loadSweep(a)
		if err != nil {
			var unknown *slurm.UnknownSweepError
			if errors.As(err, &unknown) {
				return nil, configError(fmt.Errorf("%s is neither a directory nor a sweep this machine knows (see `beans-slurm sweeps`)", a))
			}
			return nil, err
		}
		if m.Fetched == "" {
			return nil, configError(fmt.Errorf("sweep %s has not been fetched yet: run `beans-slurm fetch %s` first", m.Name, m.Name))
		}
		roots = append(roots, filepath.Clean(m.Fetched))
	}
	return roots, nil
}
