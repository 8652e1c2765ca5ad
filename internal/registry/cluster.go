package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	registryfs "github.com/beans-slurm/beans-slurm/registry"
)

// Cluster transports: how the controller reaches a cluster's login node.
const (
	// TransportNative is the built-in SSH client (x/crypto/ssh and SFTP; reads ~/.ssh/config,
	// known_hosts, the agent, ProxyJump). The default.
	TransportNative = "native"
	// TransportOpenSSH runs the system's ssh and sftp programs, for sites that need what only
	// OpenSSH does (ControlMaster sessions, Match blocks, two-factor prompts once per session).
	TransportOpenSSH = "openssh"
)

// Defaults of a cluster profile.
const (
	// DefaultGRES is the GRES template used when gpu.gres is empty.
	DefaultGRES = "gpu:{n}"
	// DefaultPollInitial and DefaultPollMax bound the wait between two squeue/sacct polls.
	DefaultPollInitial = 30 * time.Second
	DefaultPollMax     = 180 * time.Second
)

// EnvClusters names the environment variable that points at the cluster profiles file.
const EnvClusters = "BEANS_SLURM_CLUSTERS"

// Clusters is the cluster profiles file, ~/.config/beans-slurm/clusters.yaml (see
// DefaultClustersPath and docs/clusters.md):
//
//	default: mycluster        # used when neither --cluster nor the sweep names one
//	clusters:
//	  mycluster:
//	    host: login.example.org
//	    work_dir: /shared/me/beans-slurm
//	    gpu: {partition: gpu, gres: "gpu:{n}", time: "12:00:00"}
//	    cpu: {partition: cpu}
//
// Profiles are a map keyed by name, so a name cannot be given twice.
type Clusters struct {
	// Default is the profile used when none is named (optional; see Lookup).
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Clusters are the profiles by name.
	Clusters map[string]Cluster `yaml:"clusters" json:"clusters"`
	// Path is the file the profiles were read from ("" when parsed from memory).
	Path string `yaml:"-" json:"path,omitempty"`
}

// Cluster is one cluster profile: how to reach the cluster and what to ask SLURM for.
type Cluster struct {
	// Name is the profile's key in clusters.yaml.
	Name string `yaml:"-" json:"name"`
	// Local runs sbatch, squeue and sacct on this machine (a login node) instead of over SSH;
	// Host must then be empty.
	Local bool `yaml:"local,omitempty" json:"local,omitempty"`
	// Host is an SSH host name or a Host alias of ~/.ssh/config.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// User, Port, IdentityFile, KnownHosts and ProxyJump override ~/.ssh/config (empty or 0:
	// ssh config decides). IdentityFile and KnownHosts are local paths; "~/" is the home.
	User         string `yaml:"user,omitempty" json:"user,omitempty"`
	Port         int    `yaml:"port,omitempty" json:"port,omitempty"`
	IdentityFile string `yaml:"identity_file,omitempty" json:"identity_file,omitempty"`
	KnownHosts   string `yaml:"known_hosts,omitempty" json:"known_hosts,omitempty"`
	ProxyJump    string `yaml:"proxy_jump,omitempty" json:"proxy_jump,omitempty"`
	// Transport is TransportNative (default) or TransportOpenSSH.
	Transport string `yaml:"transport,omitempty" json:"transport,omitempty"`
	// WorkDir is an absolute directory on the cluster's shared filesystem, seen alike by the
	// login and compute nodes: binaries, scripts, sweeps and results go under it.
	WorkDir string `yaml:"work_dir" json:"work_dir"`
	// GPU are the defaults of the serving jobs, CPU those of the inference and judge jobs.
	GPU ClusterGPU `yaml:"gpu,omitempty" json:"gpu"`
	CPU ClusterCPU `yaml:"cpu,omitempty" json:"cpu"`
	// Setup are shell lines run at the start of every job, before anything else (module
	// load, conda activate, export of site variables).
	Setup []string `yaml:"setup,omitempty" json:"setup,omitempty"`
	// LauncherEnvs is the directory holding the Python environments of the launcher kits
	// (one per kit); absolute, or relative to WorkDir. Empty: <work_dir>/envs.
	LauncherEnvs string `yaml:"launcher_envs,omitempty" json:"launcher_envs,omitempty"`
	// Env are non-secret environment variables exported in every job.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Poll bounds the wait between two status polls of a sweep (backing off from Initial to
	// Max).
	Poll ClusterPoll `yaml:"poll,omitempty" json:"poll"`
}

