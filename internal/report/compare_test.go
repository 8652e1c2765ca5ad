package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/metrics"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (review, then go test -update):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// summary builds a task summary with the given metrics; each metric gets an interval of
// ±0.05 unless noCI.
func summary(task, typ, suite, model, revision string, n, failed int, noCI bool, metrics map[string]float64) eval.TaskSummary {
	s := eval.TaskSummary{TaskID: task, TaskType: typ, Suite: suite, Metrics: metrics, N: n, Failed: failed,
		Model: json.RawMessage(`{"name":"launcher-x","model":"` + model + `","model_revision":"` + revision + `"}`)}
	if !noCI {
		s.Intervals = map[string]eval.Interval{}
		for k, v := range metrics {
			s.Intervals[k] = eval.Interval{Low: v - 0.05, High: v + 0.05}
		}
	}
	if failed > 0 {
		s.Errors = []eval.ErrorCount{{Error: "launcher: HTTP 500", Count: failed}}
	}
	return s
}

// writeTree writes files (relative path → content; eval.TaskSummary values are encoded)
// under a temporary directory.
func writeTree(t *testing.T, files map[string]any) string {
	t.Helper()
	root := t.TempDir()
	for rel, v := range files {
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var b []byte
		switch v := v.(type) {
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.MarshalIndent(v, "", "  "); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// syntheticTasks is the layout of the golden comparison: three listed tasks with published
// values for two of them.
var syntheticTasks = []registry.Task{
	{ID: "t_cls", Type: registry.Classification, Published: &registry.Published{Metric: "accuracy", Results: map[string]float64{"naturelm_audio": 0.82, "salmonn": 0.3}}},
	{ID: "t_det", Type: registry.Detection},
	{ID: "t_cap", Type: registry.Captioning, Published: &registry.Published{Metric: "spider", Results: map[string]float64{"naturelm_audio": 0.532}}},
	{ID: "t_unrun", Type: registry.Classification, Published: &registry.Published{Metric: "accuracy", Results: map[string]float64{"naturelm_audio": 0.5}}},
}

// syntheticRuns writes three models' results:
//   - alpha: every task, plus t_extra (not in the layout), captioning with SPIDEr;
//   - beta: t_det missing, t_cls with failed items and no interval, captioning without SPICE
//     (CIDEr-D only), a broken summary.json and a directory without one;
//   - gamma: no /info model (named by its directory), t_det failed as a whole (from
//     suite_summary.json).
func syntheticRuns(t *testing.T) (string, []Run) {
	t.Helper()
	root := writeTree(t, map[string]any{
		"alpha/t_cls/summary.json":   summary("t_cls", "classification", "syn", "alpha-model", "r1", 400, 0, false, map[string]float64{"accuracy": 0.612, "f1_macro": 0.5}),
		"alpha/t_det/summary.json":   summary("t_det", "detection", "syn", "alpha-model", "r1", 300, 0, false, map[string]float64{"f1_macro": 0.25, "map_macro": 0.3}),
		"alpha/t_cap/summary.json":   summary("t_cap", "captioning", "syn", "alpha-model", "r1", 200, 0, false, map[string]float64{"spider": 0.41, "cider_d": 0.7, "spice": 0.12}),
		"alpha/t_extra/summary.json": summary("t_extra", "classification", "", "alpha-model", "r1", 10, 0, false, map[string]float64{"accuracy": 1}),
		"beta/t_cls/summary.json":    summary("t_cls", "classification", "syn", "beta-model", "", 400, 12, true, map[string]float64{"accuracy": 0.5005}),
		"beta/t_cap/summary.json":    summary("t_cap", "captioning", "syn", "beta-model", "", 200, 0, false, map[string]float64{"cider_d": 0.9}),
		"beta/t_det/summary.json":    "{\"task_id\": \"t_det\", \"metrics\": {",
		"beta/logs/slurm-1.out":      "not a task",
		"gamma/t_cls/summary.json": func() eval.TaskSummary {
			s := summary("t_cls", "classification", "syn", "", "", 400, 0, false, map[string]float64{"accuracy": 0.7})
			s.Model = nil
			return s
		}(),
		"gamma/t_cap/summary.json": func() eval.TaskSummary {
			s := summary("t_cap", "captioning", "syn", "", "", 200, 0, false, map[string]float64{"spider": 0.3, "cider_d": 0.5})
			s.Model = nil
			return s
		}(),
		"gamma/suite_summary.json": eval.SuiteSummary{Suite: "syn", Tasks: []eval.SuiteTask{
			{TaskID: "t_cls", TaskType: "classification", Dir: "t_cls"},
			{TaskID: "t_det", TaskType: "detection", Dir: "t_det", Error: "stream rows: connection reset"},
			{TaskID: "t_cap", TaskType: "captioning", Dir: "t_cap"},
		}},
	})
	var runs []Run
	for _, m := range []string{"alpha", "beta", "gamma"} {
		r, err := LoadRun(filepath.Join(root, m))
		if err != nil {
			t.Fatalf("LoadRun(%s): %v", m, err)
		}
		runs = append(runs, r)
	}
	return root, runs
}

func TestCompareGolden(t *testing.T) {
	root, runs := syntheticRuns(t)
	c := Compare(runs, CompareOptions{Tasks: syntheticTasks})
	clean := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(root), []byte("ROOT")) }
	render := map[string]func(*bytes.Buffer) error{
		"compare.txt":        func(b *bytes.Buffer) error { return CompareTable(b, c, 0) },
		"compare_narrow.txt": func(b *bytes.Buffer) error { return CompareTable(b, c, 80) },
		"compare.md":         func(b *bytes.Buffer) error { return CompareMarkdown(b, c, "Synthetic comparison") },
		"compare.csv":        func(b *bytes.Buffer) error { return CompareCSV(b, c) },
		"compare.json":       func(b *bytes.Buffer) error { return CompareJSON(b, c) },
	}
	for name, f := range render {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden(t, name, clean(b.Bytes()))
	}
	var doc map[string]any
	var b bytes.Buffer
	if err := CompareJSON(&b, c); err != nil || json.Unmarshal(b.Bytes(), &doc) != nil || doc["schema"] != CompareSchema {
		t.Errorf("JSON output is not a %s document: %v", CompareSchema, err)
	}
}

func TestCompareStructure(t *testing.T) {
	_, runs := syntheticRuns(t)
	c := Compare(runs, CompareOptions{Tasks: syntheticTasks})
	var labels []string
	for _, m := range c.Models {
		labels = append(labels, m.Label)
	}
	if got := strings.Join(labels, ","); got != "alpha-model,beta-model,gamma" {
		t.Errorf("columns %s: want the /info models, and the directory name without one", got)
	}
	var ids []string
	for _, r := range c.Rows {
		ids = append(ids, r.TaskID)
	}
	// Layout order, t_unrun (no results) left out, t_extra (not in the layout) at the end.
	if got := strings.Join(ids, ","); got != "t_cls,t_det,t_cap,t_extra" {
		t.Errorf("rows %s", got)
	}
	det := c.Rows[1]
	if det.Cells[0].Status != StatusOK || det.Cells[1].Status != StatusMissing || det.Cells[2].Status != StatusFailed {
		t.Errorf("t_det statuses: %+v", det.Cells)
	}
	cap := c.Rows[2]
	if cap.Metric != "spider" || cap.Cells[1].Metric != "cider_d" {
		t.Errorf("t_cap: row metric %s, beta's %s; want spider and cider_d", cap.Metric, cap.Cells[1].Metric)
	}
	// Only t_cls is complete for all three in the same metric.
	if got := strings.Join(c.Average.Tasks, ","); got != "t_cls" {
		t.Errorf("averaged over %s, want t_cls", got)
	}
	if len(c.Average.Values) != 3 || c.Average.Values[0] != 0.612 || !c.Average.HasPub || c.Average.Published != 0.82 {
		t.Errorf("average %+v", c.Average)
	}
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0].Path, filepath.Join("beta", "t_det", "summary.json")) {
		t.Errorf("problems %+v: want the broken summary of beta/t_det", c.Problems)
	}
	if c.Reference != PaperReference {
		t.Errorf("reference %q", c.Reference)
	}
	if c2 := Compare(runs, CompareOptions{Tasks: syntheticTasks, NoPublished: true}); c2.Reference != "" || c2.Rows[0].HasPub {
		t.Error("NoPublished still shows published values")
	}
	if c3 := Compare(runs, CompareOptions{Tasks: syntheticTasks, Reference: "salmonn"}); c3.Reference != "salmonn" || c3.Rows[0].Published != 0.3 || c3.Rows[2].HasPub {
		t.Errorf("reference salmonn: %+v", c3.Rows[0])
	}
}

