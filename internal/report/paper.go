package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// PaperReference is the published model shown beside a run's numbers.
const PaperReference = "naturelm_audio"

// PaperRow is one task in the paper's layout: the task's paper metric (accuracy for
// classification, macro F1 for detection, SPIDEr — or CIDEr-D when SPICE did not run — for
// captioning), its value and interval, and the published value to compare with.
type PaperRow struct {
	TaskID    string
	Metric    string
	Value     float64
	Low, High float64 // the 95% interval; NaN when none
	HasCI     bool
	N, Failed int
	Published float64
	HasPub    bool
	// PublishedMetric is the metric of the published value (it differs from Metric when
	// SPIDEr could not be computed).
	PublishedMetric string
	// Error says why the task has no result.
	Error string
}

// PaperRows turns a suite summary into rows in the suite's task order.
func PaperRows(s *eval.SuiteSummary) []PaperRow {
	rows := make([]PaperRow, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		r := PaperRow{TaskID: t.TaskID, N: t.N, Failed: t.Failed, Error: t.Error}
		r.Metric, r.Value, r.Low, r.High, r.HasCI = paperValue(t.TaskType, t.Metrics, t.Intervals)
		r.Published, r.PublishedMetric, r.HasPub = publishedValue(t.Published, PaperReference)
		rows = append(rows, r)
	}
	return rows
}

// paperValue picks a task's paper metric (see paperMetric) from its metrics, with the
// metric's interval when there is one. PaperRows and Compare both use it.
func paperValue(taskType string, m map[string]float64, iv map[string]eval.Interval) (metric string, value, low, high float64, hasCI bool) {
	metric = paperMetric(taskType, m)
	value = m[metric]
	if i, ok := iv[metric]; ok {
		low, high, hasCI = i.Low, i.High, true
	}
	return metric, value, low, high, hasCI
}

// publishedValue returns the published result of model ref for a task, and its metric.
func publishedValue(p *registry.Published, ref string) (value float64, metric string, ok bool) {
	if p == nil {
		return 0, "", false
	}
	v, ok := p.Results[ref]
	if !ok {
		return 0, "", false
	}
	return v, p.Metric, true
}

func paperMetric(taskType string, m map[string]float64) string {
	switch taskType {
	case "classification":
		return "accuracy"
	case "detection":
		return "f1_macro"
	default:
		if _, ok := m["spider"]; ok {
			return "spider"
		}
		return "cider_d"
	}
}

func (r PaperRow) ci() string {
	if !r.HasCI {
		return ""
	}
	return fmt.Sprintf("[%.3f, %.3f]", r.Low, r.High)
}

func (r PaperRow) pub() string {
	if !r.HasPub {
		return ""
	}
	s := fmt.Sprintf("%.3f", r.Published)
	if r.PublishedMetric != r.Metric {
		s += " (" + r.PublishedMetric + ")"
	}
	return s
}

// PaperTable prints the rows as a terminal table.
func PaperTable(w io.Writer, rows []PaperRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tMETRIC\tVALUE\t95% CI\tN\tFAILED\tNATURELM-AUDIO (PAPER)")
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\tFAILED\t\t\t\t%s\n", r.TaskID, r.Metric, r.pub())
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%d\t%d\t%s\n", r.TaskID, r.Metric, r.Value, r.ci(), r.N, r.Failed, r.pub())
	}
	return tw.Flush()
}

// PaperMarkdown writes the rows as a Markdown table.
func PaperMarkdown(w io.Writer, title string, rows []PaperRow) error {
	var b strings.Builder
	if title != "" {
		fmt.Fprintf(&b, "## %s\n\n", title)
	}
	b.WriteString("| task | metric | value | 95% CI | n | failed | NatureLM-audio (paper) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %s | %s | failed: %s |  |  |  | %s |\n", r.TaskID, r.Metric, strings.ReplaceAll(Shorten(r.Error, 200), "|", "/"), r.pub())
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %s | %d | %d | %s |\n", r.TaskID, r.Metric, r.Value, r.ci(), r.N, r.Failed, r.pub())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PaperCSV writes the rows as CSV with a header; empty cells where no interval or published
// value exists.
func PaperCSV(w io.Writer, rows []PaperRow) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"task_id", "metric", "value", "ci_low", "ci_high", "n", "failed", "published_naturelm_audio", "published_metric"})
	f := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	for _, r := range rows {
		if r.Error != "" {
			cw.Write([]string{r.TaskID, r.Metric, "", "", "", "", "", f(r.Published, r.HasPub), r.PublishedMetric})
			continue
		}
		cw.Write([]string{r.TaskID, r.Metric, f(r.Value, true), f(r.Low, r.HasCI), f(r.High, r.HasCI),
			strconv.Itoa(r.N), strconv.Itoa(r.Failed), f(r.Published, r.HasPub), r.PublishedMetric})
	}
	cw.Flush()
	return cw.Error()
}
