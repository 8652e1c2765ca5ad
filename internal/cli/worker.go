package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// workerFlags are the options of `run` inside a sweep's inference job: where the serving job
// publishes its URL, the sweep's token, which shard of the tasks to run, and where progress
// goes. They work outside SLURM too.
type workerFlags struct {
	urlFile       string
	handoff       string
	serveJob      string
	urlTimeout    time.Duration
	tokenFile     string
	shard         int
	shards        int
	progressFile  string
	skipCompleted bool
}

func (w *workerFlags) flags(f *pflag.FlagSet) {
	f.StringVar(&w.urlFile, "predict-url-file", "", "wait for a serving job to write its predict URL to this `file`, then use it")
	f.StringVar(&w.handoff, "handoff", "", "a sweep's handoff `dir`: wait for serve-<serve-job>.url there")
	f.StringVar(&w.serveJob, "serve-job", "", "the serving job's SLURM `id`; the wait ends at once if that job has ended without a URL")
	f.DurationVar(&w.urlTimeout, "url-timeout", 2*time.Hour, "bound on the wait for the predict URL")
	f.StringVar(&w.tokenFile, "token-file", "", "send the bearer token in this 0600 `file` to the launcher")
	f.IntVar(&w.shard, "shard", -1, "run only shard `I` of the tasks (default $SLURM_ARRAY_TASK_ID, else 0)")
	f.IntVar(&w.shards, "shards", 1, "split the tasks into `K` shards (task i goes to shard i mod K)")
	f.StringVar(&w.progressFile, "progress-file", "", "keep a JSON progress `file` up to date ({shard} is replaced by the shard)")
	f.BoolVar(&w.skipCompleted, "skip-completed", false, "skip tasks whose summary.json exists in --output-dir; an unfinished task's directory is continued with --resume, else moved aside and run again")
}

// resolveShard fills in the shard from SLURM's array index and checks the pair.
func (w *workerFlags) resolveShard() error {
	if w.shards < 1 {
		return fmt.Errorf("--shards must be ≥ 1 (got %d)", w.shards)
	}
	if w.shard < 0 {
		w.shard = 0
		if v := os.Getenv("SLURM_ARRAY_TASK_ID"); v != "" && w.shards > 1 {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("SLURM_ARRAY_TASK_ID=%q is not a number", v)
			}
			w.shard = n
		}
	}
	if w.shard >= w.shards {
		return fmt.Errorf("--shard %d is not below --shards %d", w.shard, w.shards)
	}
	w.progressFile = strings.ReplaceAll(w.progressFile, "{shard}", strconv.Itoa(w.shard))
	return nil
}

// handoff returns the serving job's handoff files, when the run waits for one.
func (w *workerFlags) handoffFiles() (slurm.Handoff, bool, error) {
	switch {
	case w.urlFile != "" && w.handoff != "":
		return slurm.Handoff{}, false, errors.New("give --predict-url-file or --handoff, not both")
	case w.urlFile != "":
		dir, name := filepath.Split(w.urlFile)
		job, ok := strings.CutPrefix(strings.TrimSuffix(name, ".url"), "serve-")
		if !ok || !strings.HasSuffix(name, ".url") {
			// Any file name works; only the exit file cannot be known.
			return slurm.Handoff{Dir: dir, ServeJob: w.serveJob}, true, nil
		}
		if w.serveJob != "" && w.serveJob != job {
			return slurm.Handoff{}, false, fmt.Errorf("--predict-url-file %s is not serving job %s's file", w.urlFile, w.serveJob)
		}
		return slurm.Handoff{Dir: dir, ServeJob: job}, true, nil
	case w.handoff != "":
		if w.serveJob == "" {
			return slurm.Handoff{}, false, errors.New("--handoff needs --serve-job (the serving job's id)")
		}
		if _, err := strconv.ParseUint(w.serveJob, 10, 64); err != nil {
			return slurm.Handoff{}, false, fmt.Errorf("--serve-job %q is not a SLURM job id", w.serveJob)
		}
		return slurm.Handoff{Dir: w.handoff, ServeJob: w.serveJob}, true, nil
	}
	return slurm.Handoff{}, false, nil
}

// waitForURL waits for the serving job's URL; the serving job's liveness is asked of SLURM on
// this node when its commands are here.
func (w *workerFlags) waitForURL(ctx context.Context, h slurm.Handoff) (string, error) {
	o := slurm.WaitOptions{Timeout: w.urlTimeout}
	if w.urlFile != "" && !strings.HasPrefix(filepath.Base(w.urlFile), "serve-") {
		data, err := waitPlainFile(ctx, w.urlFile, w.urlTimeout)
		return data, err
	}
	if h.ServeJob != "" {
		o.Alive = slurm.JobAlive(h.ServeJob)
	}
	return h.WaitURL(ctx, o)
}

