package dataset

import (
	"context"
	"strings"
)

// Labels returns the label vocabulary of the rows matching q over the whole split (q.Limit
// is ignored), reading only the dataset_name and output columns. Labels come in first-seen
// order, trimmed, without duplicates or empty strings.
//
// Classification (detection false): each output is one label, whole, commas included.
//
// Detection: an output is a comma-separated list of labels, or "None"; "None" is dropped.
// Splitting must not cut a label that itself contains a comma ("Beluga, White Whale"), so
// the rule is: a comma-containing label is known when it is given in known (the task's
// declared labels, or the classification vocabulary of the same source) — a detection
// target alone cannot tell "A, B" as one label from two. An output is split on commas, and
// at each position the longest run of consecutive parts that, rejoined, equals a known
// label (compared with the spaces around commas ignored) is taken as one label; any other
// part is a label by itself. A whole output equal to a known label is thus kept whole.
// Labels of known that never occur in the rows are not added.
func (d *Dataset) Labels(ctx context.Context, q Query, detection bool, known []string) ([]string, error) {
	q.Limit = 0
	var out []string
	seen := map[string]bool{}
	add := func(l string) {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] || (detection && l == "None") {
			return
		}
		seen[l] = true
		out = append(out, l)
	}
	sp := newSplitter(known)
	// Outputs repeat a lot: split each distinct output once.
	done := map[string]bool{}
	err := d.outputs(ctx, q, func(o string) {
		if done[o] {
			return
		}
		done[o] = true
		if !detection {
			add(o)
			return
		}
		for _, l := range sp.split(o) {
			add(l)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SplitLabels splits a detection target (or answer) on commas without cutting the labels of
// known that contain commas, by the rule Labels documents. Parts are trimmed; empty parts
// are dropped; "None" is kept.
func SplitLabels(s string, known []string) []string {
	return newSplitter(known).split(s)
}

// splitter splits comma-separated lists, keeping known comma-containing labels whole.
type splitter struct {
	whole    map[string]string // comma-normalised key → label
	maxParts int
}

// commaKey normalises a label for comparison: parts trimmed, joined by ",".
func commaKey(parts []string) string {
	t := make([]string, len(parts))
	for i, p := range parts {
		t[i] = strings.TrimSpace(p)
	}
	return strings.Join(t, ",")
}

func newSplitter(known []string) *splitter {
	s := &splitter{whole: map[string]string{}, maxParts: 1}
	for _, k := range known {
		k = strings.TrimSpace(k)
		if !strings.Contains(k, ",") {
			continue
		}
		parts := strings.Split(k, ",")
		if _, dup := s.whole[commaKey(parts)]; !dup {
			s.whole[commaKey(parts)] = k
		}
		s.maxParts = max(s.maxParts, len(parts))
	}
	return s
}

func (s *splitter) split(o string) []string {
	parts := strings.Split(o, ",")
	var out []string
	for i := 0; i < len(parts); {
		n := 1
		label := strings.TrimSpace(parts[i])
		for k := min(s.maxParts, len(parts)-i); k > 1; k-- {
			if l, ok := s.whole[commaKey(parts[i:i+k])]; ok {
				n, label = k, l
				break
			}
		}
		if label != "" {
			out = append(out, label)
		}
		i += n
	}
	return out
}
