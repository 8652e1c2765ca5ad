package eval

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// writeRun lays out a task directory as `run` does, with the given predictions file body.
func writeRun(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	rec := TaskRecord{
		Task:   registry.Task{ID: "t", Type: registry.Classification, DatasetNames: []string{"d"}},
		Labels: []string{"cat", "dog"}, LabelsSource: "test", Model: json.RawMessage(`{"name":"m"}`),
	}
	if err := WriteJSON(filepath.Join(dir, TaskFile), rec); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, PredictionsFile)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func line(id, target, pred, errStr string) string {
	b, _ := json.Marshal(PredictionLine{SampleID: id, TaskID: "t", Target: target, Prediction: pred, Error: errStr, Response: json.RawMessage("null")})
	return string(b) + "\n"
}

func TestScoreFile(t *testing.T) {
	good := line("a", "cat", "cat", "") + line("b", "dog", "dgo", "") + line("c", "dog", "", "launcher error: boom")
	tests := []struct {
		name    string
		body    string
		wantErr string
		wantN   int
		wantAcc float64
		note    string
	}{
		{name: "plain", body: good, wantN: 3, wantAcc: 2.0 / 3},
		{name: "torn last line", body: good + `{"sample_id":"d","tar`, wantN: 3, wantAcc: 2.0 / 3, note: "torn last line"},
		{name: "broken middle line", body: line("a", "cat", "cat", "") + "{oops\n" + line("b", "dog", "dog", ""), wantErr: "line 2 is not a prediction record"},
		{name: "duplicate id", body: good + line("a", "cat", "dog", ""), wantErr: `line 4 repeats sample_id "a" of line 1`},
		{name: "no sample id", body: `{"task_id":"t","target":"cat"}` + "\n", wantErr: "line 1"},
		{name: "another task", body: good + `{"sample_id":"z","task_id":"other","target":"cat"}` + "\n", wantErr: `line 4 is not a prediction record (task_id "other", but task.json says "t")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeRun(t, tt.body)
			sum, err := ScoreFile(context.Background(), p, "", ScoreOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.N != tt.wantN || sum.Headline.Name != "accuracy" || sum.Headline.Value != tt.wantAcc || sum.Failed != 1 {
				t.Errorf("summary n=%d %v failed=%d", sum.N, sum.Headline, sum.Failed)
			}
			if len(sum.Errors) != 1 || sum.Errors[0].Count != 1 || !strings.Contains(sum.Errors[0].Error, "boom") {
				t.Errorf("errors %+v", sum.Errors)
			}
			if tt.note != "" && !strings.Contains(strings.Join(sum.Notes, " "), tt.note) {
				t.Errorf("notes %q lack %q", sum.Notes, tt.note)
			}
			after, _ := os.ReadFile(p)
			if string(after) != tt.body {
				t.Error("the predictions file was changed")
			}
		})
	}
}

func TestScoreFileElsewhere(t *testing.T) {
	p := writeRun(t, line("a", "cat", "cat", ""))
	out := filepath.Join(t.TempDir(), "re")
	if _, err := ScoreFile(context.Background(), p, out, ScoreOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{TaskFile, ProcessedFile, ScoredFile, SummaryFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, PredictionsFile)); err == nil {
		t.Error("score wrote a predictions file")
	}
	// Without task.json there is nothing to score against.
	os.Remove(filepath.Join(filepath.Dir(p), TaskFile))
	if _, err := ScoreFile(context.Background(), p, "", ScoreOptions{}); err == nil || !strings.Contains(err.Error(), "no task.json beside it") {
		t.Fatalf("err %v", err)
	}
}

func TestPeakRSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	if mib := peakRSSMiB(); mib <= 0 || mib > 64<<10 {
		t.Fatalf("peak RSS %.1f MiB", mib)
	}
}

func TestScoreFileSkipBadLines(t *testing.T) {
	p := writeRun(t, line("a", "cat", "cat", "")+"{oops\n"+line("b", "dog", "dog", ""))
	sum, err := ScoreFile(context.Background(), p, "", ScoreOptions{SkipBadLines: true, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.N != 2 || sum.Headline.Value != 1 || !strings.Contains(strings.Join(sum.Notes, " "), "skipped 1 unreadable line") {
		t.Fatalf("n %d, %v, notes %q", sum.N, sum.Headline, sum.Notes)
	}
	if sum.Intervals != nil {
		t.Errorf("intervals computed with the bootstrap off: %v", sum.Intervals)
	}
}
