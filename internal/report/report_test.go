package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
)

func TestLine(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		pr   eval.Progress
		now  time.Duration
		want string
	}{
		{eval.Progress{Task: "t", TaskIndex: 1, Tasks: 3, Total: 100, Started: start}, 0, "[1/3] t  0/100 (0%)  0.0 samples/s  ETA ?"},
		{eval.Progress{Task: "t", TaskIndex: 2, Tasks: 3, Done: 50, Total: 100, Failed: 2, Started: start}, 10 * time.Second, "[2/3] t  50/100 (50%)  5.0 samples/s  ETA 10s  2 failed"},
		{eval.Progress{Task: "t", TaskIndex: 3, Tasks: 3, Done: 100, Total: 100, Started: start}, 4 * time.Second, "[3/3] t  100/100 (100%)  25.0 samples/s  ETA 0s"},
	}
	for _, tt := range tests {
		if got := Line(tt.pr, start.Add(tt.now)); got != tt.want {
			t.Errorf("Line = %q, want %q", got, tt.want)
		}
	}
}

func TestProgressOnTerminalRedrawsInPlace(t *testing.T) {
	var buf bytes.Buffer
	p := &Progress{W: &buf, Terminal: true, Now: func() time.Time { return time.Unix(10, 0) }}
	start := time.Unix(0, 0)
	p.Update(eval.Progress{Task: "long_task_name", TaskIndex: 1, Tasks: 1, Total: 10, Done: 5, Started: start})
	p.Update(eval.Progress{Task: "t", TaskIndex: 1, Tasks: 1, Total: 10, Done: 10, Started: start, Finished: true})
	s := buf.String()
	if strings.Count(s, "\r") != 2 || !strings.HasSuffix(s, "\n") {
		t.Errorf("terminal output %q: want two redraws and a final newline", s)
	}
}

func TestSuiteTable(t *testing.T) {
	var buf bytes.Buffer
	err := SuiteTable(&buf, &eval.SuiteSummary{Tasks: []eval.SuiteTask{{
		TaskID: "demo_species", TaskType: "classification", Headline: eval.Headline{Name: "accuracy", Value: 0.5},
		Metrics: map[string]float64{"accuracy": 0.5, "f1_macro": 0.25}, N: 4, Failed: 1,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TASK", "demo_species", "0.5000", "f1_macro=0.2500"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "accuracy=") {
		t.Error("the headline metric is repeated among the others")
	}
}
