package judge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge/prompt"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

// modelFailed is the outcome of a sample the model did not answer: not sent, scored 0.
func modelFailed(rec *eval.TaskRecord, a eval.Answer, template string) outcome {
	zero := 0.0
	msg := "the model failed on this sample: " + a.Error
	return outcome{
		out:    OutputLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Template: template, Score: &zero, Error: msg},
		scored: ScoredLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Target: a.Target, Score: &zero, ModelFailed: true, Error: msg},
	}
}

func predictionsRecord(mode, url string, c *predict.Client, t Template, gen contract.GenerationConfig, cr *CacheRecord) Record {
	return Record{Mode: mode, URL: url, Schema: contract.PredictionsV1, Identity: c.InfoRaw(), Template: t, Sampling: gen, Cache: cr}
}

// judgeYesNo asks the YES/NO judge about every answered sample.
func (j *Judges) judgeYesNo(ctx context.Context, rec *eval.TaskRecord, answers []eval.Answer, path, outDir string, notes []string) (*Summary, error) {
	started := time.Now()
	qs := make([]question, 0, len(answers))
	prompts := make(map[string]string, len(answers))
	for _, a := range answers {
		if a.Error != "" {
			continue
		}
		p := prompt.YesNoPrompt(a.Instruction, a.Target, a.Prediction)
		prompts[a.SampleID] = p
		qs = append(qs, question{id: a.SampleID, prompt: p})
	}
	j.opts.Log.Info("YES/NO judge", "task", rec.Task.ID, "samples", len(qs))
	replies, cr, err := j.ask(ctx, j.yesno, qs, YesNoSampling)
	if err != nil {
		return nil, fmt.Errorf("YES/NO judge of %s: %w", rec.Task.ID, err)
	}
	outs := make([]outcome, len(answers))
	for i, a := range answers {
		if a.Error != "" {
			outs[i] = modelFailed(rec, a, prompt.YesNoID)
			continue
		}
		r := replies[a.SampleID]
		o := OutputLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Template: prompt.YesNoID, Prompt: prompts[a.SampleID],
			Answer: r.raw, Cached: r.cached, Attempts: r.attempts, LatencySec: r.latency}
		s := ScoredLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Target: a.Target, Prediction: a.Prediction}
		if r.err != "" {
			o.Error = "judge failed: " + r.err
		} else if v, err := prompt.ParseYesNo(r.raw); err != nil {
			o.Error = err.Error()
		} else {
			score := 0.0
			if v == prompt.Yes {
				score = 1
			}
			o.Verdict, o.Score = string(v), &score
			s.Verdict, s.Score = string(v), &score
		}
		s.Error = o.Error
		outs[i] = outcome{out: o, scored: s}
	}
	judge := predictionsRecord(ModeYesNo, j.opts.URL, j.yesno, Template{ID: prompt.YesNoID, Version: prompt.YesNoVersion}, YesNoSampling, cr)
	return j.finish(rec, path, outDir, outs, ModeYesNo, MetricAccuracy, judge, OutputsFile, started, notes)
}

// judgeRubric asks the rubric judge to score every answered sample.
func (j *Judges) judgeRubric(ctx context.Context, rec *eval.TaskRecord, answers []eval.Answer, path, outDir string, notes []string) (*Summary, error) {
	started := time.Now()
	id := j.opts.Rubric
	if id == "" {
		id = rec.Task.Judge
	}
	rubric, err := prompt.RubricFor(id)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", rec.Task.ID, err)
	}
	var items []contract.JudgeItem
	for _, a := range answers {
		if a.Error == "" {
			items = append(items, contract.JudgeItem{SampleID: a.SampleID, Rubric: rubric.Text,
				ReferenceText: prompt.Neutralise(a.Target), CandidateText: prompt.Neutralise(a.Prediction)})
		}
	}
	j.opts.Log.Info("rubric judge", "task", rec.Task.ID, "samples", len(items), "template", rubric.ID)
	got, err := j.rubric.score(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("rubric judge of %s: %w", rec.Task.ID, err)
	}
	byID := make(map[string]rubricResult, len(got))
	for _, g := range got {
		byID[g.SampleID] = g
	}
	outs := make([]outcome, len(answers))
	for i, a := range answers {
		if a.Error != "" {
			outs[i] = modelFailed(rec, a, rubric.ID)
			continue
		}
		g := byID[a.SampleID]
		o := OutputLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Template: rubric.ID,
			Reference: prompt.Neutralise(a.Target), Candidate: prompt.Neutralise(a.Prediction),
			Rationale: g.Rationale, Error: g.Err, Attempts: g.attempts}
		s := ScoredLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Target: a.Target, Prediction: a.Prediction, Error: g.Err}
		if g.Err == "" {
			score := g.Score
			o.Score, s.Score = &score, &score
		}
		outs[i] = outcome{out: o, scored: s}
	}
	judge := Record{Mode: ModeRubric, URL: j.opts.URL, Schema: contract.JudgeScoresV1, Identity: j.rubric.identity(),
		Template: Template{ID: rubric.ID, Version: rubric.Version}}
	return j.finish(rec, path, outDir, outs, ModeRubric, MetricScore, judge, OutputsFile, started, notes)
}