// ClusterGPU are the sbatch options of GPU (serving) jobs.
type ClusterGPU struct {
	Partition string `yaml:"partition,omitempty" json:"partition,omitempty"`
	// GRES is the --gres template; {n} becomes the number of GPUs the model needs (see
	// Cluster.GRES). Empty: DefaultGRES.
	GRES       string `yaml:"gres,omitempty" json:"gres,omitempty"`
	Account    string `yaml:"account,omitempty" json:"account,omitempty"`
	QOS        string `yaml:"qos,omitempty" json:"qos,omitempty"`
	Time       string `yaml:"time,omitempty" json:"time,omitempty"`
	Exclude    string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	Constraint string `yaml:"constraint,omitempty" json:"constraint,omitempty"`
	CPUs       int    `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Memory     string `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Extra are further sbatch options, each written as one "#SBATCH <item>" line.
	Extra []string `yaml:"extra,omitempty" json:"extra,omitempty"`
}

// ClusterCPU are the sbatch options of CPU (inference, judge) jobs.
type ClusterCPU struct {
	Partition string   `yaml:"partition,omitempty" json:"partition,omitempty"`
	Account   string   `yaml:"account,omitempty" json:"account,omitempty"`
	QOS       string   `yaml:"qos,omitempty" json:"qos,omitempty"`
	Time      string   `yaml:"time,omitempty" json:"time,omitempty"`
	CPUs      int      `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Memory    string   `yaml:"memory,omitempty" json:"memory,omitempty"`
	Exclude   string   `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	Extra     []string `yaml:"extra,omitempty" json:"extra,omitempty"`
}

// ClusterPoll bounds the wait between status polls (Go durations such as 30s, 3m).
type ClusterPoll struct {
	Initial time.Duration `yaml:"initial,omitempty" json:"initial"`
	Max     time.Duration `yaml:"max,omitempty" json:"max"`
}

// GRES returns the --gres value for a job that needs gpus GPUs: the profile's template with
// {n} replaced ("gpu:a100:{n}" → "gpu:a100:2"), DefaultGRES when the template is empty,
// and "" when gpus ≤ 0 (no --gres line).
func (c Cluster) GRES(gpus int) string {
	if gpus <= 0 {
		return ""
	}
	t := c.GPU.GRES
	if t == "" {
		t = DefaultGRES
	}
	return strings.ReplaceAll(t, "{n}", strconv.Itoa(gpus))
}

// LauncherEnvsDir returns the directory of the launcher environments: LauncherEnvs when
// absolute, else joined to WorkDir (<work_dir>/envs when empty). Paths are the cluster's
// (slash-separated).
func (c Cluster) LauncherEnvsDir() string {
	switch {
	case c.LauncherEnvs == "":
		return strings.TrimSuffix(c.WorkDir, "/") + "/envs"
	case strings.HasPrefix(c.LauncherEnvs, "/"):
		return c.LauncherEnvs
	default:
		return strings.TrimSuffix(c.WorkDir, "/") + "/" + c.LauncherEnvs
	}
}

// DefaultClustersPath returns where the cluster profiles live: $BEANS_SLURM_CLUSTERS when
// set, else $XDG_CONFIG_HOME/beans-slurm/clusters.yaml (when XDG_CONFIG_HOME is absolute),
// else ~/.config/beans-slurm/clusters.yaml.
func DefaultClustersPath() (string, error) {
	if p := os.Getenv(EnvClusters); p != "" {
		return p, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "beans-slurm", "clusters.yaml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate clusters.yaml: %w; set %s to its path", err, EnvClusters)
	}
	return filepath.Join(home, ".config", "beans-slurm", "clusters.yaml"), nil
}

