package audio

import (
	"math"
	"sync"
)

// Resampler design. The kernel is a Kaiser-windowed sinc whose cut-off sits below the lower
// of the two Nyquist frequencies: the passband runs to resamplePass of it (flat within
// 0.01 dB), the stopband starts at the Nyquist frequency itself with resampleAtten dB of
// attenuation, so nothing above the new Nyquist folds back (and, upsampling, no image of
// the source appears above the old one).
const (
	resamplePass  = 0.90 // passband edge, as a fraction of the lower Nyquist frequency
	resampleAtten = 80.0 // stopband attenuation, dB
	// maxPhases bounds the polyphase table: a ratio whose reduced numerator is larger
	// (e.g. 44100→16001) uses this many phases, rounding each output instant to the nearest
	// 1/maxPhases of an input sample: a timing error of at most 1.2e-4 samples, an error
	// below -68 dB even at the Nyquist frequency.
	maxPhases = 4096
)

// Resample converts samples from one rate to another with a band-limited polyphase FIR
// (Kaiser-windowed sinc, see resamplePass and resampleAtten). The output has
// ceil(len·to/from) samples; output sample n is the input signal at time n/to; the input
// is taken as zero outside its span. Equal rates return a copy; invalid rates (≤ 0) return
// nil. Filters are cached per ratio, so converting many clips costs only the arithmetic.
func Resample(samples []float64, from, to int) []float64 {
	if from <= 0 || to <= 0 {
		return nil
	}
	if from == to {
		return append([]float64(nil), samples...)
	}
	g := gcd(from, to)
	up, down := to/g, from/g // output n is at input position n·down/up
	k := resampleKernel(from, to)
	n := (int64(len(samples))*int64(up) + int64(down) - 1) / int64(down)
	out := make([]float64, n)
	taps := k.taps
	half := taps / 2
	phases := k.phases
	for i := range out {
		pos := int64(i) * int64(down) // in 1/up input samples
		base := int(pos / int64(up))
		frac := int(pos % int64(up))
		p := frac
		if phases != up { // quantised phases
			p = int((int64(frac)*int64(phases) + int64(up)/2) / int64(up))
			if p == phases {
				p, base = 0, base+1
			}
		}
		w := k.table[p*taps : (p+1)*taps]
		start := base - half + 1 // w[j] weighs input start+j
		if start >= 0 && start+taps <= len(samples) {
			out[i] = dot(samples[start:start+taps], w)
			continue
		}
		var s float64
		for j, c := range w {
			if x := start + j; x >= 0 && x < len(samples) {
				s += samples[x] * c
			}
		}
		out[i] = s
	}
	return out
}

// dot returns the dot product of equal-length a and w.
func dot(a, w []float64) float64 {
	w = w[:len(a)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(a); j += 4 {
		s0 += a[j] * w[j]
		s1 += a[j+1] * w[j+1]
		s2 += a[j+2] * w[j+2]
		s3 += a[j+3] * w[j+3]
	}
	for ; j < len(a); j++ {
		s0 += a[j] * w[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// kernel is a polyphase filter table: phases rows of taps weights; row p holds the weights
// of inputs base-taps/2+1 … base+taps/2 for an output at input position base + p/phases.
type kernel struct {
	phases, taps int
	table        []float64
}

var kernels sync.Map // [2]int{from, to} → *kernel

func resampleKernel(from, to int) *kernel {
	key := [2]int{from, to}
	if k, ok := kernels.Load(key); ok {
		return k.(*kernel)
	}
	k := newKernel(from, to)
	kernels.Store(key, k)
	return k
}

func newKernel(from, to int) *kernel {
	g := gcd(from, to)
	up := to / g
	phases := min(up, maxPhases)
	// Frequencies in cycles per input sample.
	nyq := 0.5 * float64(min(from, to)) / float64(from)
	pass, stop := resamplePass*nyq, nyq
	cut := 0.5 * (pass + stop)
	width := stop - pass
	// Kaiser's formulas: length for the attenuation and transition width, and beta.
	length := (resampleAtten - 7.95) / (2.285 * 2 * math.Pi * width) // in input samples
	taps := 2 * int(math.Ceil(length/2)+1)
	beta := 0.1102 * (resampleAtten - 8.7)
	halfSpan := float64(taps / 2)
	i0beta := besselI0(beta)
	table := make([]float64, phases*taps)
	for p := range phases {
		frac := float64(p) / float64(phases)
		row := table[p*taps : (p+1)*taps]
		var sum float64
		for j := range row {
			t := frac + float64(taps/2-1-j) // output instant minus input instant
			r := t / halfSpan
			if r <= -1 || r >= 1 {
				continue
			}
			w := besselI0(beta*math.Sqrt(1-r*r)) / i0beta
			row[j] = 2 * cut * sinc(2*cut*t) * w
			sum += row[j]
		}
		// Unit gain at DC for every phase: no ripple at the output rate.
		for j := range row {
			row[j] /= sum
		}
	}
	return &kernel{phases: phases, taps: taps, table: table}
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0 (power series).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
