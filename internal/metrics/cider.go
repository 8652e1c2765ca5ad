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

// cdSent is one sentence of a cdCorpus: its distinct n-grams of order k+1
// are the entries off[k]..off[k+1] of the corpus arrays, in order of first
// occurrence (the iteration order of the Python reference, which keeps
// floating-point sums in the same order).
type cdSent struct {
	off [ciderN + 1]int32
	// length is the number of bigrams (= tokens − 1, 0 for an empty or
	// one-token sentence): the reference code counts the term frequencies
	// of n-gram order index 1, i.e. bigrams, as the "length". Kept for
	// exactness.
	length float64
	// penalty (references only) is the Gaussian length penalty against the
	// sample's candidate; it does not depend on document frequencies.
	penalty float64
	// match (references only) holds, per order, the candidate/reference entry
	// pairs with the same n-gram, in candidate order: match[k]..match[k+1]
	// index matchHyp/matchRef.
	match [ciderN + 1]int32
}

// cdCorpus is a tokenised, interned CIDEr-D corpus: everything that does
// not depend on document frequencies is computed once, so that a caption's
// score can be evaluated for any document frequencies (the corpus's own,
// or those of a bootstrap resample).
type cdCorpus struct {
	n      int
	ids    []int32   // n-gram id of each entry
	tf     []float64 // term frequency of each entry
	sents  []cdSent  // sample i: sents[base[i]] is the candidate, then its references
	base   []int32   // len n+1
	dfOff  []int32   // sample i's distinct reference n-grams: dfIDs[dfOff[i]:dfOff[i+1]]
	dfIDs  []int32
	nGrams int
	// matches, see cdSent.match
	matchHyp, matchRef []int32
	maxEntries         int
}

// newCDCorpus tokenises (TokenizeCaption) and interns a corpus.
func newCDCorpus(cands []string, refs [][]string) *cdCorpus {
	c := &cdCorpus{n: len(cands), base: make([]int32, 1, len(cands)+1), dfOff: make([]int32, 1, len(cands)+1)}
	// Pass 1: tokenise and intern words, so that every array can be sized once.
	words := map[string]uint32{}
	var toks []uint32
	tokOff := make([]int, 1, len(cands)*2+1)
	bound := 0 // upper bound of the number of entries
	addTokens := func(s string) {
		start := len(toks)
		for _, w := range TokenizeCaption(s) {
			id, ok := words[w]
			if !ok {
				id = uint32(len(words))
				words[w] = id
			}
			toks = append(toks, id)
		}
		tokOff = append(tokOff, len(toks))
		for k := 1; k <= ciderN; k++ {
			bound += max(0, len(toks)-start-k+1)
		}
	}
	for i := range cands {
		addTokens(cands[i])
		for _, r := range refs[i] {
			addTokens(r)
		}
	}
	c.ids = make([]int32, 0, bound)
	c.tf = make([]float64, 0, bound)
	c.sents = make([]cdSent, 0, len(tokOff)-1)

	// An n-gram is interned as (id of its (n−1)-gram prefix, last token):
	// exact, with compact keys. Unigrams have the prefix noPrefix.
	const noPrefix = uint64(math.MaxUint32)
	grams := make(map[uint64]int32, bound/4)
	stamp := make([]int32, 0, bound/2) // per n-gram id: last sentence seen
	pos := make([]int32, 0, bound/2)   // per n-gram id: entry position in that sentence
	stampNo := int32(0)
	prev := make([]int32, 0, 64)
	cur := make([]int32, 0, 64)
	sentNo := 0

	addSentence := func() {
		tok := toks[tokOff[sentNo]:tokOff[sentNo+1]]
		sentNo++
		stampNo++
		var st cdSent
		start := len(c.ids)
		prev = prev[:0]
		for k := 1; k <= ciderN; k++ {
			st.off[k-1] = int32(len(c.ids))
			cur = cur[:0]
			for i := 0; i+k <= len(tok); i++ {
				key := noPrefix<<32 | uint64(tok[i])
				if k > 1 {
					key = uint64(prev[i])<<32 | uint64(tok[i+k-1])
				}
				id, ok := grams[key]
				if !ok {
					id = int32(len(grams))
					grams[key] = id
					stamp = append(stamp, 0)
					pos = append(pos, 0)
				}
				cur = append(cur, id)
				if stamp[id] == stampNo {
					c.tf[pos[id]]++
					continue
				}
				stamp[id], pos[id] = stampNo, int32(len(c.ids))
				c.ids = append(c.ids, id)
				c.tf = append(c.tf, 1)
			}
			prev, cur = cur, prev
		}
		st.off[ciderN] = int32(len(c.ids))
		for e := st.off[1]; e < st.off[2]; e++ {
			st.length += c.tf[e] // bigram occurrences, see cdSent.length
		}
		c.maxEntries = max(c.maxEntries, len(c.ids)-start)
		c.sents = append(c.sents, st)
	}

	var seen []int32 // per n-gram id: last sample whose references contained it
	for i := range cands {
		addSentence()
		hyp := len(c.sents) - 1
		for range refs[i] {
			addSentence()
		}
		// Document frequency set and candidate/reference matches.
		for len(seen) < len(grams) {
			seen = append(seen, -1)
		}
		h := c.sents[hyp]
		for ri := hyp + 1; ri < len(c.sents); ri++ {
			r := &c.sents[ri]
			delta := h.length - r.length
			r.penalty = math.Pow(math.E, -(delta*delta)/(2*ciderSigma*ciderSigma))
			stampNo++
			for e := r.off[0]; e < r.off[ciderN]; e++ {
				id := c.ids[e]
				stamp[id], pos[id] = stampNo, e
				if seen[id] != int32(i) {
					seen[id] = int32(i)
					c.dfIDs = append(c.dfIDs, id)
				}
			}
			for k := 0; k < ciderN; k++ {
				r.match[k] = int32(len(c.matchHyp))
				for e := h.off[k]; e < h.off[k+1]; e++ {
					if id := c.ids[e]; stamp[id] == stampNo {
						c.matchHyp = append(c.matchHyp, e)
						c.matchRef = append(c.matchRef, pos[id])
					}
				}
			}
			r.match[ciderN] = int32(len(c.matchHyp))
		}
		c.base = append(c.base, int32(len(c.sents)))
		c.dfOff = append(c.dfOff, int32(len(c.dfIDs)))
	}
	// Renumber: n-grams found in some reference get ids 1.. in order of
	// first appearance (memory locality of the document frequencies); those
	// found in candidates only share id 0, whose frequency is always 0.
	remap := make([]int32, len(grams))
	next := int32(1)
	for j, id := range c.dfIDs {
		if remap[id] == 0 {
			remap[id] = next
			next++
		}
		c.dfIDs[j] = remap[id]
	}
	for j, id := range c.ids {
		c.ids[j] = remap[id]
	}
	c.nGrams = int(next)
	return c
}

