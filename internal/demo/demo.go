// Package demo generates the embedded demo benchmark: a small synthetic bioacoustics test set
// in the BEANS-Zero schema, with six invented species whose calls are pure tone patterns. It
// is generated on demand, deterministically (fixed seeds, no dependence on the machine or the
// Go version's random generators), so a run on a laptop and on a cluster see the same rows.
//
// Answer is the matching "listener": it recognises the demo calls in audio and answers in the
// format the instruction asks for, which is what the dummy launcher's tone mode serves. On
// every demo row it reproduces the row's output exactly, so a run against it scores 1.0.
package demo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Version names the generation procedure. Bump it whenever generated rows change: it is part
// of cache paths, so stale copies are never reused.
const Version = "demo-v1"

// Species are the six demo species, in vocabulary order.
var Species = []string{"Azure Whistler", "Copper Trill", "Dusky Chirper", "Ember Warbler", "Frost Piper", "Golden Buzzer"}

// The demo tasks' dataset_name values.
const (
	DatasetSpecies    = "demo-species"
	DatasetDetection  = "demo-detection"
	DatasetCaptioning = "demo-captioning"
)

// Task types, as in the `task` column.
const (
	taskClassification = "classification"
	taskDetection      = "detection"
	taskCaptioning     = "captioning"
)

// The demo instructions; the instruction_text column is the same without the placeholder.
const (
	Placeholder              = "<Audio><AudioHere></Audio>"
	InstructionSpecies       = Placeholder + " What is the common name for the focal species in the audio? Answer:"
	InstructionDetection     = Placeholder + " What are the common names for the species in the audio, if any?"
	InstructionCaptioning    = Placeholder + " Caption the audio."
	sourceDataset            = "beans-slurm-demo"
	license                  = "CC0-1.0"
	createdAt                = "2025-01-01T00:00:00Z"
	noneAnswer               = "None"
	unknownAnswer            = "unknown"
	speciesRows, speciesRate = 60, 16000
	detectionRows, detRate   = 48, 22050
	captionRows, captionRate = 36, 32000
)

// Row is one demo row, with the BEANS-Zero columns. Audio holds the waveform in [-1,1] at
// SampleRate; Metadata is a JSON object with "sample_rate" and "duration".
type Row struct {
	ID, DatasetName, Task, Instruction, InstructionText, Output string
	SourceDataset, FileName, License, CreatedAt                 string
	Audio                                                       []float64
	SampleRate                                                  int
	Metadata                                                    string
}

// call is one call of one species, starting at a time in seconds.
type call struct {
	species int
	start   float64
}

// Rows calls fn for every row of the demo benchmark in a fixed order: the classification
// rows, then detection, then captioning. Each row's Audio is freshly allocated. Generation is
// deterministic. The first error returned by fn stops it and is returned.
func Rows(fn func(Row) error) error {
	// Classification: each species ten times, in a shuffled order.
	order := make([]int, speciesRows)
	for i := range order {
		order[i] = i % len(Species)
	}
	shuffle(newRNG(DatasetSpecies, -1), order)
	for i, s := range order {
		r := newRNG(DatasetSpecies, i)
		dur := callSpecs[s].dur
		start := 0.1 + r.float()*(2.0-0.2-dur)
		calls := []call{{s, start}}
		if err := fn(makeRow(DatasetSpecies, taskClassification, InstructionSpecies, i, speciesRate, 2, calls, Species[s])); err != nil {
			return err
		}
	}

	// Detection: 0 to 3 distinct species per clip, at different times.
	counts := make([]int, 0, detectionRows)
	for k, n := range []int{8, 14, 14, 12} {
		for range n {
			counts = append(counts, k)
		}
	}
	shuffle(newRNG(DatasetDetection, -1), counts)
	for i, k := range counts {
		r := newRNG(DatasetDetection, i)
		perm := []int{0, 1, 2, 3, 4, 5}
		shuffle(r, perm)
		seq := perm[:k] // distinct species, in calling order
		calls := layout(r, seq, 3)
		if err := fn(makeRow(DatasetDetection, taskDetection, InstructionDetection, i, detRate, 3, calls, detectionAnswer(seq))); err != nil {
			return err
		}
	}

	// Captioning: 1 to 3 bouts of calls, at most four calls in all.
	for i := range captionRows {
		r := newRNG(DatasetCaptioning, i)
		bs := captionContent(r, i)
		var seq []int
		for _, b := range bs {
			for range b.count {
				seq = append(seq, b.species)
			}
		}
		calls := layout(r, seq, 3)
		if err := fn(makeRow(DatasetCaptioning, taskCaptioning, InstructionCaptioning, i, captionRate, 3, calls, caption(bs))); err != nil {
			return err
		}
	}
	return nil
}

