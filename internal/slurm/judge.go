package slurm

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// JudgePass is a judge run over a model's predictions already on the cluster: a serving job
// for the judge model and a CPU job that judges every task's predictions.jsonl through it.
type JudgePass struct {
	Mode   string `json:"mode"`   // yesno, rubric or extract
	Preset string `json:"preset"` // the judge's model preset
	Stub   bool   `json:"stub,omitempty"`
	Serve  JobRef `json:"serve"`
	Job    JobRef `json:"job"`
}

// JudgeSpec is what `beans-slurm judge` asked for.
type JudgeSpec struct {
	Judge  ModelSpec // the judge model: Preset, GPUs, Time, Memory, Stub, LauncherArgs
	Mode   string
	Models []string // the sweep's models to judge (all when empty)
	// Args are extra arguments for the judging job's `score` (e.g. --task-type).
	Args []string
	// RegistryDirs as in Spec.
	RegistryDirs []string
}

// JudgeHandoffDir is where a model's judge serving job publishes its URL (apart from the
// inference handoff: their done markers must not mix).
func (m *Manifest) JudgeHandoffDir(model string) string {
	return path.Join(m.Dir, "handoff", model+".judge")
}

// PlanJudge adds a judge pass to each chosen model of the sweep and renders its two scripts.
// A model's earlier judge pass is kept in its history.
func PlanJudge(m *Manifest, prof Profile, js JudgeSpec) ([]File, error) {
	switch js.Mode {
	case "yesno", "rubric", "extract":
	default:
		return nil, fmt.Errorf("judge mode %q: want yesno, rubric or extract", js.Mode)
	}
	if js.Judge.Preset == "" {
		return nil, errors.New("a judge pass needs a judge model preset (--judge)")
	}
	chosen := map[string]bool{}
	for _, id := range js.Models {
		if _, ok := m.Model(id); !ok {
			return nil, fmt.Errorf("sweep %s has no model %s (it has %s)", m.Name, id, strings.Join(m.modelIDs(), ", "))
		}
		chosen[id] = true
	}
	var files []File
	for i := range m.Models {
		mm := &m.Models[i]
		if len(chosen) > 0 && !chosen[mm.Model] {
			continue
		}
		serve, job, err := planJudgeModel(m, prof, js, mm.Model)
		if err != nil {
			return nil, fmt.Errorf("judge of model %s: %w", mm.Model, err)
		}
		jp := &JudgePass{Mode: js.Mode, Preset: js.Judge.Preset, Stub: js.Judge.Stub,
			Serve: JobRef{Role: "judge-serve", Name: serve.JobName, Script: path.Join(m.ScriptsDir(), mm.Model+"-judge-serve.sh")},
			Job:   JobRef{Role: "judge", Name: job.JobName, Script: path.Join(m.ScriptsDir(), mm.Model+"-judge.sh")},
		}
		for _, p := range []struct {
			s    Script
			path string
		}{{serve, jp.Serve.Script}, {job, jp.Job.Script}} {
			b, err := Render(p.s)
			if err != nil {
				return nil, fmt.Errorf("judge of model %s: %w", mm.Model, err)
			}
			files = append(files, File{Path: p.path, Data: b, Mode: 0o700})
		}
		if mm.Judge != nil {
			for _, j := range []JobRef{mm.Judge.Serve, mm.Judge.Job} {
				if j.ID != "" {
					mm.History = append(mm.History, j)
				}
			}
		}
		mm.Judge = jp
	}
	return files, nil
}

func (m *Manifest) modelIDs() []string {
	var ids []string
	for _, mm := range m.Models {
		ids = append(ids, mm.Model)
	}
	return ids
}

func planJudgeModel(m *Manifest, prof Profile, js JudgeSpec, model string) (serve, job Script, err error) {
	regArgs := registryArgs(js.RegistryDirs)
	jobName := "beans-" + m.Name + "-" + model + "-judge"
	serve, err = serveScript(m, prof, js.Judge, regArgs, jobName+"-serve", m.JudgeHandoffDir(model), 1, jobName, "the judge's serving job")
	if err != nil {
		return serve, job, err
	}
	job = jobScript(m, prof, "infer", jobName, prof.CPU)
	job.Resources.GRES = ""
	job.Signal = "B:TERM@120"
	job.Env = envVars(prof.Env, nil)
	job.Args = append(append(append([]string{}, regArgs...), "score", "--results-dir", m.ResultsDir(model), "--judge-only",
		"--judge-mode", js.Mode, "--handoff", m.JudgeHandoffDir(model), "--judge-token-file", m.TokenFile(),
		// The judges' answers are cached beside the sweep's: a resubmitted pass asks nothing twice.
		"--cache-dir", path.Join(prof.WorkDir, "cache")), js.Args...)
	return serve, job, nil
}

// SubmitJudge submits the planned judge passes (serving job, then the judging job after it),
// in one remote command. Passes whose jobs are live are not submitted again.
func SubmitJudge(ctx context.Context, c *Client, m *Manifest, live []Job) ([]Submitted, error) {
	isLive := map[string]Job{}
	for _, j := range live {
		if !j.State.Done() {
			isLive[j.Name] = j
		}
	}
	now := time.Now().UTC()
	var subs []Submission
	for i := range m.Models {
		jp := m.Models[i].Judge
		if jp == nil {
			continue
		}
		sj, sLive := isLive[jp.Serve.Name]
		jj, jLive := isLive[jp.Job.Name]
		if sLive && jLive {
			jp.Serve.ID, jp.Job.ID = sj.baseID(), jj.baseID()
			continue
		}
		key := m.Models[i].Model
		subs = append(subs,
			Submission{Key: key + "/judge-serve", Script: jp.Serve.Script, Chdir: m.Dir},
			Submission{Key: key + "/judge", Script: jp.Job.Script, After: key + "/judge-serve", Args: []string{"{after}"}, Chdir: m.Dir})
	}
	if len(subs) == 0 {
		return nil, nil
	}
	got, err := c.SubmitAll(ctx, subs)
	for _, s := range got {
		model, role, _ := strings.Cut(s.Key, "/")
		mm, ok := m.Model(model)
		if !ok || s.JobID == "" || mm.Judge == nil {
			continue
		}
		if role == "judge-serve" {
			mm.Judge.Serve.ID, mm.Judge.Serve.Submitted = s.JobID, now
		} else {
			mm.Judge.Job.ID, mm.Judge.Job.Submitted = s.JobID, now
		}
	}
	m.Updated = now
	return got, err
}
