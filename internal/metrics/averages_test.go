package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestClassificationPRFAverages(t *testing.T) {
	// y_true a a b c, y_pred a b b b. Per label (a, b, c):
	// P 1, 1/3, 0; R 1/2, 1, 0; F1 2/3, 1/2, 0; support 2, 1, 1.
	yTrue := []string{"a", "a", "b", "c"}
	yPred := []string{"a", "b", "b", "b"}
	tests := []struct {
		average string
		want    PRF
	}{
		{AverageMacro, PRF{(1 + 1.0/3) / 3, 1.5 / 3, (2.0/3 + 0.5) / 3}},
		{AverageMicro, PRF{0.5, 0.5, 0.5}},
		{AverageWeighted, PRF{(2*1 + 1.0/3) / 4, (2*0.5 + 1) / 4, (2*2.0/3 + 0.5) / 4}},
	}
	for _, tc := range tests {
		got := ClassificationPRF(yTrue, yPred, tc.average)
		if !near(got.Precision, tc.want.Precision) || !near(got.Recall, tc.want.Recall) || !near(got.F1, tc.want.F1) {
			t.Errorf("%s: %+v, want %+v", tc.average, got, tc.want)
		}
	}
	// A label only predicted (z) has support 0: it counts in the macro mean
	// (P 0, R 0, F1 0) and has weight 0 in the weighted mean.
	got := ClassificationPRF([]string{"a", "a"}, []string{"a", "z"}, AverageWeighted)
	if !near(got.Precision, 1) || !near(got.Recall, 0.5) || !near(got.F1, 2.0/3) {
		t.Errorf("weighted with a predicted-only label: %+v", got)
	}
}

func TestAveragePrecision(t *testing.T) {
	tests := []struct {
		name   string
		yTrue  []bool
		scores []float64
		want   float64
	}{
		// scikit-learn's documented example: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.83.
		{"sklearn doc example", []bool{false, false, true, true}, []float64{0.1, 0.4, 0.35, 0.8}, 0.5*1 + 0.5*(2.0/3)},
		// Hard scores, by hand: thresholds 1 (R 2/3, P 2/3) and 0 (R 1, P 3/5):
		// AP = 2/3·2/3 + 1/3·3/5 = 29/45.
		{"hard scores, ties grouped", []bool{true, false, true, true, false}, []float64{1, 1, 0, 1, 0}, 29.0 / 45},
		{"all tied", []bool{true, false, false, false}, []float64{0, 0, 0, 0}, 0.25},
		{"no positives", []bool{false, false}, []float64{1, 0}, 0},
		{"perfect", []bool{true, false}, []float64{0.9, 0.1}, 1},
		{"empty", nil, nil, 0},
	}
	for _, tc := range tests {
		if got := AveragePrecision(tc.yTrue, tc.scores); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: AP = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHardAPMatchesAveragePrecision cross-checks the closed form used for
// 0/1 predictions against the general step-wise definition.
func TestHardAPMatchesAveragePrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 500 {
		n := 1 + r.IntN(30)
		yTrue := make([]bool, n)
		scores := make([]float64, n)
		var pos, pred, tp int64
		pt, pp := r.Float64(), r.Float64()
		for i := range n {
			yTrue[i] = r.Float64() < pt
			if r.Float64() < pp {
				scores[i] = 1
			}
			if yTrue[i] {
				pos++
			}
			if scores[i] == 1 {
				pred++
				if yTrue[i] {
					tp++
				}
			}
		}
		want := AveragePrecision(yTrue, scores)
		if got := hardAP(pos, tp, pred, int64(n)); math.Abs(got-want) > 1e-15 {
			t.Fatalf("trial %d: hardAP %v, AveragePrecision %v (%v %v)", trial, got, want, yTrue, scores)
		}
	}
}

func TestMeanAveragePrecision(t *testing.T) {
	columns := []string{"A", "B", "C"}
	yTrue := [][]string{{"A"}, {"A", "B"}, nil, {"B"}}
	yPred := [][]string{{"A"}, {"B"}, {"B"}, nil}
	// A: pos 2, pred 1, tp 1 → 1/2·1 + 1/2·2/4 = 0.75.
	// B: pos 2, pred 2, tp 1 → 1/2·1/2 + 1/2·2/4 = 0.5. C: no positives → 0.
	if got, want := MeanAveragePrecision(columns, yTrue, yPred), (0.75+0.5+0)/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("mAP %v, want %v", got, want)
	}
	micro := MultilabelPRF(columns, yTrue, yPred, AverageMicro)
	// tp 2, predicted 3, true 4.
	if !near(micro.Precision, 2.0/3) || !near(micro.Recall, 0.5) || !near(micro.F1, 4.0/7) {
		t.Errorf("micro %+v", micro)
	}
}
