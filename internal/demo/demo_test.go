package demo

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/audio"
)

func generate(t *testing.T) []Row {
	t.Helper()
	var rows []Row
	if err := Rows(func(r Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows
}

var (
	rowsOnce sync.Once
	rowsAll  []Row
)

// allRows returns the demo rows, generated once for the tests that only read them.
func allRows(t *testing.T) []Row {
	rowsOnce.Do(func() { rowsAll = generate(t) })
	return rowsAll
}

func TestRowsShape(t *testing.T) {
	rows := allRows(t)
	type want struct {
		task, instruction string
		rows, rate, n     int
	}
	wants := map[string]want{
		DatasetSpecies:    {"classification", "<Audio><AudioHere></Audio> What is the common name for the focal species in the audio? Answer:", 60, 16000, 32000},
		DatasetDetection:  {"detection", "<Audio><AudioHere></Audio> What are the common names for the species in the audio, if any?", 48, 22050, 66150},
		DatasetCaptioning: {"captioning", "<Audio><AudioHere></Audio> Caption the audio.", 36, 32000, 96000},
	}
	got := map[string]int{}
	ids := map[string]bool{}
	outputs := map[string]map[string]int{}
	for _, r := range rows {
		w, ok := wants[r.DatasetName]
		if !ok {
			t.Fatalf("unexpected dataset %q", r.DatasetName)
		}
		got[r.DatasetName]++
		if r.Task != w.task || r.Instruction != w.instruction || r.SampleRate != w.rate || len(r.Audio) != w.n {
			t.Errorf("%s: task %q rate %d len %d instruction %q", r.ID, r.Task, r.SampleRate, len(r.Audio), r.Instruction)
		}
		if r.InstructionText != strings.TrimSpace(strings.TrimPrefix(w.instruction, "<Audio><AudioHere></Audio>")) {
			t.Errorf("instruction_text %q", r.InstructionText)
		}
		if wantMeta := fmt.Sprintf(`{"sample_rate":%d,"duration":%d}`, w.rate, w.n/w.rate); r.Metadata != wantMeta {
			t.Errorf("metadata %s, want %s", r.Metadata, wantMeta)
		}
		if ids[r.ID] || len(r.ID) != 36 {
			t.Errorf("bad or duplicate id %q", r.ID)
		}
		ids[r.ID] = true
		for _, x := range r.Audio {
			if !(x >= -1 && x <= 1) {
				t.Fatalf("%s: sample %v out of range", r.ID, x)
			}
		}
		if outputs[r.DatasetName] == nil {
			outputs[r.DatasetName] = map[string]int{}
		}
		outputs[r.DatasetName][r.Output]++
	}
	for name, w := range wants {
		if got[name] != w.rows {
			t.Errorf("%s: %d rows, want %d", name, got[name], w.rows)
		}
	}
	for _, s := range Species {
		if outputs[DatasetSpecies][s] != 10 {
			t.Errorf("species %q appears %d times, want 10", s, outputs[DatasetSpecies][s])
		}
	}
	if outputs[DatasetDetection]["None"] == 0 {
		t.Error("no detection row without species")
	}
	if n := len(outputs[DatasetCaptioning]); n < 28 {
		t.Errorf("only %d distinct captions of 36; want varied captions", n)
	}
}

// TestRowsDeterministic checks that two generations are identical and that the text columns
// match a recorded fingerprint (bump Version and the fingerprint together).
func TestRowsDeterministic(t *testing.T) {
	fingerprint := func() (text, all string) {
		th, ah := sha256.New(), sha256.New()
		for _, r := range generate(t) {
			fmt.Fprintf(th, "%q\n", []string{r.ID, r.DatasetName, r.Task, r.Instruction, r.InstructionText, r.Output, r.SourceDataset, r.FileName, r.License, r.CreatedAt, r.Metadata})
			buf := make([]byte, 0, 8*len(r.Audio))
			for _, x := range r.Audio {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
			}
			ah.Write(buf)
		}
		return fmt.Sprintf("%x", th.Sum(nil)), fmt.Sprintf("%x", ah.Sum(nil))
	}
	t1, a1 := fingerprint()
	t2, a2 := fingerprint()
	if t1 != t2 || a1 != a2 {
		t.Fatal("two generations differ")
	}
	const wantText = "6911a5de509d752725b234c884ab732673747ad13de52629ea3c1a7d6a94ee3b"
	if t1 != wantText {
		t.Errorf("text fingerprint %s, want %s (generation changed: bump Version and update)", t1, wantText)
	}
}

func decoded(t *testing.T, r Row) ([]float64, int) {
	t.Helper()
	s, rate, err := audio.DecodeWAV(audio.AppendWAV(nil, r.Audio, r.SampleRate))
	if err != nil {
		t.Fatal(err)
	}
	return s, rate
}

func TestAnswerMatchesEveryRow(t *testing.T) {
	for _, r := range allRows(t) {
		s, rate := decoded(t, r)
		if got := Answer(r.Instruction, s, rate); got != r.Output {
			t.Errorf("%s %s: Answer = %q, want %q", r.DatasetName, r.FileName, got, r.Output)
		}
	}
}

// TestAnswerListens checks that the answers come from the audio: damaging it changes most
// answers.
func TestAnswerListens(t *testing.T) {
	rows := allRows(t)
	tests := []struct {
		name   string
		damage func([]float64, int) ([]float64, int)
	}{
		{"zeroed", func(s []float64, rate int) ([]float64, int) { return make([]float64, len(s)), rate }},
		{"first half", func(s []float64, rate int) ([]float64, int) { return s[:len(s)/2], rate }},
		{"rate declared double", func(s []float64, rate int) ([]float64, int) { return s, 2 * rate }},
		{"rate declared 1.5x", func(s []float64, rate int) ([]float64, int) { return s, rate * 3 / 2 }},
		{"rate declared half", func(s []float64, rate int) ([]float64, int) { return s, rate / 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := 0
			for _, r := range rows {
				s, rate := tt.damage(decoded(t, r))
				if Answer(r.Instruction, s, rate) != r.Output {
					changed++
				}
			}
			t.Logf("%d of %d answers changed", changed, len(rows))
			if 2*changed <= len(rows) {
				t.Errorf("only %d of %d answers changed; Answer is not listening", changed, len(rows))
			}
		})
	}
}

func TestAnswerTaskFormat(t *testing.T) {
	silence := make([]float64, 16000)
	tests := []struct{ instruction, want string }{
		{InstructionSpecies, "unknown"},
		{InstructionDetection, "None"},
		{InstructionCaptioning, "unknown"},
		{"Which species calls here?", "unknown"},
	}
	for _, tt := range tests {
		if got := Answer(tt.instruction, silence, 16000); got != tt.want {
			t.Errorf("Answer(%q, silence) = %q, want %q", tt.instruction, got, tt.want)
		}
	}
	// Answer must not panic on degenerate input.
	for _, rate := range []int{0, -1, 1, 8000} {
		_ = Answer(InstructionSpecies, []float64{1, -1, 0.5}, rate)
		_ = Answer(InstructionSpecies, nil, rate)
	}
}

func TestAnswerOtherRates(t *testing.T) {
	// Every species is recognised at the rates real data uses.
	for _, rate := range []int{8000, 9600, 16000, 44100, 48000} {
		for s := range Species {
			out := render(newRNG("rates", rate), rate, 1, []call{{s, 0.2}})
			if got := Answer(InstructionSpecies, out, rate); got != Species[s] {
				t.Errorf("%d Hz, %s: Answer = %q", rate, Species[s], got)
			}
		}
	}
}

func TestCaption(t *testing.T) {
	tests := []struct {
		seq  []int
		want string
	}{
		{[]int{1, 1, 0}, "First a Copper Trill calls twice, followed by an Azure Whistler calling once."},
		{[]int{5, 5, 2}, "A Golden Buzzer calls twice, then a Dusky Chirper answers."},
		{[]int{}, "unknown"},
		{[]int{3}, "An Ember Warbler is heard calling once."},
		{[]int{5, 5, 5}, "Three Golden Buzzer calls are heard."},
		{[]int{0, 2, 0}, "An Azure Whistler calls once, a Dusky Chirper replies once, and then the Azure Whistler calls again."},
	}
	for _, tt := range tests {
		if got := caption(bouts(tt.seq)); got != tt.want {
			t.Errorf("caption(%v) = %q, want %q", tt.seq, got, tt.want)
		}
	}
}

func BenchmarkAnswer10s16k(b *testing.B) {
	out := render(newRNG("bench", 0), 16000, 10, []call{{0, 1}, {3, 4}, {5, 8}})
	b.SetBytes(int64(8 * len(out)))
	for b.Loop() {
		Answer(InstructionDetection, out, 16000)
	}
}

func BenchmarkRows(b *testing.B) {
	for b.Loop() {
		if err := Rows(func(Row) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
