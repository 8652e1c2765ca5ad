package metrics

import (
	"fmt"
	"sort"
)

// PRF holds averaged precision, recall and F1.
type PRF struct {
	Precision float64
	Recall    float64
	F1        float64
}

// Averaging modes of precision, recall and F1 (scikit-learn's `average`).
const (
	AverageMacro    = "macro"
	AverageMicro    = "micro"
	AverageWeighted = "weighted"
)

// MatchClassification is the beans_zero classification matching: the cleaned
// answer snaps to the nearest vocabulary label (always, whatever the
// distance; an exact match has distance 0). An empty answer matches no
// label and gives "".
func MatchClassification(v *Vocabulary, cleaned string) string {
	if cleaned == "" {
		return ""
	}
	label, _ := v.Snap(cleaned)
	return label
}

// MatchClassificationStrict is the strict classification matching: the
// vocabulary label equal to the cleaned answer up to case (see
// Vocabulary.LookupFold), or "" (no label).
func MatchClassificationStrict(v *Vocabulary, cleaned string) string {
	if cleaned == "" {
		return ""
	}
	label, _ := v.LookupFold(cleaned)
	return label
}

// classificationKeys are the classification metrics, in bootstrap order.
var classificationKeys = []string{
	"accuracy", "top1_accuracy",
	"precision_macro", "recall_macro", "f1_macro",
	"precision_micro", "recall_micro", "f1_micro",
	"precision_weighted", "recall_weighted", "f1_weighted",
}

