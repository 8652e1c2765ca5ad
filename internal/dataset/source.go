package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/blockcache"
	"github.com/beans-slurm/beans-slurm/internal/hub"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// MirrorManifest is the file `beans-slurm data fetch` writes at the root of a mirror: which
// repository and commit the files are a copy of.
const MirrorManifest = ".beans-slurm-mirror.json"

// Mirror describes a local copy of a Hub dataset repository.
type Mirror struct {
	Repo   string        `json:"repo"`
	Commit string        `json:"commit"`
	Files  []MirrorEntry `json:"files"`
}

// MirrorEntry is one file of a mirror, as the Hub listed it.
type MirrorEntry struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Hash string `json:"hash"` // the Hub's cache key: sha256-… (LFS) or git-sha1-…
}

// ReadMirror reads the manifest of a mirror directory; it returns nil, nil when there is none.
func ReadMirror(dir string) (*Mirror, error) {
	b, err := os.ReadFile(filepath.Join(dir, MirrorManifest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Mirror
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not a mirror manifest: %w", filepath.Join(dir, MirrorManifest), err)
	}
	return &m, nil
}

// WriteMirror writes the manifest of a mirror directory.
func WriteMirror(dir string, m *Mirror) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, MirrorManifest), append(b, '\n'))
}

// Location is where a task's rows are: the files to open and what to record about them.
type Location struct {
	Kind     string   // demo, hub, parquet
	Repo     string   // Hub repository (kind hub)
	Revision string   // the revision asked for
	Commit   string   // the resolved commit ("" when unknown, e.g. a mirror without manifest)
	Root     string   // local directory, or the Hub endpoint for remote reads
	Remote   bool     // read from the Hub over HTTP
	Paths    []string // file paths relative to Root (or in the repository)
	Files    []File
}

// Resolver finds the files of tasks' sources: the generated demo, a local copy (--data-dir),
// or the Hugging Face Hub read over HTTP range requests through a block cache. One Resolver
// serves a whole run: revisions and listings are looked up once.
type Resolver struct {
	// DataDir is a local or shared-filesystem copy of the dataset's files; when set, hub and
	// parquet sources read it instead of the network.
	DataDir string
	// DemoDir is where the demo benchmark is generated.
	DemoDir string
	// Revision, when set, overrides the tasks' source revision (hub sources).
	Revision string
	// Hub returns the Hub client, created on first use (nil: hub sources need DataDir).
	Hub func() (*hub.Client, error)
	// Cache, when set, keeps the blocks read from the Hub on disk.
	Cache *blockcache.Cache
	// LabelCacheDir, when set, keeps label vocabularies read from a resolved commit.
	LabelCacheDir string

	mu       sync.Mutex
	commits  map[string]string      // repo@revision → commit
	listings map[string][]hub.Entry // repo@commit → files
}

// Locate returns the files of a task's source.
func (r *Resolver) Locate(ctx context.Context, task registry.Task) (*Location, error) {
	s := task.Source
	loc := &Location{Kind: s.Kind, Repo: s.Repo, Revision: s.Revision}
	if r.Revision != "" && s.Kind == registry.SourceHub {
		loc.Revision = r.Revision
	}
	switch s.Kind {
	case registry.SourceDemo:
		dir := r.DemoDir
		if r.DataDir != "" {
			dir = r.DataDir
		}
		if dir == "" {
			return nil, fmt.Errorf("task %s uses the demo benchmark but no directory was given to generate it in", task.ID)
		}
		root, err := EnsureDemo(ctx, dir)
		if err != nil {
			return nil, err
		}
		return r.local(ctx, loc, root, "*.parquet")
	case registry.SourceParquet:
		if r.DataDir == "" {
			return nil, fmt.Errorf("task %s reads local Parquet files: pass --data-dir PATH (or set BEANS_SLURM_DATA_DIR)", task.ID)
		}
		return r.local(ctx, loc, r.DataDir, defaultGlob(s.Files))
	case registry.SourceHub:
		if loc.Revision == "" {
			loc.Revision = "main"
		}
		if r.DataDir != "" {
			m, err := ReadMirror(r.DataDir)
			if err != nil {
				return nil, err
			}
			if m != nil {
				if m.Repo != s.Repo {
					return nil, fmt.Errorf("--data-dir %s is a mirror of %s, but task %s reads %s", r.DataDir, m.Repo, task.ID, s.Repo)
				}
				if isCommit(loc.Revision) && !strings.HasPrefix(m.Commit, loc.Revision) {
					return nil, fmt.Errorf("--data-dir %s holds %s at commit %s, not the revision %s asked for; fetch it with `beans-slurm data fetch --revision %s`", r.DataDir, m.Repo, m.Commit, loc.Revision, loc.Revision)
				}
				loc.Commit = m.Commit
			}
			return r.local(ctx, loc, r.DataDir, hubGlob(s.Files))
		}
		return r.remote(ctx, loc, task)
	default:
		return nil, fmt.Errorf("task %s has unknown source kind %q", task.ID, s.Kind)
	}
}

