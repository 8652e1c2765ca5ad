package launcher

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// TestToneModeEndToEnd serves the default tone-mode dummy over HTTP and sends it demo rows as
// base64 WAV: it must answer each row's expected output, whatever the task.
func TestToneModeEndToEnd(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{Mode: ModeTone, MaxBatchSize: 8}, ServerOptions{})
	perDataset := map[string]int{}
	var items []contract.RequestItem
	want := map[string]string{}
	err := demo.Rows(func(r demo.Row) error {
		if perDataset[r.DatasetName] >= 2 {
			return nil
		}
		perDataset[r.DatasetName]++
		items = append(items, contract.RequestItem{
			SampleID:         r.ID,
			Messages:         []contract.Message{{Role: "user", Content: r.Instruction}},
			AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: string(audio.AppendBase64WAV(nil, r.Audio, r.SampleRate)), SampleRate: r.SampleRate}},
			GenerationConfig: contract.GenerationConfig{"max_tokens": 64},
		})
		want[r.ID] = r.Output
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perDataset) < 3 {
		t.Fatalf("demo rows cover %v, want three tasks", perDataset)
	}
	// A text-only item (as a judge would send) answers "unknown".
	items = append(items, textItem("text-only", "Is this a robin?"))
	want["text-only"] = "unknown"

	status, _, body := call(t, http.MethodPost, srv.URL+"/predict", bytes.NewReader(requestBody(t, contract.PredictionsV1, items...)))
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, o := range contract.MatchResponse(body, ids(items)) {
		if o.Err != "" || o.Prediction != want[o.SampleID] {
			t.Errorf("%s: prediction %q err %q, want %q", o.SampleID, o.Prediction, o.Err, want[o.SampleID])
		}
	}
}

// TestToneModeSignal checks the default wiring on a synthetic signal of silence: the demo
// listener hears no call and says so in the format of the instruction.
func TestToneModeSignal(t *testing.T) {
	m := mustDummy(t, DummyOptions{Mode: ModeTone})
	silence := string(audio.AppendBase64WAV(nil, make([]float64, 16000), 16000))
	tests := []struct {
		instruction, want string
	}{
		{demo.InstructionSpecies, "unknown"},
		{demo.InstructionDetection, "None"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			it := contract.RequestItem{
				SampleID:         "s",
				Messages:         []contract.Message{{Role: "user", Content: tt.instruction}},
				AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: silence, SampleRate: 16000}},
				GenerationConfig: contract.GenerationConfig{},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := m.Predict(ctx, []contract.RequestItem{it})
			if out[0].Failed() || out[0].Predictions[0] != tt.want {
				t.Errorf("answer %+v, want %q", out[0], tt.want)
			}
			if !strings.Contains(string(out[0].Usage), "completion_tokens") {
				t.Errorf("usage %s", out[0].Usage)
			}
		})
	}
}
