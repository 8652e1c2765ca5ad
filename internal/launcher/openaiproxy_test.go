package launcher

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/launcher/openaitest"
)

// testKey is the key the fake upstream expects; no log line or response body may carry it.
const testKey = "sk-test-SECRET0123456789abcdefKEYEND"

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxyFixture is the proxy served over loopback in front of a fake upstream.
type proxyFixture struct {
	fake       *openaitest.Server
	proxy      *openAIProxy
	predictURL string
	logs       syncBuffer // the proxy's log
	bodies     syncBuffer // every body the proxy answered the tests with

	mu    sync.Mutex
	waits []time.Duration // waits between attempts, recorded instead of slept
}

// newProxyFixture starts the fake upstream (fo) and the proxy (po; Upstream and Model default
// to the fake's, APIKey to testKey). At cleanup it checks that neither key appears in any log
// line or answer.
func newProxyFixture(t *testing.T, fo openaitest.Options, po OpenAIProxyOptions) *proxyFixture {
	t.Helper()
	f := &proxyFixture{}
	f.fake = openaitest.New(fo)
	t.Cleanup(f.fake.Close)
	po.Upstream = cmp.Or(po.Upstream, f.fake.URL)
	po.Model = cmp.Or(po.Model, openaitest.DefaultModel)
	po.Logger = log.New(&f.logs)
	po.Logger.SetLevel(log.DebugLevel)
	m, err := NewOpenAIProxy(po)
	if err != nil {
		t.Fatal(err)
	}
	f.proxy = m.(*openAIProxy)
	f.proxy.wait = func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.waits = append(f.waits, d)
		f.mu.Unlock()
		return ctx.Err()
	}
	srv := httptest.NewServer(NewHandler(f.proxy, ServerOptions{Logger: po.Logger}))
	t.Cleanup(srv.Close)
	f.predictURL = srv.URL + "/predict"
	t.Cleanup(func() {
		for _, k := range slices.Compact([]string{testKey, fo.Key, po.APIKey}) {
			if k == "" {
				continue
			}
			for what, text := range map[string]string{"log": f.logs.String(), "answers": f.bodies.String()} {
				// The whole key, and its tail (what the API's masked form shows).
				if strings.Contains(text, k) || strings.Contains(text, k[len(k)-6:]) {
					t.Errorf("found the API key %q in the %s:\n%s", k, what, text)
				}
			}
		}
	})
	return f
}

func (f *proxyFixture) recordedWaits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.waits)
}

