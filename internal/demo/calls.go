package demo

import (
	"fmt"
	"math"
	"strings"
)

// callSpec describes one species' call: its duration, the frequency band it lives in (bands
// do not overlap and all lie below 4 kHz, so any rate from 8 kHz up carries them) and how to
// synthesise it.
type callSpec struct {
	dur    float64 // seconds
	lo, hi float64 // Hz: the band a listener watches
	// freq is the instantaneous frequency (Hz) at time t seconds into the call.
	freq func(t float64) float64
	// env is the amplitude envelope (0..1) at time t, before the call's attack and release.
	env func(t float64) float64
}

func steady(float64) float64 { return 1 }

// callSpecs are indexed like Species.
var callSpecs = [6]callSpec{
	// Azure Whistler: a clean whistle rising from 2.3 to 2.5 kHz.
	{dur: 0.40, lo: 2150, hi: 2650, freq: func(t float64) float64 { return 2300 + 500*t }, env: steady},
	// Copper Trill: a 1.8 kHz tone pulsed 40 times a second.
	{dur: 0.35, lo: 1600, hi: 2000, freq: func(float64) float64 { return 1800 },
		env: func(t float64) float64 { s := math.Sin(math.Pi * 40 * t); return s * s }},
	// Dusky Chirper: a fast upward chirp, 0.95 to 1.35 kHz.
	{dur: 0.30, lo: 850, hi: 1450, freq: func(t float64) float64 { return 950 + 400*t/0.30 }, env: steady},
	// Ember Warbler: a warble alternating between 3.0 and 3.2 kHz every 50 ms.
	{dur: 0.40, lo: 2850, hi: 3350, freq: func(t float64) float64 {
		if int(t/0.05)%2 == 0 {
			return 3000
		}
		return 3200
	}, env: steady},
	// Frost Piper: three high 3.7 kHz pips of 70 ms.
	{dur: 0.30, lo: 3500, hi: 3900, freq: func(float64) float64 { return 3700 },
		env: func(t float64) float64 {
			p := math.Mod(t, 0.115)
			if p > 0.07 {
				return 0
			}
			return math.Sin(math.Pi * p / 0.07)
		}},
	// Golden Buzzer: a low 550 Hz buzz, amplitude-modulated at 60 Hz.
	{dur: 0.40, lo: 400, hi: 700, freq: func(float64) float64 { return 550 },
		env: func(t float64) float64 { return 0.6 + 0.4*math.Cos(2*math.Pi*60*t) }},
}

// synth adds one call at start seconds with peak amplitude amp to out (at rate Hz), with
// 10 ms raised-cosine attack and release.
func (c callSpec) synth(out []float64, rate int, start, amp float64) {
	const ramp = 0.010
	first := int(math.Round(start * float64(rate)))
	n := int(c.dur * float64(rate))
	phase := 0.0
	for i := range n {
		j := first + i
		if j < 0 || j >= len(out) {
			continue
		}
		t := float64(i) / float64(rate)
		g := c.env(t)
		if t < ramp {
			g *= 0.5 - 0.5*math.Cos(math.Pi*t/ramp)
		} else if rem := c.dur - t; rem < ramp {
			g *= 0.5 - 0.5*math.Cos(math.Pi*rem/ramp)
		}
		out[j] += amp * g * math.Sin(phase)
		phase += 2 * math.Pi * c.freq(t) / float64(rate)
		if phase > 2*math.Pi {
			phase -= 2 * math.Pi
		}
	}
}

// bout is a run of consecutive calls by one species.
type bout struct {
	species int
	count   int
}

// bouts groups a calling sequence into bouts.
func bouts(seq []int) []bout {
	var bs []bout
	for _, s := range seq {
		if len(bs) > 0 && bs[len(bs)-1].species == s {
			bs[len(bs)-1].count++
			continue
		}
		bs = append(bs, bout{species: s, count: 1})
	}
	return bs
}

var numberWords = []string{"No", "One", "Two", "Three", "Four"}

// times says how often: "once", "twice", "three times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	case 3:
		return "three times"
	case 4:
		return "four times"
	}
	return fmt.Sprintf("%d times", n)
}

// a is the indefinite article for a species name, lower case.
func a(s int) string {
	if strings.ContainsRune("AEIOU", rune(Species[s][0])) {
		return "an " + Species[s]
	}
	return "a " + Species[s]
}

// upper capitalises the first letter.
func upper(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// caption describes a sequence of bouts in one sentence. The wording varies with the content
// (species and counts), deterministically, so the same content always reads the same.
func caption(bs []bout) string {
	switch len(bs) {
	case 0:
		return unknownAnswer
	case 1:
		s, c := bs[0].species, bs[0].count
		switch (s + c) % 3 {
		case 0:
			return fmt.Sprintf("%s calls %s.", upper(a(s)), times(c))
		case 1:
			return fmt.Sprintf("%s is heard calling %s.", upper(a(s)), times(c))
		default:
			if c == 1 {
				return fmt.Sprintf("A single %s call is heard.", Species[s])
			}
			return fmt.Sprintf("%s %s calls are heard.", numberWords[min(c, 4)], Species[s])
		}
	case 2:
		s1, c1, s2, c2 := bs[0].species, bs[0].count, bs[1].species, bs[1].count
		switch (2*s1 + s2 + c1 + c2) % 3 {
		case 0:
			answer := "answers"
			if c2 > 1 {
				answer += " " + times(c2)
			}
			return fmt.Sprintf("%s calls %s, then %s %s.", upper(a(s1)), times(c1), a(s2), answer)
		case 1:
			return fmt.Sprintf("%s calls %s before %s calls %s.", upper(a(s1)), times(c1), a(s2), times(c2))
		default:
			return fmt.Sprintf("First %s calls %s, followed by %s calling %s.", a(s1), times(c1), a(s2), times(c2))
		}
	}
	// Three or more bouts.
	var parts []string
	seen := map[int]bool{}
	for i, b := range bs {
		who := a(b.species)
		if seen[b.species] {
			who = "the " + Species[b.species]
		}
		verb := "calls"
		if i > 0 && (bs[0].species+i)%2 == 1 {
			verb = "replies"
		}
		again := ""
		if seen[b.species] {
			again = " again"
		}
		p := fmt.Sprintf("%s %s%s", who, verb, again)
		if b.count > 1 || !seen[b.species] {
			p += " " + times(b.count)
		}
		parts = append(parts, p)
		seen[b.species] = true
	}
	last := len(parts) - 1
	lead := upper(parts[0])
	if bs[0].species%2 == 1 {
		lead = "In turn, " + parts[0]
	}
	return fmt.Sprintf("%s, %s, and then %s.", lead, strings.Join(parts[1:last], ", "), parts[last])
}