// extractTask has the extractor rewrite every answered sample, then scores the rewritten
// answers with the task's normal metrics into the judge_extracted_* files.
func (j *Judges) extractTask(ctx context.Context, rec *eval.TaskRecord, answers []eval.Answer, path, outDir string) (*eval.TaskSummary, error) {
	typ := j.opts.TaskType
	if typ == "" {
		typ = rec.Task.Type
	}
	if typ != rec.Task.Type {
		j.opts.Log.Warn("the extractor's template is not the task's type: its answers are scored as the task's type", "task", rec.Task.ID, "template_type", typ, "task_type", rec.Task.Type)
	}
	tmpl := prompt.ExtractID(typ)
	qs := make([]question, 0, len(answers))
	prompts := make(map[string]string, len(answers))
	for _, a := range answers {
		if a.Error != "" {
			continue
		}
		p, err := prompt.ExtractPrompt(typ, a.Instruction, rec.Labels, a.Prediction)
		if err != nil {
			return nil, fmt.Errorf("extractor for task %s: %w (choose one with --task-type)", rec.Task.ID, err)
		}
		prompts[a.SampleID] = p
		qs = append(qs, question{id: a.SampleID, prompt: p})
	}
	j.opts.Log.Info("extractor judge", "task", rec.Task.ID, "samples", len(qs), "template", tmpl)
	replies, cr, err := j.ask(ctx, j.extract, qs, ExtractSampling)
	if err != nil {
		return nil, fmt.Errorf("extractor judge of %s: %w", rec.Task.ID, err)
	}
	rewrite := make(map[string]eval.Rewrite, len(qs))
	lines := make([]OutputLine, 0, len(answers))
	for _, a := range answers {
		if a.Error != "" {
			continue
		}
		r := replies[a.SampleID]
		o := OutputLine{SampleID: a.SampleID, TaskID: rec.Task.ID, Template: tmpl, Prompt: prompts[a.SampleID],
			Answer: r.raw, Cached: r.cached, Attempts: r.attempts, LatencySec: r.latency}
		if r.err != "" {
			o.Error = "extractor failed: " + r.err
			rewrite[a.SampleID] = eval.Rewrite{Error: o.Error}
		} else {
			x := prompt.ParseExtract(typ, r.raw)
			o.Extracted = &x
			rewrite[a.SampleID] = eval.Rewrite{Prediction: x}
		}
		lines = append(lines, o)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("judge: create %s: %w", outDir, err)
	}
	if err := writeLines(filepath.Join(outDir, ExtractedOutputsFile), lines, func(o OutputLine) any { return o }); err != nil {
		return nil, err
	}
	judge := predictionsRecord(ModeExtract, j.opts.ExtractURL, j.extract, Template{ID: tmpl, Version: prompt.ExtractVersion}, ExtractSampling, cr)
	judge.TaskType = typ
	jr, err := json.Marshal(judge)
	if err != nil {
		return nil, err
	}
	so := j.opts.Score
	so.Rewrite, so.Judge = rewrite, jr
	so.Files = &eval.OutputFiles{Scored: ExtractedScoredFile, Summary: ExtractedSummaryFile}
	return eval.ScoreFile(ctx, path, outDir, so)
}
