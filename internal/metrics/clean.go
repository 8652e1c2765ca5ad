package metrics

import (
	"regexp"
	"strings"
)

// EndOfTextTokens are the end-of-text markers at which Clean cuts an answer.
var EndOfTextTokens = []string{
	"<|end_of_text|>", // Llama 3
	"<|eot_id|>",      // Llama 3 chat
	"</s>",            // Llama 2, Mistral, many seq2seq models
	"<|im_end|>",      // ChatML (Qwen)
	"<|endoftext|>",   // GPT-2 family, Qwen
}

// timeSpanPrefix matches one leading time-span prefix such as
// "#0.00s - 10.00s#:" (seconds unit and colon optional). Clean normalises
// whitespace before applying it, so ASCII \s suffices.
var timeSpanPrefix = regexp.MustCompile(`^#\s*\d+(?:\.\d+)?\s*s?\s*-\s*\d+(?:\.\d+)?\s*s?\s*#\s*:?\s*`)

// Clean: cut at the first end-of-text token (<|end_of_text|>, <|eot_id|>, </s>,
// <|im_end|>, <|endoftext|>), strip a leading time-span prefix such as
// "#0.00s - 10.00s#:" (repeatedly, if several are stacked), trim, collapse
// internal whitespace runs to one space. Whitespace is any Unicode white
// space. Clean is idempotent: Clean(Clean(s)) == Clean(s).
func Clean(answer string) string {
	s := cutEndOfText(answer)
	s = collapseSpace(s)
	for {
		loc := timeSpanPrefix.FindStringIndex(s)
		if loc == nil {
			break
		}
		s = s[loc[1]:]
	}
	return collapseSpace(s)
}

// cutEndOfText returns s up to the earliest end-of-text token.
func cutEndOfText(s string) string {
	cut := len(s)
	for _, tok := range EndOfTextTokens {
		if i := strings.Index(s, tok); i >= 0 && i < cut {
			cut = i
		}
	}
	return s[:cut]
}

// collapseSpace trims s and replaces every run of white space with one space.
func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
