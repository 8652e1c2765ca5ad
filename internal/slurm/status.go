package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// SweepStatus is a sweep's state at one poll.
type SweepStatus struct {
	Sweep      string        `json:"sweep"`
	Cluster    string        `json:"cluster"`
	Polled     time.Time     `json:"polled"`
	Accounting bool          `json:"accounting"`
	Models     []ModelStatus `json:"models"`
}

// ModelStatus is one model's jobs, serving URL and progress.
type ModelStatus struct {
	Model   string         `json:"model"`
	Outcome string         `json:"outcome"` // running, done, failed
	Problem string         `json:"problem,omitempty"`
	Serve   JobStatus      `json:"serve"`
	URL     string         `json:"predict_url,omitempty"`
	Exit    string         `json:"serve_exit,omitempty"` // the serving job's own account of its end
	Infer   []JobStatus    `json:"infer"`
	Tasks   []TaskStatus   `json:"tasks"`
	Shards  []Progress     `json:"shards,omitempty"`
	Judge   *JudgeStatus   `json:"judge,omitempty"`
	Actions []string       `json:"actions,omitempty"` // what this poll did (cancellations)
	seen    map[string]int `json:"-"`
}

// JudgeStatus is a model's judge pass.
type JudgeStatus struct {
	Mode  string    `json:"mode"`
	Serve JobStatus `json:"serve"`
	Job   JobStatus `json:"job"`
	URL   string    `json:"url,omitempty"`
	Exit  string    `json:"serve_exit,omitempty"`
}

