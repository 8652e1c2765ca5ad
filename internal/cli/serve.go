package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
	"github.com/beans-slurm/beans-slurm/launchers"
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
	launcherEnvs  string
	kitsDir       string
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
	f.StringVar(&o.launcherEnvs, "launcher-envs", "", "`dir` of the launchers' Python environments, one per kit (<dir>/<kit>/bin/python; <dir>/vllm/bin/vllm); default $BEANS_SLURM_LAUNCHER_ENVS, else ~/.cache/beans-slurm/envs")
	f.StringVar(&o.kitsDir, "kits-dir", "", "a `dir` holding the Python kits (launchers/ of a checkout); default: the kits built into this binary, unpacked for the job")
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
	h := slurm.Handoff{Dir: o.handoff, ServeJob: o.jobID}
	stages, err := launcherStages(m, o)
	if err != nil {
		// Say it in the exit file too: the inference jobs then give up at once.
		_ = h.Withdraw("the launcher cannot be started: " + err.Error())
		return configError(err)
	}
	timeout := o.healthTimeout
	if timeout == 0 && m.HealthTimeout != "" {
		if timeout, err = time.ParseDuration(m.HealthTimeout); err != nil {
			return configError(fmt.Errorf("model %s: health_timeout %q: %w", m.ID, m.HealthTimeout, err))
		}
	}
	logger.Info("starting the launcher", "model", m.ID, "launcher", m.Launcher, "stub", o.stub, "stages", len(stages), "health_timeout", cmp.Or(timeout, 10*time.Minute))
	var procs []*launcher.Process
	stopAll := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop(30 * time.Second)
		}
	}
	for i, st := range stages {
		st.HealthTimeout, st.Output = timeout, ios.Err
		if i > 0 {
			for j, w := range st.Command {
				st.Command[j] = strings.ReplaceAll(w, "{upstream_port}", strconv.Itoa(procs[i-1].Port()))
			}
		}
		if i == len(stages)-1 {
			st.Bind, st.Host, st.TokenFile = o.bind, o.host, o.tokenFile
		}
		p, err := launcher.StartProcess(ctx, st)
		if err != nil {
			stopAll()
			if werr := h.Withdraw("the launcher did not start: " + err.Error()); werr != nil {
				logger.Error("could not write the exit file", "err", werr)
			}
			return err
		}
		procs = append(procs, p)
	}
	proc := procs[len(procs)-1]
	if err := h.PublishURL(proc.PredictURL()); err != nil {
		stopAll()
		_ = h.Withdraw("could not publish the URL: " + err.Error())
		return fmt.Errorf("publish the predict URL: %w", err)
	}
	logger.Info("serving", "predict_url", proc.PredictURL(), "url_file", h.URLFile(), "expect", o.expect)

	reason, runErr := serveUntilDone(ctx, o, h, procs, logger.Info)
	logger.Info("serving job ends", "reason", reason)
	if err := h.Withdraw(reason); err != nil {
		logger.Error("could not withdraw the URL", "err", err)
	}
	stopAll()
	return runErr
}

