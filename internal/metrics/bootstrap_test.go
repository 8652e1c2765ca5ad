package metrics

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestQuantileLinear(t *testing.T) {
	// Values as numpy.percentile(x, q) (default method "linear") gives them.
	tests := []struct {
		x    []float64
		p    float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, 0.025, 1.075},
		{[]float64{1, 2, 3, 4}, 0.975, 3.925},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.975, 9.775},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5.5},
		{[]float64{5}, 0.025, 5},
		{[]float64{1, 3}, 0, 1},
		{[]float64{1, 3}, 1, 3},
		{[]float64{0, 10}, 0.75, 7.5},
	}
	for _, tc := range tests {
		if got := QuantileLinear(tc.x, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("QuantileLinear(%v, %v) = %v, want %v", tc.x, tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(QuantileLinear(nil, 0.5)) {
		t.Error("empty slice must give NaN")
	}
	// 1,000 replicates: h = 999·0.025 = 24.975 → x[24] + 0.975·(x[25]−x[24]).
	x := make([]float64, 1000)
	for i := range x {
		x[i] = float64(i * i)
	}
	lo, hi := PercentileBounds(0.95)
	if lo != 0.025 || hi != 0.975 {
		t.Fatalf("PercentileBounds(0.95) = %v, %v", lo, hi)
	}
	if got, want := QuantileLinear(x, lo), 576+0.975*(625-576); math.Abs(got-want) > 1e-9 {
		t.Errorf("2.5th percentile of 1,000 = %v, want %v", got, want)
	}
	if got, want := QuantileLinear(x, hi), 974.0*974+0.025*(975*975-974*974); math.Abs(got-want) > 1e-6 {
		t.Errorf("97.5th percentile of 1,000 = %v, want %v", got, want)
	}
}

func TestResampleCounts(t *testing.T) {
	a, b, c := make([]int32, 50), make([]int32, 50), make([]int32, 50)
	ResampleCounts(a, 7, 3)
	ResampleCounts(b, 7, 3)
	ResampleCounts(c, 7, 4)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed and index must give the same resample")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different resample indexes gave the same resample")
	}
	sum := 0
	for _, x := range a {
		sum += int(x)
	}
	if sum != 50 {
		t.Errorf("counts sum to %d, want 50", sum)
	}
	ResampleCounts(nil, 1, 1) // no panic
}

// expand lists sample indexes with their multiplicities.
func expand(w []int32) []int {
	var idx []int
	for i, c := range w {
		for range c {
			idx = append(idx, i)
		}
	}
	return idx
}