// JobStatus is one job (or array task) as SLURM reports it.
type JobStatus struct {
	ID       string `json:"id"`
	State    State  `json:"state"`
	Raw      string `json:"raw_state,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Node     string `json:"node,omitempty"`
	Elapsed  string `json:"elapsed,omitempty"`
	ExitCode string `json:"exit_code,omitempty"`
}

// TaskStatus is one task's progress, from its shard's progress file.
type TaskStatus struct {
	Task   string `json:"task"`
	Shard  int    `json:"shard"`
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Failed int    `json:"failed"`
	State  string `json:"state"` // pending, running, done, skipped (done earlier), failed
}

const (
	markJobs  = "#beans-slurm:jobs"
	markFile  = "#beans-slurm:file "
	markFiles = "#beans-slurm:files"
)

// statusCommand reads, in one remote command, the jobs' states and the sweep's handoff and
// progress files.
func statusCommand(m *Manifest, ids []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "echo %s\n", remote.Quote(markJobs))
	if len(ids) > 0 {
		sb.WriteString(QueryScript(ids))
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "echo %s\n", remote.Quote(markFiles))
	fmt.Fprintf(&sb, "cd %s 2>/dev/null && for f in handoff/*/serve-*.url handoff/*/serve-*.exit progress/*/shard-*.json; do [ -f \"$f\" ] || continue; echo \"%s$f\"; head -c 65536 \"$f\"; echo; done\n", remote.Quote(m.Dir), markFile)
	fmt.Fprintf(&sb, "echo %s\n", remote.Quote(markEnd))
	return sb.String()
}

// Status polls a sweep with one remote command.
func Status(ctx context.Context, t remote.Transport, m *Manifest) (*SweepStatus, error) {
	ids := m.JobIDs("")
	res, err := t.Run(ctx, statusCommand(m, ids), nil)
	if err != nil {
		return nil, fmt.Errorf("poll sweep %s on %s: %w", m.Name, t, err)
	}
	out := string(res.Stdout)
	if !strings.Contains(out, markEnd) {
		return nil, fmt.Errorf("poll sweep %s on %s: unexpected answer (exit %d): %s", m.Name, t, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	_, rest, _ := strings.Cut(out, markJobs+"\n")
	jobsOut, filesOut, _ := strings.Cut(rest, markFiles+"\n")
	filesOut, _, _ = strings.Cut(filesOut, markEnd)
	jobs, accounting, err := ParseQueryOutput([]byte(jobsOut))
	if err != nil {
		return nil, fmt.Errorf("poll sweep %s: %w", m.Name, err)
	}
	files := parseFiles(filesOut)
	return buildStatus(m, jobs, accounting, files, time.Now().UTC()), nil
}

func parseFiles(s string) map[string]string {
	files := map[string]string{}
	var name string
	var body strings.Builder
	flush := func() {
		if name != "" {
			files[name] = strings.TrimSpace(body.String())
		}
		body.Reset()
	}
	for _, line := range strings.SplitAfter(s, "\n") {
		if n, ok := strings.CutPrefix(line, markFile); ok {
			flush()
			name = strings.TrimSpace(n)
			continue
		}
		body.WriteString(line)
	}
	flush()
	return files
}

func buildStatus(m *Manifest, jobs []Job, accounting bool, files map[string]string, now time.Time) *SweepStatus {
	st := &SweepStatus{Sweep: m.Name, Cluster: m.Cluster, Polled: now, Accounting: accounting}
	byBase := map[string][]Job{}
	for _, j := range jobs {
		byBase[j.baseID()] = append(byBase[j.baseID()], j)
	}
	for _, mm := range m.Models {
		ms := ModelStatus{Model: mm.Model}
		ms.Serve = JobStatus{ID: mm.Serve.ID, State: StatePending}
		if js := byBase[mm.Serve.ID]; len(js) > 0 {
			ms.Serve = jobStatus(js[0])
		} else if mm.Serve.ID != "" {
			ms.Serve.State, ms.Serve.Raw = "", "not found"
		}
		ms.URL = files[path.Join("handoff", mm.Model, "serve-"+mm.Serve.ID+".url")]
		ms.Exit = files[path.Join("handoff", mm.Model, "serve-"+mm.Serve.ID+".exit")]
		for _, j := range byBase[mm.Infer.ID] {
			ms.Infer = append(ms.Infer, jobStatus(j))
		}
		seen := map[int]bool{}
		for _, j := range byBase[mm.Infer.ID] {
			for _, i := range arrayIndexes(j, m.Shards) {
				seen[i] = true
			}
		}
		for shard := 0; shard < max(m.Shards, 1); shard++ {
			raw, ok := files[path.Join("progress", mm.Model, fmt.Sprintf("shard-%d.json", shard))]
			if !ok {
				continue
			}
			var p Progress
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				continue // a file caught mid-write on a filesystem without atomic rename
			}
			if p.Job != shardJobID(mm.Infer.ID, shard, m.Shards) {
				continue // left by an earlier attempt of this shard
			}
			ms.Shards = append(ms.Shards, p)
			for _, tp := range p.Tasks {
				state := "pending"
				switch {
				case tp.Skipped:
					state = "skipped"
				case tp.Finished:
					state = "done"
				case tp.Done > 0 || p.State == "running":
					state = "running"
				}
				if p.State == "failed" && !tp.Finished {
					state = "failed"
				}
				ms.Tasks = append(ms.Tasks, TaskStatus{Task: tp.Task, Shard: p.Shard, Done: tp.Done, Total: tp.Total, Failed: tp.Failed, State: state})
			}
		}
		// A shard SLURM does not list (accounting lags the queue; squeue forgets finished
		// jobs) is judged by its progress file, else counts as not finished.
		if mm.Infer.ID != "" {
			for i := 0; i < max(m.Shards, 1); i++ {
				if seen[i] {
					continue
				}
				js := JobStatus{ID: shardJobID(mm.Infer.ID, i, m.Shards), Raw: "not listed by SLURM"}
				for _, p := range ms.Shards {
					if p.Shard == i && p.State == "done" {
						js.State, js.Raw = StateCompleted, "COMPLETED (from its progress file)"
					} else if p.Shard == i && p.State == "failed" {
						js.State, js.Raw = StateFailed, "FAILED (from its progress file)"
					}
				}
				ms.Infer = append(ms.Infer, js)
			}
		}
		sort.Slice(ms.Infer, func(i, j int) bool { return ms.Infer[i].ID < ms.Infer[j].ID })
		ms.Outcome, ms.Problem = outcome(ms)
		if jp := mm.Judge; jp != nil {
			one := func(ref JobRef) JobStatus {
				js := JobStatus{ID: ref.ID, State: StatePending}
				if j := byBase[ref.ID]; len(j) > 0 {
					js = jobStatus(j[0])
				} else if ref.ID != "" {
					js.State, js.Raw = "", "not found"
				}
				return js
			}
			h := path.Base(m.JudgeHandoffDir(mm.Model))
			ms.Judge = &JudgeStatus{Mode: jp.Mode, Serve: one(jp.Serve), Job: one(jp.Job),
				URL:  files[path.Join("handoff", h, "serve-"+jp.Serve.ID+".url")],
				Exit: files[path.Join("handoff", h, "serve-"+jp.Serve.ID+".exit")]}
			switch {
			case ms.Outcome != "done":
			case ms.Judge.Job.State == StateCompleted:
			case ms.Judge.Job.State.Done():
				ms.Outcome, ms.Problem = "failed", fmt.Sprintf("the judge job %s is %s (exit %s): see `beans-slurm logs %s --role judge`", ms.Judge.Job.ID, ms.Judge.Job.State, ms.Judge.Job.ExitCode, m.Name)
			default:
				ms.Outcome = "running"
			}
		}
		st.Models = append(st.Models, ms)
	}
	return st
}

// shardJobID is the id SLURM gives shard i of an inference job: ID_i for an array.
func shardJobID(id string, i, shards int) string {
	if shards > 1 {
		return fmt.Sprintf("%s_%d", id, i)
	}
	return id
}

// arrayIndexes are the shards a listed job stands for: its array index, every index of a
// pending range such as [0-3,5%2], or shard 0 for a job that is not an array.
func arrayIndexes(j Job, shards int) []int {
	if j.ArrayTask == "" {
		return []int{0}
	}
	if n, err := strconv.Atoi(j.ArrayTask); err == nil {
		return []int{n}
	}
	spec := strings.TrimSuffix(strings.TrimPrefix(j.ArrayTask, "["), "]")
	spec, _, _ = strings.Cut(spec, "%")
	var out []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a || b-a > shards {
			continue
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out
}

func jobStatus(j Job) JobStatus {
	el := ""
	if j.Elapsed > 0 {
		el = formatElapsed(j.Elapsed)
	}
	return JobStatus{ID: j.ID, State: j.State, Raw: j.RawState, Reason: j.Reason, Node: j.Nodes, Elapsed: el, ExitCode: j.ExitCode}
}

func formatElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	h := int(d / time.Hour)
	mi := int(d/time.Minute) % 60
	s := int(d/time.Second) % 60
	if h >= 24 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", h/24, h%24, mi, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, mi, s)
}

// outcome decides whether a model's work is running, done or failed, and why it failed.
func outcome(ms ModelStatus) (string, string) {
	inferDone, inferOK := len(ms.Infer) > 0, len(ms.Infer) > 0
	for _, j := range ms.Infer {
		if !j.State.Done() {
			inferDone = false
		}
		if j.State != StateCompleted {
			inferOK = false
		}
	}
	serveEnded := ms.Serve.State.Done()
	switch {
	case inferDone && inferOK:
		return "done", ""
	case serveEnded && ms.URL == "" && !inferOK && ms.Serve.State != StateCompleted && !anyGotURL(ms):
		reason := ms.Exit
		if reason == "" {
			reason = fmt.Sprintf("the serving job is %s", ms.Serve.State)
		}
		return "failed", "the serving job ended before its URL appeared: " + reason
	case inferDone:
		var bad []string
		for _, j := range ms.Infer {
			if j.State != StateCompleted {
				bad = append(bad, fmt.Sprintf("%s %s (exit %s)", j.ID, j.State, j.ExitCode))
			}
		}
		problem := "inference " + strings.Join(bad, ", ")
		failed, total := 0, 0
		for _, t := range ms.Tasks {
			failed, total = failed+t.Failed, total+t.Total
		}
		if failed > 0 {
			problem += fmt.Sprintf("; %d of %d samples failed (their errors are in the predictions files; see `beans-slurm logs`)", failed, total)
		}
		for _, p := range ms.Shards {
			if p.Error != "" {
				problem += "; shard " + fmt.Sprint(p.Shard) + ": " + p.Error
			}
		}
		return "failed", problem
	}
	return "running", ""
}

// anyGotURL: some inference worker received the serving job's URL (so it was published).
func anyGotURL(ms ModelStatus) bool {
	for _, p := range ms.Shards {
		if p.URL != "" {
			return true
		}
	}
	return false
}

// Reconcile ends what should end, in one scancel call: the inference jobs of a serving job
// that ended before publishing its URL (they would wait for nothing), and a serving job whose
// model's inference is over (it would hold a GPU for nothing).
func Reconcile(ctx context.Context, c *Client, st *SweepStatus) error {
	var ids []string
	for i := range st.Models {
		ms := &st.Models[i]
		serveEnded := ms.Serve.State.Done()
		inferLive := false
		for _, j := range ms.Infer {
			if !j.State.Done() {
				inferLive = true
			}
		}
		inferOver := len(ms.Infer) > 0 && !inferLive
		switch {
		case serveEnded && ms.URL == "" && inferLive && ms.Outcome == "failed":
			for _, j := range ms.Infer {
				if !j.State.Done() {
					ids = append(ids, j.ID)
				}
			}
			ms.Actions = append(ms.Actions, "cancelled the inference jobs: "+ms.Problem)
		case inferOver && ms.Serve.ID != "" && !serveEnded:
			ids = append(ids, ms.Serve.ID)
			ms.Actions = append(ms.Actions, "ended the serving job: its inference is over")
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return c.Cancel(ctx, ids)
}

// ExitCode is the status command's exit code: 0 when every model is done, 1 when one failed
// (and nothing runs), 3 while something is still running.
func (st *SweepStatus) ExitCode() int {
	code := 0
	for _, m := range st.Models {
		switch m.Outcome {
		case "running":
			return 3
		case "failed":
			code = 1
		}
	}
	return code
}
