package metrics

import "sort"

// PRF holds macro-averaged precision, recall and F1.
type PRF struct {
	Precision float64
	Recall    float64
	F1        float64
}

// MatchClassification is the beans_zero classification matching: the cleaned
// answer snaps to the nearest vocabulary label (always, whatever the
// distance; an exact match has distance 0).
func MatchClassification(v *Vocabulary, cleaned string) string {
	label, _ := v.Snap(cleaned)
	return label
}

// scoreClassification scores single-label classification.
func scoreClassification(v *Vocabulary, in []Input) Result {
	res := Result{
		TaskType: TaskClassification,
		Headline: HeadlineAccuracy,
		Policy:   PolicyBeansZero,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	yTrue := make([]string, 0, len(in))
	yPred := make([]string, 0, len(in))
	correct := make([]float64, 0, len(in))
	top1 := make([]float64, 0, len(in))
	for _, x := range in {
		s := newSample(x)
		if x.Failed {
			res.Failed++
			s.Prediction = "" // the empty label: a class of its own, always wrong
		} else {
			s.Prediction = MatchClassification(v, s.Cleaned)
		}
		c := b2f(s.Prediction == x.Target)
		t := 0.0
		if !x.Failed {
			for _, alt := range v.Split(x.Target) {
				if s.Prediction == alt {
					t = 1
					break
				}
			}
		}
		s.Scores["correct"] = c
		s.Scores["top1"] = t
		correct = append(correct, c)
		top1 = append(top1, t)
		yTrue = append(yTrue, x.Target)
		yPred = append(yPred, s.Prediction)
		res.Samples = append(res.Samples, s)
	}
	prf := MacroPRF(yTrue, yPred)
	res.Metrics = map[string]float64{
		"accuracy":        mean(correct),
		"top1_accuracy":   mean(top1),
		"f1_macro":        prf.F1,
		"precision_macro": prf.Precision,
		"recall_macro":    prf.Recall,
	}
	return res
}

// MacroPRF computes single-label macro precision, recall and F1 with
// scikit-learn semantics (average='macro', zero_division=0): the label set is
// the sorted union of the labels in yTrue and yPred; per label,
// precision = tp/(tp+fp) and recall = tp/(tp+fn), each 0 when its
// denominator is 0, F1 = 2PR/(P+R), 0 when P+R = 0; each macro value is the
// unweighted mean over the label set. Empty inputs give zeros. yTrue and
// yPred must have the same length.
func MacroPRF(yTrue, yPred []string) PRF {
	if len(yTrue) != len(yPred) {
		panic("metrics.MacroPRF: yTrue and yPred differ in length")
	}
	type counts struct{ tp, fp, fn int }
	per := map[string]*counts{}
	get := func(l string) *counts {
		c := per[l]
		if c == nil {
			c = &counts{}
			per[l] = c
		}
		return c
	}
	for i := range yTrue {
		t, p := yTrue[i], yPred[i]
		if t == p {
			get(t).tp++
			continue
		}
		get(t).fn++
		get(p).fp++
	}
	labels := make([]string, 0, len(per))
	for l := range per {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	cs := make([]labelCounts, len(labels))
	for i, l := range labels {
		c := per[l]
		cs[i] = labelCounts{c.tp, c.fp, c.fn}
	}
	return macroFromCounts(cs)
}

// labelCounts are the confusion counts of one label (column).
type labelCounts struct{ tp, fp, fn int }

// macroFromCounts averages per-label precision, recall and F1 (zero_division=0).
func macroFromCounts(cs []labelCounts) PRF {
	if len(cs) == 0 {
		return PRF{}
	}
	ps := make([]float64, len(cs))
	rs := make([]float64, len(cs))
	fs := make([]float64, len(cs))
	for i, c := range cs {
		ps[i] = ratio(c.tp, c.tp+c.fp)
		rs[i] = ratio(c.tp, c.tp+c.fn)
		if ps[i]+rs[i] > 0 {
			fs[i] = 2 * ps[i] * rs[i] / (ps[i] + rs[i])
		}
	}
	return PRF{Precision: mean(ps), Recall: mean(rs), F1: mean(fs)}
}

// ratio returns a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
