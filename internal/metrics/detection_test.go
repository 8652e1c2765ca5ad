package metrics

import (
	"reflect"
	"testing"
)

func TestMatchDetection(t *testing.T) {
	v := DetectionVocabulary([]string{"Beluga, White Whale", "Orca", "Humpback Whale", "Sperm Whale"})
	tests := []struct {
		name, cleaned string
		want          []string
	}{
		{"empty", "", nil},
		{"None", "None", nil},
		{"none lowercase snaps to None", "none", nil},
		{"exact labels", "Orca, Sperm Whale", []string{"Orca", "Sperm Whale"}},
		{"comma label kept whole", "Beluga, White Whale, Orca", []string{"Beluga, White Whale", "Orca"}},
		{"snap within 5", "orca, humpback whale", []string{"Orca", "Humpback Whale"}},
		{"distance 5 kept", "Orca12345", []string{"Orca"}},
		{"distance 6 dropped", "Orca123456", nil},
		{"far part dropped, near kept", "a completely unrelated sentence, Orka", []string{"Orca"}},
		{"None part dropped among labels", "None, Orca", []string{"Orca"}},
		{"repeats collapse", "Orca, Orca, orca", []string{"Orca"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MatchDetection(v, tc.cleaned); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MatchDetection(%q) = %q, want %q", tc.cleaned, got, tc.want)
			}
		})
	}
}