// post sends one predictions_v1 batch and returns the answers by sample_id.
func (f *proxyFixture) post(t *testing.T, items ...contract.RequestItem) map[string]contract.ResponseItem {
	t.Helper()
	out, err := f.tryPost(items...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryPost is post for goroutines other than the test's.
func (f *proxyFixture) tryPost(items ...contract.RequestItem) (map[string]contract.ResponseItem, error) {
	body, err := json.Marshal(contract.Request{SchemaVersion: contract.PredictionsV1, Requests: items})
	if err != nil {
		return nil, err
	}
	resp, err := http.Post(f.predictURL, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	f.bodies.Write(b)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	sent := make([]string, len(items))
	for i := range items {
		sent[i] = items[i].SampleID
	}
	out := map[string]contract.ResponseItem{}
	for _, o := range contract.MatchResponse(b, sent) {
		var it contract.ResponseItem
		if o.Item == nil || json.Unmarshal(o.Item, &it) != nil {
			return nil, fmt.Errorf("%s: no usable answer item (%s) in %s", o.SampleID, o.Err, b)
		}
		out[o.SampleID] = it
	}
	return out, nil
}

// info fetches /info.
func (f *proxyFixture) info(t *testing.T) contract.Info {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(f.predictURL, "/predict") + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	f.bodies.Write(b)
	in, err := contract.ParseInfo(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return in
}

// clip is a test clip: seconds of a tone at rate Hz.
type clip struct {
	seconds float64
	rate    int
}

func (c clip) samples() []float64 {
	out := make([]float64, int(math.Round(c.seconds*float64(c.rate))))
	for i := range out {
		out[i] = 0.3 * math.Sin(2*math.Pi*523.25*float64(i)/float64(c.rate))
	}
	return out
}

// proxyItem builds a request item: text is the user message (with placeholders), one clip per
// placeholder.
func proxyItem(id, text string, gc contract.GenerationConfig, clips ...clip) contract.RequestItem {
	it := contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: text}},
		AudioInputs:      []contract.AudioInput{},
		GenerationConfig: gc,
	}
	if gc == nil {
		it.GenerationConfig = contract.GenerationConfig{"max_tokens": 16}
	}
	for _, c := range clips {
		it.AudioInputs = append(it.AudioInputs, contract.AudioInput{
			PayloadType: contract.PayloadBase64WAV,
			Data:        string(audio.AppendBase64WAV(nil, c.samples(), c.rate)),
			SampleRate:  c.rate,
		})
	}
	return it
}

const ph = contract.AudioPlaceholder

func TestOpenAIProxyRequestShape(t *testing.T) {
	tests := []struct {
		name        string
		field       string
		proxyCap    float64
		gc          contract.GenerationConfig
		wantSeconds float64 // of the 30 s clip on arrival
	}{
		{"proxy cap", "", 10, contract.GenerationConfig{"max_tokens": 64.0, "temperature": 0.0}, 10},
		{"request cap below proxy cap", MaxTokensField, 10, contract.GenerationConfig{"max_tokens": 64.0, "temperature": 0.0, "max_length_seconds": 4.0}, 4},
		{"proxy cap below request cap", MaxCompletionTokensField, 6, contract.GenerationConfig{"max_tokens": 64.0, "temperature": 0.0, "max_length_seconds": 12.0}, 6},
		{"request cap alone", MaxCompletionTokensField, 0, contract.GenerationConfig{"max_tokens": 64.0, "temperature": 0.0, "max_length_seconds": 7.5}, 7.5},
		{"no cap", "", 0, contract.GenerationConfig{"max_tokens": 64.0, "temperature": 0.0}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProxyFixture(t, openaitest.Options{Key: testKey}, OpenAIProxyOptions{APIKey: testKey, AudioCapSeconds: tt.proxyCap, MaxTokensField: tt.field})
			long, short := clip{30, 16000}, clip{2, 8000}
			it := proxyItem("shape-1", "First: "+ph+" then "+ph+" — which species?", tt.gc, long, short)
			it.Messages = append([]contract.Message{{Role: "system", Content: "You are a bird expert."}}, it.Messages...)
			got := f.post(t, it)["shape-1"]
			if got.Failed() {
				t.Fatalf("item failed: %s", *got.Error)
			}
			if v := f.fake.Violations(); len(v) > 0 {
				t.Fatalf("the upstream refused requests: %q", v)
			}
			recv := f.fake.Received()
			if len(recv) != 1 {
				t.Fatalf("%d upstream requests, want 1", len(recv))
			}
			r := recv[0]
			if r.Model != openaitest.DefaultModel {
				t.Errorf("model %q", r.Model)
			}
			if len(r.Messages) != 2 || r.Messages[0].Role != "system" || r.Messages[0].Parts != nil || r.Messages[0].Text != "You are a bird expert." {
				t.Fatalf("messages %+v: want the system message as a plain string, then the user's parts", r.Messages)
			}
			var shape []string
			for _, p := range r.Messages[1].Parts {
				if p.Audio != nil {
					shape = append(shape, fmt.Sprintf("audio@%d", p.Audio.SampleRate))
					continue
				}
				shape = append(shape, fmt.Sprintf("%s:%q", p.Type, p.Text))
			}
			want := []string{`text:"First: "`, "audio@16000", `text:" then "`, "audio@8000", `text:" — which species?"`}
			if !slices.Equal(shape, want) {
				t.Errorf("user content parts %v, want %v", shape, want)
			}
			clips := r.Audio()
			if len(clips) != 2 {
				t.Fatalf("%d clips arrived", len(clips))
			}
			if s := clips[0].Seconds(); s > tt.wantSeconds || s < tt.wantSeconds-0.001 {
				t.Errorf("the 30 s clip arrived with %.4f s, want %.4f s", s, tt.wantSeconds)
			}
			if s := clips[1].Seconds(); math.Abs(s-2) > 0.001 {
				t.Errorf("the 2 s clip arrived with %.4f s", s)
			}
			orig := long.samples()
			for i := 0; i < len(clips[0].Samples); i += 997 {
				if math.Abs(clips[0].Samples[i]-orig[i]) > 1e-4 {
					t.Fatalf("sample %d arrived as %g, sent %g", i, clips[0].Samples[i], orig[i])
				}
			}
			switch tt.field {
			case MaxCompletionTokensField:
				if r.MaxCompletionTokens == nil || *r.MaxCompletionTokens != 64 || r.MaxTokens != nil {
					t.Errorf("max_completion_tokens %v, max_tokens %v: want 64 in max_completion_tokens", r.MaxCompletionTokens, r.MaxTokens)
				}
			default:
				if r.MaxTokens == nil || *r.MaxTokens != 64 || r.MaxCompletionTokens != nil {
					t.Errorf("max_tokens %v, max_completion_tokens %v: want 64 in max_tokens", r.MaxTokens, r.MaxCompletionTokens)
				}
			}
			if r.Temperature == nil || *r.Temperature != 0 {
				t.Errorf("temperature %v, want 0", r.Temperature)
			}
			if !bytes.Contains(r.Body, []byte(`"temperature":0`)) {
				t.Errorf("temperature 0 was not sent: %.200s", r.Body)
			}
			if got.Predictions[0] != openaitest.Digest(r) {
				t.Errorf("prediction %q, want the upstream's answer %q", got.Predictions[0], openaitest.Digest(r))
			}
		})
	}
}

