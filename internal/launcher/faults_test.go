package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
)

func faultItems(n int) []contract.RequestItem {
	wav := audio.AppendBase64WAV(nil, []float64{0, 0.5, -0.5, 0.25}, 16000)
	out := make([]contract.RequestItem, n)
	for i := range out {
		out[i] = contract.RequestItem{
			SampleID:         fmt.Sprintf("id%03d", i),
			Messages:         []contract.Message{{Role: "user", Content: contract.AudioPlaceholder + fmt.Sprintf(" q%d", i)}},
			AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: string(wav), SampleRate: 16000}},
			GenerationConfig: contract.GenerationConfig{"max_tokens": 8},
		}
	}
	return out
}

func faultServer(t *testing.T, opts DummyOptions) *httptest.Server {
	t.Helper()
	if opts.MaxBatchSize == 0 {
		opts.MaxBatchSize = 64
	}
	m, err := NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(m, ServerOptions{}))
	t.Cleanup(srv.Close)
	return srv
}

// postItems sends one batch on a fresh connection.
func postItems(t *testing.T, base string, items []contract.RequestItem) (*http.Response, []byte, error) {
	t.Helper()
	b, err := json.Marshal(contract.Request{SchemaVersion: contract.PredictionsV1, Requests: items})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(base+"/predict", "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func sentIDs(items []contract.RequestItem) []string {
	out := make([]string, len(items))
	for i := range items {
		out[i] = items[i].SampleID
	}
	return out
}

func TestDummyFaultOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		opts DummyOptions
		want string
	}{
		{DummyOptions{FailRate: 1.5}, "fail-rate 1.5 is not a probability"},
		{DummyOptions{DropRate: -0.1}, "drop-rate -0.1"},
		{DummyOptions{StatusRate: 0.1, Status: 404}, "status 404 is not one of 429, 500, 503"},
		{DummyOptions{LatencyJitter: -time.Second}, "latency jitter -1s is negative"},
		{DummyOptions{RetryAfter: -time.Second}, "retry-after -1s is negative"},
	} {
		if _, err := NewDummy(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
	m, err := NewDummy(DummyOptions{Seed: 3, FailRate: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(m.Info().Extra["faults"], &f); err != nil || f["fail_rate"] != 0.25 || f["seed"] != 3.0 {
		t.Errorf("/info faults = %s", m.Info().Extra["faults"])
	}
	if m, _ := NewDummy(DummyOptions{}); m.Info().Extra["faults"] != nil {
		t.Error("/info announces faults though none is set")
	}
}

// --fail-rate: about P of the items fail with a per-item error; the same seed fails the same
// items; an item asked again gets a new draw.
func TestDummyFailRate(t *testing.T) {
	items := faultItems(60)
	failedSet := func(seed uint64, rounds int) []string {
		srv := faultServer(t, DummyOptions{Seed: seed, FailRate: 0.5})
		var out []string
		for r := 0; r < rounds; r++ {
			resp, body, err := postItems(t, srv.URL, items)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("POST: %v", err)
			}
			for _, o := range contract.MatchResponse(body, sentIDs(items)) {
				switch {
				case o.Err == "":
				case strings.Contains(o.Err, InjectedItemFailure):
					out = append(out, fmt.Sprintf("%d:%s", r, o.SampleID))
				default:
					t.Fatalf("unexpected error %q", o.Err)
				}
			}
		}
		return out
	}
	a, b := failedSet(1, 2), failedSet(1, 2)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("same seed, different failures:\n%v\n%v", a, b)
	}
	first, second := 0, 0
	for _, f := range a {
		if strings.HasPrefix(f, "0:") {
			first++
		} else {
			second++
		}
	}
	if first < 15 || first > 45 || second < 15 || second > 45 {
		t.Errorf("%d and %d of 60 failed, want about 30", first, second)
	}
	if c := failedSet(2, 2); strings.Join(c, ",") == strings.Join(a, ",") {
		t.Error("another seed failed the same items")
	}
	// A second asking of the same items is a new draw.
	round0 := map[string]bool{}
	same := true
	for _, f := range a {
		r, id, _ := strings.Cut(f, ":")
		if r == "0" {
			round0[id] = true
		}
	}
	for _, f := range a {
		r, id, _ := strings.Cut(f, ":")
		if r == "1" && !round0[id] {
			same = false
		}
	}
	if same {
		t.Error("the second round failed exactly the items of the first: retries could never succeed")
	}
}

func TestDummyDropRate(t *testing.T) {
	srv := faultServer(t, DummyOptions{DropRate: 1})
	if _, _, err := postItems(t, srv.URL, faultItems(2)); err == nil {
		t.Fatal("a dropped request got an answer")
	}
	// /health and /info are not affected.
	resp, err := http.Get(srv.URL + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v", err)
	}
	resp.Body.Close()
}

func TestDummyStatusRate(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter time.Duration
		header     string
	}{
		{429, 0, "1"},
		{429, 1500 * time.Millisecond, "1.5"},
		{500, 0, ""},
		{503, 2 * time.Second, "2"},
	} {
		srv := faultServer(t, DummyOptions{StatusRate: 1, Status: tc.status, RetryAfter: tc.retryAfter})
		resp, body, err := postItems(t, srv.URL, faultItems(3))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.header || !strings.Contains(string(body), "injected") {
			t.Errorf("status %d: got %d Retry-After %q %s", tc.status, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	// A rate below 1 mixes both, deterministically.
	srv := faultServer(t, DummyOptions{StatusRate: 0.5, Status: 500, Seed: 9})
	codes := map[int]int{}
	for i := 0; i < 40; i++ {
		resp, _, err := postItems(t, srv.URL, faultItems(1))
		if err != nil {
			t.Fatal(err)
		}
		codes[resp.StatusCode]++
	}
	if codes[200] == 0 || codes[500] == 0 {
		t.Errorf("codes %v, want both 200 and 500", codes)
	}
}

// --bad-ids-rate: wrong, missing and duplicate ids all occur, and a strict client sees a
// violation in every such answer.
func TestDummyBadIDs(t *testing.T) {
	srv := faultServer(t, DummyOptions{BadIDsRate: 1, Seed: 5})
	items := faultItems(4)
	kinds := map[string]int{}
	for i := 0; i < 30; i++ {
		resp, body, err := postItems(t, srv.URL, items)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("POST: %v", err)
		}
		var r contract.Response
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, it := range r.Responses {
			seen[it.SampleID]++
		}
		switch {
		case len(r.Responses) < len(items):
			kinds["missing"]++
		case len(r.Responses) > len(items):
			kinds["duplicate"]++
		default:
			for id := range seen {
				if strings.HasPrefix(id, "not-sent-") {
					kinds["wrong"]++
				}
			}
		}
		bad := 0
		for _, o := range contract.MatchResponse(body, sentIDs(items)) {
			if o.Err != "" {
				bad++
			}
		}
		if bad == 0 {
			t.Errorf("answer %s has bad ids but matches cleanly", body)
		}
	}
	if kinds["missing"] == 0 || kinds["duplicate"] == 0 || kinds["wrong"] == 0 {
		t.Errorf("kinds of bad ids seen: %v, want all three", kinds)
	}
}

func TestDummyMalformed(t *testing.T) {
	srv := faultServer(t, DummyOptions{MalformedRate: 1})
	resp, body, err := postItems(t, srv.URL, faultItems(2))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || json.Valid(body) {
		t.Errorf("got %d %s, want 200 with a body that is not JSON", resp.StatusCode, body)
	}
}

// --latency-jitter adds a uniform extra model time in [0, jitter).
func TestDummyLatencyJitter(t *testing.T) {
	m, err := NewDummy(DummyOptions{Latency: time.Second, LatencyJitter: time.Second, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*dummy)
	var mu sync.Mutex
	var waits []time.Duration
	d.wait = func(ctx context.Context, dur time.Duration) error {
		mu.Lock()
		waits = append(waits, dur)
		mu.Unlock()
		return nil
	}
	items := faultItems(1)
	for i := 0; i < 20; i++ {
		m.Predict(context.Background(), items)
	}
	distinct := map[time.Duration]bool{}
	for _, w := range waits {
		if w < time.Second || w >= 2*time.Second {
			t.Errorf("model time %s outside [1s, 2s)", w)
		}
		distinct[w] = true
	}
	if len(distinct) < 10 {
		t.Errorf("%d distinct model times of 20: no jitter", len(distinct))
	}
}
