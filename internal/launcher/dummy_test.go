package launcher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
)

func TestNewDummyOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    DummyOptions
		wantErr string
		model   string
		batch   int
	}{
		{"defaults", DummyOptions{}, "", "dummy-hash", DefaultDummyBatch},
		{"hash", DummyOptions{Mode: "hash", MaxBatchSize: 32}, "", "dummy-hash", 32},
		{"tone injected", DummyOptions{Mode: "tone", Listener: func(string, []float64, int) string { return "" }, DecodeWAV: func([]byte) ([]float64, int, error) { return nil, 0, nil }}, "", "dummy-tone", DefaultDummyBatch},
		{"bad mode", DummyOptions{Mode: "echo"}, `mode "echo" is not one of`, "", 0},
		{"negative batch", DummyOptions{MaxBatchSize: -1}, "max batch size -1 is negative", "", 0},
		{"negative latency", DummyOptions{Latency: -time.Second}, "latency -1s is negative", "", 0},
		{"negative slots", DummyOptions{Slots: -2}, "slots -2 is negative", "", 0},
		{"negative fail-every", DummyOptions{FailEvery: -1}, "fail-every -1 is negative", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewDummy(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in := m.Info(); in.Model != tt.model || in.MaxBatchSize != tt.batch {
				t.Errorf("model %q batch %d, want %q %d", in.Model, in.MaxBatchSize, tt.model, tt.batch)
			}
		})
	}
}

func predictOne(t *testing.T, m Model, it contract.RequestItem) contract.ResponseItem {
	t.Helper()
	if err := contract.ValidateItem(&it); err != nil {
		t.Fatalf("test item is invalid: %v", err)
	}
	out := m.Predict(context.Background(), []contract.RequestItem{it})
	if len(out) != 1 || out[0].SampleID != it.SampleID {
		t.Fatalf("Predict answered %+v", out)
	}
	if out[0].Failed() {
		t.Fatalf("Predict failed: %s", *out[0].Error)
	}
	return out[0]
}

