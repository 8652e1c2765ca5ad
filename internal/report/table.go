package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/beans-slurm/beans-slurm/internal/eval"
)

// SuiteTable prints one row per task: type, headline metric and value, the other metrics,
// samples and failures.
func SuiteTable(w io.Writer, s *eval.SuiteSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tTYPE\tHEADLINE\tVALUE\tN\tFAILED\tOTHER METRICS")
	for _, t := range s.Tasks {
		if t.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\tFAILED\t-\t-\t-\t%s\n", t.TaskID, t.TaskType, Shorten(t.Error, 120))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%d\t%d\t%s\n", t.TaskID, t.TaskType, t.Headline.Name, t.Headline.Value, t.N, t.Failed, otherMetrics(t.Metrics, t.Headline.Name))
	}
	return tw.Flush()
}

// TaskTable prints one task summary as a small table of its metrics.
func TaskTable(w io.Writer, s *eval.TaskSummary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s (%s)\n", s.TaskID, s.TaskType)
	fmt.Fprintf(tw, "samples\t%d (%d failed)\n", s.N, s.Failed)
	fmt.Fprintf(tw, "headline\t%s = %.4f\n", s.Headline.Name, s.Headline.Value)
	for _, k := range sortedKeys(s.Metrics) {
		fmt.Fprintf(tw, "  %s\t%.4f\n", k, s.Metrics[k])
	}
	for _, n := range s.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	return tw.Flush()
}

func otherMetrics(m map[string]float64, skip string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if k != skip {
			parts = append(parts, fmt.Sprintf("%s=%.4f", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Shorten cuts s to at most n bytes on a character boundary, with an ellipsis.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
