package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// Cell statuses.
const (
	StatusOK      = "ok"      // the model has a result for the task
	StatusMissing = "missing" // the model's directory has no result for the task
	StatusFailed  = "failed"  // the task's run failed as a whole (see Cell.Error)
)

// CompareOptions tune Compare.
type CompareOptions struct {
	// Tasks give the order of the rows (the paper's layout: a suite's tasks in order, see
	// LayoutTasks) and the published values. Tasks of the runs that are not listed follow,
	// sorted by id; listed tasks that no run has are left out.
	Tasks []registry.Task
	// Reference is the model whose published value is shown beside the others (default
	// PaperReference, NatureLM-audio); NoPublished leaves the column out.
	Reference   string
	NoPublished bool
}

// Comparison is several models side by side: one row per task, one column per model.
type Comparison struct {
	Models []ComparedModel
	Rows   []CompareRow
	// Reference is the model of the published column ("" when the column is left out or no
	// task has a published value for it).
	Reference string
	// Average is each model's mean over the tasks that every model has (see Average).
	Average Average
	// Problems are the runs' load problems, in the order of the models.
	Problems []LoadProblem
}

// ComparedModel is one column.
type ComparedModel struct {
	// Label is the column header: the run's Name, made unique with the directory's name
	// when two runs share a name.
	Label    string
	Name     string
	Identity Identity
	Dir      string
}

// CompareRow is one task.
type CompareRow struct {
	TaskID   string
	TaskType string
	// Metric is the row's paper metric; a cell whose Metric differs (a captioning result
	// without SPICE, for instance) is marked, and the row is left out of the averages.
	Metric string
	// Cells are the models' results, in the order of Comparison.Models.
	Cells []Cell
	// Published is the reference model's published value, in PublishedMetric.
	Published       float64
	PublishedMetric string
	HasPub          bool
	// Judge marks a judged result of a task (yesno, rubric, extracted): shown below the task,
	// not averaged.
	Judge string `json:",omitempty"`
}

// Cell is one model's result on one task.
type Cell struct {
	Status    string // StatusOK, StatusMissing or StatusFailed
	Metric    string
	Value     float64
	Low, High float64 // the 95% interval when HasCI
	HasCI     bool
	N, Failed int
	Errors    []eval.ErrorCount
	Error     string // why the task failed (StatusFailed)
}

// Average is each model's mean paper metric over the same tasks: those where every model
// has a result in the row's metric. Tasks missing or failed for any model, or scored in
// another metric by one of them, are left out, so that the means compare like with like.
type Average struct {
	// Tasks are the ids of the tasks averaged (empty: no average).
	Tasks []string
	// Values are the means, in the order of Comparison.Models.
	Values []float64
	// Published is the reference model's mean published value over the same tasks, when
	// every one of them has a published value in the row's metric.
	Published float64
	HasPub    bool
}

// LayoutTasks returns the registry tasks of runs in the paper's layout: the tasks of the
// suites the runs were made with, in suite order (the order PaperRows shows), then the
// runs' other tasks that the registry knows, sorted by id. Pass it as CompareOptions.Tasks.
func LayoutTasks(reg *registry.Registry, runs []Run) []registry.Task {
	var out []registry.Task
	seen := map[string]bool{}
	add := func(t registry.Task) {
		if !seen[t.ID] {
			seen[t.ID] = true
			out = append(out, t)
		}
	}
	var suites []string
	for _, r := range runs {
		for _, s := range r.Suites {
			if !slices.Contains(suites, s) {
				suites = append(suites, s)
			}
		}
	}
	for _, s := range suites {
		tasks, err := reg.SuiteTasks(s)
		if err != nil {
			continue // a suite of another registry: its tasks follow below
		}
		for _, t := range tasks {
			add(t)
		}
	}
	var rest []string
	for _, r := range runs {
		for _, t := range r.Tasks {
			if !seen[t.TaskID] && !slices.Contains(rest, t.TaskID) {
				rest = append(rest, t.TaskID)
			}
		}
	}
	slices.Sort(rest)
	for _, id := range rest {
		if t, err := reg.Task(id); err == nil {
			add(t)
		}
	}
	return out
}

