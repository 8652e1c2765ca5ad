package metrics

import (
	"math"
	"strings"
	"unicode"
)

// CIDEr-D parameters of the COCO caption evaluation code.
const (
	ciderN     = 4   // n-grams 1..4
	ciderSigma = 6.0 // Gaussian length penalty
)

// TokenizeCaption splits a caption into CIDEr-D tokens. It approximates the
// PTB tokenizer that pycocoevalcap runs before scoring:
//
//   - the text is lowercased (Unicode simple lowercasing);
//   - white space separates tokens;
//   - every Unicode punctuation character (category P) and the backtick are
//     dropped and separate tokens, except: a hyphen between two letters or
//     digits stays inside the word ("high-pitched"); a period between two
//     digits stays ("2.5"); an apostrophe (' or ’) between two letters stays
//     and then splits an English clitic off as PTB does ("bird's" → "bird",
//     "'s"; "don't" → "do", "n't"; suffixes 's 're 've 'll 'd 'm n't);
//   - all other characters (letters, digits, marks, symbols such as $ % +)
//     belong to words.
func TokenizeCaption(s string) []string {
	rs := []rune(strings.ToLower(s))
	isAlnum := func(i int) bool {
		return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]))
	}
	isLetter := func(i int) bool { return i >= 0 && i < len(rs) && unicode.IsLetter(rs[i]) }
	isDigit := func(i int) bool { return i >= 0 && i < len(rs) && unicode.IsDigit(rs[i]) }

	var toks []string
	var word []rune
	flush := func() {
		if len(word) > 0 {
			toks = append(toks, splitClitic(string(word))...)
			word = word[:0]
		}
	}
	for i, r := range rs {
		switch {
		case unicode.IsSpace(r):
			flush()
		case r == '-' && isAlnum(i-1) && isAlnum(i+1):
			word = append(word, r)
		case r == '.' && isDigit(i-1) && isDigit(i+1):
			word = append(word, r)
		case (r == '\'' || r == '’') && isLetter(i-1) && isLetter(i+1):
			word = append(word, '\'')
		case unicode.IsPunct(r) || r == '`':
			flush()
		default:
			word = append(word, r)
		}
	}
	flush()
	return toks
}

// splitClitic splits an English clitic off a word as PTB does.
func splitClitic(w string) []string {
	i := strings.LastIndexByte(w, '\'')
	if i < 0 {
		return []string{w}
	}
	if strings.HasSuffix(w, "n't") && len(w) > 3 {
		return []string{w[:len(w)-3], "n't"}
	}
	switch w[i+1:] {
	case "s", "re", "ve", "ll", "d", "m":
		return []string{w[:i], w[i:]}
	}
	return []string{w}
}

// ngrams holds the n-gram counts of one tokenised sentence, per order n,
// in order of first occurrence (the iteration order of the Python reference,
// which keeps floating-point sums in the same order).
type ngrams [ciderN]struct {
	keys  []string
	tf    []float64
	index map[string]int
}

// cook counts the n-grams of orders 1..4 of a token list.
func cook(toks []string) *ngrams {
	var g ngrams
	for k := 1; k <= ciderN; k++ {
		o := &g[k-1]
		o.index = map[string]int{}
		for i := 0; i+k <= len(toks); i++ {
			key := strings.Join(toks[i:i+k], " ")
			if j, ok := o.index[key]; ok {
				o.tf[j]++
				continue
			}
			o.index[key] = len(o.keys)
			o.keys = append(o.keys, key)
			o.tf = append(o.tf, 1)
		}
	}
	return &g
}

// tfidf is a sentence's tf·idf vectors per order, their norms and the
// sentence "length".
type tfidf struct {
	g    *ngrams
	vec  [ciderN][]float64
	norm [ciderN]float64
	// length is the number of bigrams (= tokens − 1, 0 for an empty or
	// one-token sentence): the reference code counts term frequencies of
	// order index 1, i.e. bigrams, as the length. Kept for exactness.
	length float64
}

