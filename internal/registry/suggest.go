package registry

import (
	"cmp"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
)

// maxSuggestions is how many close names an unknown-name error lists at most.
const maxSuggestions = 5

// suggest returns up to limit names close to query, best first: same name up to case and
// '-'/'_', then names that start with the query (or that it starts with), then names that
// contain it, then names within a small edit distance (ties broken by distance, then name).
func suggest(query string, names []string, limit int) []string {
	q := normName(query)
	if q == "" {
		return nil
	}
	type cand struct {
		name  string
		class int
		dist  int
	}
	var cands []cand
	best := -1 // the smallest edit distance of all names
	for _, name := range names {
		n := normName(name)
		d := levenshtein.ComputeDistance(q, n)
		if best < 0 || d < best {
			best = d
		}
		class := 3
		switch {
		case n == q:
			class = 0
		case strings.HasPrefix(n, q) || strings.HasPrefix(q, n):
			class = 1
		case len(q) >= 2 && strings.Contains(n, q):
			class = 2
		}
		cands = append(cands, cand{name, class, d})
	}
	// Names found by edit distance alone must be close in absolute terms and nearly as close
	// as the closest name of all.
	maxDist := 1
	if len(q) >= 4 {
		maxDist = max(2, len(q)/5)
	}
	cands = slices.DeleteFunc(cands, func(c cand) bool {
		return c.class == 3 && (c.dist > maxDist || c.dist > best+1)
	})
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.class, b.class), cmp.Compare(a.dist, b.dist), cmp.Compare(a.name, b.name))
	})
	var out []string
	for _, c := range cands {
		if len(out) == limit {
			break
		}
		if !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

func normName(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
}