// scoreClassification scores single-label classification.
func scoreClassification(v *Vocabulary, in []Input, opts Options) (Result, *bootState) {
	res := Result{
		TaskType: TaskClassification,
		Headline: HeadlineAccuracy,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	yTrue := make([]string, 0, len(in))
	yPred := make([]string, 0, len(in))
	st := &classState{correct: make([]bool, 0, len(in)), top1: make([]bool, 0, len(in))}
	for _, x := range in {
		s := newSample(x, opts)
		switch {
		case x.Failed:
			res.Failed++
			s.Prediction = "" // the empty label: a class of its own, always wrong
		case s.Cleaned == "":
			res.Empty++
			s.Prediction = ""
		case opts.Policy == PolicyStrict:
			s.Prediction = MatchClassificationStrict(v, s.Cleaned)
		default:
			s.Prediction = MatchClassification(v, s.Cleaned)
		}
		alts := v.Split(x.Target)
		c := s.Prediction != "" && s.Prediction == x.Target
		t := false
		if s.Prediction != "" {
			for _, alt := range alts {
				if s.Prediction == alt {
					t = true
					break
				}
			}
		}
		if !v.Contains(x.Target) {
			known := false
			for _, alt := range alts {
				known = known || v.Contains(alt)
			}
			if !known {
				res.OutOfVocabulary++
			}
		}
		s.Scores["correct"] = b2f(c)
		s.Scores["top1"] = b2f(t)
		st.correct = append(st.correct, c)
		st.top1 = append(st.top1, t)
		yTrue = append(yTrue, x.Target)
		yPred = append(yPred, s.Prediction)
		res.Samples = append(res.Samples, s)
	}
	st.k, st.t, st.p = classIndexes(yTrue, yPred)
	bs := &bootState{n: len(in), keys: classificationKeys, newEval: st.newEval}
	res.Metrics = pointEstimate(bs)
	return res, bs
}

// pointEstimate evaluates the metrics on the data set itself (all weights 1).
func pointEstimate(bs *bootState) map[string]float64 {
	w := make([]int32, bs.n)
	for i := range w {
		w[i] = 1
	}
	out := make([]float64, len(bs.keys))
	bs.newEval()(w, out)
	m := make(map[string]float64, len(bs.keys))
	for k, key := range bs.keys {
		m[key] = out[k]
	}
	return m
}

// classIndexes maps labels to indexes into the sorted union of yTrue and
// yPred (scikit-learn's unique_labels).
func classIndexes(yTrue, yPred []string) (k int, t, p []int32) {
	idx := map[string]int32{}
	for _, l := range yTrue {
		idx[l] = 0
	}
	for _, l := range yPred {
		idx[l] = 0
	}
	labels := make([]string, 0, len(idx))
	for l := range idx {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for i, l := range labels {
		idx[l] = int32(i)
	}
	t = make([]int32, len(yTrue))
	p = make([]int32, len(yPred))
	for i := range yTrue {
		t[i], p[i] = idx[yTrue[i]], idx[yPred[i]]
	}
	return len(labels), t, p
}

// classState holds precomputed per-sample quantities of classification.
type classState struct {
	k             int
	t, p          []int32 // class indexes of target and prediction
	correct, top1 []bool
}

func (st *classState) newEval() func(w []int32, out []float64) {
	ts := make([]int64, st.k)
	ps := make([]int64, st.k)
	tp := make([]int64, st.k)
	return func(w []int32, out []float64) {
		clear(ts)
		clear(ps)
		clear(tp)
		var acc, top, n int64
		for i, c := range w {
			if c == 0 {
				continue
			}
			c64 := int64(c)
			n += c64
			t, p := st.t[i], st.p[i]
			ts[t] += c64
			ps[p] += c64
			if t == p {
				tp[t] += c64
			}
			if st.correct[i] {
				acc += c64
			}
			if st.top1[i] {
				top += c64
			}
		}
		macro, micro, weighted := averagePRF(ts, ps, tp, true)
		out[0], out[1] = ratio64(acc, n), ratio64(top, n)
		out[2], out[3], out[4] = macro.Precision, macro.Recall, macro.F1
		out[5], out[6], out[7] = micro.Precision, micro.Recall, micro.F1
		out[8], out[9], out[10] = weighted.Precision, weighted.Recall, weighted.F1
	}
}

// averagePRF computes macro, micro and weighted precision, recall and F1 from
// per-label counts ts (true = support), ps (predicted) and tp, with
// scikit-learn's zero_division=0: per label P = tp/ps, R = tp/ts and
// F1 = 2tp/(ts+ps) (the confusion-count form of scikit-learn >= 1.3), each 0
// when its denominator is 0. With presentOnly, labels with ts+ps = 0 are left
// out (single-label: scikit-learn's label set is the union of the labels
// present); otherwise every label counts (multi-label indicator columns).
func averagePRF(ts, ps, tp []int64, presentOnly bool) (macro, micro, weighted PRF) {
	var sumP, sumR, sumF, wP, wR, wF float64
	var nLabels, sumTS, sumPS, sumTP int64
	for j := range ts {
		if presentOnly && ts[j]+ps[j] == 0 {
			continue
		}
		nLabels++
		p, r, f := ratio64(tp[j], ps[j]), ratio64(tp[j], ts[j]), ratio64(2*tp[j], ts[j]+ps[j])
		sumP += p
		sumR += r
		sumF += f
		wt := float64(ts[j])
		wP += wt * p
		wR += wt * r
		wF += wt * f
		sumTS += ts[j]
		sumPS += ps[j]
		sumTP += tp[j]
	}
	if nLabels == 0 {
		return
	}
	nl := float64(nLabels)
	macro = PRF{sumP / nl, sumR / nl, sumF / nl}
	micro = PRF{ratio64(sumTP, sumPS), ratio64(sumTP, sumTS), ratio64(2*sumTP, sumTS+sumPS)}
	if sumTS > 0 {
		st := float64(sumTS)
		weighted = PRF{wP / st, wR / st, wF / st}
	}
	return
}

// ClassificationPRF computes single-label precision, recall and F1 with
// scikit-learn semantics (precision_recall_fscore_support with the given
// average and zero_division=0): the label set is the sorted union of the
// labels in yTrue and yPred; see averagePRF for the per-label definitions.
// average is AverageMacro, AverageMicro or AverageWeighted. Empty inputs give
// zeros. yTrue and yPred must have the same length.
func ClassificationPRF(yTrue, yPred []string, average string) PRF {
	if len(yTrue) != len(yPred) {
		panic("metrics.ClassificationPRF: yTrue and yPred differ in length")
	}
	k, t, p := classIndexes(yTrue, yPred)
	ts, ps, tp := make([]int64, k), make([]int64, k), make([]int64, k)
	for i := range t {
		ts[t[i]]++
		ps[p[i]]++
		if t[i] == p[i] {
			tp[t[i]]++
		}
	}
	return pickAverage(average, ts, ps, tp, true)
}

func pickAverage(average string, ts, ps, tp []int64, presentOnly bool) PRF {
	macro, micro, weighted := averagePRF(ts, ps, tp, presentOnly)
	switch average {
	case AverageMacro:
		return macro
	case AverageMicro:
		return micro
	case AverageWeighted:
		return weighted
	}
	panic(fmt.Sprintf("metrics: unknown average %q", average))
}

// MacroPRF is ClassificationPRF(yTrue, yPred, AverageMacro).
func MacroPRF(yTrue, yPred []string) PRF {
	return ClassificationPRF(yTrue, yPred, AverageMacro)
}

// ratio returns a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ratio64 returns a/b, 0 when b is 0.
func ratio64(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