func TestLoadRunProblems(t *testing.T) {
	_, runs := syntheticRuns(t)
	beta := runs[1]
	if beta.Name != "beta-model" || len(beta.Tasks) != 2 {
		t.Fatalf("beta: name %q, %d tasks; want beta-model and the 2 readable tasks", beta.Name, len(beta.Tasks))
	}
	if len(beta.Problems) != 1 || !strings.Contains(beta.Problems[0].Err, "not a valid summary.json") || beta.Problems[0].Task != "t_det" {
		t.Errorf("problems %+v", beta.Problems)
	}
	if _, ok := beta.Task("t_det"); ok {
		t.Error("the broken task is loaded")
	}
	gamma := runs[2]
	if det, ok := gamma.Task("t_det"); !ok || det.Error == "" {
		t.Errorf("gamma t_det: %+v, want the failure from suite_summary.json", det)
	}
	if cls, _ := gamma.Task("t_cls"); cls.Metric != "accuracy" || !cls.HasCI || cls.N != 400 {
		t.Errorf("gamma t_cls: %+v", cls)
	}
	if got := runs[0].Suites; len(got) != 1 || got[0] != "syn" {
		t.Errorf("alpha suites %v", got)
	}

	if _, err := LoadRun(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no task results") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := LoadRun(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing directory: no error")
	}
	// Only a broken summary: the problem is the result, not an error.
	only := writeTree(t, map[string]any{"t/summary.json": "nope"})
	if r, err := LoadRun(only); err != nil || len(r.Problems) != 1 {
		t.Errorf("broken only: %v, %+v", err, r.Problems)
	}
}

