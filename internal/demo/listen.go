package demo

import (
	"math"
	"math/cmplx"
	"slices"
	"strings"
)

// Listening parameters.
const (
	frameSeconds = 0.02  // frames are the next power of two at least this long
	dominance    = 0.5   // a species' band must hold this share of a frame's energy
	mergeGap     = 0.12  // s: runs of one species closer than this are one call
	minCall      = 0.08  // s: shorter runs are ignored
	silenceRMS   = 0.001 // frames quieter than this hold no call
)

// event is a call heard in the audio: species and first frame.
type event struct {
	species     int
	first, last int // frame indexes
}

// Answer is what the dummy launcher's "tone" mode answers. It listens to samples (at rate
// Hz): short Hann-windowed frames, an FFT each, and a frame belongs to a species when that
// species' band holds most of the frame's energy; runs of such frames are calls. It picks the
// task from the instruction text ("caption" → captioning; "names" or "if any" → detection;
// anything else → classification) and answers in that task's format:
//   - classification: the species heard most, or "unknown";
//   - detection: the species heard, in vocabulary order, joined by ", ", or "None";
//   - captioning: the sentence the generator writes for the calls heard, or "unknown".
func Answer(instruction string, samples []float64, rate int) string {
	events := listen(samples, rate)
	low := strings.ToLower(instruction)
	switch {
	case strings.Contains(low, "caption"):
		if len(events) == 0 {
			return unknownAnswer
		}
		seq := make([]int, len(events))
		for i, e := range events {
			seq[i] = e.species
		}
		return caption(bouts(seq))
	case strings.Contains(low, "names") || strings.Contains(low, "if any"):
		seq := make([]int, len(events))
		for i, e := range events {
			seq[i] = e.species
		}
		return detectionAnswer(seq)
	default:
		var frames [6]int
		best := -1
		for _, e := range events {
			frames[e.species] += e.last - e.first + 1
			if best < 0 || frames[e.species] > frames[best] {
				best = e.species
			}
		}
		if best < 0 {
			return unknownAnswer
		}
		return Species[best]
	}
}

// listen finds the demo calls in samples, in time order.
func listen(samples []float64, rate int) []event {
	if rate <= 0 {
		return nil
	}
	n := 4
	for float64(n) < frameSeconds*float64(rate) {
		n *= 2
	}
	hop := n / 2
	if len(samples) < n {
		return nil
	}
	hopSec := float64(hop) / float64(rate)

	// Band bins per species.
	type span struct{ lo, hi int }
	var bands [6]span
	for s, c := range callSpecs {
		bands[s] = span{int(math.Ceil(c.lo * float64(n) / float64(rate))), int(c.hi * float64(n) / float64(rate))}
		bands[s].hi = min(bands[s].hi, n/2)
	}
	window := make([]float64, n)
	for i := range window {
		window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
	}
	fft := newFFT(n)
	buf := make([]complex128, n)
	power := make([]float64, n/2+1)

	nframes := (len(samples)-n)/hop + 1
	label := make([]int8, nframes) // species per frame, -1 for none
	for f := range nframes {
		label[f] = -1
		x := samples[f*hop : f*hop+n]
		var energy float64
		for i, v := range x {
			energy += v * v
			buf[i] = complex(v*window[i], 0)
		}
		if energy/float64(n) < silenceRMS*silenceRMS {
			continue
		}
		fft.transform(buf)
		var total float64
		for k := 1; k <= n/2; k++ {
			p := real(buf[k])*real(buf[k]) + imag(buf[k])*imag(buf[k])
			power[k] = p
			total += p
		}
		for s, b := range bands {
			var e float64
			for k := b.lo; k <= b.hi; k++ {
				e += power[k]
			}
			if e > dominance*total {
				label[f] = int8(s)
				break
			}
		}
	}

	// Runs of frames per species, with short gaps bridged, in time order.
	maxGap := int(mergeGap / hopSec)
	minFrames := int(math.Ceil(minCall / hopSec))
	var events []event
	for s := range callSpecs {
		cur := event{species: s, first: -1}
		flush := func() {
			if cur.first >= 0 && cur.last-cur.first+1 >= minFrames {
				events = append(events, cur)
			}
			cur.first = -1
		}
		for f, l := range label {
			if int(l) != s {
				continue
			}
			if cur.first >= 0 && f-cur.last-1 > maxGap {
				flush()
			}
			if cur.first < 0 {
				cur.first = f
			}
			cur.last = f
		}
		flush()
	}
	slices.SortFunc(events, func(a, b event) int { return a.first - b.first })
	return events
}

// fft is an iterative radix-2 FFT of a fixed power-of-two size.
type fft struct {
	n       int
	twiddle []complex128
	rev     []int
}

func newFFT(n int) *fft {
	f := &fft{n: n, twiddle: make([]complex128, n/2), rev: make([]int, n)}
	for k := range f.twiddle {
		f.twiddle[k] = cmplx.Rect(1, -2*math.Pi*float64(k)/float64(n))
	}
	bits := 0
	for 1<<bits < n {
		bits++
	}
	for i := range f.rev {
		r := 0
		for b := range bits {
			if i&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		f.rev[i] = r
	}
	return f
}

// transform computes the DFT of x in place.
func (f *fft) transform(x []complex128) {
	for i, r := range f.rev {
		if i < r {
			x[i], x[r] = x[r], x[i]
		}
	}
	for size := 2; size <= f.n; size *= 2 {
		half, step := size/2, f.n/size
		for start := 0; start < f.n; start += size {
			for k := range half {
				t := f.twiddle[k*step] * x[start+k+half]
				x[start+k+half] = x[start+k] - t
				x[start+k] += t
			}
		}
	}
}