func TestOpenAIProxyAnswersBySampleID(t *testing.T) {
	for _, parts := range []bool{false, true} {
		t.Run(fmt.Sprintf("content parts %t", parts), func(t *testing.T) {
			answer := func(r *openaitest.Request) string {
				words := strings.Fields(r.Text())
				return "species of " + words[len(words)-1]
			}
			f := newProxyFixture(t, openaitest.Options{Key: testKey, Answer: answer, ContentParts: parts}, OpenAIProxyOptions{APIKey: testKey, MaxBatchSize: 6})
			var items []contract.RequestItem
			for i := range 6 {
				items = append(items, proxyItem(fmt.Sprintf("id-%d", i), fmt.Sprintf("%s Which bird is item-%d", ph, i), nil, clip{0.5, 16000}))
			}
			got := f.post(t, items...)
			for i := range 6 {
				it := got[fmt.Sprintf("id-%d", i)]
				if it.Failed() {
					t.Fatalf("id-%d failed: %s", i, *it.Error)
				}
				if want := fmt.Sprintf("species of item-%d", i); len(it.Predictions) != 1 || it.Predictions[0] != want {
					t.Errorf("id-%d: predictions %q, want [%q]", i, it.Predictions, want)
				}
				if it.FinishReason != "stop" || it.LatencySec == nil || *it.LatencySec < 0 {
					t.Errorf("id-%d: finish_reason %q, latency %v", i, it.FinishReason, it.LatencySec)
				}
				var u map[string]int
				if err := json.Unmarshal(it.Usage, &u); err != nil || u["prompt_tokens"] <= 0 || u["completion_tokens"] <= 0 {
					t.Errorf("id-%d: usage %s", i, it.Usage)
				}
			}
			if n := f.fake.ChatRequests(); n != 6 {
				t.Errorf("%d upstream requests, want 6", n)
			}
		})
	}
}

