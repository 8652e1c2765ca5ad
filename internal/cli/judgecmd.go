package cli

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// newJudgeCmd is `beans-slurm judge SWEEP`: a judge pass over a sweep's predictions on the
// cluster, through the serving/handoff machinery of inference.
func newJudgeCmd(ios IO, g *globals) *cobra.Command {
	var cf clusterFlags
	var judgeModel, mode, memory, timeLimit string
	gpus := -1
	var models, args []string
	var stub, dryRun bool
	cmd := &cobra.Command{
		Use:   "judge SWEEP --judge PRESET [--mode yesno|extract|rubric] [--model M]...",
		Short: "Judge a sweep's predictions on the cluster (a judge serving job and a CPU judging job per model)",
		Long: `judge runs an LLM judge over the predictions a sweep already wrote on the cluster. For
each model of the sweep (or each --model) it submits a serving job for the judge preset
(e.g. gemma4_judge_vllm: vLLM on a GPU) and, after it, a CPU job that waits for the judge's
URL and runs ` + "`beans-slurm score --judge-only`" + ` over every task's predictions.jsonl. The files
land beside the predictions (judge_* for yesno and rubric, judge_extracted_* for extract),
never over them; ` + "`beans-slurm fetch`" + ` brings them back and ` + "`beans-slurm compare`" + ` shows them
beside the deterministic metrics. The judges' answers are cached in the work directory, so
a pass that is cut off and submitted again asks nothing twice. status, logs and cancel
include the judge jobs.`,
		Example: `  beans-slurm judge paper-sweep --judge gemma4_judge_vllm --mode yesno
  beans-slurm judge paper-sweep --judge gemma4_judge_vllm --mode extract --model naturelm_v1_1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			logger := g.logger(ios)
			store, m, err := loadSweep(a[0])
			if err != nil {
				return err
			}
			if judgeModel == "" {
				return configError(errors.New("give --judge PRESET: the judge's model preset (e.g. gemma4_judge_vllm)"))
			}
			reg, err := g.registry()
			if err != nil {
				return err
			}
			preset, err := reg.Model(judgeModel)
			if err != nil {
				return configError(err)
			}
			cl, err := cf.load(m.Cluster)
			if err != nil {
				return err
			}
			regFiles, regDirs, err := registrySnapshot(g)
			if err != nil {
				return err
			}
			js := slurm.JudgeSpec{
				Judge: slurm.ModelSpec{ID: preset.ID, Preset: preset.ID, GPUs: preset.GPUs, Time: preset.Time, Memory: preset.Memory, Stub: stub},
				Mode:  mode, Models: models, Args: args, RegistryDirs: regDirs,
			}
			if gpus >= 0 {
				js.Judge.GPUs = gpus
			}
			if memory != "" {
				js.Judge.Memory = memory
			}
			if timeLimit != "" {
				js.Judge.Time = timeLimit
			}
			files, err := slurm.PlanJudge(m, profile(cl), js)
			if err != nil {
				return configError(err)
			}
			if dryRun {
				fmt.Fprintf(ios.Out, "# dry run of a %s judge pass over sweep %s on cluster %s: nothing is connected, uploaded or submitted\n", mode, m.Name, m.Cluster)
				for _, mm := range m.Models {
					if jp := mm.Judge; jp != nil {
						fmt.Fprintf(ios.Out, "#   %s\n", remote.Join("sbatch", "--parsable", "--chdir="+m.Dir, jp.Serve.Script))
						fmt.Fprintf(ios.Out, "#   %s \"$JUDGE_SERVE_JOB_ID\"\n", remote.Join("sbatch", "--parsable", "--dependency=after:$JUDGE_SERVE_JOB_ID", "--chdir="+m.Dir, jp.Job.Script))
					}
				}
				for _, f := range files {
					fmt.Fprintf(ios.Out, "\n# ---- %s\n%s", f.Path, f.Data)
				}
				return nil
			}
			t, err := connect(ctx, ios, logger, cl)
			if err != nil {
				return err
			}
			defer t.Close()
			// Judge only what inference finished: a model still running would be judged on
			// half its answers.
			st, err := slurm.Status(ctx, t, m)
			if err != nil {
				return err
			}
			for _, ms := range st.Models {
				mm, _ := m.Model(ms.Model)
				if mm.Judge == nil {
					continue
				}
				for _, j := range ms.Infer {
					if !j.State.Done() && j.State != "" {
						return configError(fmt.Errorf("model %s: inference job %s is %s; judge once `beans-slurm status %s` says it is over", ms.Model, j.ID, j.State, m.Name))
					}
				}
			}
			probe, err := slurm.ProbeCluster(ctx, t, cl.WorkDir, m.JobNames())
			if err != nil {
				return err
			}
			if !probe.HasBinary(path.Base(m.Binary)) {
				return fmt.Errorf("the sweep's binary %s is no longer on the cluster; submit the sweep again with `beans-slurm submit --resume %s` first", m.Binary, m.Name)
			}
			if err := store.Save(m); err != nil {
				return err
			}
			if err := slurm.Upload(ctx, t, m, files, slurm.SubmitOptions{Extra: regFiles}); err != nil {
				return err
			}
			got, subErr := slurm.SubmitJudge(ctx, &slurm.Client{T: t}, m, probe.Live)
			if err := store.Save(m); err != nil {
				return err
			}
			if err := writeRemoteManifest(cmd, t, m); err != nil && subErr == nil {
				subErr = err
			}
			var failed []string
			for _, s := range got {
				if s.Err != nil {
					failed = append(failed, s.Key+": "+s.Err.Error())
				} else {
					fmt.Fprintf(ios.Out, "%-40s %s\n", s.Key, s.JobID)
				}
			}
			if subErr != nil {
				return fmt.Errorf("judge sweep %s: %w", m.Name, subErr)
			}
			if len(failed) > 0 {
				return &exitError{code: ExitFail, err: fmt.Errorf("some judge jobs were not submitted:\n  %s", strings.Join(failed, "\n  "))}
			}
			if len(got) == 0 {
				fmt.Fprintln(ios.Out, "the judge jobs are already live; nothing submitted")
			}
			fmt.Fprintf(ios.Out, "\nfollow it: beans-slurm status %s --watch; results: beans-slurm fetch %s\n", m.Name, m.Name)
			return nil
		},
	}
	f := cmd.Flags()
	cf.flags(f)
	f.StringVar(&judgeModel, "judge", "", "the judge's model `preset` (e.g. gemma4_judge_vllm)")
	f.StringVar(&mode, "mode", "yesno", "yesno (judge_accuracy), extract (rewrite answers, then the normal metrics) or rubric (a judge_scores_v1 service)")
	f.StringArrayVar(&models, "model", nil, "judge only this model of the sweep (repeatable)")
	f.StringArrayVar(&args, "score-arg", nil, "an extra argument for the judging job's `score` (repeatable), e.g. --score-arg=--task-type=classification")
	f.BoolVar(&stub, "stub", false, "serve the judge preset's stub (a deterministic judge) instead of the model")
	f.IntVar(&gpus, "gpus", -1, "GPUs of the judge's serving job (default: the preset's)")
	f.StringVar(&memory, "memory", "", "memory of the judge's serving job, e.g. 64G (default: the preset's)")
	f.StringVar(&timeLimit, "time", "", "time limit of the judge's serving job (default: the preset's)")
	f.BoolVar(&dryRun, "dry-run", false, "print the judge scripts and commands; connect to nothing")
	return cmd
}