// captionContent draws the bouts of captioning row i: row i%3 decides how many bouts.
func captionContent(r *rng, i int) []bout {
	nb := 1 + i%3
	bs := make([]bout, nb)
	for j := range bs {
		for {
			s := r.intn(len(Species))
			if j > 0 && s == bs[j-1].species {
				continue
			}
			bs[j] = bout{species: s, count: 1}
			break
		}
	}
	switch nb {
	case 1:
		bs[0].count = 1 + r.intn(3)
	case 2:
		bs[0].count = 1 + r.intn(2)
		bs[1].count = 1 + r.intn(2)
	case 3:
		if j := r.intn(4); j < 3 {
			bs[j].count = 2
		}
	}
	return bs
}

// layout places the calls of seq (species, in order) in a clip of dur seconds: at least
// 0.3 s apart and 0.05 s from the edges, the slack spread at random.
func layout(r *rng, seq []int, dur float64) []call {
	if len(seq) == 0 {
		return nil
	}
	const edge, minGap = 0.05, 0.3
	busy := 2*edge + minGap*float64(len(seq)-1)
	for _, s := range seq {
		busy += callSpecs[s].dur
	}
	slack := dur - busy
	weights := make([]float64, len(seq)+1)
	var sum float64
	for i := range weights {
		weights[i] = 0.2 + r.float()
		sum += weights[i]
	}
	calls := make([]call, len(seq))
	t := edge
	for i, s := range seq {
		t += slack * weights[i] / sum
		calls[i] = call{s, t}
		t += callSpecs[s].dur + minGap
	}
	return calls
}

// detectionAnswer is the detection output for a set of species: names in vocabulary order,
// joined by ", ", or "None".
func detectionAnswer(species []int) string {
	var present [6]bool
	for _, s := range species {
		present[s] = true
	}
	var names []string
	for s, ok := range present {
		if ok {
			names = append(names, Species[s])
		}
	}
	if len(names) == 0 {
		return noneAnswer
	}
	return strings.Join(names, ", ")
}

// makeRow renders the audio of calls and fills a Row.
func makeRow(dataset, task, instruction string, i, rate int, dur float64, calls []call, output string) Row {
	meta, _ := json.Marshal(struct {
		SampleRate int     `json:"sample_rate"`
		Duration   float64 `json:"duration"`
	}{rate, dur})
	return Row{
		ID:              rowID(dataset, i),
		DatasetName:     dataset,
		Task:            task,
		Instruction:     instruction,
		InstructionText: strings.TrimSpace(strings.Replace(instruction, Placeholder, "", 1)),
		Output:          output,
		SourceDataset:   sourceDataset,
		FileName:        fmt.Sprintf("%s/%s-%03d.wav", dataset, dataset, i),
		License:         license,
		CreatedAt:       createdAt,
		Audio:           render(newRNG(dataset+"/audio", i), rate, dur, calls),
		SampleRate:      rate,
		Metadata:        string(meta),
	}
}

// rowID is a UUID-shaped id (version 5 layout) derived from the dataset and row index.
func rowID(dataset string, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "beans-slurm/%s/%s/%d", Version, dataset, i))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// rng is splitmix64: tiny, and fixed forever (unlike library generators it cannot change
// under us).
type rng struct{ state uint64 }

// newRNG seeds a generator from a name and an index.
func newRNG(name string, i int) *rng {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%s#%d", Version, name, i))
	return &rng{binary.LittleEndian.Uint64(h[:8])}
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a number in [0,1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a number in [0,n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func shuffle(r *rng, s []int) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}

// render synthesises a clip: light noise plus the calls. Samples are rounded to the 16-bit
// grid (multiples of 1/32767), so the audio survives a WAV round trip unchanged and tiny
// floating-point differences between machines cannot leak into the stored values.
func render(r *rng, rate int, dur float64, calls []call) []float64 {
	n := int(math.Round(dur * float64(rate)))
	out := make([]float64, n)
	for i := range out {
		out[i] = 0.006 * (r.float() + r.float() - 1) // triangular noise, rms ≈ 0.0025
	}
	for _, c := range calls {
		amp := 0.25 + 0.25*r.float()
		callSpecs[c.species].synth(out, rate, c.start, amp)
	}
	for i, x := range out {
		out[i] = math.Round(max(-1, min(1, x))*32767) / 32767
	}
	return out
}