func TestLoadRunMixedModels(t *testing.T) {
	dir := writeTree(t, map[string]any{
		"a/summary.json": summary("a", "classification", "", "m1", "", 1, 0, false, map[string]float64{"accuracy": 1}),
		"b/summary.json": summary("b", "classification", "", "m2", "", 1, 0, false, map[string]float64{"accuracy": 1}),
		"c/summary.json": summary("c", "classification", "", "m2", "", 1, 0, false, map[string]float64{"accuracy": 1}),
	})
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "m2" || len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Err, "2 different models") {
		t.Errorf("name %q, problems %+v", r.Name, r.Problems)
	}
}

func TestFindRuns(t *testing.T) {
	root, _ := syntheticRuns(t)
	dirs, err := FindRuns(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(d))
	}
	if got := strings.Join(names, ","); got != "alpha,beta,gamma" {
		t.Errorf("FindRuns(sweep) = %s", got)
	}
	if dirs, err := FindRuns(filepath.Join(root, "alpha")); err != nil || len(dirs) != 1 || dirs[0] != filepath.Join(root, "alpha") {
		t.Errorf("FindRuns(run) = %v, %v", dirs, err)
	}
	if _, err := FindRuns(t.TempDir()); err == nil {
		t.Error("FindRuns(empty): no error")
	}
}

func TestLayoutTasks(t *testing.T) {
	reg, err := registry.Default()
	if err != nil {
		t.Fatal(err)
	}
	runs := []Run{
		{Suites: []string{"beans_zero_smoke"}, Tasks: []TaskResult{{TaskID: "beans_zero_captioning"}, {TaskID: "beans_zero_esc50"}, {TaskID: "beans_zero_watkins"}, {TaskID: "not_registered"}}},
	}
	var ids []string
	for _, tk := range LayoutTasks(reg, runs) {
		ids = append(ids, tk.ID)
	}
	if got := strings.Join(ids, ","); got != "beans_zero_esc50,beans_zero_enabirds,beans_zero_captioning,beans_zero_watkins" {
		t.Errorf("layout %s", got)
	}
}

