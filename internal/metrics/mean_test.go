package metrics

import (
	"math"
	"testing"
)

func TestMeanWithInterval(t *testing.T) {
	vals := make([]float64, 200)
	for i := range vals {
		if i%4 != 0 {
			vals[i] = 1 // mean 0.75
		}
	}
	m, iv, info := MeanWithInterval(vals, Options{})
	if m != 0.75 || iv == nil || info == nil || info.Resamples != DefaultBootstrap {
		t.Fatalf("%v %v %+v", m, iv, info)
	}
	// A binomial proportion of 200 at 0.75: the 95% interval is about ±0.06.
	if iv.Low > 0.72 || iv.Low < 0.66 || iv.High < 0.78 || iv.High > 0.84 {
		t.Errorf("interval %+v", iv)
	}
	// Deterministic for a seed, and equal to the classification bootstrap on the same data
	// (accuracy of the same 0/1 outcomes).
	_, iv2, _ := MeanWithInterval(vals, Options{})
	if *iv2 != *iv {
		t.Errorf("not deterministic: %+v %+v", iv, iv2)
	}
	in := make([]Input, len(vals))
	for i, v := range vals {
		in[i] = Input{SampleID: string(rune(i)), Target: "a", Answer: "b"}
		if v == 1 {
			in[i].Answer = "a"
		}
	}
	res, err := Score(TaskClassification, []string{"a", "b"}, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Intervals["accuracy"]; math.Abs(got.Low-iv.Low) > 1e-12 || math.Abs(got.High-iv.High) > 1e-12 {
		t.Errorf("accuracy interval %+v, mean interval %+v", got, iv)
	}
	if _, iv, _ := MeanWithInterval(vals, Options{Bootstrap: -1}); iv != nil {
		t.Error("interval with the bootstrap off")
	}
	if m, iv, _ := MeanWithInterval(nil, Options{}); m != 0 || iv != nil {
		t.Error("empty input")
	}
}