// withWAVByte returns it with byte i of its decoded WAV XOR-ed with 1.
func withWAVByte(t *testing.T, it contract.RequestItem, i int) contract.RequestItem {
	raw, err := base64.StdEncoding.DecodeString(it.AudioInputs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	raw[i] ^= 1
	it.AudioInputs = []contract.AudioInput{it.AudioInputs[0]}
	it.AudioInputs[0].Data = base64.StdEncoding.EncodeToString(raw)
	return it
}

func TestDummyHash(t *testing.T) {
	m, err := NewDummy(DummyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := audioItem("a", "what is it?")
	baseAnswer := predictOne(t, m, base)
	answer := baseAnswer.Predictions[0]
	if !regexp.MustCompile(`^hash:[0-9a-f]{16}$`).MatchString(answer) {
		t.Fatalf("answer %q is not hash: and 16 hex digits", answer)
	}
	// Golden: the answer is part of recorded results and must not drift between versions.
	goldenItem := audioItem("g", "golden")
	goldenItem.AudioInputs[0].Data = base64.StdEncoding.EncodeToString(audio.AppendWAV(nil, make([]float64, 80), 8000)) // 80 zero samples
	const golden = "hash:f10134f3c82e7508"
	if got := predictOne(t, m, goldenItem).Predictions[0]; got != golden {
		t.Errorf("golden item answered %q, want %q (changing the hash invalidates recorded dummy results)", got, golden)
	}
	if baseAnswer.FinishReason != "stop" || baseAnswer.LatencySec == nil || *baseAnswer.LatencySec < 0 {
		t.Errorf("finish_reason %q latency %v", baseAnswer.FinishReason, baseAnswer.LatencySec)
	}
	var u struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
	if err := json.Unmarshal(baseAnswer.Usage, &u); err != nil || u.PromptTokens <= 0 || u.CompletionTokens <= 0 {
		t.Errorf("usage %s: %v", baseAnswer.Usage, err)
	}

	same := []struct {
		name string
		edit func(contract.RequestItem) contract.RequestItem
	}{
		{"other sample_id", func(it contract.RequestItem) contract.RequestItem { it.SampleID = "zzz"; return it }},
		{"generation_config key order", func(it contract.RequestItem) contract.RequestItem {
			var gc contract.GenerationConfig
			_ = json.Unmarshal([]byte(`{"max_tokens":8.0}`), &gc)
			it.GenerationConfig = gc
			return it
		}},
	}
	differ := []struct {
		name string
		edit func(contract.RequestItem) contract.RequestItem
	}{
		{"flipped byte at the end of the audio", func(it contract.RequestItem) contract.RequestItem {
			raw, _ := base64.StdEncoding.DecodeString(it.AudioInputs[0].Data)
			return withWAVByte(t, it, len(raw)-1)
		}},
		{"flipped byte in the middle of the audio", func(it contract.RequestItem) contract.RequestItem { return withWAVByte(t, it, 1000) }},
		{"flipped byte in the WAV header", func(it contract.RequestItem) contract.RequestItem { return withWAVByte(t, it, 24) }},
		{"sample rate", func(it contract.RequestItem) contract.RequestItem {
			it.AudioInputs = []contract.AudioInput{it.AudioInputs[0]}
			it.AudioInputs[0].SampleRate = 16001
			return it
		}},
		{"content", func(it contract.RequestItem) contract.RequestItem {
			it.Messages = []contract.Message{{Role: "user", Content: it.Messages[0].Content + "?"}}
			return it
		}},
		{"role", func(it contract.RequestItem) contract.RequestItem {
			it.Messages = []contract.Message{{Role: "system", Content: it.Messages[0].Content}}
			return it
		}},
		{"message split", func(it contract.RequestItem) contract.RequestItem {
			c := it.Messages[0].Content
			k := len(contract.AudioPlaceholder) + 3
			it.Messages = []contract.Message{{Role: "user", Content: c[:k]}, {Role: "user", Content: c[k:]}}
			return it
		}},
		{"generation_config value", func(it contract.RequestItem) contract.RequestItem {
			it.GenerationConfig = contract.GenerationConfig{"max_tokens": 9}
			return it
		}},
		{"generation_config extra key", func(it contract.RequestItem) contract.RequestItem {
			it.GenerationConfig = contract.GenerationConfig{"max_tokens": 8, "temperature": 0}
			return it
		}},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			if got := predictOne(t, m, tt.edit(base)).Predictions[0]; got != answer {
				t.Errorf("answer %q, want %q", got, answer)
			}
		})
	}
	for _, tt := range differ {
		t.Run("differs/"+tt.name, func(t *testing.T) {
			if got := predictOne(t, m, tt.edit(base)).Predictions[0]; got == answer {
				t.Errorf("answer unchanged (%q)", got)
			}
		})
	}
	// A fresh dummy gives the same answer: nothing depends on state.
	m2, _ := NewDummy(DummyOptions{Latency: time.Microsecond})
	if got := predictOne(t, m2, base).Predictions[0]; got != answer {
		t.Errorf("second dummy answered %q, want %q", got, answer)
	}
}

