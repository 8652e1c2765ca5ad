package metrics

import "strings"

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

// scoreDetection scores multi-label detection.
func scoreDetection(labels *Vocabulary, in []Input) Result {
	v := DetectionVocabulary(labels.labels)
	res := Result{
		TaskType: TaskDetection,
		Headline: HeadlineF1Macro,
		Policy:   PolicyBeansZero,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	// Columns: the task labels without "None", then (only if the vocabulary
	// is incomplete) target labels it lacks, in order of first appearance.
	var columns []string
	for _, l := range v.labels {
		if l != NoneLabel {
			columns = append(columns, l)
		}
	}
	var yTrue, yPred [][]string
	exact := make([]float64, 0, len(in))
	known := map[string]bool{}
	for _, c := range columns {
		known[c] = true
	}
	for _, x := range in {
		s := newSample(x)
		var pred []string
		if x.Failed {
			res.Failed++
		} else {
			pred = MatchDetection(v, s.Cleaned)
		}
		tgt := DetectionTargets(v, x.Target)
		for _, t := range tgt {
			if !known[t] {
				known[t] = true
				columns = append(columns, t)
			}
		}
		s.PredictedLabels = pred
		s.TargetLabels = tgt
		s.Prediction = NoneLabel
		if len(pred) > 0 {
			s.Prediction = strings.Join(pred, ", ")
		}
		// A failed item has no answer: it earns nothing per sample, even where the target
		// is "None" (its empty row adds nothing to the per-label counts either way).
		em, f1 := b2f(sameSet(pred, tgt)), SampleF1(tgt, pred)
		if x.Failed {
			em, f1 = 0, 0
		}
		s.Scores["exact_match"] = em
		s.Scores["f1"] = f1
		exact = append(exact, em)
		yTrue = append(yTrue, tgt)
		yPred = append(yPred, pred)
		res.Samples = append(res.Samples, s)
	}
	prf := MultilabelMacroPRF(columns, yTrue, yPred)
	res.Metrics = map[string]float64{
		"f1_macro":        prf.F1,
		"precision_macro": prf.Precision,
		"recall_macro":    prf.Recall,
		"exact_match":     mean(exact),
	}
	return res
}

// MultilabelMacroPRF computes multi-label macro precision, recall and F1 with
// scikit-learn semantics for multi-hot indicator matrices (average='macro',
// zero_division=0). Each sample's label sets become multi-hot rows over
// columns; labels not in columns are ignored. Every column counts in the
// mean, including a column with no true and no predicted positive, which
// scores 0 on all three (scikit-learn's behaviour with zero_division=0).
func MultilabelMacroPRF(columns []string, yTrue, yPred [][]string) PRF {
	if len(yTrue) != len(yPred) {
		panic("metrics.MultilabelMacroPRF: yTrue and yPred differ in length")
	}
	col := make(map[string]int, len(columns))
	for i, c := range columns {
		if _, dup := col[c]; !dup {
			col[c] = i
		}
	}
	cs := make([]labelCounts, len(columns))
	for i := range yTrue {
		t := indicator(col, yTrue[i])
		p := indicator(col, yPred[i])
		for j := range t {
			if p[j] {
				cs[j].tp++
			} else {
				cs[j].fn++
			}
		}
		for j := range p {
			if !t[j] {
				cs[j].fp++
			}
		}
	}
	return macroFromCounts(cs)
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