// LoadClusters reads and validates a cluster profiles file. A missing file gives an error
// that matches fs.ErrNotExist and says how to create one; problems in the file are reported
// together in one *LoadError with file:line.
func LoadClusters(path string) (*Clusters, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no cluster profiles: %w; create it from registry/clusters.example.yaml (see docs/clusters.md), or point %s at another file", err, EnvClusters)
		}
		return nil, fmt.Errorf("read cluster profiles: %w", err)
	}
	c, err := ParseClusters(data, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseClusters decodes and validates a cluster profiles file held in memory; origin names it
// in problems (and becomes Path).
func ParseClusters(data []byte, origin string) (*Clusters, error) {
	c := &Clusters{}
	err := decodeFile(data, origin, "clusters", "empty file; a clusters file starts with clusters: and one profile per name (see docs/clusters.md)", c, validateClusters)
	if err != nil {
		return nil, err
	}
	c.Path = origin
	for name, cl := range c.Clusters {
		cl.Name = name
		cl.applyDefaults()
		c.Clusters[name] = cl
	}
	return c, nil
}

func (c *Cluster) applyDefaults() {
	if c.Transport == "" && !c.Local {
		c.Transport = TransportNative
	}
	if c.Poll.Initial == 0 {
		c.Poll.Initial = DefaultPollInitial
		if c.Poll.Max != 0 && c.Poll.Max < c.Poll.Initial {
			c.Poll.Initial = c.Poll.Max
		}
	}
	if c.Poll.Max == 0 {
		c.Poll.Max = max(DefaultPollMax, c.Poll.Initial)
	}
}

// Names returns the profile names, sorted.
func (c *Clusters) Names() []string {
	return slices.Sorted(maps.Keys(c.Clusters))
}

// Lookup returns the profile called name. An empty name means the file's default: profile,
// else the only profile when there is exactly one. A miss lists close names.
func (c *Clusters) Lookup(name string) (Cluster, error) {
	names := c.Names()
	where := "the cluster profiles"
	if c.Path != "" {
		where = c.Path
	}
	if name == "" {
		switch {
		case c.Default != "":
			name = c.Default
		case len(names) == 1:
			name = names[0]
		case len(names) == 0:
			return Cluster{}, fmt.Errorf("no cluster profiles in %s; add one under clusters: (see docs/clusters.md)", where)
		default:
			return Cluster{}, fmt.Errorf("no cluster named: give --cluster (one of %s) or set default: in %s", strings.Join(names, ", "), where)
		}
	}
	cl, ok := c.Clusters[name]
	if !ok {
		hint := fmt.Sprintf("%s defines no cluster of that name or a close one; add it under clusters: (see docs/clusters.md)", where)
		if len(names) > 0 && len(names) <= 10 {
			hint = fmt.Sprintf("%s defines %s; add it under clusters: (see docs/clusters.md)", where, strings.Join(names, ", "))
		}
		return Cluster{}, &NotFoundError{Kind: KindCluster, Name: name, Suggestions: suggest(name, names, maxSuggestions), Known: len(names), Hint: hint}
	}
	cl.Env = maps.Clone(cl.Env)
	cl.Setup = slices.Clone(cl.Setup)
	cl.GPU.Extra = slices.Clone(cl.GPU.Extra)
	cl.CPU.Extra = slices.Clone(cl.CPU.Extra)
	return cl, nil
}

// Select returns the profile named by the first non-empty name (e.g. the --cluster flag, then
// the sweep's cluster:), falling back to Lookup("") when all are empty.
func (c *Clusters) Select(names ...string) (Cluster, error) {
	for _, n := range names {
		if n != "" {
			return c.Lookup(n)
		}
	}
	return c.Lookup("")
}

var (
	// reSbatchWord is a value written into an #SBATCH line that must be one word.
	reSbatchWord = regexp.MustCompile(`^[^\s#'"\\$` + "`" + `]+$`)
	reSecretName = regexp.MustCompile(`(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|CREDENTIAL|PRIVATE_KEY)`)
)

func validateClusters(c *Clusters, n *yaml.Node, report reportFunc) {
	if len(c.Clusters) == 0 {
		report(lineOf(n, "clusters"), "clusters: define at least one profile (clusters: {NAME: {host: …, work_dir: …}}); see docs/clusters.md")
	}
	if c.Default != "" {
		if _, ok := c.Clusters[c.Default]; !ok && len(c.Clusters) > 0 {
			msg := fmt.Sprintf("default: no profile is called %q", c.Default)
			if s := suggest(c.Default, slices.Collect(maps.Keys(c.Clusters)), 1); len(s) > 0 {
				msg += "; did you mean " + s[0] + "?"
			}
			report(lineOf(n, "default"), "%s", msg)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Clusters)) {
		cl := c.Clusters[name]
		validateCluster(name, &cl, n, report)
	}
}

func validateCluster(name string, c *Cluster, root *yaml.Node, report reportFunc) {
	at := func(path ...any) int { return lineOf(root, append([]any{"clusters", name}, path...)...) }
	p := "cluster " + name + ": "
	if !reID.MatchString(name) {
		report(at(), "%sname: use letters, digits, '_', '-' and '.' only, starting with a letter or digit", p)
	}
	switch {
	case c.Local && c.Host != "":
		report(at("host"), "%slocal: true runs on this machine; remove host: (or local:) ", p)
	case !c.Local && c.Host == "":
		report(at(), "%shost: missing; give an SSH host or a Host alias of ~/.ssh/config, or set local: true to run on this machine", p)
	case c.Host != "" && !reSbatchWord.MatchString(c.Host):
		report(at("host"), "%shost %q: give a host name or ssh config alias (one word)", p, c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		report(at("port"), "%sport %d: must be between 1 and 65535 (or unset: ssh config decides)", p, c.Port)
	}
	if c.Local && (c.User != "" || c.Port != 0 || c.IdentityFile != "" || c.KnownHosts != "" || c.ProxyJump != "") {
		report(at("local"), "%slocal: true uses no SSH; remove user, port, identity_file, known_hosts and proxy_jump", p)
	}
	if c.Transport != "" && c.Transport != TransportNative && c.Transport != TransportOpenSSH {
		report(at("transport"), "%stransport %q: must be %s (built-in SSH client, the default) or %s (the system's ssh and sftp)", p, c.Transport, TransportNative, TransportOpenSSH)
	}
	switch {
	case c.WorkDir == "":
		report(at("work_dir"), "%swork_dir: missing; give an absolute directory on the cluster's shared filesystem (e.g. /shared/$USER/beans-slurm written out)", p)
	case !strings.HasPrefix(c.WorkDir, "/"):
		report(at("work_dir"), "%swork_dir %q: must be an absolute path on the cluster (starting with /; ~ and $VARS are not expanded)", p, c.WorkDir)
	case strings.ContainsAny(c.WorkDir, " \t\n$`\"'\\"):
		report(at("work_dir"), "%swork_dir %q: no spaces, quotes or $ (it is written into job scripts)", p, c.WorkDir)
	}
	if c.LauncherEnvs != "" && strings.ContainsAny(c.LauncherEnvs, " \t\n$`\"'\\") {
		report(at("launcher_envs"), "%slauncher_envs %q: no spaces, quotes or $ (it is written into job scripts)", p, c.LauncherEnvs)
	}
	g := c.GPU
	if g.GRES != "" {
		switch {
		case !strings.Contains(g.GRES, "{n}"):
			report(at("gpu", "gres"), "%sgpu.gres %q: a template with {n} for the number of GPUs, e.g. \"gpu:{n}\" or \"gpu:a100:{n}\" (or leave it empty for gpu:{n})", p, g.GRES)
		case strings.Contains(strings.ReplaceAll(g.GRES, "{n}", ""), "{") || !reSbatchWord.MatchString(g.GRES):
			report(at("gpu", "gres"), "%sgpu.gres %q: only {n} is replaced; write e.g. \"gpu:a100:{n}\"", p, g.GRES)
		}
	}
	checkJob := func(kind, partition, account, qos, tm, memory, exclude string, cpus int, extra []string) {
		for _, f := range []struct{ key, val string }{{"partition", partition}, {"account", account}, {"qos", qos}, {"exclude", exclude}} {
			if f.val != "" && !reSbatchWord.MatchString(f.val) {
				report(at(kind, f.key), "%s%s.%s %q: one word without spaces, quotes or $", p, kind, f.key, f.val)
			}
		}
		if tm != "" && !reTime.MatchString(tm) {
			report(at(kind, "time"), "%s%s.time %q: give a SLURM time such as \"12:00:00\" or \"1-00:00:00\" (quote it)", p, kind, tm)
		}
		if memory != "" && !reMemory.MatchString(memory) {
			report(at(kind, "memory"), "%s%s.memory %q: give a SLURM size such as 64G or 16000M", p, kind, memory)
		}
		if cpus < 0 {
			report(at(kind, "cpus"), "%s%s.cpus %d: must be 0 (SLURM's default) or more", p, kind, cpus)
		}
		for i, e := range extra {
			switch {
			case strings.TrimSpace(e) == "":
				report(at(kind, "extra", i), "%s%s.extra: item %d is empty", p, kind, i+1)
			case strings.ContainsAny(e, "\n\r"):
				report(at(kind, "extra", i), "%s%s.extra: item %d spans lines; give one sbatch option per item", p, kind, i+1)
			case !strings.HasPrefix(e, "-"):
				report(at(kind, "extra", i), "%s%s.extra: %q is not an sbatch option; write it as on the command line, e.g. --mail-type=FAIL", p, kind, e)
			}
		}
	}
	checkJob("gpu", g.Partition, g.Account, g.QOS, g.Time, g.Memory, g.Exclude, g.CPUs, g.Extra)
	if strings.ContainsAny(g.Constraint, "\n\r#") {
		report(at("gpu", "constraint"), "%sgpu.constraint %q: one line, without #", p, g.Constraint)
	}
	u := c.CPU
	checkJob("cpu", u.Partition, u.Account, u.QOS, u.Time, u.Memory, u.Exclude, u.CPUs, u.Extra)
	for i, s := range c.Setup {
		if strings.TrimSpace(s) == "" {
			report(at("setup", i), "%ssetup: line %d is empty", p, i+1)
		}
	}
	checkEnvValues(p, c.Env, func(k string) int { return at("env", k) }, report)
	if c.Poll.Initial < 0 || c.Poll.Max < 0 {
		report(at("poll"), "%spoll: durations must be positive (e.g. initial: 30s, max: 3m)", p)
	} else if c.Poll.Initial > 0 && c.Poll.Max > 0 && c.Poll.Max < c.Poll.Initial {
		report(at("poll", "max"), "%spoll.max %v is shorter than poll.initial %v", p, c.Poll.Max, c.Poll.Initial)
	} else if c.Poll.Initial > 0 && c.Poll.Initial < 5*time.Second {
		report(at("poll", "initial"), "%spoll.initial %v: poll at most every 5s; sites rate-limit squeue and sacct", p, c.Poll.Initial)
	}
}

// checkEnvValues checks a map of environment variables given with their values: names must be
// variable names, and secrets do not belong in a file (they are read from the environment).
func checkEnvValues(prefix string, env map[string]string, lineOfKey func(string) int, report reportFunc) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		switch {
		case !reEnvVar.MatchString(k):
			report(lineOfKey(k), "%senv: %q is not an environment variable name", prefix, k)
		case reSecretName.MatchString(k):
			report(lineOfKey(k), "%senv: %s looks like a secret; keep secrets out of configuration files: export it in your shell (or a file only you can read, sourced by a setup: line)", prefix, k)
		case strings.ContainsAny(env[k], "\n\r"):
			report(lineOfKey(k), "%senv: the value of %s spans lines", prefix, k)
		}
	}
}

// ExampleClusters returns the documented example of a clusters file
// (registry/clusters.example.yaml), e.g. to start a user's clusters.yaml from.
func ExampleClusters() []byte {
	b, err := fs.ReadFile(registryfs.FS, exampleClustersFile)
	if err != nil {
		panic("registry: the embedded " + exampleClustersFile + " is missing: " + err.Error())
	}
	return b
}

const exampleClustersFile = "clusters.example.yaml"