// CIDErD computes CIDEr-D exactly as the COCO caption evaluation code
// (pycocoevalcap CiderD, df mode "corpus") on the ×10 scale. cands[i] is the
// candidate caption of sample i and refs[i] its reference captions; strings
// are tokenised with TokenizeCaption. It returns the corpus score (the mean
// of the per-caption scores) and the per-caption scores. A sample without
// references scores 0; an empty corpus gives 0 and nil. A one-caption corpus
// scores 0 by construction (log(1) = 0). cands and refs must have the same
// length.
func CIDErD(cands []string, refs [][]string) (corpus float64, perCaption []float64) {
	if len(cands) != len(refs) {
		panic("metrics.CIDErD: cands and refs differ in length")
	}
	if len(cands) == 0 {
		return 0, nil
	}
	ctest := make([]*ngrams, len(cands))
	crefs := make([][]*ngrams, len(refs))
	for i := range cands {
		ctest[i] = cook(TokenizeCaption(cands[i]))
		for _, r := range refs[i] {
			crefs[i] = append(crefs[i], cook(TokenizeCaption(r)))
		}
	}

	// Document frequency: per sample, each n-gram of any of its references counts once.
	df := map[string]int{}
	for _, rs := range crefs {
		seen := map[string]bool{}
		for _, r := range rs {
			for k := range r {
				for _, key := range r[k].keys {
					// Orders never collide: an n-gram key holds n−1 spaces.
					if !seen[key] {
						seen[key] = true
						df[key]++
					}
				}
			}
		}
	}
	refLen := math.Log(float64(len(crefs)))

	vectorize := func(g *ngrams) tfidf {
		t := tfidf{g: g}
		for k := range g {
			t.vec[k] = make([]float64, len(g[k].keys))
			sq := 0.0
			for j, key := range g[k].keys {
				idf := math.Log(math.Max(1, float64(df[key])))
				v := g[k].tf[j] * (refLen - idf)
				t.vec[k][j] = v
				sq += v * v
				if k == 1 {
					t.length += g[k].tf[j]
				}
			}
			t.norm[k] = math.Sqrt(sq)
		}
		return t
	}

	perCaption = make([]float64, len(cands))
	sum := 0.0
	for i := range cands {
		if len(crefs[i]) == 0 {
			continue
		}
		hyp := vectorize(ctest[i])
		var score [ciderN]float64
		for _, r := range crefs[i] {
			ref := vectorize(r)
			s := ciderSim(&hyp, &ref)
			for k := range score {
				score[k] += s[k]
			}
		}
		avg := 0.0
		for _, s := range score {
			avg += s
		}
		avg /= ciderN
		avg /= float64(len(crefs[i]))
		avg *= 10
		perCaption[i] = avg
		sum += avg
	}
	return sum / float64(len(cands)), perCaption
}

// ciderSim is the clipped cosine similarity per n-gram order with the
// Gaussian length penalty.
func ciderSim(hyp, ref *tfidf) [ciderN]float64 {
	var val [ciderN]float64
	delta := hyp.length - ref.length
	penalty := math.Pow(math.E, -(delta*delta)/(2*ciderSigma*ciderSigma))
	for k := range val {
		for j, key := range hyp.g[k].keys {
			vr := 0.0
			if jr, ok := ref.g[k].index[key]; ok {
				vr = ref.vec[k][jr]
			}
			val[k] += math.Min(hyp.vec[k][j], vr) * vr
		}
		if hyp.norm[k] != 0 && ref.norm[k] != 0 {
			val[k] /= hyp.norm[k] * ref.norm[k]
		}
		val[k] *= penalty
	}
	return val
}

// scoreCaptioning scores captions with CIDEr-D, one reference per sample.
func scoreCaptioning(in []Input) Result {
	res := Result{
		TaskType: TaskCaptioning,
		Headline: HeadlineCIDEr,
		Policy:   PolicyNone,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	cands := make([]string, 0, len(in))
	refs := make([][]string, 0, len(in))
	for _, x := range in {
		s := newSample(x)
		if x.Failed {
			res.Failed++
		}
		s.Prediction = s.Cleaned
		cands = append(cands, s.Cleaned)
		refs = append(refs, []string{x.Target})
		res.Samples = append(res.Samples, s)
	}
	corpus, per := CIDErD(cands, refs)
	for i := range res.Samples {
		res.Samples[i].Scores["cider_d"] = per[i]
	}
	res.Metrics = map[string]float64{
		"cider_d": corpus,
		"cider":   corpus / 10,
	}
	return res
}