// resampledResult rescores the materialised resample (duplicates as distinct samples).
func resampledResult(t *testing.T, task string, labels []string, in []Input, w []int32) Result {
	t.Helper()
	var sub []Input
	for _, i := range expand(w) {
		sub = append(sub, in[i])
	}
	opts := DefaultOptions()
	opts.Bootstrap = -1
	res, err := ScoreWith(task, labels, sub, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestBootstrapEvalMatchesRescoring checks, for each task type, that the
// precomputed resample evaluation gives what scoring the materialised
// resample from scratch gives: corpus-level metrics (macro F1, mAP,
// CIDEr-D with its document frequencies) are recomputed on the resample.
func TestBootstrapEvalMatchesRescoring(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	labels := []string{"Dog", "Cat", "Cow", "Owl", "Beluga, White Whale"}
	pick := func() string { return labels[r.IntN(len(labels))] }
	words := []string{"a", "bird", "sings", "rain", "falls", "on", "the", "roof", "dog", "barks", "loudly"}
	sentence := func() string {
		s := ""
		for k := range 2 + r.IntN(6) {
			if k > 0 {
				s += " "
			}
			s += words[r.IntN(len(words))]
		}
		return s
	}
	var cls, det, capt []Input
	for i := range 40 {
		cls = append(cls, Input{Answer: pick(), Target: pick(), Failed: i%13 == 0})
		det = append(det, Input{Answer: pick() + ", " + pick(), Target: []string{"None", pick(), pick() + ", " + pick()}[i%3], Failed: i%11 == 0})
		capt = append(capt, Input{Answer: sentence(), Target: sentence()})
	}
	cases := []struct {
		task   string
		labels []string
		in     []Input
	}{
		{TaskClassification, labels, cls},
		{TaskDetection, labels, det},
		{TaskCaptioning, nil, capt},
	}
	for _, tc := range cases {
		t.Run(tc.task, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Bootstrap = -1
			res, err := ScoreWith(tc.task, tc.labels, tc.in, opts)
			if err != nil {
				t.Fatal(err)
			}
			eval := res.boot.newEval()
			out := make([]float64, len(res.boot.keys))
			w := make([]int32, len(tc.in))
			for b := range 5 {
				ResampleCounts(w, 99, uint64(b))
				eval(w, out)
				want := resampledResult(t, tc.task, tc.labels, tc.in, w)
				for k, key := range res.boot.keys {
					if math.Abs(out[k]-want.Metrics[key]) > 1e-12 {
						t.Errorf("resample %d: %s = %v, rescoring gives %v", b, key, out[k], want.Metrics[key])
					}
				}
			}
		})
	}
}

func TestIntervals(t *testing.T) {
	var in []Input
	for i := range 200 {
		tgt := []string{"Dog", "Cat", "Cow"}[i%3]
		a := tgt
		if i%4 == 0 {
			a = "Cow"
		}
		in = append(in, Input{Answer: a, Target: tgt})
	}
	labels := []string{"Dog", "Cat", "Cow"}
	opts := DefaultOptions()
	opts.Workers = 1
	one, err := ScoreWith(TaskClassification, labels, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Workers = 4
	four, _ := ScoreWith(TaskClassification, labels, in, opts)
	if !reflect.DeepEqual(one.Intervals, four.Intervals) {
		t.Error("intervals depend on the number of workers")
	}
	if one.Bootstrap == nil || one.Bootstrap.Resamples != 1000 || one.Bootstrap.Confidence != 0.95 || one.Bootstrap.Seed != 0 {
		t.Errorf("bootstrap info %+v", one.Bootstrap)
	}
	for key := range one.Metrics {
		iv, ok := one.Intervals[key]
		if !ok {
			t.Errorf("no interval for %s", key)
			continue
		}
		if !(iv.Low <= iv.High) {
			t.Errorf("%s: interval %+v", key, iv)
		}
	}
	acc := one.Metrics["accuracy"]
	if iv := one.Intervals["accuracy"]; !(iv.Low < acc && acc < iv.High) || iv.High-iv.Low > 0.2 {
		t.Errorf("accuracy %v, interval %+v", acc, iv)
	}
	opts.Seed = 1
	other, _ := ScoreWith(TaskClassification, labels, in, opts)
	if reflect.DeepEqual(one.Intervals, other.Intervals) {
		t.Error("another seed gave identical intervals")
	}
	opts.Bootstrap = -1
	off, _ := ScoreWith(TaskClassification, labels, in, opts)
	if off.Intervals != nil || off.Bootstrap != nil {
		t.Error("intervals computed with the bootstrap off")
	}
}

func TestAddSPICE(t *testing.T) {
	in := []Input{
		{Answer: "a bird sings", Target: "a bird sings loudly"},
		{Answer: "rain falls", Target: "rain is falling"},
		{Answer: "dog", Target: "a dog barks"},
	}
	res, err := Score(TaskCaptioning, nil, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unavailable["spider"] == "" || res.Unavailable["spice"] == "" {
		t.Fatalf("SPIDEr must be marked unavailable before SPICE: %v", res.Unavailable)
	}
	if _, ok := res.Metrics["spider"]; ok {
		t.Fatal("spider reported without SPICE")
	}
	if err := AddSPICE(&res, []float64{0.5, 0.25}); err == nil {
		t.Error("wrong length accepted")
	}
	if err := AddSPICE(&res, []float64{0.5, math.NaN(), 0}); err == nil {
		t.Error("NaN accepted")
	}
	if err := AddSPICE(&res, []float64{0.5, 0.25, 0}); err != nil {
		t.Fatal(err)
	}
	if got := res.Metrics["spice"]; math.Abs(got-0.25) > 1e-15 {
		t.Errorf("spice %v, want 0.25", got)
	}
	if got, want := res.Metrics["spider"], (res.Metrics["cider_d"]+0.25)/2; got != want {
		t.Errorf("spider %v, want %v", got, want)
	}
	if res.Unavailable != nil {
		t.Errorf("unavailable %v after AddSPICE", res.Unavailable)
	}
	for _, key := range []string{"spice", "spider", "cider_d"} {
		if _, ok := res.Intervals[key]; !ok {
			t.Errorf("no interval for %s", key)
		}
	}
	if res.Samples[1].Scores["spice"] != 0.25 {
		t.Errorf("per-sample spice %v", res.Samples[1].Scores)
	}
	cls, _ := Score(TaskClassification, []string{"a"}, []Input{{Answer: "a", Target: "a"}})
	if err := AddSPICE(&cls, []float64{1}); err == nil {
		t.Error("AddSPICE accepted a classification result")
	}
}
