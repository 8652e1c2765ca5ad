package registry

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	registryfs "github.com/beans-slurm/beans-slurm/registry"
)

// Kinds of registry entries; each lives in the directory of the same name plus "s"
// (tasks/, suites/, prompts/, models/, sweeps/). Clusters are not registry entries: they
// live in the user's clusters.yaml (see LoadClusters); KindCluster names them in errors.
const (
	KindTask    = "task"
	KindSuite   = "suite"
	KindPrompt  = "prompt"
	KindModel   = "model"
	KindSweep   = "sweep"
	KindCluster = "cluster"
)

// EmbeddedPrefix starts the origin of every entry of the embedded registry.
const EmbeddedPrefix = "embedded:registry/"

// Registry holds the tasks, suites, prompts, model presets and sweeps of the embedded registry and
// of any user directories, validated. It is read-only once loaded and safe for concurrent
// use. Build one with Default or Load.
type Registry struct {
	tasks   map[string]*entry[Task]
	suites  map[string]*entry[Suite]
	prompts map[string]*entry[Prompt]
	models  map[string]*entry[Model]
	sweeps  map[string]*entry[SweepConfig]
	// aliases maps a model alias to the model's id.
	aliases map[string]string
	// templates holds each prompt's compiled template.
	templates map[string]*template.Template
}

// entry is one registry entry and where it came from.
type entry[T any] struct {
	val    T
	origin string
	// node is the file's root mapping, for the lines of later problems.
	node *yaml.Node
	// overrides are the origins of the entries this one replaced, oldest first.
	overrides []string
}

// layer is one source of registry files: the embedded registry or a user directory.
type layer struct {
	fsys fs.FS
	// name turns a slash path inside fsys ("tasks/x.yaml") into an origin.
	name func(rel string) string
}

func embeddedLayer() layer {
	return fsLayer(registryfs.FS, strings.TrimSuffix(EmbeddedPrefix, "/"))
}

// fsLayer names the files of fsys origin + "/" + path.
func fsLayer(fsys fs.FS, origin string) layer {
	return layer{fsys: fsys, name: func(rel string) string { return origin + "/" + rel }}
}

func dirLayer(dir string) (layer, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return layer{}, fmt.Errorf("registry directory %s: %w; give an existing directory holding tasks/, suites/, prompts/, models/ or sweeps/", dir, err)
	}
	if !fi.IsDir() {
		return layer{}, fmt.Errorf("registry directory %s: not a directory; give a directory holding tasks/, suites/, prompts/, models/ or sweeps/", dir)
	}
	return layer{fsys: os.DirFS(dir), name: func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }}, nil
}

// Default loads the embedded registry.
func Default() (*Registry, error) {
	return load(embeddedLayer())
}