// serveUntilDone waits for a reason to stop serving and returns it, with an error when the
// launcher died.
func serveUntilDone(ctx context.Context, o *serveOptions, h slurm.Handoff, procs []*launcher.Process, info func(msg any, kv ...any)) (string, error) {
	died := make(chan *launcher.Process, len(procs))
	for _, p := range procs {
		go func() {
			<-p.Done()
			died <- p
		}()
	}
	var queueLive func(context.Context) (bool, error)
	if o.inferName != "" {
		queueLive = slurm.JobsLive(o.inferName)
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	lastCheck, empty := time.Now(), 0
	for {
		select {
		case p := <-died:
			err := p.Err()
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

// launcherStages are the processes that serve model m, in start order; the last one speaks
// predictions_v1 and its URL is published. A vllm preset has two: vLLM's OpenAI server on a
// loopback port, then the openai-proxy in front of it ({upstream_port}). The built-in launchers
// run as this binary.
func launcherStages(m registry.Model, o *serveOptions) ([]launcher.ProcessOptions, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary: %w", err)
	}
	token := func(argv []string) []string {
		if o.tokenFile != "" {
			argv = append(argv, "--token-file", "{token_file}")
		}
		return argv
	}
	dummy := func(args ...string) []launcher.ProcessOptions {
		argv := append([]string{self, "launcher", "dummy", "--port", "{port}", "--bind", "{bind}"}, args...)
		return []launcher.ProcessOptions{{Command: token(argv)}}
	}
	proxy := func(upstream, keyEnv string) []string {
		argv := []string{self, "launcher", "openai-proxy", "--upstream", upstream, "--model", m.Model,
			"--port", "{port}", "--bind", "{bind}", "--api-key-env", keyEnv}
		if m.Revision != "" {
			argv = append(argv, "--model-revision", m.Revision)
		}
		if m.AudioCapSeconds > 0 {
			argv = append(argv, "--audio-cap-seconds", strconv.FormatFloat(m.AudioCapSeconds, 'f', -1, 64))
		}
		if m.TextOnly {
			argv = append(argv, "--text-only")
		}
		return token(argv)
	}
	if o.stub && m.Stub == registry.StubJudge {
		return dummy("--mode", "judge", "--model-name", "stub:"+m.ID), nil
	}
	if o.stub && m.Stub != registry.StubKit {
		return dummy("--model-name", "stub:"+m.ID), nil
	}
	switch m.Launcher {
	case registry.LauncherDummy:
		return dummy(m.Args...), nil
	case registry.LauncherOpenAIProxy:
		keyEnv := "none"
		if len(m.Env) > 0 {
			keyEnv = m.Env[0]
		}
		return []launcher.ProcessOptions{{Command: append(proxy(m.Upstream, keyEnv), m.Args...)}}, nil
	case registry.LauncherVLLM:
		vllm, err := envProgram(o, "vllm", "vllm")
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.ID, err)
		}
		scratch, err := os.MkdirTemp("", "beans-slurm-vllm-")
		if err != nil {
			return nil, err
		}
		backend := launcher.ProcessOptions{
			Command: append([]string{vllm, "serve", m.Model, "--host", "127.0.0.1", "--port", "{port}"}, m.Args...),
			Bind:    "127.0.0.1", Host: "127.0.0.1",
			// vLLM-Omni writes under TMPDIR (and /tmp/voice_samples): keep it job-private.
			Env: []string{"TMPDIR=" + scratch},
		}
		return []launcher.ProcessOptions{backend, {Command: proxy("http://127.0.0.1:{upstream_port}/v1", "none")}}, nil
	case registry.LauncherPython:
		dir, err := kitDir(o, m.Kit)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", m.ID, err)
		}
		var python string
		var env []string
		if o.stub {
			// The kit's own stub mode: any python3, no packages.
			if python, err = exec.LookPath("python3"); err != nil {
				return nil, fmt.Errorf("model %s: the kit's stub mode needs python3 on the PATH: %w", m.ID, err)
			}
			env = append(env, kitStubVar(m.Kit)+"=1")
		} else if python, err = envProgram(o, m.Kit, "python"); err != nil {
			return nil, fmt.Errorf("model %s: %w (set it up with launchers/%s/setup.sh)", m.ID, err, m.Kit)
		}
		argv := append([]string{python, filepath.Join(dir, m.Kit, "serve.py"), "--host", "{bind}", "--port", "{port}"}, m.Args...)
		return []launcher.ProcessOptions{{Command: token(argv), Env: env}}, nil
	}
	return nil, fmt.Errorf("model %s: launcher kind %q cannot be served", m.ID, m.Launcher)
}

// kitStubVar is the variable that puts a kit in stub mode: NATURELM_V1_1_STUB for naturelm-v1.1.
func kitStubVar(kit string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return unicode.ToUpper(r)
	}, kit) + "_STUB"
}

// envProgram finds a program of a launcher environment: <envs>/<env>/bin/<name>, else <name>
// on the PATH.
func envProgram(o *serveOptions, env, name string) (string, error) {
	envs := o.launcherEnvs
	if envs == "" {
		envs = os.Getenv("BEANS_SLURM_LAUNCHER_ENVS")
	}
	if envs == "" {
		if home, err := os.UserHomeDir(); err == nil {
			envs = filepath.Join(home, ".cache", "beans-slurm", "envs")
		}
	}
	p := filepath.Join(envs, env, "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	if lp, err := exec.LookPath(name); err == nil && name != "python" {
		return lp, nil
	}
	return "", fmt.Errorf("no %s in %s (the launcher environments; the profile's launcher_envs)", name, filepath.Join(envs, env, "bin"))
}

// kitDir is a directory holding the Python kits: --kits-dir, else the kits built into this
// binary, unpacked into a job-private temporary directory.
func kitDir(o *serveOptions, kit string) (string, error) {
	if o.kitsDir != "" {
		if _, err := os.Stat(filepath.Join(o.kitsDir, kit, "serve.py")); err != nil {
			return "", fmt.Errorf("kit %s: %w", kit, err)
		}
		return o.kitsDir, nil
	}
	dir, err := os.MkdirTemp("", "beans-slurm-kits-")
	if err != nil {
		return "", err
	}
	if err := launchers.Unpack(dir); err != nil {
		return "", fmt.Errorf("unpack the launcher kits: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, kit, "serve.py")); err != nil {
		return "", fmt.Errorf("this binary has no kit %q (see launchers/)", kit)
	}
	return dir, nil
}