// Compare lays runs side by side: rows are tasks (see CompareOptions.Tasks for the order),
// columns the runs in the order given, each cell the task's paper metric — the metric that
// PaperRows shows — with its 95% interval.
func Compare(runs []Run, opts CompareOptions) *Comparison {
	ref := opts.Reference
	if ref == "" {
		ref = PaperReference
	}
	c := &Comparison{Models: columns(runs)}
	for _, r := range runs {
		c.Problems = append(c.Problems, r.Problems...)
	}

	// Rows: the listed tasks that some run has, then the runs' other tasks by id.
	have := map[string]bool{}
	for _, r := range runs {
		for _, t := range r.Tasks {
			have[t.TaskID] = true
		}
	}
	defs := map[string]registry.Task{}
	var ids []string
	for _, t := range opts.Tasks {
		if have[t.ID] && !slices.Contains(ids, t.ID) {
			ids = append(ids, t.ID)
			defs[t.ID] = t
		}
	}
	var rest []string
	for id := range have {
		if _, ok := defs[id]; !ok {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	ids = append(ids, rest...)
	// A task's judged results go right below it.
	judgedOf := map[string][]string{}
	isJudged := map[string]string{}
	for _, r := range runs {
		for _, t := range r.Tasks {
			if t.Judge != "" && isJudged[t.TaskID] == "" {
				isJudged[t.TaskID] = t.Judge
				judgedOf[t.Base] = append(judgedOf[t.Base], t.TaskID)
			}
		}
	}
	if len(isJudged) > 0 {
		var ordered []string
		for _, id := range ids {
			if isJudged[id] != "" {
				continue
			}
			ordered = append(ordered, id)
			j := judgedOf[id]
			slices.Sort(j)
			ordered = append(ordered, j...)
		}
		for _, id := range ids { // judged results whose task has no row
			if isJudged[id] != "" && !slices.Contains(ordered, id) {
				ordered = append(ordered, id)
			}
		}
		ids = ordered
	}

	anyPub := false
	for _, id := range ids {
		row := CompareRow{TaskID: id, Cells: make([]Cell, len(runs)), Judge: isJudged[id]}
		def, known := defs[id]
		if known {
			row.TaskType = def.Type
			if !opts.NoPublished {
				row.Published, row.PublishedMetric, row.HasPub = publishedValue(def.Published, ref)
				anyPub = anyPub || row.HasPub
			}
		}
		for i := range runs {
			t, ok := runs[i].Task(id)
			switch {
			case !ok:
				row.Cells[i] = Cell{Status: StatusMissing}
			case t.Error != "":
				row.Cells[i] = Cell{Status: StatusFailed, Error: t.Error}
			default:
				row.Cells[i] = Cell{Status: StatusOK, Metric: t.Metric, Value: t.Value, Low: t.Low, High: t.High,
					HasCI: t.HasCI, N: t.N, Failed: t.Failed, Errors: t.Errors}
			}
			if ok && row.TaskType == "" {
				row.TaskType = t.TaskType
			}
		}
		row.Metric = rowMetric(row)
		c.Rows = append(c.Rows, row)
	}
	if anyPub {
		c.Reference = ref
	} else {
		for i := range c.Rows {
			c.Rows[i].HasPub = false
		}
	}
	c.Average = average(c.Rows, len(runs))
	return c
}

// rowMetric is the metric of the published value when a cell has it (SPIDEr rather than
// CIDEr-D), else the metric of most cells (the first on a tie), else the task type's.
func rowMetric(row CompareRow) string {
	count := map[string]int{}
	var order []string
	for _, c := range row.Cells {
		if c.Status != StatusOK {
			continue
		}
		if row.HasPub && c.Metric == row.PublishedMetric {
			return c.Metric
		}
		if count[c.Metric] == 0 {
			order = append(order, c.Metric)
		}
		count[c.Metric]++
	}
	best := ""
	for _, m := range order {
		if best == "" || count[m] > count[best] {
			best = m
		}
	}
	if best == "" {
		best = paperMetric(row.TaskType, nil)
	}
	return best
}

func average(rows []CompareRow, models int) Average {
	var a Average
	if models == 0 {
		return a
	}
	sums := make([]float64, models)
	pub, allPub := 0.0, true
	for _, r := range rows {
		ok := r.Judge == "" // judged rows are shown, not averaged
		for _, c := range r.Cells {
			if c.Status != StatusOK || c.Metric != r.Metric {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		a.Tasks = append(a.Tasks, r.TaskID)
		for i, c := range r.Cells {
			sums[i] += c.Value
		}
		if r.HasPub && r.PublishedMetric == r.Metric {
			pub += r.Published
		} else {
			allPub = false
		}
	}
	if len(a.Tasks) == 0 {
		return a
	}
	n := float64(len(a.Tasks))
	a.Values = make([]float64, models)
	for i := range sums {
		a.Values[i] = sums[i] / n
	}
	if allPub {
		a.Published, a.HasPub = pub/n, true
	}
	return a
}

// columns names the runs, making equal names unique with the directory's name (and, as a
// last resort, the column's number).
func columns(runs []Run) []ComparedModel {
	out := make([]ComparedModel, len(runs))
	count := map[string]int{}
	for _, r := range runs {
		count[r.Name]++
	}
	used := map[string]bool{}
	for i, r := range runs {
		label := r.Name
		if count[r.Name] > 1 {
			if base := filepath.Base(filepath.Clean(r.Dir)); base != r.Name && base != "." && base != "/" {
				label = r.Name + " (" + base + ")"
			}
		}
		for n := 2; used[label]; n++ {
			label = fmt.Sprintf("%s #%d", r.Name, n)
		}
		used[label] = true
		out[i] = ComparedModel{Label: label, Name: r.Name, Identity: r.Identity, Dir: r.Dir}
	}
	return out
}

// Missing is how a missing cell is shown.
const Missing = "—"

func (c Cell) text(rowMetric string, withCI bool) string {
	switch c.Status {
	case StatusMissing:
		return Missing
	case StatusFailed:
		return "failed"
	}
	s := fmt.Sprintf("%.3f", c.Value)
	if withCI && c.HasCI {
		s += fmt.Sprintf(" [%.3f, %.3f]", c.Low, c.High)
	}
	if c.Metric != rowMetric {
		s += " (" + c.Metric + ")"
	}
	return s
}

func (r CompareRow) pubText() string {
	if !r.HasPub {
		return ""
	}
	s := fmt.Sprintf("%.3f", r.Published)
	if r.PublishedMetric != r.Metric {
		s += " (" + r.PublishedMetric + ")"
	}
	return s
}

// referenceHeader names the published column.
func (c *Comparison) referenceHeader() string {
	if c.Reference == PaperReference {
		return "NatureLM-audio (paper)"
	}
	return c.Reference + " (published)"
}

// footnotes are the notes printed under the table and the Markdown.
func (c *Comparison) footnotes(intervalsCut bool) []string {
	var notes []string
	tasks, judged := 0, 0
	for _, r := range c.Rows {
		if r.Judge != "" {
			judged++
		} else {
			tasks++
		}
	}
	if len(c.Models) > 0 {
		if len(c.Average.Tasks) > 0 {
			notes = append(notes, fmt.Sprintf("* average over the %d of %d tasks that every model has, in the same metric; tasks missing or failed for any model are left out.", len(c.Average.Tasks), tasks))
		} else if len(c.Rows) > 0 {
			notes = append(notes, "* no average: no task has a result, in the same metric, for every model.")
		}
	}
	notes = append(notes, "Values: the paper's metric per task (accuracy, macro F1, SPIDEr or CIDEr-D) with its 95% bootstrap interval; "+Missing+" = no result.")
	if judged > 0 {
		notes = append(notes, "Rows marked [yesno judge] or [rubric judge] are an LLM judge's judge_accuracy or judge_score; [extracted] is the paper's metric on answers rewritten by the extractor judge (docs/judges.md). They are not averaged.")
	}
	if intervalsCut {
		notes = append(notes, "Intervals left out to fit the terminal; the Markdown, CSV and JSON outputs have them.")
	}
	for _, r := range c.Rows {
		for i, cell := range r.Cells {
			switch {
			case cell.Status == StatusFailed:
				notes = append(notes, fmt.Sprintf("%s on %s failed: %s", c.Models[i].Label, r.TaskID, Shorten(cell.Error, 200)))
			case cell.Status == StatusOK && cell.Failed > 0:
				note := fmt.Sprintf("%s on %s: %d of %d items failed (scored as wrong)", c.Models[i].Label, r.TaskID, cell.Failed, cell.N)
				if len(cell.Errors) > 0 {
					note += ", mostly: " + Shorten(cell.Errors[0].Error, 120)
				}
				notes = append(notes, note)
			}
		}
	}
	for _, p := range c.Problems {
		notes = append(notes, "not loaded: "+Shorten(p.String(), 300))
	}
	return notes
}

// CompareTable prints the comparison as an aligned terminal table, with the averages as a
// last row and footnotes below. When width > 0 and the table would be wider, the intervals
// are left out (and a footnote says so).
func CompareTable(w io.Writer, c *Comparison, width int) error {
	var buf bytes.Buffer
	if err := compareTable(&buf, c, true); err != nil {
		return err
	}
	cut := false
	if width > 0 && maxLineWidth(buf.Bytes()) > width {
		buf.Reset()
		if err := compareTable(&buf, c, false); err != nil {
			return err
		}
		cut = true
	}
	buf.WriteByte('\n')
	for _, n := range c.footnotes(cut) {
		buf.WriteString(n)
		buf.WriteByte('\n')
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func compareTable(w io.Writer, c *Comparison, withCI bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"TASK", "METRIC"}
	for _, m := range c.Models {
		head = append(head, m.Label)
	}
	if c.Reference != "" {
		head = append(head, strings.ToUpper(c.referenceHeader()))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range c.Rows {
		line := []string{r.TaskID, r.Metric}
		for _, cell := range r.Cells {
			line = append(line, cell.text(r.Metric, withCI))
		}
		if c.Reference != "" {
			line = append(line, r.pubText())
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	if a := c.Average; len(a.Tasks) > 0 {
		line := []string{"average*", tasksWord(len(a.Tasks))}
		for _, v := range a.Values {
			line = append(line, fmt.Sprintf("%.3f", v))
		}
		if c.Reference != "" {
			line = append(line, avgPub(a))
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

func tasksWord(n int) string {
	if n == 1 {
		return "1 task"
	}
	return fmt.Sprintf("%d tasks", n)
}

func avgPub(a Average) string {
	if !a.HasPub {
		return ""
	}
	return fmt.Sprintf("%.3f", a.Published)
}

func maxLineWidth(b []byte) int {
	n := 0
	for _, l := range bytes.Split(b, []byte("\n")) {
		n = max(n, utf8.RuneCount(bytes.TrimRight(l, " ")))
	}
	return n
}

// CompareMarkdown writes the comparison as a Markdown table (title as a heading when not
// empty), the averages as a last row and the footnotes as a list below.
func CompareMarkdown(w io.Writer, c *Comparison, title string) error {
	var b strings.Builder
	if title != "" {
		fmt.Fprintf(&b, "## %s\n\n", title)
	}
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	b.WriteString("| task | metric |")
	sep := "|---|---|"
	for _, m := range c.Models {
		b.WriteString(" " + esc(m.Label) + " |")
		sep += "---|"
	}
	if c.Reference != "" {
		b.WriteString(" " + esc(c.referenceHeader()) + " |")
		sep += "---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "| %s | %s |", esc(r.TaskID), esc(r.Metric))
		for _, cell := range r.Cells {
			b.WriteString(" " + esc(cell.text(r.Metric, true)) + " |")
		}
		if c.Reference != "" {
			b.WriteString(" " + r.pubText() + " |")
		}
		b.WriteString("\n")
	}
	if a := c.Average; len(a.Tasks) > 0 {
		fmt.Fprintf(&b, "| **average**\\* | %s |", tasksWord(len(a.Tasks)))
		for _, v := range a.Values {
			fmt.Fprintf(&b, " **%.3f** |", v)
		}
		if c.Reference != "" {
			b.WriteString(" " + avgPub(a) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, n := range c.footnotes(false) {
		n = strings.ReplaceAll(n, "*", `\*`)
		b.WriteString("- " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// CompareCSV writes the comparison in tidy form: a header, then one record per task and
// model (rows in order, models in order) with the columns
//
//	task_id, task_type, metric, model, status, value, ci_low, ci_high, n, failed, error,
//	published, published_metric
//
// status is ok, missing or failed; metric is the cell's metric (the row's for a cell without
// result); numbers are empty where there is none; published is the reference model's
// published value for the task. Averages are not written (compute them from the records).
func CompareCSV(w io.Writer, c *Comparison) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"task_id", "task_type", "metric", "model", "status", "value", "ci_low", "ci_high", "n", "failed", "error", "published", "published_metric"})
	f := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	for _, r := range c.Rows {
		for i, cell := range r.Cells {
			rec := []string{r.TaskID, r.TaskType, r.Metric, c.Models[i].Label, cell.Status, "", "", "", "", "", cell.Error, f(r.Published, r.HasPub), ""}
			if r.HasPub {
				rec[12] = r.PublishedMetric
			}
			if cell.Status == StatusOK {
				rec[2] = cell.Metric
				rec[5], rec[6], rec[7] = f(cell.Value, true), f(cell.Low, cell.HasCI), f(cell.High, cell.HasCI)
				rec[8], rec[9] = strconv.Itoa(cell.N), strconv.Itoa(cell.Failed)
			}
			cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

// CompareSchema names the JSON layout written by CompareJSON.
const CompareSchema = "beans_slurm_comparison/1"

// CompareJSON writes the comparison as one JSON document (indented):
//
//	{
//	  "schema": "beans_slurm_comparison/1",
//	  "reference": "naturelm_audio",          // model of "published"; omitted when none
//	  "models": [{"label", "name", "dir", "identity": {"launcher", "model", "revision"}}],
//	  "tasks": [{
//	    "task_id", "task_type", "metric",
//	    "published": {"metric", "value"},      // omitted when none
//	    "results": [{                           // one per model, in the order of "models"
//	      "model": label, "status": "ok" | "missing" | "failed", "metric",
//	      "value", "ci_low", "ci_high",         // omitted when none
//	      "n", "failed",                        // items scored, items failed (status ok)
//	      "errors": [{"error", "count"}],       // most frequent item errors
//	      "error"                               // why the task failed (status failed)
//	    }]
//	  }],
//	  "average": {"tasks": [ids], "values": [{"model", "value"}], "published"},
//	  "problems": [{"dir", "task", "path", "error"}]
//	}
//
// Field names are stable; new fields may be added.
func CompareJSON(w io.Writer, c *Comparison) error {
	type identity struct {
		Launcher string `json:"launcher,omitempty"`
		Model    string `json:"model,omitempty"`
		Revision string `json:"revision,omitempty"`
	}
	type model struct {
		Label    string   `json:"label"`
		Name     string   `json:"name"`
		Dir      string   `json:"dir"`
		Identity identity `json:"identity"`
	}
	type published struct {
		Metric string  `json:"metric"`
		Value  float64 `json:"value"`
	}
	type result struct {
		Model  string            `json:"model"`
		Status string            `json:"status"`
		Metric string            `json:"metric,omitempty"`
		Value  *float64          `json:"value,omitempty"`
		CILow  *float64          `json:"ci_low,omitempty"`
		CIHigh *float64          `json:"ci_high,omitempty"`
		N      *int              `json:"n,omitempty"`
		Failed *int              `json:"failed,omitempty"`
		Errors []eval.ErrorCount `json:"errors,omitempty"`
		Error  string            `json:"error,omitempty"`
	}
	type task struct {
		TaskID    string     `json:"task_id"`
		TaskType  string     `json:"task_type"`
		Metric    string     `json:"metric"`
		Published *published `json:"published,omitempty"`
		Results   []result   `json:"results"`
	}
	type avgValue struct {
		Model string  `json:"model"`
		Value float64 `json:"value"`
	}
	type avg struct {
		Tasks     []string   `json:"tasks"`
		Values    []avgValue `json:"values"`
		Published *float64   `json:"published,omitempty"`
	}
	doc := struct {
		Schema    string        `json:"schema"`
		Reference string        `json:"reference,omitempty"`
		Models    []model       `json:"models"`
		Tasks     []task        `json:"tasks"`
		Average   avg           `json:"average"`
		Problems  []LoadProblem `json:"problems"`
	}{Schema: CompareSchema, Reference: c.Reference, Models: []model{}, Tasks: []task{},
		Average: avg{Tasks: []string{}, Values: []avgValue{}}, Problems: []LoadProblem{}}
	ptr := func(v float64) *float64 { return &v }
	for _, m := range c.Models {
		doc.Models = append(doc.Models, model{Label: m.Label, Name: m.Name, Dir: m.Dir,
			Identity: identity{Launcher: m.Identity.Launcher, Model: m.Identity.Model, Revision: m.Identity.Revision}})
	}
	for _, r := range c.Rows {
		t := task{TaskID: r.TaskID, TaskType: r.TaskType, Metric: r.Metric, Results: []result{}}
		if r.HasPub {
			t.Published = &published{Metric: r.PublishedMetric, Value: r.Published}
		}
		for i, cell := range r.Cells {
			res := result{Model: c.Models[i].Label, Status: cell.Status, Error: cell.Error}
			if cell.Status == StatusOK {
				n, failed := cell.N, cell.Failed
				res.Metric, res.Value, res.N, res.Failed, res.Errors = cell.Metric, ptr(cell.Value), &n, &failed, cell.Errors
				if cell.HasCI {
					res.CILow, res.CIHigh = ptr(cell.Low), ptr(cell.High)
				}
			}
			t.Results = append(t.Results, res)
		}
		doc.Tasks = append(doc.Tasks, t)
	}
	if a := c.Average; len(a.Tasks) > 0 {
		doc.Average.Tasks = a.Tasks
		for i, v := range a.Values {
			doc.Average.Values = append(doc.Average.Values, avgValue{Model: c.Models[i].Label, Value: v})
		}
		if a.HasPub {
			doc.Average.Published = ptr(a.Published)
		}
	}
	doc.Problems = append(doc.Problems, c.Problems...)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