func (r *Resolver) local(ctx context.Context, loc *Location, root, glob string) (*Location, error) {
	d, err := OpenLocal(ctx, root, glob)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	loc.Root = root
	for _, f := range d.files {
		rel, err := filepath.Rel(root, f.Name)
		if err != nil {
			rel = f.Name
		}
		loc.Paths = append(loc.Paths, filepath.ToSlash(rel))
		loc.Files = append(loc.Files, LocalFile(f.Name, f.Size))
	}
	return loc, nil
}

// Commit resolves a revision of a repository once per Resolver.
func (r *Resolver) Commit(ctx context.Context, repo, revision string) (string, error) {
	c, err := r.hub()
	if err != nil {
		return "", err
	}
	key := repo + "@" + revision
	r.mu.Lock()
	commit, ok := r.commits[key]
	r.mu.Unlock()
	if ok {
		return commit, nil
	}
	commit, err = c.Resolve(ctx, "datasets", repo, revision)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.commits == nil {
		r.commits = map[string]string{}
	}
	r.commits[key] = commit
	r.mu.Unlock()
	return commit, nil
}

// Entries lists the files of a task's source at a commit that its glob selects.
func (r *Resolver) Entries(ctx context.Context, task registry.Task, commit string) ([]hub.Entry, error) {
	c, err := r.hub()
	if err != nil {
		return nil, err
	}
	key := task.Source.Repo + "@" + commit
	r.mu.Lock()
	all, ok := r.listings[key]
	r.mu.Unlock()
	if !ok {
		all, err = c.List(ctx, "datasets", task.Source.Repo, commit, "")
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if r.listings == nil {
			r.listings = map[string][]hub.Entry{}
		}
		r.listings[key] = all
		r.mu.Unlock()
	}
	pattern := strings.Split(hubGlob(task.Source.Files), "/")
	var out []hub.Entry
	for _, e := range all {
		if e.Type == "file" && matchPath(pattern, strings.Split(e.Path, "/")) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no files of %s at %s match %q (task %s)", task.Source.Repo, shortCommit(commit), task.Source.Files, task.ID)
	}
	return out, nil
}

func (r *Resolver) remote(ctx context.Context, loc *Location, task registry.Task) (*Location, error) {
	c, err := r.hub()
	if err != nil {
		return nil, err
	}
	commit, err := r.Commit(ctx, task.Source.Repo, loc.Revision)
	if err != nil {
		return nil, err
	}
	entries, err := r.Entries(ctx, task, commit)
	if err != nil {
		return nil, err
	}
	loc.Commit, loc.Root, loc.Remote = commit, c.Endpoint(), true
	repo := task.Source.Repo
	for _, e := range entries {
		e := e
		size := e.FileSize()
		loc.Paths = append(loc.Paths, e.Path)
		loc.Files = append(loc.Files, File{
			Name: repo + "@" + shortCommit(commit) + ":" + e.Path,
			Size: size,
			Open: func(ctx context.Context) (io.ReaderAt, error) {
				f, err := c.Open(ctx, "datasets", repo, commit, e.Path, size)
				if err != nil {
					return nil, err
				}
				if r.Cache == nil {
					return f, nil
				}
				return r.Cache.Reader(e.CacheKey(), size, f), nil
			},
		})
	}
	return loc, nil
}