// TestPaperRowsSharesTheMetric keeps PaperRows and Compare on the same choice of metric.
func TestPaperRowsSharesTheMetric(t *testing.T) {
	rows := PaperRows(&eval.SuiteSummary{Tasks: []eval.SuiteTask{
		{TaskID: "c", TaskType: "captioning", Metrics: map[string]float64{"cider_d": 0.9}},
		{TaskID: "s", TaskType: "captioning", Metrics: map[string]float64{"cider_d": 0.9, "spider": 0.4},
			Intervals: map[string]eval.Interval{"spider": {Low: 0.3, High: 0.5}}},
	}})
	if rows[0].Metric != "cider_d" || rows[1].Metric != "spider" || rows[1].Value != 0.4 || !rows[1].HasCI || rows[1].Low != 0.3 {
		t.Errorf("rows %+v", rows)
	}
}

// A task's judged results (judge_summary.json, judge_extracted_summary.json) are rows right
// below the task, in their own metric, and never in the average.
func TestCompareJudgedRows(t *testing.T) {
	js := func(model string, v float64) judge.Summary {
		return judge.Summary{TaskID: "t_cls", TaskType: registry.Classification, Mode: "yesno",
			Headline: eval.Headline{Name: judge.MetricAccuracy, Value: v}, Metrics: map[string]float64{judge.MetricAccuracy: v},
			Intervals: map[string]metrics.Interval{judge.MetricAccuracy: {Low: v - 0.1, High: v + 0.1}}, N: 10, Scored: 9, JudgeErrors: 1}
	}
	ext := summary("t_cls", registry.Classification, "s", "m1", "1", 10, 0, false, map[string]float64{"accuracy": 0.9})
	root := writeTree(t, map[string]any{
		"a/t_cls/summary.json":                 summary("t_cls", registry.Classification, "s", "m1", "1", 10, 0, false, map[string]float64{"accuracy": 0.5}),
		"a/t_cls/judge_summary.json":           js("m1", 0.7),
		"a/t_cls/judge_extracted_summary.json": ext,
		"a/t_det/summary.json":                 summary("t_det", registry.Detection, "s", "m1", "1", 10, 0, false, map[string]float64{"f1_macro": 0.4}),
		"b/t_cls/summary.json":                 summary("t_cls", registry.Classification, "s", "m2", "1", 10, 0, false, map[string]float64{"accuracy": 0.6}),
		"b/t_det/summary.json":                 summary("t_det", registry.Detection, "s", "m2", "1", 10, 0, false, map[string]float64{"f1_macro": 0.2}),
		"b/t_det/judge_summary.json":           "{not json",
	})
	var runs []Run
	for _, d := range []string{"a", "b"} {
		r, err := LoadRun(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	c := Compare(runs, CompareOptions{})
	var ids []string
	for _, r := range c.Rows {
		ids = append(ids, r.TaskID+"/"+r.Metric)
	}
	want := "t_cls/accuracy,t_cls [extracted]/accuracy,t_cls [yesno judge]/judge_accuracy,t_det/f1_macro"
	if got := strings.Join(ids, ","); got != want {
		t.Errorf("rows %s\nwant %s", got, want)
	}
	j := c.Rows[2]
	if j.Judge != "yesno" || j.Cells[0].Value != 0.7 || j.Cells[0].N != 9 || j.Cells[0].Failed != 1 || j.Cells[1].Status != StatusMissing {
		t.Errorf("judged row %+v", j)
	}
	if got := strings.Join(c.Average.Tasks, ","); got != "t_cls,t_det" {
		t.Errorf("averaged over %s: judged rows must not be averaged", got)
	}
	if len(c.Problems) != 1 || !strings.Contains(c.Problems[0].Err, "judge_summary.json") {
		t.Errorf("problems %+v: want b's broken judge summary", c.Problems)
	}
}
