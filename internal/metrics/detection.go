package metrics

import (
	"sort"
	"strings"
)

// DetectionMaxDistance is the largest edit distance at which a detection
// answer part snaps to a label; farther parts are dropped.
const DetectionMaxDistance = 5

// NoneLabel is the detection label meaning "nothing detected".
const NoneLabel = "None"

// DetectionVocabulary returns the detection matching vocabulary: labels plus
// "None" (appended unless already present).
func DetectionVocabulary(labels []string) *Vocabulary {
	all := append(append([]string(nil), labels...), NoneLabel)
	return NewVocabulary(all)
}

// MatchDetection is the beans_zero detection matching: the cleaned answer is
// split comma-aware (Vocabulary.Split); each part snaps to its nearest label
// when within DetectionMaxDistance, else it is dropped; "None" parts are
// dropped, and so are repeats (first kept). The result may be empty, meaning
// "None". v must be a detection vocabulary (see DetectionVocabulary).
func MatchDetection(v *Vocabulary, cleaned string) []string {
	var out []string
	seen := map[string]bool{}
	for _, part := range v.Split(cleaned) {
		label, d := v.Snap(part)
		if d < 0 || d > DetectionMaxDistance || label == NoneLabel || seen[label] {
			continue
		}
		seen[label] = true
		out = append(out, label)
	}
	return out
}

// DetectionTargets splits a detection target comma-aware and removes "None"
// parts and repeats, so "None" gives no labels.
func DetectionTargets(v *Vocabulary, target string) []string {
	var out []string
	seen := map[string]bool{}
	for _, part := range v.Split(target) {
		if part == NoneLabel || seen[part] {
			continue
		}
		seen[part] = true
		out = append(out, part)
	}
	return out
}

// MatchDetectionStrict is the strict detection matching: the cleaned answer
// is split comma-aware; each part is kept when a label equals it up to case
// (Vocabulary.LookupFold), else dropped; "None" and repeats are dropped.
func MatchDetectionStrict(v *Vocabulary, cleaned string) []string {
	var out []string
	seen := map[string]bool{}
	for _, part := range v.Split(cleaned) {
		label, ok := v.LookupFold(part)
		if !ok || label == NoneLabel || seen[label] {
			continue
		}
		seen[label] = true
		out = append(out, label)
	}
	return out
}

// detectionKeys are the detection metrics, in bootstrap order.
var detectionKeys = []string{"f1_macro", "precision_macro", "recall_macro", "map_macro", "exact_match"}

