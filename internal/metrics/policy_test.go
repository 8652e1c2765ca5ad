package metrics

import (
	"reflect"
	"strings"
	"testing"
)

func TestPolicies(t *testing.T) {
	labels := []string{"Dog", "Cat", "Beluga, White Whale"}
	in := []Input{
		{Answer: "dog", Target: "Dog"},                                 // case only
		{Answer: "Dgo", Target: "Dog"},                                 // typo
		{Answer: "<|eot_id|>", Target: "Cat"},                          // empty after cleanup
		{Answer: "beluga, white whale", Target: "Beluga, White Whale"}, // comma label, case
		{Answer: "Cat", Target: "Narwhal"},                             // target outside the vocabulary
		{Answer: "Cat", Target: "Orca, Cat"},                           // alternatives, one known
	}
	tests := []struct {
		policy   string
		wantPred []string
		version  string
	}{
		{PolicyBeansZero, []string{"Dog", "Dog", "", "Beluga, White Whale", "Cat", "Cat"}, "beans_zero/1"},
		{PolicyStrict, []string{"Dog", "", "", "Beluga, White Whale", "Cat", "Cat"}, "strict/1"},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Policy = tc.policy
			opts.Bootstrap = -1
			res, err := ScoreWith(TaskClassification, labels, in, opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range res.Samples {
				got = append(got, s.Prediction)
			}
			if !reflect.DeepEqual(got, tc.wantPred) {
				t.Errorf("predictions %q, want %q", got, tc.wantPred)
			}
			if res.Policy != tc.policy || res.PolicyVersion != tc.version || res.Postprocess != "clean/1" {
				t.Errorf("policy %q %q %q", res.Policy, res.PolicyVersion, res.Postprocess)
			}
			if res.Empty != 1 || res.OutOfVocabulary != 1 {
				t.Errorf("empty %d, out of vocabulary %d; want 1, 1", res.Empty, res.OutOfVocabulary)
			}
			if res.Samples[2].Scores["correct"] != 0 {
				t.Error("an empty answer scored correct")
			}
		})
	}
}

func TestStrictDetection(t *testing.T) {
	v := DetectionVocabulary([]string{"Beluga, White Whale", "Orca"})
	got := MatchDetectionStrict(v, "orca, Orka, none, Beluga, White Whale, ORCA")
	if want := []string{"Orca", "Beluga, White Whale"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MatchDetectionStrict = %q, want %q", got, want)
	}
}

func TestDetectionEmptyAndOOV(t *testing.T) {
	in := []Input{
		{Answer: "</s>", Target: "None"},          // empty: None, but no per-sample credit
		{Answer: "Orca", Target: "Orca, Narwhal"}, // Narwhal outside the vocabulary
		{Answer: "Orca", Target: "Orca"},
	}
	res, err := Score(TaskDetection, []string{"Orca"}, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Empty != 1 || res.OutOfVocabulary != 1 {
		t.Errorf("empty %d, oov %d", res.Empty, res.OutOfVocabulary)
	}
	if res.Samples[0].Scores["exact_match"] != 0 || res.Samples[0].Prediction != "None" {
		t.Errorf("empty answer: %+v", res.Samples[0])
	}
	// Orca: pos 2, pred 2 (both positives), tp 2 of n 3 → R 1 at P 1 → AP 1;
	// Narwhal: pos 1, never predicted → one threshold, AP = 1/3.
	if got := res.Metrics["map_macro"]; !near(got, (1+1.0/3)/2) {
		t.Errorf("map_macro %v", got)
	}
}

func TestPostprocessRaw(t *testing.T) {
	opts := DefaultOptions()
	opts.Postprocess = PostprocessRaw
	opts.Bootstrap = -1
	res, err := ScoreWith(TaskCaptioning, nil, []Input{{Answer: "  a  dog<|eot_id|> ", Target: "a dog"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples[0].Cleaned != "a dog<|eot_id|>" || res.Postprocess != "raw/1" || res.Policy != PolicyNone {
		t.Errorf("raw postprocess: %q %q %q", res.Samples[0].Cleaned, res.Postprocess, res.Policy)
	}
}

func TestScoreWithErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"unknown policy", Options{Policy: "fuzzy"}, "unknown policy"},
		{"unknown postprocess", Options{Postprocess: "magic"}, "unknown postprocess"},
		{"confidence 1", Options{Confidence: 1}, "confidence"},
		{"confidence negative", Options{Confidence: -0.5}, "confidence"},
		{"zero options are defaults", Options{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ScoreWith(TaskClassification, []string{"a"}, []Input{{Answer: "a", Target: "a"}}, tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
