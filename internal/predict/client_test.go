package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

func dummyServer(t *testing.T, opts launcher.DummyOptions) *httptest.Server {
	t.Helper()
	m, err := launcher.NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(launcher.NewHandler(m, launcher.ServerOptions{}))
	t.Cleanup(srv.Close)
	return srv
}

func makeItems(t *testing.T, n int) []Item {
	t.Helper()
	wav := audio.AppendBase64WAV(nil, []float64{0, 0.5, -0.5, 0.25}, 16000)
	out := make([]Item, n)
	for i := range out {
		it := contract.RequestItem{
			SampleID:         fmt.Sprintf("s%03d", i),
			Messages:         []contract.Message{{Role: "user", Content: contract.AudioPlaceholder + fmt.Sprintf(" question %d", i%5)}},
			AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: string(wav), SampleRate: 16000}},
			GenerationConfig: contract.GenerationConfig{"max_tokens": 8},
		}
		b, err := contract.AppendRequestItem(nil, &it)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Item{ID: it.SampleID, JSON: b}
	}
	return out
}

func runAll(t *testing.T, c *Client, items []Item) map[string]Result {
	t.Helper()
	in := make(chan Item)
	go func() {
		defer close(in)
		for _, it := range items {
			in <- it
		}
	}()
	got := map[string]Result{}
	var calls atomic.Int32
	var inside atomic.Int32
	err := c.Run(context.Background(), in, func(rs []Result) error {
		if inside.Add(1) != 1 {
			t.Error("emit called concurrently")
		}
		defer inside.Add(-1)
		calls.Add(1)
		for _, r := range rs {
			if _, dup := got[r.SampleID]; dup {
				t.Errorf("result for %s emitted twice", r.SampleID)
			}
			got[r.SampleID] = r
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) != len(items) {
		t.Fatalf("got %d results for %d items", len(got), len(items))
	}
	return got
}

func TestRunAgainstDummy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxBatch  int
		batchSize int
		inFlight  int
		n         int
		failEvery int
	}{
		{"batches of 4", 4, 0, 2, 37, 0},
		{"one in flight", 8, 0, 1, 20, 0},
		{"client caps batch", 8, 3, 4, 10, 0},
		{"per-item failures", 4, 0, 3, 30, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dummyServer(t, launcher.DummyOptions{MaxBatchSize: tc.maxBatch, FailEvery: tc.failEvery})
			// One attempt: the launcher's per-item errors are recorded, not retried.
			c, err := Connect(context.Background(), srv.URL+"/predict", Options{InFlight: tc.inFlight, BatchSize: tc.batchSize, Attempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.maxBatch
			if tc.batchSize > 0 {
				want = tc.batchSize
			}
			if c.BatchSize() != want {
				t.Fatalf("batch size %d, want %d", c.BatchSize(), want)
			}
			items := makeItems(t, tc.n)
			got := runAll(t, c, items)
			failed := 0
			for _, it := range items {
				r := got[it.ID]
				if r.Err != "" {
					failed++
					if !strings.Contains(r.Err, launcher.InjectedFailure) {
						t.Errorf("%s: unexpected error %q", it.ID, r.Err)
					}
					continue
				}
				if !strings.HasPrefix(r.Prediction, "hash:") {
					t.Errorf("%s: prediction %q", it.ID, r.Prediction)
				}
				var item contract.ResponseItem
				if err := json.Unmarshal(r.Item, &item); err != nil || item.SampleID != it.ID {
					t.Errorf("%s: whole answer item %s", it.ID, r.Item)
				}
			}
			wantFailed := 0
			if tc.failEvery > 0 {
				wantFailed = tc.n / tc.failEvery
			}
			if failed != wantFailed {
				t.Errorf("%d items failed, want %d", failed, wantFailed)
			}
			// Same content, same answer: the hash ignores the sample id.
			if got["s000"].Err == "" && got["s005"].Err == "" && got["s000"].Prediction != got["s005"].Prediction {
				t.Errorf("same content answered differently: %q vs %q", got["s000"].Prediction, got["s005"].Prediction)
			}
		})
	}
}

// A launcher that announces a larger batch than it accepts: the client splits on 413 and
// lowers its batch size to the limit the launcher states.
func TestSplitsOn413(t *testing.T) {
	m, err := launcher.NewDummy(launcher.DummyOptions{MaxBatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	inner := launcher.NewHandler(m, launcher.ServerOptions{})
	var sizes sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			info := m.Info()
			info.MaxBatchSize = 16 // lies
			json.NewEncoder(w).Encode(info)
			return
		}
		if r.URL.Path == "/predict" {
			b, _ := io.ReadAll(r.Body)
			var req contract.Request
			json.Unmarshal(b, &req)
			sizes.Store(len(req.Requests), true)
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := Connect(context.Background(), srv.URL+"/predict", Options{InFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := runAll(t, c, makeItems(t, 40))
	for id, r := range got {
		if r.Err != "" {
			t.Errorf("%s failed: %s", id, r.Err)
		}
	}
	if c.BatchSize() != 3 {
		t.Errorf("batch size after 413 = %d, want the stated 3", c.BatchSize())
	}
}

func TestConnectRefusals(t *testing.T) {
	info := func(schema string) string {
		return fmt.Sprintf(`{"name":"x","model":"m","model_revision":"r","audio_payload_types":["base64_wav"],"max_batch_size":2,"supports_batching":true,"schema_versions":[%q]}`, schema)
	}
	for _, tc := range []struct {
		name   string
		health int
		info   string
		want   string
	}{
		{"not ready", 503, info("predictions_v1"), "HTTP 503"},
		{"no predictions_v1", 200, info("predictions_v0"), `lacks "predictions_v1"`},
		{"bad info", 200, `{"name":"x"}`, `missing "model"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/health":
					w.WriteHeader(tc.health)
				case "/info":
					io.WriteString(w, tc.info)
				default:
					t.Errorf("unexpected request %s before the launcher was accepted", r.URL.Path)
				}
			}))
			defer srv.Close()
			_, err := Connect(context.Background(), srv.URL+"/predict", Options{})
			var ue *UnavailableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("Connect = %v, want UnavailableError naming the URL and %q", err, tc.want)
			}
		})
	}
	// Nothing listening.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Connect(context.Background(), url+"/predict", Options{})
	var ue *UnavailableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "is the launcher running") {
		t.Fatalf("Connect to a closed port = %v", err)
	}
}

// Transient failures are retried; a launcher that keeps failing yields per-item errors,
// never a Run error.
func TestRetriesAndPersistentFailure(t *testing.T) {
	m, _ := launcher.NewDummy(launcher.DummyOptions{MaxBatchSize: 4})
	inner := launcher.NewHandler(m, launcher.ServerOptions{})
	var posts atomic.Int32
	failFirst := int32(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/predict" {
			n := posts.Add(1)
			if n <= failFirst {
				w.Header().Set("Retry-After", "0")
				http.Error(w, `{"error":"busy"}`, http.StatusTooManyRequests)
				return
			}
			if failFirst < 0 {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := Connect(context.Background(), srv.URL+"/predict", Options{InFlight: 1, Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := runAll(t, c, makeItems(t, 4))
	for id, r := range got {
		if r.Err != "" || r.Attempts != 3 {
			t.Errorf("%s: err %q after %d attempts, want success on the 3rd", id, r.Err, r.Attempts)
		}
	}
	failFirst = -1
	got = runAll(t, c, makeItems(t, 4))
	for id, r := range got {
		if !strings.Contains(r.Err, "HTTP 500") || r.Attempts != 3 {
			t.Errorf("%s: err %q after %d attempts, want HTTP 500 after 3", id, r.Err, r.Attempts)
		}
	}
}

func TestTimeoutIsPerItemFailure(t *testing.T) {
	srv := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 2, Latency: time.Hour})
	c, err := Connect(context.Background(), srv.URL+"/predict", Options{Timeout: 50 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := runAll(t, c, makeItems(t, 3))
	for id, r := range got {
		if !strings.Contains(r.Err, "no answer within") {
			t.Errorf("%s: %q", id, r.Err)
		}
	}
}

func TestEmitErrorStopsRun(t *testing.T) {
	srv := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 2})
	c, err := Connect(context.Background(), srv.URL+"/predict", Options{InFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	items := makeItems(t, 50)
	in := make(chan Item)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(in)
		for _, it := range items {
			select {
			case in <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	diskFull := errors.New("disk full")
	err = c.Run(ctx, in, func([]Result) error { return diskFull })
	if !errors.Is(err, diskFull) {
		t.Fatalf("Run = %v, want the emit error", err)
	}
}
