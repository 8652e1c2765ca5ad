package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// ExitRunning is status's exit code while a sweep still runs.
const ExitRunning = 3

type statusOptions struct {
	cluster  clusterFlags
	watch    bool
	json     bool
	interval time.Duration
	maxWait  time.Duration
	noEnd    bool
}

func newStatusCmd(ios IO, g *globals) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [SWEEP] [--watch] [--json]",
		Short: "Show a sweep's jobs, serving URLs, progress and errors",
		Long: `One table per sweep: per model and task, the jobs' states, the serving URL once known,
progress (samples done/total from the workers' progress files), errors and elapsed time.
One remote command per poll. A serving job that ended before its URL appeared has its
inference jobs cancelled (status says why); a serving job whose model's inference is over is
ended (--no-end leaves both alone).

Exit code: 0 when every model is done, 1 when something failed, 3 while still running.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return statusRun(cmd.Context(), ios, g, o, name)
		},
	}
	f := cmd.Flags()
	o.cluster.flags(f)
	f.BoolVar(&o.watch, "watch", false, "poll until the sweep ends, backing off between polls")
	f.BoolVar(&o.json, "json", false, "print the status as JSON")
	f.DurationVar(&o.interval, "interval", 0, "first wait between polls with --watch (default: the profile's poll.initial, 30s); it doubles up to poll.max")
	f.DurationVar(&o.maxWait, "max-interval", 0, "longest wait between polls (default: the profile's poll.max, 3m)")
	f.BoolVar(&o.noEnd, "no-end", false, "only look: cancel nothing")
	return cmd
}

func statusRun(ctx context.Context, ios IO, g *globals, o *statusOptions, name string) error {
	logger := g.logger(ios)
	_, m, err := loadSweep(name)
	if err != nil {
		return err
	}
	cl, err := o.cluster.load(m.Cluster)
	if err != nil {
		return err
	}
	t, err := connect(ctx, ios, logger, cl)
	if err != nil {
		return err
	}
	defer t.Close()
	wait, maxWait := o.interval, o.maxWait
	if wait <= 0 {
		wait = cl.Poll.Initial
	}
	if maxWait <= 0 {
		maxWait = cl.Poll.Max
	}
	wait, maxWait = max(wait, 100*time.Millisecond), max(maxWait, wait)
	for {
		st, err := slurm.Status(ctx, t, m)
		if err != nil {
			return err
		}
		if !o.noEnd {
			if err := slurm.Reconcile(ctx, &slurm.Client{T: t}, st); err != nil {
				logger.Warn("could not cancel jobs that should end", "err", err)
			}
		}
		if err := printStatus(ios, o.json, st); err != nil {
			return err
		}
		code := st.ExitCode()
		if !o.watch || code != ExitRunning {
			if code != 0 {
				return &exitError{code: code, err: errReported}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, maxWait)
	}
}

func printStatus(ios IO, asJSON bool, st *slurm.SweepStatus) error {
	if asJSON {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	acct := "accounting: sacct"
	if !st.Accounting {
		acct = "no accounting: squeue (finished jobs vanish after a few minutes)"
	}
	fmt.Fprintf(ios.Out, "sweep %s on %s — %s — %s\n", st.Sweep, st.Cluster, st.Polled.Local().Format("15:04:05"), acct)
	tw := tabwriter.NewWriter(ios.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tTASK / ROLE\tJOB\tSTATE\tPROGRESS\tFAILED\tELAPSED\tNOTE")
	for _, ms := range st.Models {
		note := ms.URL
		if note == "" && ms.Exit != "" {
			note = ms.Exit
		}
		fmt.Fprintf(tw, "%s\tserve\t%s\t%s\t\t\t%s\t%s\n", ms.Model, dash(ms.Serve.ID), stateText(ms.Serve), ms.Serve.Elapsed, note)
		for _, j := range ms.Infer {
			fmt.Fprintf(tw, "%s\tinfer\t%s\t%s\t\t\t%s\t%s\n", ms.Model, j.ID, stateText(j), j.Elapsed, j.Node)
		}
		for _, ts := range ms.Tasks {
			prog := fmt.Sprintf("%d/%d", ts.Done, ts.Total)
			if ts.State == "skipped" {
				prog = "done earlier"
			}
			fmt.Fprintf(tw, "%s\t  %s\tshard %d\t%s\t%s\t%d\t\t\n", ms.Model, ts.Task, ts.Shard, ts.State, prog, ts.Failed)
		}
		if jd := ms.Judge; jd != nil {
			note := jd.URL
			if note == "" && jd.Exit != "" {
				note = jd.Exit
			}
			fmt.Fprintf(tw, "%s\tjudge-serve (%s)\t%s\t%s\t\t\t%s\t%s\n", ms.Model, jd.Mode, dash(jd.Serve.ID), stateText(jd.Serve), jd.Serve.Elapsed, note)
			fmt.Fprintf(tw, "%s\tjudge (%s)\t%s\t%s\t\t\t%s\t%s\n", ms.Model, jd.Mode, dash(jd.Job.ID), stateText(jd.Job), jd.Job.Elapsed, jd.Job.Node)
		}
		fmt.Fprintf(tw, "%s\t= %s\t\t\t\t\t\t%s\n", ms.Model, ms.Outcome, ms.Problem)
		for _, a := range ms.Actions {
			fmt.Fprintf(tw, "%s\t! %s\t\t\t\t\t\t\n", ms.Model, a)
		}
	}
	return tw.Flush()
}

func stateText(j slurm.JobStatus) string {
	s := string(j.State)
	if s == "" {
		s = j.Raw
	}
	if j.Reason != "" && j.Reason != "None" && !j.State.Done() {
		s += " (" + j.Reason + ")"
	}
	return dash(s)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func newCancelCmd(ios IO, g *globals) *cobra.Command {
	var cf clusterFlags
	var model string
	cmd := &cobra.Command{
		Use:   "cancel SWEEP [--model M]",
		Short: "Cancel a sweep's jobs (one scancel call)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, m, err := loadSweep(args[0])
			if err != nil {
				return err
			}
			if model != "" {
				if _, ok := m.Model(model); !ok {
					return configError(fmt.Errorf("sweep %s has no model %s", m.Name, model))
				}
			}
			ids := m.JobIDs(model)
			if len(ids) == 0 {
				fmt.Fprintln(ios.Out, "no job to cancel")
				return nil
			}
			cl, err := cf.load(m.Cluster)
			if err != nil {
				return err
			}
			t, err := connect(ctx, ios, g.logger(ios), cl)
			if err != nil {
				return err
			}
			defer t.Close()
			if err := (&slurm.Client{T: t}).Cancel(ctx, ids); err != nil {
				return err
			}
			fmt.Fprintf(ios.Out, "cancelled %s\n", strings.Join(ids, " "))
			return nil
		},
	}
	cf.flags(cmd.Flags())
	cmd.Flags().StringVar(&model, "model", "", "cancel only this model's jobs")
	return cmd
}

func newLogsCmd(ios IO, g *globals) *cobra.Command {
	var cf clusterFlags
	var model, role string
	var tail int
	cmd := &cobra.Command{
		Use:   "logs SWEEP [--model M] [--role serve|infer|judge-serve|judge] [--tail N]",
		Short: "Show a sweep's job logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			_, m, err := loadSweep(args[0])
			if err != nil {
				return err
			}
			switch role {
			case "", "serve", "infer", "judge-serve", "judge":
			default:
				return configError(fmt.Errorf("--role is serve, infer, judge-serve or judge, not %q", role))
			}
			var globs []string
			for _, mm := range m.Models {
				if model != "" && mm.Model != model {
					continue
				}
				for _, j := range mm.Jobs() {
					if role == "" || role == j.Role {
						// %x-%j.out or %x-%A_%a.out: the job id follows the name (a judge job's
						// name is a prefix of its serving job's).
						globs = append(globs, remote.Quote(path.Join(m.LogDir(), j.Name))+"-[0-9]*.out")
					}
				}
			}
			if len(globs) == 0 {
				return configError(fmt.Errorf("sweep %s has no model %s", m.Name, model))
			}
			cl, err := cf.load(m.Cluster)
			if err != nil {
				return err
			}
			t, err := connect(ctx, ios, g.logger(ios), cl)
			if err != nil {
				return err
			}
			defer t.Close()
			script := fmt.Sprintf("for f in %s; do [ -f \"$f\" ] || continue; echo \"==> $f <==\"; tail -n %d \"$f\"; echo; done", strings.Join(globs, " "), max(tail, 1))
			out, err := remote.Output(ctx, t, script)
			if err != nil {
				return err
			}
			if len(out) == 0 {
				fmt.Fprintln(ios.Out, "no log yet (jobs still pending?)")
			}
			_, err = ios.Out.Write(out)
			return err
		},
	}
	cf.flags(cmd.Flags())
	cmd.Flags().StringVar(&model, "model", "", "only this model's logs")
	cmd.Flags().StringVar(&role, "role", "", "serve, infer, judge-serve or judge (the jobs of `beans-slurm judge`)")
	cmd.Flags().IntVar(&tail, "tail", 50, "last `N` lines of each log")
	return cmd
}

func newSweepsCmd(ios IO, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sweeps",
		Short: "List the sweeps this machine knows, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := sweepStore()
			if err != nil {
				return err
			}
			all, err := st.List()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(ios.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			if len(all) == 0 {
				fmt.Fprintf(ios.Out, "no sweep yet (they are kept in %s)\n", st.Dir)
				return nil
			}
			tw := tabwriter.NewWriter(ios.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SWEEP\tCREATED\tCLUSTER\tMODELS\tSUITE / TASKS\tSHARDS\tFETCHED TO")
			for _, m := range all {
				var models []string
				for _, mm := range m.Models {
					models = append(models, mm.Model)
				}
				sel := m.Suite
				if len(m.Tasks) > 0 {
					sel = strings.TrimPrefix(sel+" ", " ") + strings.Join(m.Tasks, ",")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, m.Created.Local().Format("2006-01-02 15:04"), m.Cluster, strings.Join(models, ","), sel, m.Shards, dash(m.Fetched))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifests as JSON")
	return cmd
}

func newClusterCmd(ios IO, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Cluster profiles"}
	var cf clusterFlags
	check := &cobra.Command{
		Use:   "check [CLUSTER]",
		Short: "Verify a cluster profile end to end",
		Long: `Connects (verifying the host key), finds sbatch, squeue, sacct and scancel, tells whether
