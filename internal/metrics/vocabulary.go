package metrics

import (
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"
)

// Vocabulary is a label vocabulary with Levenshtein matching. Distances are
// counted in runes (Unicode code points), case-sensitively.
type Vocabulary struct {
	labels []string
	index  map[string]int
	// commaLabels are the labels containing a comma, longest first (ties in
	// vocabulary order); Split keeps them whole.
	commaLabels []string
	// folded maps lowercased labels to the first label (LookupFold).
	foldOnce sync.Once
	folded   map[string]string
}

// NewVocabulary builds a vocabulary; it keeps order; duplicates removed (first kept).
func NewVocabulary(labels []string) *Vocabulary {
	v := &Vocabulary{index: make(map[string]int, len(labels))}
	for _, l := range labels {
		if _, dup := v.index[l]; dup {
			continue
		}
		v.index[l] = len(v.labels)
		v.labels = append(v.labels, l)
		if strings.Contains(l, ",") {
			v.commaLabels = append(v.commaLabels, l)
		}
	}
	sort.SliceStable(v.commaLabels, func(i, j int) bool {
		return len(v.commaLabels[i]) > len(v.commaLabels[j])
	})
	return v
}

// Labels returns a copy of the labels in vocabulary order.
func (v *Vocabulary) Labels() []string {
	return append([]string(nil), v.labels...)
}

// Len returns the number of labels.
func (v *Vocabulary) Len() int { return len(v.labels) }

// Contains reports whether label is in the vocabulary (exact match).
func (v *Vocabulary) Contains(label string) bool {
	_, ok := v.index[label]
	return ok
}

// Snap returns the exact label when answer equals one, else the nearest label
// by edit distance (case-sensitive, ties broken by vocabulary order: the first
// label wins), and the distance. Empty vocabulary → "", -1.
func (v *Vocabulary) Snap(answer string) (label string, dist int) {
	if len(v.labels) == 0 {
		return "", -1
	}
	if _, ok := v.index[answer]; ok {
		return answer, 0
	}
	na := utf8.RuneCountInString(answer)
	best, bestDist := -1, 0
	for i, l := range v.labels {
		nl := utf8.RuneCountInString(l)
		// |na-nl| is a lower bound of the distance: skip labels that cannot win.
		if best >= 0 && absInt(na-nl) >= bestDist {
			continue
		}
		d := levenshtein.ComputeDistance(answer, l)
		if best < 0 || d < bestDist {
			best, bestDist = i, d
		}
	}
	return v.labels[best], bestDist
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Split splits a comma-separated answer into parts without cutting known
// labels that contain commas: known labels (those containing a comma) are
// matched greedily, longest first, before splitting the rest on commas; parts
// trimmed, empty parts dropped.
//
// A known label is kept whole only where it forms a whole part: an occurrence
// counts when it is preceded by the start of the answer or a comma, and
// followed by the end of the answer or a comma (white space allowed in
// between), and does not overlap an occurrence already kept. Matching is
// exact (case-sensitive).
func (v *Vocabulary) Split(answer string) []string {
	type span struct{ start, end int }
	var kept []span
	overlaps := func(s, e int) bool {
		for _, k := range kept {
			if s < k.end && k.start < e {
				return true
			}
		}
		return false
	}
	for _, l := range v.commaLabels {
		for from := 0; from <= len(answer)-len(l); {
			i := strings.Index(answer[from:], l)
			if i < 0 {
				break
			}
			s, e := from+i, from+i+len(l)
			if atPartStart(answer, s) && atPartEnd(answer, e) && !overlaps(s, e) {
				kept = append(kept, span{s, e})
				from = e
				continue
			}
			_, size := utf8.DecodeRuneInString(answer[s:])
			from = s + size
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].start < kept[j].start })

	var parts []string
	add := func(p string) {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	pos := 0
	for _, k := range kept {
		for _, p := range strings.Split(answer[pos:k.start], ",") {
			add(p)
		}
		add(answer[k.start:k.end])
		pos = k.end
	}
	for _, p := range strings.Split(answer[pos:], ",") {
		add(p)
	}
	return parts
}

// atPartStart reports whether only white space lies between a comma (or the
// start of s) and byte offset i.
func atPartStart(s string, i int) bool {
	r := strings.TrimRightFunc(s[:i], unicode.IsSpace)
	return r == "" || strings.HasSuffix(r, ",")
}

// atPartEnd reports whether only white space lies between byte offset i and a
// comma (or the end of s).
func atPartEnd(s string, i int) bool {
	r := strings.TrimLeftFunc(s[i:], unicode.IsSpace)
	return r == "" || strings.HasPrefix(r, ",")
}

// LookupFold returns the first label (vocabulary order) equal to answer up
// to case: strings.ToLower(label) == strings.ToLower(answer) (Unicode
// lowercasing). No such label gives "", false.
func (v *Vocabulary) LookupFold(answer string) (string, bool) {
	if _, ok := v.index[answer]; ok {
		return answer, true
	}
	v.foldOnce.Do(func() {
		m := make(map[string]string, len(v.labels))
		for _, l := range v.labels {
			k := strings.ToLower(l)
			if _, dup := m[k]; !dup {
				m[k] = l
			}
		}
		v.folded = m
	})
	l, ok := v.folded[strings.ToLower(answer)]
	return l, ok
}