// scoreDetection scores multi-label detection.
func scoreDetection(labels *Vocabulary, in []Input, opts Options) (Result, *bootState) {
	v := DetectionVocabulary(labels.labels)
	res := Result{
		TaskType: TaskDetection,
		Headline: HeadlineF1Macro,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	// Columns: the task labels without "None", then (only if the vocabulary
	// is incomplete) target labels it lacks, in order of first appearance.
	var columns []string
	col := map[string]int32{}
	for _, l := range v.labels {
		if l != NoneLabel {
			col[l] = int32(len(columns))
			columns = append(columns, l)
		}
	}
	st := &detState{
		tOff: make([]int32, 1, len(in)+1), pOff: make([]int32, 1, len(in)+1), hOff: make([]int32, 1, len(in)+1),
		em: make([]bool, 0, len(in)),
	}
	for _, x := range in {
		s := newSample(x, opts)
		var pred []string
		switch {
		case x.Failed:
			res.Failed++
		case s.Cleaned == "":
			res.Empty++
		case opts.Policy == PolicyStrict:
			pred = MatchDetectionStrict(v, s.Cleaned)
		default:
			pred = MatchDetection(v, s.Cleaned)
		}
		tgt := DetectionTargets(v, x.Target)
		oov := false
		for _, t := range tgt {
			if _, ok := col[t]; !ok {
				col[t] = int32(len(columns))
				columns = append(columns, t)
			}
			oov = oov || !v.Contains(t)
		}
		if oov {
			res.OutOfVocabulary++
		}
		s.PredictedLabels = pred
		s.TargetLabels = tgt
		s.Prediction = NoneLabel
		if len(pred) > 0 {
			s.Prediction = strings.Join(pred, ", ")
		}
		// A failed or empty answer earns nothing per sample, even where the target
		// is "None" (its empty row adds nothing to the per-label counts either way).
		em, f1 := sameSet(pred, tgt), SampleF1(tgt, pred)
		if x.Failed || s.Cleaned == "" {
			em, f1 = false, 0
		}
		s.Scores["exact_match"] = b2f(em)
		s.Scores["f1"] = f1
		st.em = append(st.em, em)
		for _, t := range tgt {
			st.tCols = append(st.tCols, col[t])
		}
		tset := toSet(tgt)
		for _, p := range pred {
			st.pCols = append(st.pCols, col[p])
			if tset[p] {
				st.hCols = append(st.hCols, col[p])
			}
		}
		st.tOff = append(st.tOff, int32(len(st.tCols)))
		st.pOff = append(st.pOff, int32(len(st.pCols)))
		st.hOff = append(st.hOff, int32(len(st.hCols)))
		res.Samples = append(res.Samples, s)
	}
	st.c = len(columns)
	bs := &bootState{n: len(in), keys: detectionKeys, newEval: st.newEval}
	res.Metrics = pointEstimate(bs)
	return res, bs
}

// detState holds precomputed per-sample quantities of detection: the
// columns of each sample's target labels (t), predicted labels (p) and
// correctly predicted labels (h), as compressed rows.
type detState struct {
	c                   int
	tOff, pOff, hOff    []int32
	tCols, pCols, hCols []int32
	em                  []bool
}

func (st *detState) newEval() func(w []int32, out []float64) {
	ts := make([]int64, st.c)
	ps := make([]int64, st.c)
	tp := make([]int64, st.c)
	return func(w []int32, out []float64) {
		clear(ts)
		clear(ps)
		clear(tp)
		var em, n int64
		for i, c := range w {
			if c == 0 {
				continue
			}
			c64 := int64(c)
			n += c64
			for _, j := range st.tCols[st.tOff[i]:st.tOff[i+1]] {
				ts[j] += c64
			}
			for _, j := range st.pCols[st.pOff[i]:st.pOff[i+1]] {
				ps[j] += c64
			}
			for _, j := range st.hCols[st.hOff[i]:st.hOff[i+1]] {
				tp[j] += c64
			}
			if st.em[i] {
				em += c64
			}
		}
		macro, _, _ := averagePRF(ts, ps, tp, false)
		out[0], out[1], out[2] = macro.F1, macro.Precision, macro.Recall
		out[3] = meanHardAP(ts, ps, tp, n)
		out[4] = ratio64(em, n)
	}
}

// meanHardAP is the macro mean over all columns of hardAP.
func meanHardAP(ts, ps, tp []int64, n int64) float64 {
	if len(ts) == 0 {
		return 0
	}
	s := 0.0
	for j := range ts {
		s += hardAP(ts[j], tp[j], ps[j], n)
	}
	return s / float64(len(ts))
}

// hardAP is scikit-learn's average_precision_score of one column whose
// scores are hard 0/1 predictions: pos true positives among n samples, pred
// predicted positives of which tp are true. The two distinct scores give at
// most two thresholds (ties grouped): "score ≥ 1" (recall tp/pos, precision
// tp/pred) and "score ≥ 0" (recall 1, precision pos/n), so
// AP = (tp/pos)·(tp/pred) + (1 − tp/pos)·(pos/n), written in
// scikit-learn's order of operations; with one threshold (no or all samples
// predicted) AP = pos/n. A column without positives scores 0.
func hardAP(pos, tp, pred, n int64) float64 {
	if pos == 0 || n == 0 {
		return 0
	}
	p0 := float64(pos) / float64(n)
	if pred == 0 || pred == n {
		return p0
	}
	r1 := float64(tp) / float64(pos)
	p1 := float64(tp) / float64(pred)
	return -((r1-1)*p0 + (0-r1)*p1)
}

// AveragePrecision is scikit-learn's average_precision_score for one binary
// column: AP = Σ (R_k − R_{k−1}) · P_k over the distinct score thresholds in
// decreasing order (tied scores form one threshold), with R_0 = 0. A column
// without positives scores 0 (scikit-learn ≥ 1.1 sets recall to 1 and the
// sum collapses to the precision at the top threshold, which is 0).
// Empty input gives 0.
func AveragePrecision(yTrue []bool, scores []float64) float64 {
	if len(yTrue) != len(scores) {
		panic("metrics.AveragePrecision: yTrue and scores differ in length")
	}
	n := len(scores)
	if n == 0 {
		return 0
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	var tps, fps []float64
	tp, fp := 0.0, 0.0
	for k, i := range order {
		if yTrue[i] {
			tp++
		} else {
			fp++
		}
		if k == n-1 || scores[order[k+1]] != scores[i] {
			tps = append(tps, tp)
			fps = append(fps, fp)
		}
	}
	m := len(tps)
	prec := make([]float64, m+1)
	rec := make([]float64, m+1)
	// Reversed as scikit-learn does: lowest threshold first, then (P=1, R=0).
	for k := 0; k < m; k++ {
		j := m - 1 - k
		if tps[j]+fps[j] != 0 {
			prec[k] = tps[j] / (tps[j] + fps[j])
		}
		if tps[m-1] == 0 {
			rec[k] = 1
		} else {
			rec[k] = tps[j] / tps[m-1]
		}
	}
	prec[m], rec[m] = 1, 0
	s := 0.0
	for k := 0; k < m; k++ {
		s += (rec[k+1] - rec[k]) * prec[k]
	}
	return -s
}

// MultilabelMacroPRF computes multi-label macro precision, recall and F1 with
// scikit-learn semantics for multi-hot indicator matrices (average='macro',
// zero_division=0); see MultilabelPRF.
func MultilabelMacroPRF(columns []string, yTrue, yPred [][]string) PRF {
	return MultilabelPRF(columns, yTrue, yPred, AverageMacro)
}

// MultilabelPRF computes multi-label precision, recall and F1 with
// scikit-learn semantics for multi-hot indicator matrices (zero_division=0).
// Each sample's label sets become multi-hot rows over columns; labels not in
// columns are ignored. Every column counts in the macro mean, including a
// column with no true and no predicted positive, which scores 0 on all three
// (scikit-learn's behaviour with zero_division=0).
func MultilabelPRF(columns []string, yTrue, yPred [][]string, average string) PRF {
	ts, ps, tp := multilabelCounts(columns, yTrue, yPred)
	return pickAverage(average, ts, ps, tp, false)
}

// MeanAveragePrecision is the macro mean over columns of AveragePrecision
// with the hard 0/1 predictions of yPred as scores (see hardAP); every
// column counts, one without positives as 0.
func MeanAveragePrecision(columns []string, yTrue, yPred [][]string) float64 {
	ts, ps, tp := multilabelCounts(columns, yTrue, yPred)
	return meanHardAP(ts, ps, tp, int64(len(yTrue)))
}

func multilabelCounts(columns []string, yTrue, yPred [][]string) (ts, ps, tp []int64) {
	if len(yTrue) != len(yPred) {
		panic("metrics: yTrue and yPred differ in length")
	}
	col := make(map[string]int, len(columns))
	for i, c := range columns {
		if _, dup := col[c]; !dup {
			col[c] = i
		}
	}
	ts, ps, tp = make([]int64, len(columns)), make([]int64, len(columns)), make([]int64, len(columns))
	for i := range yTrue {
		t := indicator(col, yTrue[i])
		p := indicator(col, yPred[i])
		for j := range t {
			ts[j]++
			if p[j] {
				tp[j]++
			}
		}
		for j := range p {
			ps[j]++
		}
	}
	return ts, ps, tp
}

// indicator returns the set of column indexes of labels.
func indicator(col map[string]int, labels []string) map[int]bool {
	m := make(map[int]bool, len(labels))
	for _, l := range labels {
		if j, ok := col[l]; ok {
			m[j] = true
		}
	}
	return m
}

// SampleF1 is the F1 of one sample's predicted label set against its target
// set: 2|P∩T| / (|P|+|T|), and 1 when both are empty. Repeats are ignored.
func SampleF1(target, pred []string) float64 {
	t, p := toSet(target), toSet(pred)
	if len(t) == 0 && len(p) == 0 {
		return 1
	}
	inter := 0
	for l := range p {
		if t[l] {
			inter++
		}
	}
	return 2 * float64(inter) / float64(len(t)+len(p))
}

func sameSet(a, b []string) bool {
	sa, sb := toSet(a), toSet(b)
	if len(sa) != len(sb) {
		return false
	}
	for l := range sa {
		if !sb[l] {
			return false
		}
	}
	return true
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
