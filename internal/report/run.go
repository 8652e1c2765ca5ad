package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
)

// Run is one model's results directory, read back: one subdirectory per task, each with its
// summary.json (eval.SummaryFile).
type Run struct {
	// Dir is the directory as given to LoadRun.
	Dir string
	// Name names the model: the /info model of its summaries (with the launcher name when
	// the model is empty), else the directory's base name.
	Name string
	// Identity is the launcher's /info as recorded in the summaries (zero when none).
	Identity Identity
	// Suites are the suites the tasks were run as part of, in first-seen order.
	Suites []string
	// Tasks are the task results, sorted by task id.
	Tasks []TaskResult
	// Problems are the task directories that could not be read, and other oddities (a
	// directory mixing several models); they do not stop the rest from loading.
	Problems []LoadProblem
}

// Identity is what a launcher's /info says about the model it serves.
type Identity struct {
	Launcher string `json:"launcher,omitempty"` // /info name
	Model    string `json:"model,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// TaskResult is one task of a run: its paper metric (the metric PaperRows shows) with the
// interval, and the sizes and failures.
type TaskResult struct {
	TaskID   string
	TaskType string
	// Metric is the paper metric (accuracy, f1_macro, spider or cider_d); Value its value.
	Metric    string
	Value     float64
	Low, High float64 // the 95% interval when HasCI
	HasCI     bool
	N, Failed int
	// Errors are the most frequent item errors.
	Errors []eval.ErrorCount
	// Error says why the task has no result (set from suite_summary.json when the task's
	// run failed as a whole); the metric fields are then empty.
	Error string
	// Dir is the task's directory.
	Dir string
	// Summary is the whole summary.json (nil for a failed task).
	Summary *eval.TaskSummary
	// Judge, when set, makes this a judged result of task Base: "yesno" or "rubric"
	// (judge_summary.json) or "extracted" (judge_extracted_summary.json). compare shows it in
	// a row below the task's and leaves it out of the average.
	Judge, Base string
}

// judgedResults reads the judges' summaries in a task directory, when there are any.
func judgedResults(tdir, task string) ([]TaskResult, []string) {
	var out []TaskResult
	var problems []string
	if b, err := os.ReadFile(filepath.Join(tdir, judge.SummaryFile)); err == nil {
		var s judge.Summary
		if err := json.Unmarshal(b, &s); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", judge.SummaryFile, err))
		} else {
			t := TaskResult{TaskID: task + " [" + s.Mode + " judge]", TaskType: s.TaskType, Metric: s.Headline.Name, Value: s.Headline.Value,
				N: s.Scored, Failed: s.JudgeErrors, Errors: s.Errors, Dir: tdir, Judge: s.Mode, Base: task}
			if iv, ok := s.Intervals[s.Headline.Name]; ok {
				t.Low, t.High, t.HasCI = iv.Low, iv.High, true
			}
			out = append(out, t)
		}
	}
	if b, err := os.ReadFile(filepath.Join(tdir, judge.ExtractedSummaryFile)); err == nil {
		var s eval.TaskSummary
		if err := json.Unmarshal(b, &s); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", judge.ExtractedSummaryFile, err))
		} else {
			t := TaskResult{TaskID: task + " [extracted]", TaskType: s.TaskType, N: s.N, Failed: s.Failed, Errors: s.Errors, Dir: tdir, Summary: &s,
				Judge: "extracted", Base: task}
			t.Metric, t.Value, t.Low, t.High, t.HasCI = paperValue(s.TaskType, s.Metrics, s.Intervals)
			out = append(out, t)
		}
	}
	return out, problems
}

// LoadProblem is a task directory of a run that could not be read, or another problem of
// the run.
type LoadProblem struct {
	Dir  string `json:"dir"`            // the run directory
	Task string `json:"task,omitempty"` // the task directory's name
	Path string `json:"path,omitempty"` // the file concerned
	Err  string `json:"error"`
}

func (p LoadProblem) String() string {
	where := p.Path
	if where == "" {
		where = p.Dir
	}
	return where + ": " + p.Err
}

// Task returns the result of a task, or false.
func (r *Run) Task(id string) (TaskResult, bool) {
	i, ok := slices.BinarySearchFunc(r.Tasks, id, func(t TaskResult, id string) int {
		switch {
		case t.TaskID < id:
			return -1
		case t.TaskID > id:
			return 1
		}
		return 0
	})
	if !ok {
		return TaskResult{}, false
	}
	return r.Tasks[i], true
}

// LoadRun reads a model's results directory: every subdirectory holding a summary.json is a
// task (others are ignored). A summary that cannot be read becomes a LoadProblem and the
// other tasks still load; tasks that failed as a whole are taken from suite_summary.json
// when present. It fails only when dir cannot be listed, or holds no task at all and no
// problem to show for it.
func LoadRun(dir string) (Run, error) {
	run := Run{Dir: dir}
	des, err := os.ReadDir(dir)
	if err != nil {
		return run, fmt.Errorf("read results directory: %w", err)
	}
	identities := map[Identity]int{}
	var order []Identity
	byID := map[string]int{}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		tdir := filepath.Join(dir, de.Name())
		path := filepath.Join(tdir, eval.SummaryFile)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		problem := func(format string, args ...any) {
			run.Problems = append(run.Problems, LoadProblem{Dir: dir, Task: de.Name(), Path: path, Err: fmt.Sprintf(format, args...)})
		}
		if err != nil {
			problem("read: %v", err)
			continue
		}
		var s eval.TaskSummary
		if err := json.Unmarshal(b, &s); err != nil {
			problem("not a valid summary.json: %v", err)
			continue
		}
		if s.TaskID == "" {
			s.TaskID = de.Name()
		}
		if s.TaskType == "" {
			problem("summary.json has no task_type")
			continue
		}
		if j, dup := byID[s.TaskID]; dup {
			problem("task %s is also in %s; compare each run directory on its own", s.TaskID, run.Tasks[j].Dir)
			continue
		}
		t := TaskResult{TaskID: s.TaskID, TaskType: s.TaskType, N: s.N, Failed: s.Failed, Errors: s.Errors, Dir: tdir, Summary: &s}
		t.Metric, t.Value, t.Low, t.High, t.HasCI = paperValue(s.TaskType, s.Metrics, s.Intervals)
		if _, ok := s.Metrics[t.Metric]; !ok {
			problem("summary.json has no %s metric", t.Metric)
			continue
		}
		byID[s.TaskID] = len(run.Tasks)
		run.Tasks = append(run.Tasks, t)
		judged, jp := judgedResults(tdir, s.TaskID)
		for _, j := range jp {
			problem("%s", j)
		}
		for _, j := range judged {
			byID[j.TaskID] = len(run.Tasks)
			run.Tasks = append(run.Tasks, j)
		}
		if s.Suite != "" && !slices.Contains(run.Suites, s.Suite) {
			run.Suites = append(run.Suites, s.Suite)
		}
		id := identityOf(s.Model)
		if _, ok := identities[id]; !ok {
			order = append(order, id)
		}
		identities[id]++
	}
	run.addFailedTasks(byID)
	sort.Slice(run.Tasks, func(i, j int) bool { return run.Tasks[i].TaskID < run.Tasks[j].TaskID })

	// The run's identity is its most frequent one (the first seen on a tie).
	if len(order) > 0 {
		best := order[0]
		for _, id := range order[1:] {
			if identities[id] > identities[best] {
				best = id
			}
		}
		run.Identity = best
		if len(order) > 1 {
			run.Problems = append(run.Problems, LoadProblem{Dir: dir, Err: fmt.Sprintf("the tasks come from %d different models (by /info); shown as %s", len(order), best.label())})
		}
	}
	run.Name = run.Identity.label()
	if run.Name == "" {
		run.Name = filepath.Base(filepath.Clean(dir))
	}
	if len(run.Tasks) == 0 && len(run.Problems) == 0 {
		return run, fmt.Errorf("%s holds no task results (no */%s); give a model's results directory", dir, eval.SummaryFile)
	}
	return run, nil
}

// addFailedTasks adds the tasks that suite_summary.json records as failed and that have no
// summary.json.
func (r *Run) addFailedTasks(byID map[string]int) {
	path := filepath.Join(r.Dir, eval.SuiteFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var s eval.SuiteSummary
	if err := json.Unmarshal(b, &s); err != nil {
		r.Problems = append(r.Problems, LoadProblem{Dir: r.Dir, Path: path, Err: fmt.Sprintf("not a valid suite summary: %v", err)})
		return
	}
	if s.Suite != "" && !slices.Contains(r.Suites, s.Suite) {
		r.Suites = append(r.Suites, s.Suite)
	}
	for _, t := range s.Tasks {
		if t.Error == "" || t.TaskID == "" {
			continue
		}
		if _, ok := byID[t.TaskID]; ok {
			continue
		}
		byID[t.TaskID] = len(r.Tasks)
		r.Tasks = append(r.Tasks, TaskResult{TaskID: t.TaskID, TaskType: t.TaskType, Error: t.Error, Dir: filepath.Join(r.Dir, t.Dir)})
	}
}

func identityOf(raw json.RawMessage) Identity {
	var info struct {
		Name          string `json:"name"`
		Model         string `json:"model"`
		ModelRevision string `json:"model_revision"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &info) != nil {
		return Identity{}
	}
	return Identity{Launcher: info.Name, Model: info.Model, Revision: info.ModelRevision}
}

// label is the identity's display name: the model, else the launcher's name.
func (id Identity) label() string {
	if id.Model != "" {
		return id.Model
	}
	return id.Launcher
}

// FindRuns returns the run directories under root: root itself when it holds task results
// (*/summary.json or suite_summary.json), else its subdirectories that do (a sweep's
// results, one directory per model), sorted by name.
func FindRuns(root string) ([]string, error) {
	if isRunDir(root) {
		return []string{root}, nil
	}
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read results directory: %w", err)
	}
	var out []string
	for _, de := range des {
		if d := filepath.Join(root, de.Name()); de.IsDir() && isRunDir(d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no results: neither */%s nor */*/%s", root, eval.SummaryFile, eval.SummaryFile)
	}
	return out, nil
}

func isRunDir(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, eval.SuiteFile)); err == nil {
		return true
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*", eval.SummaryFile))
	return len(m) > 0
}
