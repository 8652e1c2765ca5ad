package metrics

import (
	"math"
	"reflect"
	"testing"
)

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func TestCIDErDPublishedCheck(t *testing.T) {
	cands := []string{"a man is speaking", "rain falls"}
	refs := [][]string{
		{"a man speaks.", "someone speaks.", "a man is speaking while a bird is chirping in the background"},
		{"rain is falling hard on a surface"},
	}
	corpus, per := CIDErD(cands, refs)
	if round4(corpus) != 0.9614 {
		t.Errorf("corpus CIDEr-D = %.6f, want 0.9614", corpus)
	}
	if len(per) != 2 || round4(per[0]) != 1.3641 || round4(per[1]) != 0.5587 {
		t.Errorf("per caption = %v, want [1.3641 0.5587]", per)
	}
}

func TestCIDErD(t *testing.T) {
	tests := []struct {
		name    string
		cands   []string
		refs    [][]string
		corpus  float64
		perCapt []float64
	}{
		{"empty corpus", nil, nil, 0, nil},
		{"one caption scores 0", []string{"a bird sings"}, [][]string{{"a bird sings"}}, 0, []float64{0}},
		// Disjoint vocabularies: every idf is log(2) − 0 > 0, so identical
		// captions have cosine 1 on each order that exists.
		{"identical, four orders", []string{"a bird sings loudly", "rain on a roof"},
			[][]string{{"a bird sings loudly"}, {"heavy rain falls now"}}, -1, []float64{10, -1}},
		{"identical, three tokens lack 4-grams", []string{"dog barks twice", "x"},
			[][]string{{"dog barks twice"}, {"y"}}, -1, []float64{7.5, 0}},
		{"case and punctuation ignored", []string{"A Dog, Barking!", "x"},
			[][]string{{"a dog barking"}, {"y"}}, -1, []float64{7.5, 0}},
		{"empty candidate", []string{"", "x"}, [][]string{{"a dog barking"}, {"x"}}, -1, []float64{0, -1}},
		{"no references", []string{"a dog", "x y z"}, [][]string{nil, {"x y z"}}, -1, []float64{0, -1}},
		{"nothing shared", []string{"cat", "dog"}, [][]string{{"bird"}, {"fish"}}, 0, []float64{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			corpus, per := CIDErD(tc.cands, tc.refs)
			if len(per) != len(tc.perCapt) {
				t.Fatalf("per caption %v, want %v", per, tc.perCapt)
			}
			for i, w := range tc.perCapt {
				if w >= 0 && math.Abs(per[i]-w) > 1e-9 {
					t.Errorf("per caption %d = %v, want %v", i, per[i], w)
				}
			}
			if tc.corpus >= 0 && math.Abs(corpus-tc.corpus) > 1e-9 {
				t.Errorf("corpus = %v, want %v", corpus, tc.corpus)
			}
			if len(per) > 0 {
				s := 0.0
				for _, p := range per {
					s += p
				}
				if math.Abs(corpus-s/float64(len(per))) > 1e-12 {
					t.Errorf("corpus %v is not the mean of %v", corpus, per)
				}
			}
		})
	}
}

func TestCIDErDLengthPenalty(t *testing.T) {
	// A longer candidate that contains the reference scores less than the
	// exact one, and a third sample keeps the idf of shared n-grams positive.
	refs := [][]string{{"a bird sings loudly"}, {"rain on a roof"}, {"wind in the trees"}}
	_, exact := CIDErD([]string{"a bird sings loudly", "rain on a roof", "wind in the trees"}, refs)
	_, longer := CIDErD([]string{"a bird sings loudly again and again and again", "rain on a roof", "wind in the trees"}, refs)
	if !(longer[0] < exact[0]) || longer[0] <= 0 {
		t.Errorf("longer candidate %v, exact %v: want 0 < longer < exact", longer[0], exact[0])
	}
}