// Load loads the embedded registry, then each directory in order. A directory has the same
// layout as the embedded registry (tasks/, suites/, prompts/, models/, sweeps/, one entry per
// <id>.yaml file); missing subdirectories are fine, a missing directory is an error. A later
// entry replaces an earlier one with the same id (see Origin and Overrides). Every problem
// found is reported in one *LoadError.
func Load(dirs ...string) (*Registry, error) {
	layers := []layer{embeddedLayer()}
	for _, d := range dirs {
		l, err := dirLayer(d)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return load(layers...)
}

// LoadFS loads the embedded registry, then fsys as a registry directory whose files are
// named origin + "/" + path in origins and problems. It serves tests and callers holding a
// registry in memory.
func LoadFS(fsys fs.FS, origin string) (*Registry, error) {
	return load(embeddedLayer(), fsLayer(fsys, origin))
}

// load reads the layers in order and validates the result.
func load(layers ...layer) (*Registry, error) {
	r := &Registry{
		tasks:     map[string]*entry[Task]{},
		suites:    map[string]*entry[Suite]{},
		prompts:   map[string]*entry[Prompt]{},
		models:    map[string]*entry[Model]{},
		sweeps:    map[string]*entry[SweepConfig]{},
		aliases:   map[string]string{},
		templates: map[string]*template.Template{},
	}
	var ps problems
	broken := map[string]bool{} // kind + "/" + id of files that could not be decoded
	for _, l := range layers {
		loadKind(l, KindTask, r.tasks, func(t *Task) string { return t.ID }, validateTask, &ps, broken)
		loadKind(l, KindSuite, r.suites, func(s *Suite) string { return s.ID }, validateSuite, &ps, broken)
		loadKind(l, KindPrompt, r.prompts, func(p *Prompt) string { return p.ID }, validatePrompt, &ps, broken)
		loadKind(l, KindModel, r.models, func(m *Model) string { return m.ID }, validateModel, &ps, broken)
		loadKind(l, KindSweep, r.sweeps, func(s *SweepConfig) string { return s.ID }, validateSweep, &ps, broken)
	}
	r.crossCheck(&ps, broken)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// loadKind reads every <id>.yaml of one kind's directory of a layer into m.
func loadKind[T any](l layer, kind string, m map[string]*entry[T], idOf func(*T) string,
	validate func(*T, *yaml.Node, func(int, string, ...any)), ps *problems, broken map[string]bool) {
	dir := kind + "s"
	des, err := fs.ReadDir(l.fsys, dir)
	if err != nil {
		if !isNotExist(err) {
			ps.add(l.name(dir), 0, "read directory: %v", err)
		}
		return
	}
	for _, de := range des {
		name := de.Name()
		rel := path.Join(dir, name)
		origin := l.name(rel)
		if de.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		ext := path.Ext(name)
		if ext == ".yml" {
			ps.add(origin, 0, "registry files end in .yaml; rename it to %s", strings.TrimSuffix(name, ext)+".yaml")
			continue
		}
		if ext != ".yaml" {
			continue
		}
		stem := strings.TrimSuffix(name, ext)
		data, err := fs.ReadFile(l.fsys, rel)
		if err != nil {
			ps.add(origin, 0, "read: %v", err)
			broken[kind+"/"+stem] = true
			continue
		}
		var v T
		node, msgs := decodeStrict(data, &v)
		decoded := map[int]bool{} // lines with decoding problems
		for _, lm := range msgs {
			ps.add(origin, lm.line, "%s", lm.msg)
			decoded[lm.line] = true
		}
		if node == nil {
			broken[kind+"/"+stem] = true
			continue
		}
		// After unknown keys or wrong value types the rest of the entry is still decoded:
		// check it too, except on the lines already reported.
		report := func(line int, format string, args ...any) {
			if !decoded[line] {
				ps.add(origin, line, format, args...)
			}
		}
		if id := idOf(&v); id != stem {
			if id == "" {
				report(lineOf(node), "missing id; add id: %s", stem)
			} else {
				report(lineOf(node, "id"), "id %q does not match the file name %s; the id must equal the file name without .yaml (rename the file or set id: %s)", id, name, stem)
			}
		}
		validate(&v, node, report)
		if len(msgs) > 0 {
			broken[kind+"/"+stem] = true
			continue
		}
		e := &entry[T]{val: v, origin: origin, node: node}
		if old, ok := m[stem]; ok {
			e.overrides = append(slices.Clone(old.overrides), old.origin)
		}
		delete(broken, kind+"/"+stem)
		m[stem] = e
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// lookupError builds the error of an unknown name, with close names.
func lookupError(kind, name string, names []string) error {
	return &NotFoundError{Kind: kind, Name: name, Suggestions: suggest(name, names, maxSuggestions), Known: len(names)}
}

// Task returns the task with this id.
func (r *Registry) Task(id string) (Task, error) {
	e, ok := r.tasks[id]
	if !ok {
		return Task{}, lookupError(KindTask, id, slices.Collect(maps.Keys(r.tasks)))
	}
	return cloneTask(e.val), nil
}

// Suite returns the suite with this id.
func (r *Registry) Suite(id string) (Suite, error) {
	e, ok := r.suites[id]
	if !ok {
		return Suite{}, lookupError(KindSuite, id, slices.Collect(maps.Keys(r.suites)))
	}
	return cloneSuite(e.val), nil
}

// SuiteTasks returns the tasks of a suite, in the suite's order.
func (r *Registry) SuiteTasks(id string) ([]Task, error) {
	s, err := r.Suite(id)
	if err != nil {
		return nil, err
	}
	out := make([]Task, 0, len(s.Tasks))
	for _, tid := range s.Tasks {
		t, err := r.Task(tid) // checked at load time; kept for safety
		if err != nil {
			return nil, fmt.Errorf("suite %s (%s): %w", id, r.suites[id].origin, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Prompt returns the prompt with this id.
func (r *Registry) Prompt(id string) (Prompt, error) {
	e, ok := r.prompts[id]
	if !ok {
		return Prompt{}, lookupError(KindPrompt, id, slices.Collect(maps.Keys(r.prompts)))
	}
	return e.val, nil
}

// Model returns the model preset with this id or alias (e.g. af3 → af_next_local_8000).
func (r *Registry) Model(nameOrAlias string) (Model, error) {
	id := nameOrAlias
	if target, ok := r.aliases[nameOrAlias]; ok {
		id = target
	}
	e, ok := r.models[id]
	if !ok {
		names := slices.Collect(maps.Keys(r.models))
		names = append(names, slices.Collect(maps.Keys(r.aliases))...)
		err := lookupError(KindModel, nameOrAlias, names).(*NotFoundError)
		err.Known = len(r.models)
		return Model{}, err
	}
	return cloneModel(e.val), nil
}

// Sweep returns the sweep with this id (a file sweeps/<id>.yaml of the registry).
func (r *Registry) Sweep(id string) (SweepConfig, error) {
	e, ok := r.sweeps[id]
	if !ok {
		return SweepConfig{}, lookupError(KindSweep, id, slices.Collect(maps.Keys(r.sweeps)))
	}
	s := cloneSweep(e.val)
	s.origin, s.node = e.origin, e.node
	return s, nil
}

// Sweeps returns all sweeps, sorted by id.
func (r *Registry) Sweeps() []SweepConfig {
	out := make([]SweepConfig, 0, len(r.sweeps))
	for _, id := range sortedIDs(r.sweeps) {
		s, _ := r.Sweep(id)
		out = append(out, s)
	}
	return out
}

// Tasks returns all tasks, sorted by id.
func (r *Registry) Tasks() []Task { return sortedValues(r.tasks, cloneTask) }

// Suites returns all suites, sorted by id.
func (r *Registry) Suites() []Suite { return sortedValues(r.suites, cloneSuite) }

// Prompts returns all prompts, sorted by id.
func (r *Registry) Prompts() []Prompt {
	return sortedValues(r.prompts, func(p Prompt) Prompt { return p })
}

// Models returns all model presets, sorted by id.
func (r *Registry) Models() []Model { return sortedValues(r.models, cloneModel) }

func sortedValues[T any](m map[string]*entry[T], clone func(T) T) []T {
	ids := slices.Sorted(maps.Keys(m))
	out := make([]T, len(ids))
	for i, id := range ids {
		out[i] = clone(m[id].val)
	}
	return out
}

// Origin returns where the entry of this kind ("task", "suite", "prompt", "model", "sweep"; the plural
// works too) and id came from: "embedded:registry/tasks/x.yaml" or the path of a user file.
// A model alias gives its model's origin. It returns "" for an unknown entry.
func (r *Registry) Origin(kind, id string) string {
	if o := r.origins(kind, id); len(o) > 0 {
		return o[len(o)-1]
	}
	return ""
}

// Overrides returns the origins of the entries that the entry of this kind and id replaced,
// oldest first (nil when it replaced none).
func (r *Registry) Overrides(kind, id string) []string {
	if o := r.origins(kind, id); len(o) > 1 {
		return o[:len(o)-1]
	}
	return nil
}

// origins returns the overridden origins followed by the entry's own.
func (r *Registry) origins(kind, id string) []string {
	get := func(origin string, overrides []string) []string {
		return append(slices.Clone(overrides), origin)
	}
	switch strings.TrimSuffix(kind, "s") {
	case KindTask:
		if e, ok := r.tasks[id]; ok {
			return get(e.origin, e.overrides)
		}
	case KindSuite:
		if e, ok := r.suites[id]; ok {
			return get(e.origin, e.overrides)
		}
	case KindPrompt:
		if e, ok := r.prompts[id]; ok {
			return get(e.origin, e.overrides)
		}
	case KindSweep:
		if e, ok := r.sweeps[id]; ok {
			return get(e.origin, e.overrides)
		}
	case KindModel:
		if target, ok := r.aliases[id]; ok {
			id = target
		}
		if e, ok := r.models[id]; ok {
			return get(e.origin, e.overrides)
		}
	}
	return nil
}

func cloneTask(t Task) Task {
	t.DatasetNames = slices.Clone(t.DatasetNames)
	t.Labels = slices.Clone(t.Labels)
	t.GenerationConfig = maps.Clone(t.GenerationConfig)
	return t
}

func cloneSuite(s Suite) Suite {
	s.Tasks = slices.Clone(s.Tasks)
	return s
}

func cloneModel(m Model) Model {
	m.Aliases = slices.Clone(m.Aliases)
	m.Args = slices.Clone(m.Args)
	m.Env = slices.Clone(m.Env)
	return m
}

// sortedIDs returns the keys of m in order.
func sortedIDs[T any](m map[string]*entry[T]) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