func TestOpenAIProxyUpstreamFailures(t *testing.T) {
	httpDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		faults   []openaitest.Fault
		proxyKey string // default testKey
		upstream string // default the fake
		attempts int
		timeout  time.Duration
		// wantErr lists, per sample id, substrings of its error; ids not listed must succeed.
		wantErr   map[string][]string
		notInErr  []string
		requests  int // upstream chat requests; -1: unchecked
		checkWait func(t *testing.T, waits []time.Duration)
	}{
		{
			name:     "429 with Retry-After in seconds is honoured, then success",
			faults:   []openaitest.Fault{{Match: "bad-1", Times: 1, Status: http.StatusTooManyRequests, RetryAfter: "7"}},
			requests: 4,
			checkWait: func(t *testing.T, w []time.Duration) {
				if !slices.Equal(w, []time.Duration{7 * time.Second}) {
					t.Errorf("waits %v, want [7s] (Retry-After)", w)
				}
			},
		},
		{
			name:     "429 with Retry-After as an HTTP date",
			faults:   []openaitest.Fault{{Match: "bad-1", Times: 1, Status: http.StatusTooManyRequests, RetryAfter: httpDate}},
			requests: 4,
			checkWait: func(t *testing.T, w []time.Duration) {
				if len(w) != 1 || w[0] < 20*time.Second || w[0] > 31*time.Second {
					t.Errorf("waits %v, want one of about 30 s (Retry-After %s)", w, httpDate)
				}
			},
		},
		{
			name:     "500 twice is retried with growing backoff",
			faults:   []openaitest.Fault{{Match: "bad-1", Times: 2, Status: http.StatusInternalServerError}},
			requests: 5,
			checkWait: func(t *testing.T, w []time.Duration) {
				if len(w) != 2 || w[0] < 500*time.Millisecond || w[0] > time.Second || w[1] < time.Second || w[1] > 2*time.Second {
					t.Errorf("waits %v, want one in [0.5s, 1s] then one in [1s, 2s]", w)
				}
			},
		},
		{
			name:     "503 until the attempts run out fails that item only",
			faults:   []openaitest.Fault{{Match: "bad-1", Status: http.StatusServiceUnavailable}},
			attempts: 3,
			wantErr:  map[string][]string{"bad-1": {"HTTP 503", "overloaded", "gave up after 3 attempts"}},
			requests: 5,
		},
		{
			name:     "connection refused is retried, then fails",
			upstream: "http://127.0.0.1:1/v1",
			attempts: 2,
			wantErr: map[string][]string{
				"good-0": {"unreachable", "127.0.0.1:1", "gave up after 2 attempts"},
				"bad-1":  {"unreachable"}, "good-2": {"unreachable"}},
			requests: 0,
		},
		{
			name:     "401 on a wrong key is not retried and names the key, not its value",
			proxyKey: "sk-wrong-KEY9876543210zyxw",
			wantErr: map[string][]string{
				"good-0": {"HTTP 401", "check the API key", "[redacted]"},
				"bad-1":  {"HTTP 401"}, "good-2": {"HTTP 401"}},
			notInErr: []string{"sk-wrong", "3210zyxw"},
			requests: 3,
		},
		{
			name:     "403 is not retried",
			faults:   []openaitest.Fault{{Match: "bad-1", Status: http.StatusForbidden}},
			wantErr:  map[string][]string{"bad-1": {"HTTP 403", "check the API key"}},
			requests: 3,
		},
		{
			name: "400 is not retried; an echoed key is redacted",
			faults: []openaitest.Fault{{Match: "bad-1", Status: http.StatusBadRequest,
				Body: `{"error":{"message":"Invalid audio for key ` + testKey + `","type":"invalid_request_error","param":null,"code":null}}`}},
			wantErr:  map[string][]string{"bad-1": {"rejected the request (HTTP 400", "Invalid audio", "[redacted]", "invalid_request_error"}},
			requests: 3,
		},
		{
			name:     "404 points at the model name",
			faults:   []openaitest.Fault{{Match: "bad-1", Status: http.StatusNotFound}},
			wantErr:  map[string][]string{"bad-1": {"HTTP 404", "does not exist", "gpt-4o-audio-preview"}},
			requests: 3,
		},
		{
			name: "Gemini's error list",
			faults: []openaitest.Fault{{Match: "bad-1", Status: http.StatusBadRequest,
				Body: `[{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}]`}},
			wantErr:  map[string][]string{"bad-1": {"HTTP 400", "Request contains an invalid argument. (INVALID_ARGUMENT)"}},
			requests: 3,
		},
		{
			name:     "502 with an HTML body",
			faults:   []openaitest.Fault{{Match: "bad-1", Status: http.StatusBadGateway, Body: "<html><body>Bad gateway</body></html>"}},
			attempts: 2,
			wantErr:  map[string][]string{"bad-1": {"HTTP 502", "Bad gateway", "after 2 attempts"}},
			requests: 4,
		},
		{
			name:     "malformed body fails the item, not retried",
			faults:   []openaitest.Fault{{Match: "bad-1", Malformed: true}},
			wantErr:  map[string][]string{"bad-1": {"not a usable chat completion"}},
			requests: 3,
		},
		{
			name:     "slow upstream beyond the timeout",
			faults:   []openaitest.Fault{{Match: "bad-1", Delay: time.Hour}},
			timeout:  300 * time.Millisecond,
			attempts: 2,
			wantErr:  map[string][]string{"bad-1": {"did not answer within 300ms", "after 2 attempts"}},
			requests: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProxyFixture(t, openaitest.Options{Key: testKey}, OpenAIProxyOptions{
				APIKey: cmp.Or(tt.proxyKey, testKey), KeySource: "$OPENAI_API_KEY", Upstream: tt.upstream,
				Attempts: tt.attempts, Timeout: tt.timeout, BackoffBase: time.Second,
			})
			for _, fl := range tt.faults {
				f.fake.Inject(fl)
			}
			items := []contract.RequestItem{
				proxyItem("good-0", ph+" item good-0", nil, clip{0.25, 16000}),
				proxyItem("bad-1", ph+" item bad-1", nil, clip{0.25, 16000}),
				proxyItem("good-2", "text only item good-2", nil),
			}
			got := f.post(t, items...)
			for _, it := range items {
				a := got[it.SampleID]
				want, shouldFail := tt.wantErr[it.SampleID]
				if !shouldFail {
					if a.Failed() {
						t.Errorf("%s failed beside a failing neighbour: %s", it.SampleID, *a.Error)
					} else if !strings.HasPrefix(a.Predictions[0], "openaitest:") {
						t.Errorf("%s: prediction %q", it.SampleID, a.Predictions[0])
					}
					continue
				}
				if !a.Failed() {
					t.Errorf("%s succeeded with %q, want an error", it.SampleID, a.Predictions)
					continue
				}
				for _, w := range append(want, "") {
					if !strings.Contains(*a.Error, w) {
						t.Errorf("%s: error %q lacks %q", it.SampleID, *a.Error, w)
					}
				}
				for _, w := range tt.notInErr {
					if strings.Contains(*a.Error, w) {
						t.Errorf("%s: error %q contains %q", it.SampleID, *a.Error, w)
					}
				}
			}
			if tt.requests >= 0 && f.fake.ChatRequests() != tt.requests {
				t.Errorf("%d upstream requests, want %d", f.fake.ChatRequests(), tt.requests)
			}
			if tt.checkWait != nil {
				tt.checkWait(t, f.recordedWaits())
			}
			if v := f.fake.Violations(); len(v) > 0 {
				t.Errorf("the upstream refused requests as malformed: %q", v)
			}
		})
	}
}