func waitPlainFile(ctx context.Context, path string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no predict URL in %s after %s", path, timeout)
		case <-time.After(time.Second):
		}
	}
}

func (w *workerFlags) token() (string, error) {
	if w.tokenFile == "" {
		return "", nil
	}
	return launcher.ReadToken(w.tokenFile)
}

// selectShard keeps the tasks of this shard: task i goes to shard i mod K.
func (w *workerFlags) selectShard(tasks []registry.Task) []registry.Task {
	if w.shards <= 1 {
		return tasks
	}
	var out []registry.Task
	for i, t := range tasks {
		if i%w.shards == w.shard {
			out = append(out, t)
		}
	}
	return out
}

// suiteFile is the suite summary's name: shards sharing an output directory each have theirs.
func (w *workerFlags) suiteFile() string {
	if w.shards <= 1 {
		return eval.SuiteFile
	}
	return fmt.Sprintf("suite_summary.shard-%d-of-%d.json", w.shard, w.shards)
}

// skipDone drops the tasks that already have a summary.json in dir and, when moveUnfinished,
// moves the directory of a task that started but did not finish aside (nothing is deleted;
// with --resume the run continues it instead).
func skipDone(dir string, tasks []registry.Task, moveUnfinished bool, now time.Time) (run, skipped []registry.Task, moved []string, err error) {
	for _, t := range tasks {
		td := filepath.Join(dir, t.ID)
		if _, err := os.Stat(filepath.Join(td, eval.SummaryFile)); err == nil {
			skipped = append(skipped, t)
			continue
		}
		_, err := os.Stat(td)
		switch {
		case err == nil && moveUnfinished:
			aside := fmt.Sprintf("%s.incomplete-%s", td, now.UTC().Format("20060102T150405"))
			if err := os.Rename(td, aside); err != nil {
				return nil, nil, nil, fmt.Errorf("move unfinished %s aside: %w", td, err)
			}
			moved = append(moved, aside)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, nil, nil, err
		}
		run = append(run, t)
	}
	return run, skipped, moved, nil
}

// progressFile keeps a JSON progress document for `beans-slurm status`: written atomically, at
// most every few seconds and whenever a task finishes.
type progressFile struct {
	path  string
	every time.Duration

	mu    sync.Mutex
	doc   slurm.Progress
	last  time.Time
	index map[string]int
}

func newProgressFile(path string, shard, shards int, tasks, skipped []registry.Task) *progressFile {
	p := &progressFile{path: path, every: 5 * time.Second, index: map[string]int{}}
	host, _ := os.Hostname()
	p.doc = slurm.Progress{Job: slurmJobID(), Node: host, Shard: shard, Shards: shards, State: "waiting"}
	for _, t := range skipped {
		p.doc.Tasks = append(p.doc.Tasks, slurm.TaskProgress{Task: t.ID, Finished: true, Skipped: true})
	}
	for _, t := range tasks {
		p.index[t.ID] = len(p.doc.Tasks)
		p.doc.Tasks = append(p.doc.Tasks, slurm.TaskProgress{Task: t.ID})
	}
	return p
}

func slurmJobID() string {
	if a, t := os.Getenv("SLURM_ARRAY_JOB_ID"), os.Getenv("SLURM_ARRAY_TASK_ID"); a != "" && t != "" {
		return a + "_" + t
	}
	return os.Getenv("SLURM_JOB_ID")
}

// Update is an eval.Config.Progress callback.
func (p *progressFile) Update(pr eval.Progress) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.index[pr.Task]
	if !ok {
		return
	}
	p.doc.State = "running"
	p.doc.Tasks[i] = slurm.TaskProgress{Task: pr.Task, Done: pr.Done, Total: pr.Total, Failed: pr.Failed, Finished: pr.Finished}
	if pr.Finished || time.Since(p.last) >= p.every {
		p.writeLocked()
	}
}

// Set records the run's state (and error) and writes the file at once.
func (p *progressFile) Set(state, url string, err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.doc.State = state
	if url != "" {
		p.doc.URL = url
	}
	if err != nil {
		p.doc.Error = err.Error()
	}
	p.writeLocked()
}

func (p *progressFile) writeLocked() {
	p.last = time.Now()
	p.doc.Updated = p.last.UTC()
	b, err := json.MarshalIndent(p.doc, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return
	}
	// A progress file that cannot be written costs a status line, not the run.
	_ = atomicfile.Write(p.path, append(b, '\n'))
}