accounting works (status then uses sacct; otherwise squeue), checks that the work directory
is writable, and reports the remote CPU architecture (which binary submit uploads).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				cf.name = args[0]
			}
			cl, err := cf.load()
			if err != nil {
				return err
			}
			return clusterCheck(c.Context(), ios, g, cl)
		},
	}
	cf.flags(check.Flags())
	cmd.AddCommand(check)
	return cmd
}

func clusterCheck(ctx context.Context, ios IO, g *globals, cl registry.Cluster) error {
	fmt.Fprintf(ios.Out, "cluster %s (%s), work_dir %s\n", cl.Name, clusterWhere(cl), cl.WorkDir)
	t, err := connect(ctx, ios, g.logger(ios), cl)
	if err != nil {
		fmt.Fprintf(ios.Out, "FAIL connect: %v\n", err)
		return &exitError{code: ExitFail, err: errReported}
	}
	defer t.Close()
	fmt.Fprintf(ios.Out, "ok   connect: %s\n", t)
	res, err := slurm.CheckCluster(ctx, t, cl.WorkDir)
	if err != nil {
		fmt.Fprintf(ios.Out, "FAIL %v\n", err)
		return &exitError{code: ExitFail, err: errReported}
	}
	bad := false
	for _, c := range res {
		mark := "ok  "
		if !c.OK {
			mark, bad = "FAIL", bad || !c.Warning
			if c.Warning {
				mark = "warn"
			}
		}
		fmt.Fprintf(ios.Out, "%s %s: %s\n", mark, c.Name, c.Detail)
	}
	if bad {
		return &exitError{code: ExitFail, err: errors.New("the profile does not work yet: fix what FAIL says")}
	}
	return nil
}