func TestTokenizeCaption(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"A man speaks.", []string{"a", "man", "speaks"}},
		{"Birds, chirping; loudly!? (far away) [x] {y} \"quoted\" `tick` ... --", []string{"birds", "chirping", "loudly", "far", "away", "x", "y", "quoted", "tick"}},
		{"high-pitched calls - then silence", []string{"high-pitched", "calls", "then", "silence"}},
		{"it lasts 2.5 seconds.", []string{"it", "lasts", "2.5", "seconds"}},
		{"the bird's song, don't stop, they're here", []string{"the", "bird", "'s", "song", "do", "n't", "stop", "they", "'re", "here"}},
		{"the dog’s bark", []string{"the", "dog", "'s", "bark"}},
		{"'quoted' o'clock", []string{"quoted", "o'clock"}},
		{"50% louder & $5", []string{"50", "louder", "$5"}},
		{"ÉCLAIR  Über", []string{"éclair", "über"}},
	}
	for _, tc := range tests {
		if got := TokenizeCaption(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TokenizeCaption(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScoreCaptioning(t *testing.T) {
	in := []Input{
		{SampleID: "1", Answer: "a man is speaking<|eot_id|>ignored", Target: "a man speaks."},
		{SampleID: "2", Answer: "  rain   falls ", Target: "rain is falling hard on a surface"},
		{SampleID: "3", Answer: "a dog barks", Target: "a dog barks", Failed: true},
	}
	res, err := Score(TaskCaptioning, nil, in)
	if err != nil {
		t.Fatal(err)
	}
	corpus, per := CIDErD([]string{"a man is speaking", "rain falls", ""},
		[][]string{{"a man speaks."}, {"rain is falling hard on a surface"}, {"a dog barks"}})
	if res.Metrics["cider_d"] != corpus || res.Metrics["cider"] != corpus/10 {
		t.Errorf("metrics %v, want cider_d %v", res.Metrics, corpus)
	}
	if _, ok := res.Metrics["spider"]; ok {
		t.Error("spider must not be reported without SPICE")
	}
	if len(res.Metrics) != 2 {
		t.Errorf("unexpected metrics %v", res.Metrics)
	}
	for i, s := range res.Samples {
		if s.Scores["cider_d"] != per[i] {
			t.Errorf("sample %d cider_d %v, want %v", i, s.Scores["cider_d"], per[i])
		}
	}
	if res.Samples[0].Prediction != "a man is speaking" || res.Samples[1].Prediction != "rain falls" || res.Samples[2].Prediction != "" {
		t.Errorf("predictions %q %q %q", res.Samples[0].Prediction, res.Samples[1].Prediction, res.Samples[2].Prediction)
	}
	if per[2] != 0 || per[0] <= 0 {
		t.Errorf("per caption %v: failed sample must score 0, first > 0", per)
	}
	if res.N != 3 || res.Failed != 1 || res.Headline != "cider" || res.Policy != "none" || res.TaskType != "captioning" {
		t.Errorf("result header wrong: %+v", res)
	}
}

func TestCIDErDMoreCases(t *testing.T) {
	// Three samples, one reference each, hand-derived: with N = 3 and
	// disjoint references, every reference n-gram has df 1, so its weight
	// is ln 3 and identical captions have cosine 1 on each order present.
	cands := []string{"dog barks", "Rain falls.", "wind"}
	refs := [][]string{{"dog barks"}, {"rain falls"}, {"owl hoots"}}
	corpus, per := CIDErD(cands, refs)
	// "dog barks": orders 1 and 2 present → 10·(1+1)/4 = 5; the same for
	// "rain falls"; "wind" shares nothing → 0.
	want := []float64{5, 5, 0}
	for i := range want {
		if math.Abs(per[i]-want[i]) > 1e-12 {
			t.Errorf("caption %d: %v, want %v", i, per[i], want[i])
		}
	}
	if math.Abs(corpus-10.0/3) > 1e-12 {
		t.Errorf("corpus %v, want 10/3", corpus)
	}
	// Two references: the mean over references. The second reference of
	// sample 0 shares only "dog" with the candidate.
	_, per2 := CIDErD([]string{"dog barks", "x y"}, [][]string{{"dog barks", "dog sleeps"}, {"x y"}})
	// N = 2: idf of "dog", "barks", "dog barks", "sleeps", "dog sleeps" is ln 2
	// (df 1). Reference 1: cosine 1 on orders 1, 2 → 2/4. Reference 2:
	// order 1: ("dog" ln2·ln2) / (√2 ln2 · √2 ln2) = 1/2; order 2: 0 → (1/2)/4.
	if want := 10 * (2.0/4 + 0.5/4) / 2; math.Abs(per2[0]-want) > 1e-12 {
		t.Errorf("two references: %v, want %v", per2[0], want)
	}
}

func TestCIDErDBootstrap(t *testing.T) {
	cands := []string{"a bird sings", "rain falls", "dog barks", "wind blows", "owl hoots loudly"}
	refs := [][]string{{"a bird sings", "a bird calls"}, {"rain is falling"}, {"a dog barks"}, {"strong wind"}, {"an owl hoots"}}
	corpus0, per0 := CIDErD(cands, refs)
	corpus, per, iv := CIDErDBootstrap(cands, refs, 200, 5, 0.95, 2)
	if corpus != corpus0 || !reflect.DeepEqual(per, per0) {
		t.Errorf("point estimate differs from CIDErD: %v vs %v", corpus, corpus0)
	}
	if !(iv.Low <= iv.High) || iv.High <= 0 {
		t.Errorf("interval %+v", iv)
	}
	_, _, off := CIDErDBootstrap(cands, refs, 0, 5, 0.95, 2)
	if off != (Interval{}) {
		t.Errorf("interval without resamples: %+v", off)
	}
}
