package audio

import (
	"fmt"
	"math"
	"testing"
)

// tone returns seconds of a sine of freq Hz and amplitude amp at rate.
func tone(rate int, seconds, freq, amp float64) []float64 {
	x := make([]float64, int(seconds*float64(rate)))
	for i := range x {
		x[i] = amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
	}
	return x
}

// goertzel returns the amplitude of the component at freq Hz in x (sampled at rate); exact
// for a sine when x spans a whole number of its periods.
func goertzel(x []float64, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	re := s1 - s2*math.Cos(w)
	im := s2 * math.Sin(w)
	return 2 * math.Hypot(re, im) / float64(len(x))
}

func rms(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

func dB(ratio float64) float64 { return 20 * math.Log10(ratio) }

// middle returns the second second of a 3-second signal at rate: clear of edge effects, and
// a whole number of periods of every integer frequency.
func middle(x []float64, rate int) []float64 { return x[rate : 2*rate] }

func TestResampleTone(t *testing.T) {
	pairs := [][2]int{{44100, 16000}, {48000, 16000}, {22050, 16000}, {9600, 16000}, {32000, 16000}, {16000, 8000}, {16000, 44100}, {8000, 16000}, {44100, 16001}}
	for _, p := range pairs {
		from, to := p[0], p[1]
		nyq := 0.5 * float64(min(from, to))
		for _, freq := range []float64{440, 1000, math.Round(0.5 * nyq), math.Round(0.8 * nyq)} {
			t.Run(fmt.Sprintf("%d→%d %gHz", from, to, freq), func(t *testing.T) {
				const amp = 0.5
				in := tone(from, 3, freq, amp)
				out := Resample(in, from, to)
				if want := (len(in)*to + from - 1) / from; len(out) != want {
					t.Fatalf("%d samples out, want %d", len(out), want)
				}
				if to == 16001 { // 1 s is not a whole number of periods: check the level only
					if lvl := dB(rms(out[to:2*to]) * math.Sqrt2 / amp); math.Abs(lvl) > 0.5 {
						t.Errorf("level %+.3f dB", lvl)
					}
					return
				}
				seg := middle(out, to)
				a := goertzel(seg, freq, to)
				if lvl := dB(a / amp); math.Abs(lvl) > 0.5 {
					t.Errorf("tone level %+.3f dB, want within 0.5 dB", lvl)
				}
				// The frequency is kept: all the energy is in that one component.
				if r := rms(seg); dB(r*math.Sqrt2/a) > 0.01 {
					t.Errorf("only %.4f of the energy at %g Hz: the tone moved or spread", a/(r*math.Sqrt2), freq)
				}
				for _, off := range []float64{-2, -1, 1, 2} {
					if n := goertzel(seg, freq+off, to); n > 1e-3*amp {
						t.Errorf("%g Hz: amplitude %.2g, want none", freq+off, n)
					}
				}
			})
		}
	}
}

// TestResampleStopband checks that content above the new Nyquist frequency (downsampling)
// is removed rather than folded back, and that upsampling adds no images above the old one.
func TestResampleStopband(t *testing.T) {
	tests := []struct {
		from, to int
		freq     float64 // input tone
		alias    float64 // where it would land if not filtered
	}{
		{44100, 16000, 8200, 7800},
		{44100, 16000, 9000, 7000},
		{44100, 16000, 15000, 1000},
		{48000, 16000, 8100, 7900},
		{48000, 16000, 12000, 4000},
		{22050, 16000, 10000, 6000},
		{22050, 16000, 8050, 7950},
		{32000, 16000, 9000, 7000},
		{9600, 16000, 4000, 5600},  // image at 9600-4000
		{9600, 16000, 4700, 4900},  // image at 9600-4700
		{16000, 44100, 7000, 9000}, // image at 16000-7000
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d→%d %gHz", tt.from, tt.to, tt.freq), func(t *testing.T) {
			const amp = 0.5
			out := Resample(tone(tt.from, 3, tt.freq, amp), tt.from, tt.to)
			seg := middle(out, tt.to)
			a := goertzel(seg, tt.alias, tt.to)
			t.Logf("alias %.1f dB, output %.1f dB", dB(a/amp), dB(rms(seg)*math.Sqrt2/amp))
			if dB(a/amp) > -40 {
				t.Errorf("alias at %g Hz: %.1f dB, want ≤ -40 dB", tt.alias, dB(a/amp))
			}
			if tt.to < tt.from {
				if r := rms(seg) * math.Sqrt2; dB(r/amp) > -40 {
					t.Errorf("output level %.1f dB, want ≤ -40 dB", dB(r/amp))
				}
			}
		})
	}
}

func TestResampleEdges(t *testing.T) {
	if Resample([]float64{1}, 0, 16000) != nil || Resample([]float64{1}, 16000, -1) != nil {
		t.Error("invalid rates accepted")
	}
	in := []float64{0.1, 0.2}
	out := Resample(in, 16000, 16000)
	out[0] = 9
	if in[0] != 0.1 || len(out) != 2 {
		t.Error("equal rates do not return a copy")
	}
	if out := Resample(nil, 44100, 16000); len(out) != 0 {
		t.Errorf("empty input: %d samples", len(out))
	}
	for _, n := range []int{1, 2, 3, 440, 441} {
		if got, want := len(Resample(make([]float64, n), 44100, 16000)), (n*160+440)/441; got != want {
			t.Errorf("%d samples → %d, want %d", n, got, want)
		}
	}
	// DC passes at unit gain away from the edges.
	dc := make([]float64, 22050)
	for i := range dc {
		dc[i] = 0.3
	}
	out = Resample(dc, 22050, 16000)
	for i := 2000; i < len(out)-2000; i++ {
		if math.Abs(out[i]-0.3) > 1e-6 {
			t.Fatalf("DC sample %d: %v", i, out[i])
		}
	}
}

func BenchmarkResample10s(b *testing.B) {
	for _, p := range [][2]int{{44100, 16000}, {48000, 16000}, {22050, 16000}, {9600, 16000}, {32000, 16000}} {
		b.Run(fmt.Sprintf("%d-%d", p[0], p[1]), func(b *testing.B) {
			in := tone(p[0], 10, 1000, 0.5)
			Resample(in[:100], p[0], p[1]) // build the filter
			b.SetBytes(int64(8 * len(in)))
			for b.Loop() {
				Resample(in, p[0], p[1])
			}
		})
	}
}