// The concurrency limit holds over all batches: the fake holds every answer until as many
// requests are in flight as the limit allows; the count must reach the limit and never pass
// it.
func TestOpenAIProxyConcurrencyLimit(t *testing.T) {
	const limit = 3
	hold := make(chan struct{})
	f := newProxyFixture(t, openaitest.Options{Key: testKey}, OpenAIProxyOptions{APIKey: testKey, Concurrency: limit, MaxBatchSize: 8})
	f.fake.Inject(openaitest.Fault{Hold: hold})
	var wg sync.WaitGroup
	results := make([]map[string]contract.ResponseItem, 2)
	errs := make([]error, 2)
	for b := range 2 {
		var items []contract.RequestItem
		for i := range 4 {
			items = append(items, proxyItem(fmt.Sprintf("b%d-%d", b, i), fmt.Sprintf("%s batch %d item %d", ph, b, i), nil, clip{0.1, 16000}))
		}
		wg.Go(func() { results[b], errs[b] = f.tryPost(items...) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.fake.InFlight() < limit {
		if time.Now().After(deadline) {
			close(hold)
			wg.Wait()
			t.Fatalf("only %d upstream requests in flight after 30 s, want %d", f.fake.InFlight(), limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if m := f.fake.MaxInFlight(); m != limit {
		t.Errorf("at most %d upstream requests were in flight, want exactly the limit %d", m, limit)
	}
	for b, r := range results {
		if errs[b] != nil {
			t.Errorf("batch %d: %v", b, errs[b])
		}
		for id, it := range r {
			if it.Failed() {
				t.Errorf("%s failed: %s", id, *it.Error)
			}
		}
	}
	if n := f.fake.ChatRequests(); n != 8 {
		t.Errorf("%d upstream requests, want 8", n)
	}
}

func TestOpenAIProxyTextOnly(t *testing.T) {
	f := newProxyFixture(t, openaitest.Options{Key: testKey, Models: []openaitest.ModelEntry{{ID: "gemma-judge", Object: "model", OwnedBy: "vllm", Created: time.Now().Unix()}}},
		OpenAIProxyOptions{APIKey: testKey, Model: "gemma-judge", TextOnly: true})
	in := f.info(t)
	if !slices.Equal(in.AudioPayloadTypes, []string{contract.PayloadBase64WAV}) || string(in.Extra["text_only"]) != "true" {
		t.Errorf("/info of a text-only proxy: audio_payload_types %v, text_only %s", in.AudioPayloadTypes, in.Extra["text_only"])
	}
	got := f.post(t,
		proxyItem("text", "Does 'American Robin' name the same species as 'Turdus migratorius'? Answer YES or NO.", nil),
		proxyItem("audio", ph+" What is this?", nil, clip{0.25, 16000}),
	)
	if it := got["text"]; it.Failed() {
		t.Errorf("text item failed: %s", *it.Error)
	}
	if it := got["audio"]; !it.Failed() || !strings.Contains(*it.Error, "text-only") {
		t.Errorf("audio item in text-only mode: %+v", it)
	}
	recv := f.fake.Received()
	if len(recv) != 1 || recv[0].Messages[0].Parts != nil || !strings.HasPrefix(recv[0].Messages[0].Text, "Does 'American Robin'") {
		t.Fatalf("upstream received %+v, want one request with plain string content", recv)
	}
	if recv[0].Model != "gemma-judge" {
		t.Errorf("model %q", recv[0].Model)
	}
}

func TestOpenAIProxyInfo(t *testing.T) {
	created := time.Unix(openaitest.DefaultCreated, 0).UTC().Format(time.RFC3339)
	tests := []struct {
		name         string
		fo           openaitest.Options
		po           OpenAIProxyOptions
		wantRevision string
		wantOwner    string
		wantListed   int // GET /models requests
		wantLog      string
	}{
		{name: "revision from the model list", fo: openaitest.Options{Key: testKey}, po: OpenAIProxyOptions{APIKey: testKey, AudioCapSeconds: 10},
			wantRevision: "created:" + created, wantOwner: "system", wantListed: 1},
		{name: "pinned revision", fo: openaitest.Options{Key: testKey}, po: OpenAIProxyOptions{APIKey: testKey, ModelRevision: "2024-12-17"},
			wantRevision: "2024-12-17", wantListed: 0},
		{name: "model list fails", fo: openaitest.Options{Key: testKey, ModelsStatus: http.StatusInternalServerError}, po: OpenAIProxyOptions{APIKey: testKey},
			wantRevision: UnknownRevision, wantListed: 1, wantLog: "could not read the upstream's model list"},
		{name: "model list refuses the key", fo: openaitest.Options{Key: testKey}, po: OpenAIProxyOptions{APIKey: "sk-other-KEY111122223333"},
			wantRevision: UnknownRevision, wantListed: 1, wantLog: "HTTP 401"},
		{name: "model not listed", fo: openaitest.Options{Key: testKey}, po: OpenAIProxyOptions{APIKey: testKey, Model: "gpt-5"},
			wantRevision: UnknownRevision, wantListed: 1, wantLog: "does not name the model"},
		{name: "vLLM names the weights it loaded",
			fo: openaitest.Options{Models: []openaitest.ModelEntry{{ID: "qwen3-omni", Object: "model", Created: time.Now().Unix(), OwnedBy: "vllm", Root: "/models/Qwen3-Omni-30B-A3B-Instruct"}}},
			po: OpenAIProxyOptions{Model: "qwen3-omni"}, wantRevision: "/models/Qwen3-Omni-30B-A3B-Instruct", wantOwner: "vllm", wantListed: 1},
		{name: "vLLM's created stamps are not revisions",
			fo: openaitest.Options{Models: []openaitest.ModelEntry{{ID: "Qwen/Qwen3-Omni", Object: "model", Created: time.Now().Unix(), OwnedBy: "vllm", Root: "Qwen/Qwen3-Omni"}}},
			po: OpenAIProxyOptions{Model: "Qwen/Qwen3-Omni"}, wantRevision: UnknownRevision, wantOwner: "vllm", wantListed: 1},
		{name: "Gemini lists models/<name>",
			fo: openaitest.Options{Key: testKey, Models: []openaitest.ModelEntry{{ID: "models/gemini-2.5-flash", Object: "model", OwnedBy: "google"}}},
			po: OpenAIProxyOptions{APIKey: testKey, Model: "gemini-2.5-flash"}, wantRevision: UnknownRevision, wantOwner: "google", wantListed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newProxyFixture(t, tt.fo, tt.po)
			in := f.info(t)
			want := contract.Info{
				Name: OpenAIProxyName, Model: cmp.Or(tt.po.Model, openaitest.DefaultModel), ModelRevision: tt.wantRevision,
				AudioPayloadTypes: []string{contract.PayloadBase64WAV}, MaxBatchSize: DefaultOpenAIBatch, SupportsBatching: true,
				SchemaVersions: []string{contract.PredictionsV1},
			}
			in.Extra, want.Extra = nil, nil
			if !equalInfo(in, want) {
				t.Errorf("/info %+v\nwant  %+v", in, want)
			}
			extra := f.info(t).Extra
			u, _ := url.Parse(f.fake.URL)
			wantExtra := map[string]string{
				"upstream_host":     fmt.Sprintf("%q", u.Host),
				"audio_cap_seconds": fmt.Sprint(tt.po.AudioCapSeconds),
				"text_only":         "false",
			}
			if tt.wantOwner != "" {
				wantExtra["upstream_owned_by"] = fmt.Sprintf("%q", tt.wantOwner)
			}
			if len(extra) != len(wantExtra) {
				t.Errorf("/info extras %v, want %v", extra, wantExtra)
			}
			for k, v := range wantExtra {
				if string(extra[k]) != v {
					t.Errorf("/info %s = %s, want %s", k, extra[k], v)
				}
			}
			if n := f.fake.ModelRequests(); n != tt.wantListed {
				t.Errorf("%d GET /models, want %d", n, tt.wantListed)
			}
			if tt.wantLog != "" && !strings.Contains(f.logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, f.logs.String())
			}
		})
	}
}

func equalInfo(a, b contract.Info) bool {
	return a.Name == b.Name && a.Model == b.Model && a.ModelRevision == b.ModelRevision &&
		slices.Equal(a.AudioPayloadTypes, b.AudioPayloadTypes) && a.MaxBatchSize == b.MaxBatchSize &&
		a.SupportsBatching == b.SupportsBatching && slices.Equal(a.SchemaVersions, b.SchemaVersions)
}

// The conformance suite passes against the proxy in front of the fake upstream. (A text-only
// proxy refuses the checker's audio items by design, so it is not run in that mode.)
func TestOpenAIProxyConformance(t *testing.T) {
	for _, batch := range []int{1, 4} {
		t.Run(fmt.Sprintf("max batch %d", batch), func(t *testing.T) {
			f := newProxyFixture(t, openaitest.Options{Key: testKey}, OpenAIProxyOptions{APIKey: testKey, MaxBatchSize: batch, AudioCapSeconds: 10})
			rep := CheckLauncher(context.Background(), nil, f.predictURL, 0)
			var out bytes.Buffer
			WriteReport(&out, rep)
			if !rep.OK() {
				t.Fatalf("the proxy does not conform:\n%s", out.String())
			}
			if f.fake.ChatRequests() == 0 {
				t.Error("the conformance checks never reached the upstream")
			}
			if v := f.fake.Violations(); len(v) > 0 {
				t.Errorf("the upstream refused requests: %q", v)
			}
		})
	}
}

// A client that hangs up cancels the items' upstream requests.
func TestOpenAIProxyCancelled(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	f := newProxyFixture(t, openaitest.Options{Key: testKey}, OpenAIProxyOptions{APIKey: testKey})
	f.fake.Inject(openaitest.Fault{Hold: hold})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []contract.ResponseItem, 1)
	go func() {
		done <- f.proxy.Predict(ctx, []contract.RequestItem{proxyItem("c", "held", nil)})
	}()
	for f.fake.InFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	got := <-done
	if len(got) != 1 || !got[0].Failed() || !strings.Contains(*got[0].Error, "cancelled") {
		t.Errorf("answers after cancellation: %+v", got)
	}
}

func TestNewOpenAIProxyOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    OpenAIProxyOptions
		wantErr string
	}{
		{"no upstream", OpenAIProxyOptions{Model: "m"}, "no upstream"},
		{"not http", OpenAIProxyOptions{Upstream: "ftp://example.org/v1", Model: "m"}, "http:// or https://"},
		{"no host", OpenAIProxyOptions{Upstream: "https:///v1", Model: "m"}, "no host"},
		{"credentials in the URL", OpenAIProxyOptions{Upstream: "https://user:sk-SECRETPASS@example.org/v1", Model: "m"}, "carries credentials"},
		{"key in the query", OpenAIProxyOptions{Upstream: "https://example.org/v1?key=AIzaSECRETQ", Model: "m"}, "query"},
		{"no model", OpenAIProxyOptions{Upstream: "https://example.org/v1"}, "no model"},
		{"negative concurrency", OpenAIProxyOptions{Upstream: "https://example.org/v1", Model: "m", Concurrency: -1}, "concurrency"},
		{"negative attempts", OpenAIProxyOptions{Upstream: "https://example.org/v1", Model: "m", Attempts: -2}, "attempts"},
		{"negative cap", OpenAIProxyOptions{Upstream: "https://example.org/v1", Model: "m", AudioCapSeconds: -1}, "audio cap"},
		{"bad max tokens field", OpenAIProxyOptions{Upstream: "https://example.org/v1", Model: "m", MaxTokensField: "max_new_tokens"}, "max tokens field"},
		{"key with white space", OpenAIProxyOptions{Upstream: "https://example.org/v1", Model: "m", APIKey: "sk-a b"}, "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewOpenAIProxy(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q reveals a secret", err)
			}
		})
	}
	// A full endpoint URL is accepted as its base.
	m, err := NewOpenAIProxy(OpenAIProxyOptions{Upstream: "http://127.0.0.1:1/v1/chat/completions", Model: "m", ModelRevision: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if p := m.(*openAIProxy); p.chatURL != "http://127.0.0.1:1/v1/chat/completions" || p.modelsURL != "http://127.0.0.1:1/v1/models" {
		t.Errorf("chat %s, models %s", p.chatURL, p.modelsURL)
	}
}

func TestParseChatCompletion(t *testing.T) {
	tests := []struct {
		name, body string
		want       string
		wantErr    string
	}{
		{"string content", `{"model":"gpt-4o-audio-preview-2024-12-17","choices":[{"message":{"role":"assistant","content":"American Robin"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`, "American Robin", ""},
		{"text parts", `{"choices":[{"message":{"content":[{"type":"text","text":"Amer"},{"type":"text","text":"ican Robin"}]},"finish_reason":"length"}]}`, "American Robin", ""},
		{"empty answer", `{"choices":[{"message":{"content":""},"finish_reason":"stop"}]}`, "", ""},
		{"refusal", `{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`, "", "refused: I can't help"},
		{"no content", `{"choices":[{"message":{"role":"assistant"},"finish_reason":"content_filter"}]}`, "", `no content (finish_reason "content_filter")`},
		{"no choices", `{"choices":[]}`, "", "no choices"},
		{"not JSON", `<html>oops</html>`, "", "invalid character"},
		{"truncated", `{"choices":[{"message":{"content":"Am`, "", "unexpected end"},
		{"content is a number", `{"choices":[{"message":{"content":42}}]}`, "", "neither a string nor a list"},
		{"parts without text", `{"choices":[{"message":{"content":[{"type":"audio"}]}}]}`, "", "no text part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChatCompletion([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.text != tt.want {
				t.Errorf("text %q, want %q", got.text, tt.want)
			}
		})
	}
	got, _ := parseChatCompletion([]byte(tests[0].body))
	if got.model != "gpt-4o-audio-preview-2024-12-17" || got.finishReason != "stop" || string(got.usage) != `{"completion_tokens":3,"prompt_tokens":12,"total_tokens":15}` {
		t.Errorf("answer %+v (usage %s)", got, got.usage)
	}
}

func FuzzParseChatCompletion(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`,
		`{"choices":[{"message":{"content":[{"type":"text","text":"a"}]}}]}`,
		`{"choices":[{"message":null}]}`, `[]`, `null`, `{"error":{"message":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ans, err := parseChatCompletion(b)
		if err == nil && ans.usage != nil && !json.Valid(ans.usage) {
			t.Errorf("usage %q is not JSON", ans.usage)
		}
		_ = upstreamMessage(b)
	})
}

func TestUpstreamMessage(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "Rate limit reached (requests, rate_limit_exceeded)"},
		{`{"error":{"message":"Bad thing","type":"invalid_request_error","code":null}}`, "Bad thing (invalid_request_error)"},
		{`[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]`, "Resource has been exhausted (RESOURCE_EXHAUSTED)"},
		{`{"object":"error","message":"The model does not exist.","type":"NotFoundError","param":null,"code":404}`, "The model does not exist. (NotFoundError)"},
		{`{"error":"upstream connect error"}`, "upstream connect error"},
		{"<html>\n  Bad   gateway\n</html>", "<html> Bad gateway </html>"},
		{"", "(empty body)"},
	}
	for _, tt := range tests {
		if got := upstreamMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("upstreamMessage(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