func TestDetectionVocabulary(t *testing.T) {
	if got, want := DetectionVocabulary([]string{"A", "B"}).Labels(), []string{"A", "B", "None"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := DetectionVocabulary([]string{"None", "A"}).Labels(), []string{"None", "A"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDetectionTargets(t *testing.T) {
	v := DetectionVocabulary([]string{"Beluga, White Whale", "Orca"})
	tests := []struct {
		target string
		want   []string
	}{
		{"None", nil},
		{"", nil},
		{"Orca", []string{"Orca"}},
		{"Beluga, White Whale, Orca", []string{"Beluga, White Whale", "Orca"}},
		{"Orca, Orca", []string{"Orca"}},
	}
	for _, tc := range tests {
		if got := DetectionTargets(v, tc.target); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DetectionTargets(%q) = %q, want %q", tc.target, got, tc.want)
		}
	}
}

func TestMultilabelMacroPRF(t *testing.T) {
	tests := []struct {
		name         string
		columns      []string
		yTrue, yPred [][]string
		want         PRF
	}{
		{"no columns", nil, [][]string{{"A"}}, [][]string{{"A"}}, PRF{}},
		{"perfect", []string{"A", "B"}, [][]string{{"A"}, {"B"}}, [][]string{{"A"}, {"B"}}, PRF{1, 1, 1}},
		// A: tp1 fn1 → P1 R.5 F2/3; B: tp1 fp1 → P.5 R1 F2/3; C: never
		// true nor predicted → 0, 0, 0 and still counted in the mean.
		{"unused column counts as zero", []string{"A", "B", "C"},
			[][]string{{"A"}, {"A", "B"}, nil}, [][]string{{"A"}, {"B"}, {"B"}},
			PRF{Precision: 0.5, Recall: 0.5, F1: 4.0 / 9}},
		{"all None", []string{"A", "B"}, [][]string{nil, nil}, [][]string{nil, nil}, PRF{}},
		{"labels outside columns ignored", []string{"A"}, [][]string{{"A", "X"}}, [][]string{{"A", "Y"}}, PRF{1, 1, 1}},
		{"false positives only", []string{"A"}, [][]string{nil}, [][]string{{"A"}}, PRF{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MultilabelMacroPRF(tc.columns, tc.yTrue, tc.yPred)
			if !near(got.Precision, tc.want.Precision) || !near(got.Recall, tc.want.Recall) || !near(got.F1, tc.want.F1) {
				t.Errorf("MultilabelMacroPRF = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSampleF1(t *testing.T) {
	tests := []struct {
		target, pred []string
		want         float64
	}{
		{nil, nil, 1},
		{[]string{"A"}, nil, 0},
		{nil, []string{"A"}, 0},
		{[]string{"A"}, []string{"A"}, 1},
		{[]string{"A", "B"}, []string{"A"}, 2.0 / 3},
		{[]string{"A", "B"}, []string{"B", "C", "D"}, 2.0 / 5},
	}
	for _, tc := range tests {
		if got := SampleF1(tc.target, tc.pred); !near(got, tc.want) {
			t.Errorf("SampleF1(%q, %q) = %v, want %v", tc.target, tc.pred, got, tc.want)
		}
	}
}

func TestScoreDetection(t *testing.T) {
	labels := []string{"Beluga, White Whale", "Orca", "Sperm Whale"}
	in := []Input{
		{SampleID: "1", Answer: "Beluga, White Whale, orca</s>", Target: "Beluga, White Whale, Orca"},
		{SampleID: "2", Answer: "None", Target: "None"},
		{SampleID: "3", Answer: "Orca", Target: "Sperm Whale, Orca"},
		{SampleID: "4", Answer: "Sperm Whale", Target: "None"},
		{SampleID: "5", Answer: "Orca", Target: "Orca", Failed: true},
		{SampleID: "6", Answer: "", Target: "None", Failed: true},
		{SampleID: "7", Answer: "Orca", Target: "Narwhal"}, // target outside the vocabulary
	}
	res, err := Score(TaskDetection, labels, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pred       string
		predLabels []string
		tgtLabels  []string
		em, f1     float64
	}{
		{"Beluga, White Whale, Orca", []string{"Beluga, White Whale", "Orca"}, []string{"Beluga, White Whale", "Orca"}, 1, 1},
		{"None", nil, nil, 1, 1},
		{"Orca", []string{"Orca"}, []string{"Sperm Whale", "Orca"}, 0, 2.0 / 3},
		{"Sperm Whale", []string{"Sperm Whale"}, nil, 0, 0},
		{"None", nil, []string{"Orca"}, 0, 0},
		{"None", nil, nil, 0, 0}, // failed: no credit even on a "None" target
		{"Orca", []string{"Orca"}, []string{"Narwhal"}, 0, 0},
	}
	for i, s := range res.Samples {
		w := want[i]
		if s.Prediction != w.pred || !reflect.DeepEqual(s.PredictedLabels, w.predLabels) || !reflect.DeepEqual(s.TargetLabels, w.tgtLabels) {
			t.Errorf("sample %d: got %q %q %q, want %q %q %q", i, s.Prediction, s.PredictedLabels, s.TargetLabels, w.pred, w.predLabels, w.tgtLabels)
		}
		if !near(s.Scores["exact_match"], w.em) || !near(s.Scores["f1"], w.f1) {
			t.Errorf("sample %d: scores %v, want exact_match %v f1 %v", i, s.Scores, w.em, w.f1)
		}
	}
	if res.N != 7 || res.Failed != 2 || res.Headline != "f1_macro" || res.Policy != "beans_zero" || res.TaskType != "detection" {
		t.Errorf("result header wrong: %+v", res)
	}
	// Columns: Beluga…, Orca, Sperm Whale, then Narwhal (target outside the vocabulary).
	// Beluga: tp1 → 1,1,1. Orca: tp2 (1,3) fp1 (7) fn1 (5) → P 2/3 R 2/3 F 2/3.
	// Sperm Whale: fp1 (4) fn1 (3) → 0. Narwhal: fn1 → 0.
	wantPRF := PRF{Precision: (1 + 2.0/3) / 4, Recall: (1 + 2.0/3) / 4, F1: (1 + 2.0/3) / 4}
	if !near(res.Metrics["precision_macro"], wantPRF.Precision) || !near(res.Metrics["recall_macro"], wantPRF.Recall) || !near(res.Metrics["f1_macro"], wantPRF.F1) {
		t.Errorf("macro metrics %v, want %+v", res.Metrics, wantPRF)
	}
	if !near(res.Metrics["exact_match"], 2.0/7) {
		t.Errorf("exact_match %v, want 2/7", res.Metrics["exact_match"])
	}
}
