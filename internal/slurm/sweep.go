package slurm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
)

// ManifestSchema names the sweep manifest's format.
const ManifestSchema = "beans-slurm-sweep/1"

// Profile is a cluster profile as the planner needs it.
type Profile struct {
	Name    string
	WorkDir string    // remote, on the shared filesystem
	GPU     Resources // GRES may hold "{n}" for the number of GPUs a model needs
	CPU     Resources
	Setup   []string
	Env     map[string]string
	// LauncherEnvs is where the Python environments of the launcher kits live (absolute).
	LauncherEnvs string
}

// ModelSpec is one model of a sweep with its per-sweep overrides.
type ModelSpec struct {
	ID     string // the model's name in the sweep: job names and result directories use it
	Preset string // the model preset the serving job serves
	GPUs   int
	Time   string // serving job's time limit
	Memory string
	Env    map[string]string // non-secret variables for the serving job
	Stub   bool              // serve the preset's stub instead of the model
	// LauncherArgs, when not nil, replace the preset's launcher arguments.
	LauncherArgs []string
}

// Spec is what a user asked to sweep.
type Spec struct {
	Name    string
	Models  []ModelSpec
	Suite   string
	Tasks   []string
	Limit   int
	Shards  int
	RunArgs []string // extra arguments for the inference jobs' `run` (data location, options)
	// RegistryDirs are registry directories the jobs load (relative to the sweep directory,
	// their working directory): the user's own presets, uploaded with the sweep.
	RegistryDirs []string
	Version      string // the binary's version
}

