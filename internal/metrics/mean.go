package metrics

// MeanWithInterval returns the mean of values and, unless opts.Bootstrap < 0 or values is
// empty, its percentile-bootstrap interval computed like every other metric's (the same
// resamples for the same seed and n). opts' zero fields take the defaults.
func MeanWithInterval(values []float64, opts Options) (float64, *Interval, *BootstrapInfo) {
	n := len(values)
	if n == 0 {
		return 0, nil, nil
	}
	if opts.Bootstrap == 0 {
		opts.Bootstrap = DefaultBootstrap
	}
	if opts.Confidence == 0 {
		opts.Confidence = DefaultConfidence
	}
	m := mean(values)
	if opts.Bootstrap < 0 {
		return m, nil, nil
	}
	bs := &bootState{n: n, keys: []string{"mean"}, newEval: func() func(w []int32, out []float64) {
		return func(w []int32, out []float64) {
			s := 0.0
			for i, k := range w {
				s += float64(k) * values[i]
			}
			out[0] = s / float64(n)
		}
	}}
	bs.run(opts)
	iv := bs.intervals(opts.Confidence)["mean"]
	return m, &iv, &BootstrapInfo{Method: "percentile", Resamples: opts.Bootstrap, Seed: opts.Seed,
		Confidence: opts.Confidence, Quantile: "numpy-linear"}
}
