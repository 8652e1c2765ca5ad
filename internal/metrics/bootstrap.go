package metrics

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// bootState evaluates a task's metrics on bootstrap resamples. A resample is
// given as multiplicities w (w[i] = how many times sample i was drawn,
// Σw = n); eval computes every metric of keys on the resampled data set, as
// if the drawn samples were the data set (duplicates as distinct samples).
type bootState struct {
	n    int
	keys []string
	// newEval returns an evaluator with its own scratch memory (one per goroutine).
	newEval func() func(w []int32, out []float64)

	resamples int
	seed      uint64
	reps      [][]float64 // reps[k][b]: metric keys[k] on resample b
}

// run evaluates opts.Bootstrap resamples on up to opts.Workers goroutines.
// Resample b depends only on (Seed, b, n), so results do not depend on the
// number of workers.
func (bs *bootState) run(opts Options) {
	B := opts.Bootstrap
	bs.resamples, bs.seed = B, opts.Seed
	bs.reps = make([][]float64, len(bs.keys))
	for k := range bs.reps {
		bs.reps[k] = make([]float64, B)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, B)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eval := bs.newEval()
			w := make([]int32, bs.n)
			out := make([]float64, len(bs.keys))
			for {
				b := int(next.Add(1) - 1)
				if b >= B {
					return
				}
				ResampleCounts(w, bs.seed, uint64(b))
				eval(w, out)
				for k := range out {
					bs.reps[k][b] = out[k]
				}
			}
		}()
	}
	wg.Wait()
}

// intervals returns the percentile intervals of every metric.
func (bs *bootState) intervals(confidence float64) map[string]Interval {
	if bs.reps == nil {
		return nil
	}
	lo, hi := PercentileBounds(confidence)
	m := make(map[string]Interval, len(bs.keys))
	for k, key := range bs.keys {
		s := slices.Clone(bs.reps[k])
		slices.Sort(s)
		m[key] = Interval{Low: QuantileLinear(s, lo), High: QuantileLinear(s, hi)}
	}
	return m
}

// replicates returns the bootstrap values of one metric, nil if absent.
func (bs *bootState) replicates(key string) []float64 {
	if bs == nil {
		return nil
	}
	for k, kk := range bs.keys {
		if kk == key && bs.reps != nil {
			return bs.reps[k]
		}
	}
	return nil
}

// ResampleCounts fills w with the multiplicities of one bootstrap resample
// of len(w) samples: len(w) indexes drawn uniformly with replacement by a
// PCG generator seeded with (seed, b) (math/rand/v2 NewPCG), each mapped to
// [0, n) by Lemire's unbiased multiply-and-reject method.
func ResampleCounts(w []int32, seed, b uint64) {
	clear(w)
	n := uint64(len(w))
	if n == 0 {
		return
	}
	p := rand.NewPCG(seed, b)
	thresh := -n % n
	for range n {
		hi, lo := bits.Mul64(p.Uint64(), n)
		for lo < thresh {
			hi, lo = bits.Mul64(p.Uint64(), n)
		}
		w[hi]++
	}
}

// PercentileBounds returns the lower and upper quantile probabilities of a
// two-sided percentile interval with the given coverage, as NumPy users
// write them: np.percentile(reps, [2.5, 97.5]) / 100 for 0.95. The
// percentages are rounded to 10 decimals first so that 0.95 gives exactly
// 0.025 and 0.975.
func PercentileBounds(confidence float64) (lo, hi float64) {
	pl := math.Round((1-confidence)/2*100*1e10) / 1e10
	return pl / 100, (100 - pl) / 100
}

// QuantileLinear is NumPy's default quantile (method "linear",
// Hyndman-Fan type 7) of an ascending slice at probability p in [0, 1]: the
// virtual index h = (n−1)·p, g = h − ⌊h⌋, and the value interpolates between
// x[⌊h⌋] and x[⌊h⌋+1] as NumPy's _lerp does (a + (b−a)·g for g < 0.5,
// b − (b−a)·(1−g) otherwise). NaN for an empty slice.
func QuantileLinear(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := float64(n-1) * p
	fl := math.Floor(h)
	if h >= float64(n-1) {
		return sorted[n-1]
	}
	if h <= 0 {
		return sorted[0]
	}
	i := int(fl)
	g := h - fl
	a, b := sorted[i], sorted[i+1]
	d := b - a
	if g >= 0.5 {
		return b - d*(1-g)
	}
	return a + d*g
}

// SPICEUnavailable records why SPICE (and so SPIDEr) is missing from a
// captioning result.
func SPICEUnavailable(res *Result, why string) {
	if res.Unavailable == nil {
		res.Unavailable = map[string]string{}
	}
	res.Unavailable["spice"] = why
	res.Unavailable["spider"] = "needs SPICE: " + why
}

// AddSPICE adds SPICE and SPIDEr to a captioning result returned by Score
// or ScoreWith (in this process: the bootstrap state is not serialised).
// spice[i] is the SPICE F-score of sample i (pycocoevalcap: the "All" "f"
// of the item). It sets metrics "spice" (the mean over samples, as
// pycocoevalcap) and "spider" = (cider_d + spice) / 2, the per-sample
// "spice" score, and, when the result has intervals, their bootstrap
// intervals over the same resamples (SPIDEr recomputes CIDEr-D's document
// frequencies on each resample as cider_d does).
func AddSPICE(res *Result, spice []float64) error {
	if res.TaskType != TaskCaptioning {
		return fmt.Errorf("AddSPICE: task type %q, want %q", res.TaskType, TaskCaptioning)
	}
	if len(spice) != res.N || len(res.Samples) != res.N {
		return fmt.Errorf("AddSPICE: %d SPICE scores for %d samples", len(spice), res.N)
	}
	for i, s := range spice {
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > 1 {
			return fmt.Errorf("AddSPICE: sample %d: SPICE %v outside [0, 1]", i, s)
		}
	}
	m := mean(spice)
	res.Metrics["spice"] = m
	res.Metrics["spider"] = (res.Metrics["cider_d"] + m) / 2
	for i := range res.Samples {
		res.Samples[i].Scores["spice"] = spice[i]
	}
	delete(res.Unavailable, "spice")
	delete(res.Unavailable, "spider")
	if len(res.Unavailable) == 0 {
		res.Unavailable = nil
	}
	cider := res.boot.replicates("cider_d")
	if res.Intervals == nil || cider == nil {
		return nil
	}
	bs := res.boot
	sp := make([]float64, bs.resamples)
	spider := make([]float64, bs.resamples)
	w := make([]int32, bs.n)
	for b := range bs.resamples {
		ResampleCounts(w, bs.seed, uint64(b))
		s := 0.0
		for i, c := range w {
			if c != 0 {
				s += float64(c) * spice[i]
			}
		}
		sp[b] = s / float64(bs.n)
		spider[b] = (cider[b] + sp[b]) / 2
	}
	lo, hi := PercentileBounds(res.Bootstrap.Confidence)
	for key, reps := range map[string][]float64{"spice": sp, "spider": spider} {
		slices.Sort(reps)
		res.Intervals[key] = Interval{Low: QuantileLinear(reps, lo), High: QuantileLinear(reps, hi)}
	}
	return nil
}
