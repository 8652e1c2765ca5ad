package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

type serveOptions struct {
	model         string
	handoff       string
	jobID         string
	tokenFile     string
	expect        int
	inferName     string
	healthTimeout time.Duration
	bind          string
	host          string
	stub          bool
	poll          time.Duration
	checkEvery    time.Duration
	launcherArgs  []string
}

func newServeCmd(ios IO, g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve --model M --handoff DIR [--token-file F] [--expect N] [--infer-name NAME]",
		Short: "Serve a model for a sweep's inference jobs (the serving job's worker)",
		Long: `The serving job's worker. It starts the model's launcher on a free port, waits for its
/health, publishes http://HOST:PORT/predict atomically as DIR/serve-<job>.url, and serves until
every inference worker has left its done marker (--expect), no inference job named
--infer-name is left in the queue, the launcher dies, or SLURM signals the end of the job.
On the way out it removes the URL file, writes DIR/serve-<job>.exit with the reason, and
stops the launcher.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveRun(cmd.Context(), ios, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "model preset to serve (see `beans-slurm list models`)")
	f.StringVar(&o.handoff, "handoff", "", "handoff `dir` shared with the inference jobs")
	f.StringVar(&o.jobID, "job-id", "", "this serving job's id (default $SLURM_JOB_ID)")
	f.StringVar(&o.tokenFile, "token-file", "", "the sweep's bearer token (a 0600 `file`); the launcher requires it")
	f.IntVar(&o.expect, "expect", 0, "stop once this many inference workers have finished (0 = wait for the queue or the time limit)")
	f.StringVar(&o.inferName, "infer-name", "", "job `name` of this model's inference jobs; stop when none is left in the queue")
	f.DurationVar(&o.healthTimeout, "health-timeout", 0, "bound on the launcher's start (default: the preset's health_timeout, else 10m)")
	f.StringVar(&o.bind, "bind", "0.0.0.0", "address the launcher listens on")
	f.StringVar(&o.host, "host", "", "host name in the published URL (default this node's name)")
	f.BoolVar(&o.stub, "stub", false, "serve the preset's stub (the built-in dummy launcher under the preset's name) instead of the model")
	f.DurationVar(&o.poll, "poll", 10*time.Second, "how often the done markers are looked for")
	f.DurationVar(&o.checkEvery, "queue-check", time.Minute, "how often the queue is asked for --infer-name jobs")
	f.StringArrayVar(&o.launcherArgs, "launcher-arg", nil, "launcher argument (repeatable); when given, these replace the preset's args")
	return cmd
}

func serveRun(ctx context.Context, ios IO, g *globals, o *serveOptions) error {
	logger := g.logger(ios)
	if o.model == "" || o.handoff == "" {
		return configError(errors.New("--model and --handoff are required"))
	}
	o.jobID = cmp.Or(o.jobID, os.Getenv("SLURM_JOB_ID"))
	if _, err := strconv.ParseUint(o.jobID, 10, 64); err != nil {
		return configError(fmt.Errorf("--job-id %q is not a SLURM job id (outside a job, give --job-id)", o.jobID))
	}
	reg, err := g.registry()
	if err != nil {
		return err
	}
	m, err := reg.Model(o.model)
	if err != nil {
		return configError(err)
	}
	if cmd := o.launcherArgs; cmd != nil {
		m.Args = cmd
	}
	argv, err := launcherCommand(m, o.stub)
	if err != nil {
		return configError(err)
	}
	if o.tokenFile != "" {
		argv = append(argv, "--token-file", "{token_file}")
	}
	timeout := o.healthTimeout
	if timeout == 0 && m.HealthTimeout != "" {
		if timeout, err = time.ParseDuration(m.HealthTimeout); err != nil {
			return configError(fmt.Errorf("model %s: health_timeout %q: %w", m.ID, m.HealthTimeout, err))
		}
	}
	h := slurm.Handoff{Dir: o.handoff, ServeJob: o.jobID}
	logger.Info("starting the launcher", "model", m.ID, "stub", o.stub, "health_timeout", cmp.Or(timeout, 10*time.Minute))
	proc, err := launcher.StartProcess(ctx, launcher.ProcessOptions{
		Command: argv, Bind: o.bind, Host: o.host, TokenFile: o.tokenFile,
		HealthTimeout: timeout, Output: ios.Err,
	})
	if err != nil {
		if werr := h.Withdraw("the launcher did not start: " + err.Error()); werr != nil {
			logger.Error("could not write the exit file", "err", werr)
		}
		return err
	}
	if err := h.PublishURL(proc.PredictURL()); err != nil {
		proc.Stop(30 * time.Second)
		_ = h.Withdraw("could not publish the URL: " + err.Error())
		return fmt.Errorf("publish the predict URL: %w", err)
	}
	logger.Info("serving", "predict_url", proc.PredictURL(), "url_file", h.URLFile(), "expect", o.expect)

	reason, runErr := serveUntilDone(ctx, o, h, proc, logger.Info)
	logger.Info("serving job ends", "reason", reason)
	if err := h.Withdraw(reason); err != nil {
		logger.Error("could not withdraw the URL", "err", err)
	}
	proc.Stop(30 * time.Second)
	return runErr
}

// serveUntilDone waits for a reason to stop serving and returns it, with an error when the
// launcher died.
func serveUntilDone(ctx context.Context, o *serveOptions, h slurm.Handoff, proc *launcher.Process, info func(msg any, kv ...any)) (string, error) {
	var queueLive func(context.Context) (bool, error)
	if o.inferName != "" {
		queueLive = slurm.JobsLive(o.inferName)
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	lastCheck, empty := time.Now(), 0
	for {
		select {
		case <-proc.Done():
			err := proc.Err()
			return "the launcher exited: " + err.Error(), err
		case <-ctx.Done():
			return "stopped by a signal (time limit, scancel or Ctrl-C)", nil
		case <-tick.C:
		}
		if o.expect > 0 {
			if done, err := h.DoneShards(); err == nil && len(done) >= o.expect {
				return fmt.Sprintf("all %d inference workers finished", o.expect), nil
			}
		}
		if queueLive != nil && time.Since(lastCheck) >= o.checkEvery {
			lastCheck = time.Now()
			live, err := queueLive(ctx)
			switch {
			case err != nil:
				info("could not ask the queue for inference jobs", "err", err)
			case live:
				empty = 0
			default:
				empty++
				if empty >= 2 {
					return "no inference job named " + o.inferName + " is left in the queue", nil
				}
			}
		}
	}
}

// launcherCommand is the argv that serves model m: the built-in launchers run as this binary.
func launcherCommand(m registry.Model, stub bool) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary: %w", err)
	}
	base := []string{self, "launcher", "dummy", "--port", "{port}", "--bind", "{bind}"}
	if stub {
		return append(base, "--model-name", "stub:"+m.ID), nil
	}
	switch m.Launcher {
	case "dummy":
		return append(base, m.Args...), nil
	default:
		return nil, fmt.Errorf("model %s uses the %q launcher, which this version of `serve` cannot start yet (only the built-in dummy); use --stub to check a sweep's pipeline with the preset's stub", m.ID, m.Launcher)
	}
}
