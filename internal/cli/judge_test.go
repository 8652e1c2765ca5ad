package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

func readJudgeSummary(t *testing.T, path string) judge.Summary {
	t.Helper()
	var s judge.Summary
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Judges inline in `run`, then after the fact with `score`, all three modes, never over the
// run's own files or each other's.
func TestJudgeInlineAndAfter(t *testing.T) {
	model := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeTone}))
	judgeURL := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeJudge}))
	out := filepath.Join(t.TempDir(), "run")
	cache := t.TempDir()
	r := runCLI(t, "run", "--predict-url", model, "--suite", "demo", "--data-dir", demoDataDir, "-o", out,
		"--cache-dir", cache, "--judge-url", judgeURL)
	if r.code != 0 {
		t.Fatalf("run --judge-url: %d\n%s\n%s", r.code, r.out, r.err)
	}
	tasks := []string{"demo_species", "demo_detection", "demo_captioning"}
	originals := map[string][]byte{}
	for _, task := range tasks {
		s := readJudgeSummary(t, filepath.Join(out, task, judge.SummaryFile))
		// The tone dummy answers every demo sample right: the judge says YES to each.
		if s.Mode != judge.ModeYesNo || s.Headline.Name != judge.MetricAccuracy || s.Headline.Value != 1 || s.Yes != s.N || s.N == 0 {
			t.Errorf("%s: inline judge %+v", task, s)
		}
		if !strings.Contains(r.err, task+": yesno judge: judge_accuracy 1.000") {
			t.Errorf("run did not report the judge of %s:\n%s", task, r.err)
		}
		for _, f := range []string{eval.PredictionsFile, eval.ScoredFile, eval.SummaryFile, judge.ScoredFile} {
			b, err := os.ReadFile(filepath.Join(out, task, f))
			if err != nil {
				t.Fatal(err)
			}
			originals[task+"/"+f] = b
		}
	}
	// After the fact: the rubric judge (the dummy's /judge) and the extractor at once.
	rubricOut := filepath.Join(t.TempDir(), "rubric")
	r = runCLI(t, "score", filepath.Join(out, "demo_species", eval.PredictionsFile), "-o", rubricOut,
		"--judge-url", strings.TrimSuffix(judgeURL, "/predict")+"/judge", "--judge-extract-url", judgeURL, "--cache-dir", cache)
	if r.code != 0 {
		t.Fatalf("score with two judges: %d\n%s\n%s", r.code, r.out, r.err)
	}
	if s := readJudgeSummary(t, filepath.Join(rubricOut, judge.SummaryFile)); s.Mode != judge.ModeRubric || s.Headline.Value != 1 {
		t.Errorf("rubric judge: %+v", s)
	}
	ext := readSummary(t, filepath.Join(rubricOut, judge.ExtractedSummaryFile))
	if ext.Headline.Name != "accuracy" || ext.Headline.Value != 1 || len(ext.Judge) == 0 {
		t.Errorf("extracted summary: %+v", ext)
	}
	for _, f := range []string{eval.SummaryFile, eval.ScoredFile, judge.OutputsFile, judge.ExtractedOutputsFile, judge.ExtractedScoredFile} {
		if _, err := os.Stat(filepath.Join(rubricOut, f)); err != nil {
			t.Errorf("score -o wrote no %s: %v", f, err)
		}
	}
	// --results-dir --judge-only over the run itself: the extractor's files appear, nothing
	// the run or the inline judge wrote changes.
	r = runCLI(t, "score", "--results-dir", out, "--judge-only", "--judge-extract-url", judgeURL, "--cache-dir", cache)
	if r.code != 0 {
		t.Fatalf("score --results-dir --judge-only: %d\n%s\n%s", r.code, r.out, r.err)
	}
	for key, want := range originals {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(key)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed (%v)", key, err)
		}
	}
	for _, task := range tasks {
		if _, err := os.Stat(filepath.Join(out, task, judge.ExtractedSummaryFile)); err != nil {
			t.Errorf("%s: no extracted summary: %v", task, err)
		}
	}
	// compare shows the judged rows below the tasks.
	if r := runCLI(t, "compare", out); r.code != 0 || !strings.Contains(r.out, "demo_species [yesno judge]") || !strings.Contains(r.out, "demo_species [extracted]") {
		t.Errorf("compare: %d\n%s\n%s", r.code, r.out, r.err)
	}
}

