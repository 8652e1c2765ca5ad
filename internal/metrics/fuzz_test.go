package metrics

import (
	"strings"
	"testing"
	"unicode"
)

func FuzzClean(f *testing.F) {
	for _, s := range []string{
		"", "Dog", "  a \t b  ", "Dog<|eot_id|>x", "#0.00s - 10.00s#: Dog",
		"#0s-1s#:\u00a0#0s-1s#: y", "\u2003#1s - 2s# x</s>", "\xff\xfe #", "<|im_end|><|end_of_text|>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if again := Clean(c); again != c {
			t.Fatalf("Clean not idempotent: Clean(%q) = %q, Clean of that = %q", s, c, again)
		}
		if strings.TrimFunc(c, unicode.IsSpace) != c || strings.Contains(c, "  ") {
			t.Fatalf("Clean(%q) = %q has untrimmed or repeated spaces", s, c)
		}
		for _, tok := range EndOfTextTokens {
			if strings.Contains(c, tok) {
				t.Fatalf("Clean(%q) = %q still holds %q", s, c, tok)
			}
		}
		if timeSpanPrefix.MatchString(c) {
			t.Fatalf("Clean(%q) = %q still starts with a time span", s, c)
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", ",", "a, b", "Beluga, White Whale, Orca", " ,Big, Bad,, ", "Whale, Sperm, Big, Bad", "é,\xff,"} {
		f.Add(s)
	}
	v := NewVocabulary([]string{"Beluga, White Whale", "Orca", "Whale, Sperm, Big", "Big, Bad", ","})
	f.Fuzz(func(t *testing.T, s string) {
		parts := v.Split(s)
		total := 0
		for _, p := range parts {
			if p == "" || strings.TrimSpace(p) != p {
				t.Fatalf("Split(%q) gave an empty or untrimmed part %q", s, p)
			}
			if strings.Contains(p, ",") && !v.Contains(p) {
				t.Fatalf("Split(%q) gave part %q with a comma that is not a known label", s, p)
			}
			if !strings.Contains(s, p) {
				t.Fatalf("Split(%q) gave part %q that is not in the input", s, p)
			}
			total += len(p)
		}
		if total > len(s) {
			t.Fatalf("Split(%q) parts %q are longer than the input", s, parts)
		}
		// Without any commas, the answer is one part (or none when blank).
		if !strings.Contains(s, ",") {
			want := strings.TrimSpace(s)
			if (want == "" && len(parts) != 0) || (want != "" && (len(parts) != 1 || parts[0] != want)) {
				t.Fatalf("Split(%q) = %q, want [%q]", s, parts, want)
			}
		}
	})
}

func FuzzTokenizeCaption(f *testing.F) {
	for _, s := range []string{"", "A man's dog-barking, 2.5 s.", "\xff'\u2019--", "n't 's"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range TokenizeCaption(s) {
			if tok == "" || strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
				t.Fatalf("TokenizeCaption(%q) gave bad token %q", s, tok)
			}
		}
	})
}
