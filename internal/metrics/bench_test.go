package metrics

import (
	"fmt"
	"strings"
	"testing"
)

// benchLabels returns n distinct bird-like labels of about 20 runes.
func benchLabels(n int) []string {
	labels := make([]string, n)
	for i := range labels {
		labels[i] = fmt.Sprintf("Species number %04d", i)
	}
	return labels
}

// BenchmarkSnapLongAnswer snaps a verbose (1,500-rune) answer against a
// 264-label vocabulary, the size of cbi.
func BenchmarkSnapLongAnswer(b *testing.B) {
	v := NewVocabulary(benchLabels(264))
	answer := strings.Repeat("The bird in this recording sounds like a warbler. ", 30)
	b.ResetTimer()
	for b.Loop() {
		v.Snap(answer)
	}
}

// BenchmarkSnapShortAnswer snaps a label-sized answer against 264 labels.
func BenchmarkSnapShortAnswer(b *testing.B) {
	v := NewVocabulary(benchLabels(264))
	for b.Loop() {
		v.Snap("Species numbr 0123")
	}
}

// BenchmarkCIDErD scores a corpus of 1,000 captions.
func BenchmarkCIDErD(b *testing.B) {
	cands := make([]string, 1000)
	refs := make([][]string, 1000)
	for i := range cands {
		cands[i] = fmt.Sprintf("a bird number %d sings loudly while rain falls on leaf %d", i%37, i%11)
		refs[i] = []string{fmt.Sprintf("bird %d is singing in the rain near leaf %d", i%29, i%13)}
	}
	for b.Loop() {
		CIDErD(cands, refs)
	}
}