func TestJudgeFlagErrors(t *testing.T) {
	model := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeTone}))
	out := filepath.Join(t.TempDir(), "run")
	// A judge that is down is found before any inference.
	r := runCLI(t, "run", "--predict-url", model, "--suite", "demo", "--data-dir", demoDataDir, "-o", out,
		"--judge-url", "http://127.0.0.1:1/predict", "--judge-mode", "yesno", "--no-cache")
	if r.code != ExitConfig || !strings.Contains(r.err, "127.0.0.1:1") {
		t.Errorf("run with a judge that is down: %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(out, "demo_species", eval.PredictionsFile)); err == nil {
		t.Error("inference ran although the judge is down")
	}
	for _, args := range [][]string{
		{"score", "x/predictions.jsonl", "--task-type", "classification"},                 // a judge option without a judge
		{"score", "x/predictions.jsonl", "--judge-url", model, "--judge-mode", "extract"}, // extract names a handoff's judge
		{"score", "x/predictions.jsonl", "--judge-url", model, "--judge-mode", "vote"},
		{"score", "--results-dir", t.TempDir(), "--judge-url", model}, // no predictions there
		{"score", "--judge-only", "x/predictions.jsonl"},              // judge-only without a judge
	} {
		if r := runCLI(t, args...); r.code != ExitConfig {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, ExitConfig, r.err)
		}
	}
}

// The judging job of `beans-slurm judge`: score waits for the judge serving job's URL in the
// handoff directory, judges every task of the results directory, and leaves its done marker
// (with how it ended) so that the serving job stops.
func TestScoreJudgeWorker(t *testing.T) {
	model := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeTone}))
	judgeURL := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeJudge}))
	out := filepath.Join(t.TempDir(), "run")
	if r := runCLI(t, "run", "--predict-url", model, "--suite", "demo", "--task", "demo_species", "--data-dir", demoDataDir, "-o", out, "--no-cache"); r.code != 0 {
		t.Fatalf("run: %d\n%s", r.code, r.err)
	}
	h := slurm.Handoff{Dir: filepath.Join(t.TempDir(), "handoff"), ServeJob: "4242"}
	if err := h.PublishURL(judgeURL); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"yesno", "rubric", "extract"} {
		r := runCLI(t, "score", "--results-dir", out, "--judge-only", "--judge-mode", mode, "--handoff", h.Dir, "--serve-job", h.ServeJob, "--no-answer-cache")
		if r.code != 0 {
			t.Fatalf("%s worker: %d\n%s", mode, r.code, r.err)
		}
		done, err := os.ReadFile(h.DoneFile(0))
		if err != nil || strings.TrimSpace(string(done)) != "ok" {
			t.Errorf("%s: done marker %q %v", mode, done, err)
		}
		os.Remove(h.DoneFile(0))
	}
	if s := readJudgeSummary(t, filepath.Join(out, "demo_species", judge.SummaryFile)); s.Mode != judge.ModeRubric {
		t.Errorf("the last judge_summary.json is %s's, want the rubric pass's", s.Mode)
	}
	if _, err := os.Stat(filepath.Join(out, "demo_species", judge.ExtractedSummaryFile)); err != nil {
		t.Error(err)
	}
	// A worker that fails says so in its marker.
	if err := os.WriteFile(filepath.Join(out, "demo_species", eval.PredictionsFile), []byte("{not json\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "score", "--results-dir", out, "--judge-only", "--judge-mode", "yesno", "--handoff", h.Dir, "--serve-job", h.ServeJob, "--no-answer-cache")
	done, _ := os.ReadFile(h.DoneFile(0))
	if r.code == 0 || !strings.HasPrefix(string(done), "failed: ") {
		t.Errorf("failing worker: exit %d, marker %q", r.code, done)
	}
}