// Manifest is a sweep as submitted: stored locally under the state directory and beside the
// results on the cluster (sweep.json).
type Manifest struct {
	Schema  string          `json:"schema"`
	Name    string          `json:"name"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
	Cluster string          `json:"cluster"`
	Where   string          `json:"where"` // the transport's name for the cluster
	Dir     string          `json:"dir"`   // the sweep's remote directory
	Binary  string          `json:"binary"`
	Version string          `json:"version"`
	Suite   string          `json:"suite,omitempty"`
	Tasks   []string        `json:"tasks,omitempty"`
	Limit   int             `json:"limit,omitempty"`
	Shards  int             `json:"shards"`
	Models  []ManifestModel `json:"models"`
	Fetched string          `json:"fetched_to,omitempty"` // last local fetch destination
}

// ManifestModel is one model's jobs in a sweep.
type ManifestModel struct {
	Model  string `json:"model"`
	Preset string `json:"preset"`
	Stub   bool   `json:"stub,omitempty"`
	Serve  JobRef `json:"serve"`
	Infer  JobRef `json:"infer"`
	// Judge is the latest judge pass over the model's predictions (beans-slurm judge).
	Judge   *JudgePass `json:"judge,omitempty"`
	History []JobRef   `json:"history,omitempty"` // earlier attempts, newest last
}

// JobRef is a submitted (or planned) job.
type JobRef struct {
	Role      string    `json:"role"` // serve or infer
	Name      string    `json:"name"`
	Script    string    `json:"script"`
	ID        string    `json:"id,omitempty"`
	Submitted time.Time `json:"submitted,omitempty"`
}

// Paths of a sweep on the cluster.
func (m *Manifest) ScriptsDir() string             { return path.Join(m.Dir, "scripts") }
func (m *Manifest) LogDir() string                 { return path.Join(m.Dir, "logs") }
func (m *Manifest) TokenFile() string              { return path.Join(m.Dir, "token") }
func (m *Manifest) ResultsDir(model string) string { return path.Join(m.Dir, "results", model) }
func (m *Manifest) HandoffDir(model string) string { return path.Join(m.Dir, "handoff", model) }
func (m *Manifest) ProgressDir(model string) string {
	return path.Join(m.Dir, "progress", model)
}
func (m *Manifest) File() string { return path.Join(m.Dir, "sweep.json") }

// Model returns the named model's entry.
func (m *Manifest) Model(id string) (*ManifestModel, bool) {
	for i := range m.Models {
		if m.Models[i].Model == id {
			return &m.Models[i], true
		}
	}
	return nil, false
}

// JobIDs lists every current job id of the sweep (or of one model when model is not "").
func (m *Manifest) JobIDs(model string) []string {
	var ids []string
	for _, mm := range m.Models {
		if model != "" && mm.Model != model {
			continue
		}
		for _, j := range mm.Jobs() {
			if j.ID != "" {
				ids = append(ids, j.ID)
			}
		}
	}
	return ids
}

// Jobs are the model's current jobs: serving, inference and the judge pass's.
func (mm *ManifestModel) Jobs() []JobRef {
	js := []JobRef{mm.Serve, mm.Infer}
	if mm.Judge != nil {
		js = append(js, mm.Judge.Serve, mm.Judge.Job)
	}
	return js
}

// JobNames lists every job name of the sweep.
func (m *Manifest) JobNames() []string {
	var names []string
	for _, mm := range m.Models {
		for _, j := range mm.Jobs() {
			names = append(names, j.Name)
		}
	}
	return names
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckName checks a sweep or model name that becomes part of job names and paths.
func CheckName(kind, s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%s name %q: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", kind, s)
	}
	return nil
}

// NewSweepName is a default sweep name: the first model and the date.
func NewSweepName(firstModel string, now time.Time) string {
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, firstModel)
	if len(base) > 24 {
		base = base[:24]
	}
	return base + "-" + now.UTC().Format("20060102-150405")
}

// File is a file the planner wants on the cluster.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// Plan renders a sweep's scripts and its manifest. The binary is the remote path of the
// beans-slurm binary the jobs run.
func Plan(spec Spec, prof Profile, binary string, now time.Time) (*Manifest, []File, error) {
	if err := CheckName("sweep", spec.Name); err != nil {
		return nil, nil, err
	}
	if len(spec.Models) == 0 {
		return nil, nil, errors.New("a sweep needs at least one model")
	}
	if spec.Suite == "" && len(spec.Tasks) == 0 {
		return nil, nil, errors.New("a sweep needs a suite or tasks")
	}
	if spec.Shards < 1 {
		spec.Shards = 1
	}
	if !path.IsAbs(prof.WorkDir) {
		return nil, nil, fmt.Errorf("cluster %s: work_dir %q must be an absolute path on the cluster", prof.Name, prof.WorkDir)
	}
	m := &Manifest{
		Schema: ManifestSchema, Name: spec.Name, Created: now.UTC(), Updated: now.UTC(),
		Cluster: prof.Name, Dir: path.Join(prof.WorkDir, "sweeps", spec.Name), Binary: binary,
		Version: spec.Version, Suite: spec.Suite, Tasks: spec.Tasks, Limit: spec.Limit, Shards: spec.Shards,
	}
	seen := map[string]bool{}
	var files []File
	for _, ms := range spec.Models {
		if err := CheckName("model", ms.ID); err != nil {
			return nil, nil, err
		}
		if ms.Preset == "" {
			ms.Preset = ms.ID
		}
		if seen[ms.ID] {
			return nil, nil, fmt.Errorf("model %s is in the sweep twice", ms.ID)
		}
		seen[ms.ID] = true
		serve, infer, err := planModel(m, spec, prof, ms)
		if err != nil {
			return nil, nil, fmt.Errorf("model %s: %w", ms.ID, err)
		}
		mm := ManifestModel{Model: ms.ID, Preset: ms.Preset, Stub: ms.Stub,
			Serve: JobRef{Role: "serve", Name: serve.JobName, Script: path.Join(m.ScriptsDir(), ms.ID+"-serve.sh")},
			Infer: JobRef{Role: "infer", Name: infer.JobName, Script: path.Join(m.ScriptsDir(), ms.ID+"-infer.sh")},
		}
		for _, p := range []struct {
			s    Script
			path string
		}{{serve, mm.Serve.Script}, {infer, mm.Infer.Script}} {
			b, err := Render(p.s)
			if err != nil {
				return nil, nil, fmt.Errorf("model %s: %w", ms.ID, err)
			}
			files = append(files, File{Path: p.path, Data: b, Mode: 0o700})
		}
		m.Models = append(m.Models, mm)
	}
	return m, files, nil
}

func jobName(sweep, model, role string) string { return "beans-" + sweep + "-" + model + "-" + role }

func planModel(m *Manifest, spec Spec, prof Profile, ms ModelSpec) (serve, infer Script, err error) {
	regArgs := registryArgs(spec.RegistryDirs)
	serve, err = serveScript(m, prof, ms, regArgs, jobName(m.Name, ms.ID, "serve"), m.HandoffDir(ms.ID),
		spec.Shards, jobName(m.Name, ms.ID, "infer"), "the serving job")
	if err != nil {
		return serve, infer, err
	}

	infer = jobScript(m, prof, "infer", jobName(m.Name, ms.ID, "infer"), prof.CPU)
	infer.Resources.GRES = ""
	// Before the time limit the worker is told to stop: it writes what arrived, and a
	// resubmission (submit --resume) continues from there.
	infer.Signal = "B:TERM@120"
	infer.Env = envVars(prof.Env, nil)
	if spec.Shards > 1 {
		infer.ArraySize = spec.Shards
	}
	args := append(append([]string{}, regArgs...), "run")
	if spec.Suite != "" {
		args = append(args, "--suite", spec.Suite)
	}
	for _, t := range spec.Tasks {
		args = append(args, "--task", t)
	}
	if spec.Limit > 0 {
		args = append(args, "--limit", strconv.Itoa(spec.Limit))
	}
	args = append(args, "--output-dir", m.ResultsDir(ms.ID), "--handoff", m.HandoffDir(ms.ID),
		"--token-file", m.TokenFile(), "--shards", strconv.Itoa(spec.Shards),
		"--progress-file", path.Join(m.ProgressDir(ms.ID), "shard-{shard}.json"), "--skip-completed", "--resume",
		// One cache per work directory, on the shared filesystem: every worker of every node
		// shares the data blocks and the answers, and a resubmitted sweep asks nothing twice.
		"--cache-dir", path.Join(prof.WorkDir, "cache"))
	infer.Args = append(args, spec.RunArgs...)
	return serve, infer, nil
}

// jobScript is what every job script of a sweep shares.
func jobScript(m *Manifest, prof Profile, role, name string, res Resources) Script {
	return Script{
		Role: role, JobName: name, Comment: "beans-slurm-sweep=" + m.Name,
		WorkDir: m.Dir, LogDir: m.LogDir(), Resources: res, Setup: prof.Setup, Binary: m.Binary,
	}
}

// registryArgs are the --registry flags of the registry directories uploaded with a sweep.
func registryArgs(dirs []string) []string {
	args := []string{}
	for _, d := range dirs {
		args = append(args, "--registry", d)
	}
	return args
}

// serveScript is the script of a serving job (a model's, or a judge's): a GPU partition when
// the model needs GPUs, `serve` publishing its URL in handoff and ending when expect workers
// are done or no job named inferName is left.
func serveScript(m *Manifest, prof Profile, ms ModelSpec, regArgs []string, name, handoff string, expect int, inferName, what string) (Script, error) {
	res := prof.GPU
	if ms.GPUs <= 0 {
		res = prof.CPU
		res.GRES = ""
	} else {
		res.GRES = strings.ReplaceAll(res.GRES, "{n}", strconv.Itoa(ms.GPUs))
		if res.GRES == "" {
			res.GRES = "gpu:" + strconv.Itoa(ms.GPUs)
		}
	}
	if ms.Time != "" {
		res.Time = ms.Time
	}
	if res.Time == "" {
		return Script{}, fmt.Errorf("%s needs a time limit: set the model's time or the profile's gpu.time", what)
	}
	if ms.Memory != "" {
		res.Memory = ms.Memory
	}
	serve := jobScript(m, prof, "serve", name, res)
	serve.Signal = "B:TERM@120"
	serve.Env = envVars(prof.Env, ms.Env)
	serve.Args = append(append([]string{}, regArgs...), "serve", "--model", ms.Preset,
		"--handoff", handoff, "--token-file", m.TokenFile(),
		"--expect", strconv.Itoa(expect), "--infer-name", inferName)
	if ms.Stub {
		serve.Args = append(serve.Args, "--stub")
	}
	if prof.LauncherEnvs != "" {
		serve.Args = append(serve.Args, "--launcher-envs", prof.LauncherEnvs)
	}
	for _, a := range ms.LauncherArgs {
		serve.Args = append(serve.Args, "--launcher-arg="+a)
	}
	return serve, nil
}

func envVars(maps ...map[string]string) []EnvVar {
	merged := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]EnvVar, 0, len(keys))
	for _, k := range keys {
		out = append(out, EnvVar{Name: k, Value: merged[k]})
	}
	return out
}

// NewToken is a fresh random bearer token for a sweep's launchers.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Store keeps sweep manifests on this machine, one JSON file per sweep.
type Store struct{ Dir string }

// DefaultStoreDir is $BEANS_SLURM_STATE_DIR, else $XDG_STATE_HOME/beans-slurm/sweeps, else
// ~/.local/state/beans-slurm/sweeps.
func DefaultStoreDir() (string, error) {
	if d := os.Getenv("BEANS_SLURM_STATE_DIR"); d != "" {
		return filepath.Join(d, "sweeps"), nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "beans-slurm", "sweeps"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state directory: %w (set BEANS_SLURM_STATE_DIR)", err)
	}
	return filepath.Join(home, ".local", "state", "beans-slurm", "sweeps"), nil
}

// Save writes m atomically.
func (s Store) Save(m *Manifest) error {
	b, err := MarshalManifest(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create the sweep store: %w", err)
	}
	return atomicfile.Write(filepath.Join(s.Dir, m.Name+".json"), b)
}

// Load reads the sweep named name.
func (s Store) Load(name string) (*Manifest, error) {
	if err := CheckName("sweep", name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &UnknownSweepError{Name: name, Known: s.names()}
	}
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}

// MarshalManifest encodes sweep.json.
func MarshalManifest(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseManifest decodes sweep.json.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode sweep manifest: %w", err)
	}
	if m.Schema != ManifestSchema {
		return nil, fmt.Errorf("sweep manifest has schema %q; this beans-slurm reads %q", m.Schema, ManifestSchema)
	}
	return &m, nil
}

// List returns every known sweep, newest first.
func (s Store) List() ([]*Manifest, error) {
	var out []*Manifest
	for _, n := range s.names() {
		m, err := s.Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Latest is the newest sweep.
func (s Store) Latest() (*Manifest, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no sweep is known on this machine (in %s); submit one with `beans-slurm submit`", s.Dir)
	}
	return all[0], nil
}

func (s Store) names() []string {
	ents, _ := os.ReadDir(s.Dir)
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	return names
}

// UnknownSweepError names a sweep this machine does not know.
type UnknownSweepError struct {
	Name  string
	Known []string
}

func (e *UnknownSweepError) Error() string {
	msg := fmt.Sprintf("no sweep named %q on this machine", e.Name)
	if len(e.Known) > 0 {
		msg += " (known: " + strings.Join(e.Known, ", ") + ")"
	}
	return msg + "; see `beans-slurm sweeps`"
}