// logTable returns log(max(1, d)) for d = 0..n.
func logTable(n int) []float64 {
	t := make([]float64, n+1)
	for d := range t {
		t[d] = math.Log(math.Max(1, float64(d)))
	}
	return t
}

// cdScratch is per-goroutine memory of CIDEr-D evaluation.
type cdScratch struct {
	hyp, ref []float64
	df       []int32
}

func (c *cdCorpus) newScratch() *cdScratch {
	return &cdScratch{hyp: make([]float64, c.maxEntries), ref: make([]float64, c.maxEntries), df: make([]int32, c.nGrams)}
}

// vectorize fills v with the tf·idf weights of sentence s, tf·(L − log(max(1, df))),
// and returns the norms per order.
func (c *cdCorpus) vectorize(s *cdSent, v []float64, df []int32, logs []float64, refLen float64) (norm [ciderN]float64) {
	o := s.off[0]
	for k := 0; k < ciderN; k++ {
		sq := 0.0
		for e := s.off[k]; e < s.off[k+1]; e++ {
			x := c.tf[e] * (refLen - logs[df[c.ids[e]]])
			v[e-o] = x
			sq += x * x
		}
		norm[k] = math.Sqrt(sq)
	}
	return norm
}

// caption computes the CIDEr-D (×10) of sample i for document frequencies df
// (indexed by n-gram id), with the operations in the order of the Python
// reference.
func (c *cdCorpus) caption(i int, df []int32, logs []float64, refLen float64, sc *cdScratch) float64 {
	b, e := c.base[i], c.base[i+1]
	nrefs := int(e - b - 1)
	if nrefs == 0 {
		return 0
	}
	h := &c.sents[b]
	ho := h.off[0]
	hn := c.vectorize(h, sc.hyp, df, logs, refLen)
	var score [ciderN]float64
	for ri := b + 1; ri < e; ri++ {
		r := &c.sents[ri]
		ro := r.off[0]
		rn := c.vectorize(r, sc.ref, df, logs, refLen)
		penalty := r.penalty
		for k := 0; k < ciderN; k++ {
			val := 0.0
			for m := r.match[k]; m < r.match[k+1]; m++ {
				vh, vr := sc.hyp[c.matchHyp[m]-ho], sc.ref[c.matchRef[m]-ro]
				val += math.Min(vh, vr) * vr
			}
			if hn[k] != 0 && rn[k] != 0 {
				val /= hn[k] * rn[k]
			}
			score[k] += val * penalty
		}
	}
	avg := 0.0
	for _, s := range score {
		avg += s
	}
	avg /= ciderN
	avg /= float64(nrefs)
	return avg * 10
}

