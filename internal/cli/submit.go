package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

type submitOptions struct {
	cluster  clusterFlags
	models   []string
	suite    string
	tasks    []string
	limit    int
	shards   int
	dryRun   bool
	sweep    string
	config   string
	resume   string
	stub     bool
	binary   string
	dataDir  string
	revision string
}

func newSubmitCmd(ios IO, g *globals) *cobra.Command {
	o := &submitOptions{}
	cmd := &cobra.Command{
		Use:   "submit --cluster C --model M [--model M2]... --suite S [--task T]... [--shards K] [--dry-run]",
		Short: "Submit a sweep: a serving job per model and its inference jobs, over SSH",
		Long: `Plans one serving job (GPU) per model and its inference work (CPU: one job, or a job array
of --shards shards that share the serving job), renders the sbatch scripts, uploads the binary
(once per version, by content hash) and the scripts, submits, and prints the jobs.

Submission is idempotent: jobs of the sweep that are still queued or running are found by name
and never started twice, so a submit cut off by a dropped connection is simply run again.
--resume SWEEP resubmits only what failed or never ran; the workers skip the tasks already done.`,
		Example: `  beans-slurm submit --cluster mycluster --model af3 --model naturelm_v1_1 --suite beans_zero_core
  beans-slurm submit --config beans_zero_paper --cluster mycluster --dry-run
  beans-slurm submit --resume af3-20261126-101500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return submitRun(cmd, ios, g, o) },
	}
	f := cmd.Flags()
	o.cluster.flags(f)
	f.StringArrayVar(&o.models, "model", nil, "model preset or alias (repeatable)")
	f.StringVar(&o.suite, "suite", "", "suite to run")
	f.StringArrayVar(&o.tasks, "task", nil, "task to run (repeatable); with --suite, only these tasks of it")
	f.IntVar(&o.limit, "limit", 0, "only the first `N` samples of each task (0 = all)")
	f.IntVar(&o.shards, "shards", 0, "split each model's tasks over `K` inference jobs (a job array; default 1)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print every rendered script and remote command; touch nothing")
	f.StringVar(&o.sweep, "sweep", "", "the sweep's `name` (default: first model and the time)")
	f.StringVar(&o.config, "config", "", "a sweep `file` (sweep.yaml) or a registry sweep name; flags override it")
	f.StringVar(&o.resume, "resume", "", "resubmit what failed or never ran in `SWEEP`")
	f.BoolVar(&o.stub, "stub", false, "serve every model's stub (the built-in dummy under the preset's name): checks the pipeline without weights")
	f.StringVar(&o.binary, "binary", "", "the beans-slurm `binary` to upload (linux, the cluster's architecture; default: this one)")
	f.StringVar(&o.dataDir, "data-dir", "", "BEANS-Zero on the cluster's shared filesystem (`path` there; default: the Hub)")
	f.StringVar(&o.revision, "revision", "", "pin the dataset's revision")
	return cmd
}

// buildSpec merges a sweep file (or registry sweep) and the flags into a plan's spec.
func (o *submitOptions) buildSpec(reg *registry.Registry) (slurm.Spec, string, error) {
	var cfg registry.SweepConfig
	if o.config != "" {
		var err error
		if _, serr := os.Stat(o.config); serr == nil {
			cfg, err = registry.LoadSweepConfig(o.config)
			if err == nil {
				err = reg.CheckSweep(cfg)
			}
		} else {
			cfg, err = reg.Sweep(o.config)
		}
		if err != nil {
			return slurm.Spec{}, "", err
		}
	}
	spec := slurm.Spec{Name: cfg.ID, Suite: cfg.Suite, Tasks: cfg.Tasks, Limit: cfg.Limit, Shards: cfg.Shards, Version: version.Version}
	entries := cfg.Models
	if len(o.models) > 0 {
		entries = nil
		for _, m := range o.models {
			entries = append(entries, registry.SweepModel{Model: m})
		}
	}
	if len(entries) == 0 {
		return spec, "", errors.New("give at least one --model (see `beans-slurm list models`) or a --config with models")
	}
	if o.sweep != "" {
		spec.Name = o.sweep
	}
	if o.suite != "" || len(o.tasks) > 0 {
		spec.Suite, spec.Tasks = o.suite, o.tasks
	}
	if o.limit > 0 {
		spec.Limit = o.limit
	}
	if o.shards > 0 {
		spec.Shards = o.shards
	}
	if spec.Suite == "" && len(spec.Tasks) == 0 {
		return spec, "", errors.New("give --suite SUITE or --task TASK (see `beans-slurm list suites`)")
	}
	if _, err := selectTasks(reg, spec.Suite, spec.Tasks); err != nil {
		return spec, "", err
	}
	for _, e := range entries {
		preset, err := reg.Model(e.Model)
		if err != nil {
			return spec, "", err
		}
		p := e.Apply(preset)
		spec.Models = append(spec.Models, slurm.ModelSpec{
			ID: e.ResultName(preset.ID), Preset: preset.ID, GPUs: p.GPUs, Time: p.Time, Memory: p.Memory,
			Env: e.Env, Stub: e.Stub || o.stub, LauncherArgs: e.Args,
		})
	}
	if spec.Name == "" {
		spec.Name = slurm.NewSweepName(spec.Models[0].ID, time.Now())
	}
	if o.dataDir != "" {
		spec.RunArgs = append(spec.RunArgs, "--data-dir", o.dataDir)
	}
	if o.revision != "" {
		spec.RunArgs = append(spec.RunArgs, "--revision", o.revision)
	}
	return spec, cfg.Cluster, nil
}

func submitRun(cmd *cobra.Command, ios IO, g *globals, o *submitOptions) error {
	ctx := cmd.Context()
	logger := g.logger(ios)
	store, err := sweepStore()
	if err != nil {
		return err
	}
	if o.resume != "" {
		return resumeRun(cmd, ios, g, o, store)
	}
	reg, err := g.registry()
	if err != nil {
		return err
	}
	spec, cfgCluster, err := o.buildSpec(reg)
	if err != nil {
		return configError(err)
	}
	cl, err := o.cluster.load(cfgCluster)
	if err != nil {
		return err
	}
	prof := profile(cl)
	if prev, err := store.Load(spec.Name); err == nil && !o.dryRun {
		if prev.Models != nil && len(prev.JobIDs("")) > 0 {
			return configError(fmt.Errorf("sweep %s was already submitted (%s); resume it with `beans-slurm submit --resume %s`, or choose another --sweep", spec.Name, prev.Created.Format(time.RFC3339), spec.Name))
		}
	}
	token, err := slurm.NewToken()
	if err != nil {
		return err
	}
	regFiles, regDirs, err := registrySnapshot(g)
	if err != nil {
		return err
	}
	spec.RegistryDirs = regDirs

	if o.dryRun {
		bin := o.binary
		if bin == "" {
			bin, _ = os.Executable()
		}
		name, err := binaryName(bin)
		if err != nil {
			return fmt.Errorf("hash %s: %w", bin, err)
		}
		m, files, err := slurm.Plan(spec, prof, path.Join(cl.WorkDir, "bin", name), time.Now())
		if err != nil {
			return configError(err)
		}
		m.Where = clusterWhere(cl)
		return printDryRun(ios, m, files, regFiles, spec, name)
	}

	t, err := connect(ctx, ios, logger, cl)
	if err != nil {
		return err
	}
	defer t.Close()
	names := make([]string, 0, 2*len(spec.Models))
	for _, ms := range spec.Models {
		names = append(names, "beans-"+spec.Name+"-"+ms.ID+"-serve", "beans-"+spec.Name+"-"+ms.ID+"-infer")
	}
	probe, err := slurm.ProbeCluster(ctx, t, cl.WorkDir, names)
	if err != nil {
		return err
	}
	goarch, err := slurm.GOARCH(probe.Arch)
	if err != nil {
		return configError(err)
	}
	bin, err := localBinary(o.binary, goarch)
	if err != nil {
		return configError(err)
	}
	name, err := binaryName(bin)
	if err != nil {
		return fmt.Errorf("hash %s: %w", bin, err)
	}
	remoteBin := path.Join(cl.WorkDir, "bin", name)
	m, files, err := slurm.Plan(spec, prof, remoteBin, time.Now())
	if err != nil {
		return configError(err)
	}
	m.Where = t.String()
	if !probe.HasBinary(name) {
		logger.Info("uploading the binary (once per version)", "to", remoteBin)
		f, err := os.Open(bin)
		if err != nil {
			return err
		}
		err = t.WriteFile(ctx, remoteBin, f, 0o755)
		f.Close()
		if err != nil {
			return fmt.Errorf("upload %s to %s: %w", bin, remoteBin, err)
		}
	}
	// The manifest is saved before anything is submitted: a submit cut off half-way is found
	// again by name and resumed.
	if err := store.Save(m); err != nil {
		return err
	}
	opts := slurm.SubmitOptions{Token: token, Extra: regFiles, Live: probe.Live, Log: logger.Info}
	if err := slurm.Upload(ctx, t, m, files, opts); err != nil {
		return err
	}
	return submitAndReport(cmd, ios, t, store, m, opts)
}

func submitAndReport(cmd *cobra.Command, ios IO, t remote.Transport, store slurm.Store, m *slurm.Manifest, opts slurm.SubmitOptions) error {
	ctx := cmd.Context()
	got, subErr := slurm.Submit(ctx, &slurm.Client{T: t}, m, opts)
	if err := store.Save(m); err != nil {
		return err
	}
	if err := writeRemoteManifest(cmd, t, m); err != nil && subErr == nil {
		subErr = err
	}
	printJobs(ios, m, got)
	if subErr != nil {
		return fmt.Errorf("submit sweep %s: %w (run `beans-slurm submit --resume %s` to retry; live jobs are never duplicated)", m.Name, subErr, m.Name)
	}
	var failed []string
	for _, s := range got {
		if s.Err != nil {
			failed = append(failed, s.Key+": "+s.Err.Error())
		}
	}
	if len(failed) > 0 {
		return &exitError{code: ExitFail, err: fmt.Errorf("some jobs were not submitted:\n  %s\nfix the cause, then `beans-slurm submit --resume %s`", strings.Join(failed, "\n  "), m.Name)}
	}
	fmt.Fprintf(ios.Out, "\nfollow it: beans-slurm status %s --watch; results: beans-slurm fetch %s\n", m.Name, m.Name)
	return nil
}

func writeRemoteManifest(cmd *cobra.Command, t remote.Transport, m *slurm.Manifest) error {
	b, err := slurm.MarshalManifest(m)
	if err != nil {
		return err
	}
	if err := t.WriteFile(cmd.Context(), m.File(), bytes.NewReader(b), 0o644); err != nil {
		return fmt.Errorf("write the sweep manifest on the cluster: %w", err)
	}
	return nil
}

func resumeRun(cmd *cobra.Command, ios IO, g *globals, o *submitOptions, store slurm.Store) error {
	ctx := cmd.Context()
	logger := g.logger(ios)
	m, err := store.Load(o.resume)
	if err != nil {
		return configError(err)
	}
	cl, err := o.cluster.load(m.Cluster)
	if err != nil {
		return err
	}
	if o.dryRun {
		return configError(errors.New("--dry-run with --resume: run `beans-slurm status` to see what would be resubmitted"))
	}
	t, err := connect(ctx, ios, logger, cl)
	if err != nil {
		return err
	}
	defer t.Close()
	probe, err := slurm.ProbeCluster(ctx, t, cl.WorkDir, m.JobNames())
	if err != nil {
		return err
	}
	jobs, _, err := (&slurm.Client{T: t}).Query(ctx, m.JobIDs(""))
	if err != nil {
		return err
	}
	states := map[string]slurm.Job{}
	for _, j := range jobs {
		states[j.ID] = j
	}
	return submitAndReport(cmd, ios, t, store, m, slurm.SubmitOptions{Live: probe.Live, Resume: true, States: states, Log: logger.Info})
}

func clusterWhere(c registry.Cluster) string {
	if c.Local {
		return "local"
	}
	return "ssh " + c.Host
}

func printJobs(ios IO, m *slurm.Manifest, got []slurm.Submitted) {
	errs := map[string]error{}
	for _, s := range got {
		errs[s.Key] = s.Err
	}
	fmt.Fprintf(ios.Out, "sweep %s on %s (%s)\n", m.Name, m.Cluster, m.Dir)
	tw := tabwriter.NewWriter(ios.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tROLE\tJOB\tNAME\tNOTE")
	for _, mm := range m.Models {
		for _, j := range []slurm.JobRef{mm.Serve, mm.Infer} {
			note := ""
			if err := errs[mm.Model+"/"+j.Role]; err != nil {
				note = "not submitted: " + err.Error()
			} else if _, ok := errs[mm.Model+"/"+j.Role]; !ok && j.ID != "" {
				note = "kept (already queued, running or done)"
			}
			id := j.ID
			if id == "" {
				id = "—"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mm.Model, j.Role, id, j.Name, note)
		}
	}
	tw.Flush()
}

func printDryRun(ios IO, m *slurm.Manifest, files []slurm.File, reg []slurm.File, spec slurm.Spec, binName string) error {
	w := ios.Out
	fmt.Fprintf(w, "# dry run of sweep %s on cluster %s (%s): nothing is connected, uploaded or submitted\n\n", m.Name, m.Cluster, m.Where)
	fmt.Fprintf(w, "# remote commands, in order:\n")
	fmt.Fprintf(w, "#  1. probe: uname -m; mkdir -p %s; ls %s; %s\n", path.Join(path.Dir(m.Binary)), path.Dir(m.Binary), slurm.FindCommand(m.JobNames()))
	fmt.Fprintf(w, "#  2. upload the binary (if %s is not there yet) to %s (SFTP, 0755)\n", binName, m.Binary)
	fmt.Fprintf(w, "#  3. mkdir -p the sweep's directories; tar -x the %d scripts, the 0600 token (only if none yet)%s into %s\n", len(files), map[bool]string{true: fmt.Sprintf(" and %d registry files", len(reg)), false: ""}[len(reg) > 0], m.Dir)
	fmt.Fprintf(w, "#  4. submit, in one command:\n")
	for _, mm := range m.Models {
		fmt.Fprintf(w, "#       %s\n", remote.Join("sbatch", "--parsable", "--chdir="+m.Dir, mm.Serve.Script))
		fmt.Fprintf(w, "#       %s \"$SERVE_JOB_ID\"\n", remote.Join("sbatch", "--parsable", "--dependency=after:$SERVE_JOB_ID", "--chdir="+m.Dir, mm.Infer.Script))
	}
	fmt.Fprintf(w, "#  5. write %s\n", m.File())
	for _, f := range files {
		fmt.Fprintf(w, "\n# ---- %s\n%s", f.Path, f.Data)
	}
	return nil
}

// registrySnapshot collects the user's registry directories (from --registry and
// BEANS_SLURM_REGISTRY), so that the jobs on the cluster see the same models and tasks.
func registrySnapshot(g *globals) ([]slurm.File, []string, error) {
	dirs := append([]string(nil), g.registryDirs...)
	if env := os.Getenv("BEANS_SLURM_REGISTRY"); env != "" {
		dirs = append(dirs, filepath.SplitList(env)...)
	}
	var files []slurm.File
	var remoteDirs []string
	for i, d := range dirs {
		remoteDirs = append(remoteDirs, path.Join("registry", fmt.Sprintf("%02d", i)))
		err := filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return nil
			}
			rel, err := filepath.Rel(d, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			// Later directories override earlier ones, as locally: keep their order in names.
			files = append(files, slurm.File{Path: path.Join("registry", fmt.Sprintf("%02d", i), filepath.ToSlash(rel)), Data: b, Mode: 0o644})
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("read registry directory %s: %w", d, err)
		}
	}
	return files, remoteDirs, nil
}