func TestDummyFailEvery(t *testing.T) {
	m, err := NewDummy(DummyOptions{FailEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	var items []contract.RequestItem
	for i := range 7 {
		items = append(items, textItem(fmt.Sprint(i), "x"))
	}
	out := m.Predict(context.Background(), items[:4])
	out = append(out, m.Predict(context.Background(), items[4:])...)
	for i, o := range out {
		wantFail := (i+1)%3 == 0
		if o.Failed() != wantFail {
			t.Errorf("item %d failed=%t, want %t", i, o.Failed(), wantFail)
		}
		if wantFail && *o.Error != InjectedFailure {
			t.Errorf("item %d error %q", i, *o.Error)
		}
	}
}

func TestDummySlotsLimitConcurrency(t *testing.T) {
	const slots, batches = 2, 6
	m, err := NewDummy(DummyOptions{Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*dummy)
	var cur, peak atomic.Int64
	entered := make(chan struct{}, batches)
	queued := make(chan struct{}, batches)
	release := make(chan struct{})
	d.onQueue = func() { queued <- struct{}{} }
	d.wait = func(ctx context.Context, _ time.Duration) error {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		defer cur.Add(-1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var wg sync.WaitGroup
	results := make([][]contract.ResponseItem, batches)
	for b := range batches {
		wg.Go(func() {
			results[b] = m.Predict(context.Background(), []contract.RequestItem{textItem(fmt.Sprint(b), "x")})
		})
	}
	// Wait until every batch is either inside the model or queued for a slot; nobody
	// leaves the model before release is closed, so peak is then final for this phase.
	bound := time.NewTimer(20 * time.Second)
	defer bound.Stop()
	in, waiting := 0, 0
	for in+waiting < batches {
		select {
		case <-entered:
			in++
		case <-queued:
			waiting++
		case <-bound.C:
			close(release)
			t.Fatalf("only %d batches entered and %d queued", in, waiting)
		}
	}
	if in != slots || waiting != batches-slots {
		t.Errorf("%d batches inside the model and %d queued, want %d and %d", in, waiting, slots, batches-slots)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != slots {
		t.Errorf("peak concurrent batches %d, want %d", p, slots)
	}
	for b, r := range results {
		if len(r) != 1 || r[0].Failed() {
			t.Errorf("batch %d: %+v", b, r)
		}
	}
}

func TestDummyCancellation(t *testing.T) {
	tests := []struct {
		name    string
		opts    DummyOptions
		occupy  bool // hold the only slot so the batch queues
		wantErr string
	}{
		{"during model time", DummyOptions{Latency: time.Hour}, false, "cancelled during model time"},
		{"waiting for a slot", DummyOptions{Latency: time.Hour, Slots: 1}, true, "cancelled while waiting for a model slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewDummy(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			d := m.(*dummy)
			if tt.occupy {
				d.slots <- struct{}{}
				defer func() { <-d.slots }()
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan []contract.ResponseItem, 1)
			go func() { done <- m.Predict(ctx, []contract.RequestItem{textItem("a", "x"), textItem("b", "y")}) }()
			cancel(errors.New("client went away"))
			select {
			case out := <-done:
				if len(out) != 2 {
					t.Fatalf("%d answers", len(out))
				}
				for _, o := range out {
					if !o.Failed() || !strings.Contains(*o.Error, tt.wantErr) || !strings.Contains(*o.Error, "client went away") {
						t.Errorf("%s: %+v", o.SampleID, o)
					}
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Predict ignored the cancelled context")
			}
		})
	}
}

func TestDummyToneInjected(t *testing.T) {
	type heard struct {
		instruction string
		n, rate     int
	}
	var got []heard
	var mu sync.Mutex
	m, err := NewDummy(DummyOptions{
		Mode: ModeTone,
		Listener: func(instruction string, samples []float64, rate int) string {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, heard{instruction, len(samples), rate})
			return "Turdus migratorius"
		},
		DecodeWAV: func(b []byte) ([]float64, int, error) {
			if string(b[:4]) != "RIFF" {
				return nil, 0, errors.New("no RIFF")
			}
			return make([]float64, len(b)), 22050, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	good := audioItem("good", "Which species?")
	good.Messages = append([]contract.Message{{Role: "system", Content: "Be brief."}}, good.Messages...)
	good.Messages = append(good.Messages, contract.Message{Role: "assistant", Content: "ok"})
	noAudio := textItem("no-audio", "anything")
	notWAV := audioItem("not-wav", "x")
	notWAV.AudioInputs[0].Data = base64.StdEncoding.EncodeToString([]byte("OggS...."))
	badB64 := audioItem("bad-b64", "x")
	badB64.AudioInputs[0].Data = "%%%"
	out := m.Predict(context.Background(), []contract.RequestItem{good, noAudio, notWAV, badB64})
	want := []struct{ answer, err string }{
		{"Turdus migratorius", ""},
		{"unknown", ""},
		{"", "audio_inputs[0]: not a WAV file: no RIFF"},
		{"", "audio_inputs[0]: not valid base64"},
	}
	for i, w := range want {
		o := out[i]
		if w.err != "" {
			if !o.Failed() || !strings.Contains(*o.Error, w.err) {
				t.Errorf("%s: %+v, want error %q", o.SampleID, o, w.err)
			}
			continue
		}
		if o.Failed() || o.Predictions[0] != w.answer {
			t.Errorf("%s: %+v, want %q", o.SampleID, o, w.answer)
		}
	}
	raw, _ := base64.StdEncoding.DecodeString(wav64)
	if len(got) != 1 || got[0] != (heard{"Which species?", len(raw), 22050}) {
		t.Errorf("listener heard %+v", got)
	}
}