// fullDF returns the corpus document frequencies (every sample once).
func (c *cdCorpus) fullDF() []int32 {
	df := make([]int32, c.nGrams)
	for _, id := range c.dfIDs {
		df[id]++
	}
	return df
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
	c := newCDCorpus(cands, refs)
	per := c.perCaption(c.fullDF())
	return mean(per), per
}

// perCaption scores every caption with the given document frequencies.
func (c *cdCorpus) perCaption(df []int32) []float64 {
	logs := logTable(c.n)
	refLen := math.Log(float64(c.n))
	sc := c.newScratch()
	per := make([]float64, c.n)
	for i := range per {
		per[i] = c.caption(i, df, logs, refLen, sc)
	}
	return per
}

// newEval evaluates CIDEr-D on a bootstrap resample: the resampled corpus
// is the drawn samples, duplicates as distinct samples, so the document
// frequency of an n-gram is Σ w_i over the samples whose references hold
// it, N = Σ w_i = n, and each caption is scored with those frequencies.
func (c *cdCorpus) newEval() func(w []int32, out []float64) {
	logs := logTable(c.n)
	refLen := math.Log(float64(c.n))
	sc := c.newScratch()
	return func(w []int32, out []float64) {
		df := sc.df
		for i, m := range w {
			if m != 0 {
				for _, id := range c.dfIDs[c.dfOff[i]:c.dfOff[i+1]] {
					df[id] += m
				}
			}
		}
		sum := 0.0
		for i, m := range w {
			if m != 0 {
				sum += float64(m) * c.caption(i, df, logs, refLen, sc)
			}
		}
		for i, m := range w {
			if m != 0 {
				for _, id := range c.dfIDs[c.dfOff[i]:c.dfOff[i+1]] {
					df[id] = 0
				}
			}
		}
		cd := sum / float64(len(w))
		out[0], out[1] = cd, cd/10
	}
}

// CIDErDBootstrap computes CIDErD and a percentile-bootstrap interval of the
// corpus score: resamples bootstrap resamples (seed, ResampleCounts), the
// document frequencies recomputed on each (see docs/metrics.md), bounds by
// QuantileLinear. workers ≤ 0 means GOMAXPROCS.
func CIDErDBootstrap(cands []string, refs [][]string, resamples int, seed uint64, confidence float64, workers int) (corpus float64, perCaption []float64, iv Interval) {
	if len(cands) != len(refs) {
		panic("metrics.CIDErDBootstrap: cands and refs differ in length")
	}
	if len(cands) == 0 {
		return 0, nil, Interval{}
	}
	c := newCDCorpus(cands, refs)
	per := c.perCaption(c.fullDF())
	if resamples <= 0 {
		return mean(per), per, Interval{}
	}
	bs := &bootState{n: c.n, keys: []string{"cider_d", "cider"}, newEval: c.newEval}
	bs.run(Options{Bootstrap: resamples, Seed: seed, Workers: workers})
	return mean(per), per, bs.intervals(confidence)["cider_d"]
}

// captioningKeys are the captioning metrics, in bootstrap order.
var captioningKeys = []string{"cider_d", "cider"}

// scoreCaptioning scores captions with CIDEr-D, one reference per sample.
func scoreCaptioning(in []Input, opts Options) (Result, *bootState) {
	res := Result{
		TaskType: TaskCaptioning,
		Headline: HeadlineCIDEr,
		N:        len(in),
		Samples:  make([]Sample, 0, len(in)),
	}
	cands := make([]string, 0, len(in))
	refs := make([][]string, 0, len(in))
	for _, x := range in {
		s := newSample(x, opts)
		if x.Failed {
			res.Failed++
		} else if s.Cleaned == "" {
			res.Empty++
		}
		s.Prediction = s.Cleaned
		cands = append(cands, s.Cleaned)
		refs = append(refs, []string{x.Target})
		res.Samples = append(res.Samples, s)
	}
	c := newCDCorpus(cands, refs)
	per := c.perCaption(c.fullDF())
	corpus := mean(per)
	for i := range res.Samples {
		res.Samples[i].Scores["cider_d"] = per[i]
	}
	res.Metrics = map[string]float64{
		"cider_d": corpus,
		"cider":   corpus / 10,
	}
	SPICEUnavailable(&res, "SPICE was not run")
	return res, &bootState{n: len(in), keys: captioningKeys, newEval: c.newEval}
}
