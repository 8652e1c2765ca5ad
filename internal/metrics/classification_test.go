package metrics

import (
	"math"
	"testing"
)

const eps = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) < eps }

func TestMacroPRF(t *testing.T) {
	tests := []struct {
		name         string
		yTrue, yPred []string
		want         PRF
	}{
		{"empty", nil, nil, PRF{}},
		{"perfect", []string{"a", "b", "a"}, []string{"a", "b", "a"}, PRF{1, 1, 1}},
		{"all wrong", []string{"a", "b"}, []string{"b", "a"}, PRF{0, 0, 0}},
		// labels a, b, c: a P=1 R=.5 F=2/3; b P=1/3 R=1 F=1/2; c 0,0,0.
		{"mixed", []string{"a", "a", "b", "c"}, []string{"a", "b", "b", "b"},
			PRF{Precision: (1 + 1.0/3) / 3, Recall: 1.5 / 3, F1: (2.0/3 + 0.5) / 3}},
		// The empty prediction of a failed item is a label of its own:
		// labels "", a, b, c → "" adds a zero row and divides by 4.
		{"failed item is its own class", []string{"a", "a", "b", "c"}, []string{"a", "b", "b", ""},
			PRF{Precision: 1.5 / 4, Recall: 1.5 / 4, F1: (4.0 / 3) / 4}},
		// A predicted label absent from y_true joins the label set (sklearn's union).
		{"predicted-only label", []string{"a", "a"}, []string{"a", "z"},
			PRF{Precision: 0.5, Recall: 0.25, F1: (2 * 1 * 0.5 / 1.5) / 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MacroPRF(tc.yTrue, tc.yPred)
			if !near(got.Precision, tc.want.Precision) || !near(got.Recall, tc.want.Recall) || !near(got.F1, tc.want.F1) {
				t.Errorf("MacroPRF = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestScoreClassification(t *testing.T) {
	labels := []string{"Dog", "Cat", "Beluga, White Whale", "Orca"}
	in := []Input{
		{SampleID: "1", Answer: "Dog<|eot_id|>", Target: "Dog"},                       // exact after cleanup
		{SampleID: "2", Answer: "#0.00s - 5.00s#: cat", Target: "Cat"},                // snapped, case edit
		{SampleID: "3", Answer: "Beluga, White Whale", Target: "Beluga, White Whale"}, // comma label
		{SampleID: "4", Answer: "Orca", Target: "Orca, Beluga, White Whale"},          // top-1 only
		{SampleID: "5", Answer: "whatever", Target: "Dog", Failed: true},              // failed
		{SampleID: "6", Answer: "Orka", Target: "Orca, Beluga, White Whale"},          // snapped, top-1 only
	}
	res, err := Score(TaskClassification, labels, in)
	if err != nil {
		t.Fatal(err)
	}
	wantPred := []string{"Dog", "Cat", "Beluga, White Whale", "Orca", "", "Orca"}
	wantCorrect := []float64{1, 1, 1, 0, 0, 0}
	wantTop1 := []float64{1, 1, 1, 1, 0, 1}
	if len(res.Samples) != len(in) {
		t.Fatalf("got %d samples, want %d", len(res.Samples), len(in))
	}
	for i, s := range res.Samples {
		if s.SampleID != in[i].SampleID || s.Raw != in[i].Answer || s.Target != in[i].Target || s.Failed != in[i].Failed {
			t.Errorf("sample %d: identity fields wrong: %+v", i, s)
		}
		if s.Prediction != wantPred[i] {
			t.Errorf("sample %d: prediction %q, want %q", i, s.Prediction, wantPred[i])
		}
		if s.Scores["correct"] != wantCorrect[i] || s.Scores["top1"] != wantTop1[i] {
			t.Errorf("sample %d: scores %v, want correct %v top1 %v", i, s.Scores, wantCorrect[i], wantTop1[i])
		}
	}
	if res.Samples[4].Cleaned != "" {
		t.Errorf("failed sample cleaned = %q, want empty", res.Samples[4].Cleaned)
	}
	if res.N != 6 || res.Failed != 1 || res.Headline != "accuracy" || res.Policy != "beans_zero" || res.TaskType != "classification" {
		t.Errorf("result header wrong: %+v", res)
	}
	if !near(res.Metrics["accuracy"], 3.0/6) || !near(res.Metrics["top1_accuracy"], 5.0/6) {
		t.Errorf("accuracy %v top1 %v", res.Metrics["accuracy"], res.Metrics["top1_accuracy"])
	}
	want := MacroPRF(
		[]string{"Dog", "Cat", "Beluga, White Whale", "Orca, Beluga, White Whale", "Dog", "Orca, Beluga, White Whale"},
		wantPred)
	if !near(res.Metrics["f1_macro"], want.F1) || !near(res.Metrics["precision_macro"], want.Precision) || !near(res.Metrics["recall_macro"], want.Recall) {
		t.Errorf("macro metrics %v, want %+v", res.Metrics, want)
	}
}