func (r *Resolver) hub() (*hub.Client, error) {
	if r.Hub == nil {
		return nil, errors.New("this run has no Hugging Face Hub access configured; pass --data-dir with a copy of the dataset")
	}
	return r.Hub()
}

// Labels returns a task's vocabulary and where it came from: the labels the task declares,
// else the distinct answers of the task's whole split (never only the rows a --limit loads),
// cached by commit when the source's commit is known.
func (r *Resolver) Labels(ctx context.Context, task registry.Task, loc *Location, d *Dataset) ([]string, string, error) {
	if task.Type == registry.Captioning {
		return nil, "none (captioning)", nil
	}
	if len(task.Labels) > 0 {
		return task.Labels, "declared by the task in the registry", nil
	}
	where := loc.Root
	if loc.Repo != "" {
		where = loc.Repo
		if loc.Commit != "" {
			where += "@" + shortCommit(loc.Commit)
		}
	}
	var cachePath string
	if r.LabelCacheDir != "" && loc.Commit != "" {
		h := sha256.Sum256([]byte(strings.Join(append([]string{loc.Repo, loc.Commit, task.Type, task.Source.Files}, task.DatasetNames...), "\x00")))
		cachePath = filepath.Join(r.LabelCacheDir, hex.EncodeToString(h[:12])+".json")
		var cached []string
		if b, err := os.ReadFile(cachePath); err == nil && json.Unmarshal(b, &cached) == nil && len(cached) > 0 {
			return cached, fmt.Sprintf("distinct outputs of the task's whole split in %s (cached)", where), nil
		}
	}
	labels, err := d.Labels(ctx, Query{DatasetNames: task.DatasetNames}, task.Type == registry.Detection, task.Labels)
	if err != nil {
		return nil, "", fmt.Errorf("read the label vocabulary of %s: %w", task.ID, err)
	}
	if len(labels) == 0 {
		return nil, "", fmt.Errorf("task %s declares no labels and its rows hold no answers to build a vocabulary from", task.ID)
	}
	if cachePath != "" {
		if err := os.MkdirAll(filepath.Dir(cachePath), 0o755); err == nil {
			b, _ := json.Marshal(labels)
			_ = atomicfile.Write(cachePath, b) // a cache: failing to write it costs a re-read only
		}
	}
	return labels, fmt.Sprintf("distinct outputs of the task's whole split in %s", where), nil
}

// TaskLabels is Labels for a task on its own: it locates and opens the task's data only
// when the vocabulary has to be read from it.
func (r *Resolver) TaskLabels(ctx context.Context, task registry.Task) ([]string, string, error) {
	if task.Type == registry.Captioning || len(task.Labels) > 0 {
		return r.Labels(ctx, task, &Location{}, nil)
	}
	loc, err := r.Locate(ctx, task)
	if err != nil {
		return nil, "", err
	}
	d, err := Open(ctx, loc.Files)
	if err != nil {
		return nil, "", err
	}
	defer d.Close()
	return r.Labels(ctx, task, loc, d)
}

// defaultGlob is the glob for local Parquet sources.
func defaultGlob(g string) string {
	if g == "" {
		return "**/*.parquet"
	}
	return g
}

// hubGlob turns a source's file pattern into one matched at any depth of the repository, for
// Parquet files: "shard*" matches "data/shard_0001.parquet".
func hubGlob(g string) string {
	if g == "" {
		return "**/*.parquet"
	}
	if !strings.Contains(g, "/") {
		g = "**/" + g
	}
	if path.Ext(g) == "" && !strings.HasSuffix(g, ".parquet") {
		if strings.HasSuffix(g, "*") {
			g += ".parquet"
		} else {
			g += "*.parquet"
		}
	}
	return g
}

func isCommit(rev string) bool {
	if len(rev) < 7 || len(rev) > 40 {
		return false
	}
	for _, c := range rev {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
