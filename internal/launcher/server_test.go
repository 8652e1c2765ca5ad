package launcher

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// wav64 is a small valid WAV, base64-encoded.
var wav64 = string(audio.AppendBase64WAV(nil, toneClip(16000, 0.05, 440), 16000))

func audioItem(id, question string) contract.RequestItem {
	return contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: contract.AudioPlaceholder + " " + question}},
		AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: wav64, SampleRate: 16000}},
		GenerationConfig: contract.GenerationConfig{"max_tokens": 8},
	}
}

func textItem(id, text string) contract.RequestItem {
	return contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: text}},
		AudioInputs:      []contract.AudioInput{},
		GenerationConfig: contract.GenerationConfig{},
	}
}

func requestBody(t testing.TB, schema string, items ...contract.RequestItem) []byte {
	t.Helper()
	b, err := json.Marshal(contract.Request{SchemaVersion: schema, Requests: items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newDummyServer(t *testing.T, opts DummyOptions, sopts ServerOptions) *httptest.Server {
	t.Helper()
	m, err := NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(m, sopts))
	t.Cleanup(srv.Close)
	return srv
}

// call sends one request and returns status, Content-Type and body.
func call(t *testing.T, method, url string, body io.Reader) (int, string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// onlyReader hides the concrete type of a reader so the client cannot know the length and
// sends the body chunked.
type onlyReader struct{ io.Reader }

func TestHandlerStatus(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{MaxBatchSize: 2}, ServerOptions{MaxBodyBytes: 64 << 10})
	big := bytes.Repeat([]byte("x"), 65<<10)
	tests := []struct {
		name      string
		method    string
		path      string
		body      func() io.Reader
		want      int
		wantError string // substring of the JSON "error" field; "" for none expected
	}{
		{"predict GET", http.MethodGet, "/predict", nil, 405, "method GET not allowed"},
		{"health POST", http.MethodPost, "/health", nil, 405, "not allowed"},
		{"info DELETE", http.MethodDelete, "/info", nil, 405, "not allowed"},
		{"unknown path", http.MethodGet, "/v1/predict", nil, 404, "no such endpoint"},
		{"not JSON", http.MethodPost, "/predict", func() io.Reader { return strings.NewReader("{nope") }, 400, "not a predictions_v1 JSON object"},
		{"empty body", http.MethodPost, "/predict", func() io.Reader { return strings.NewReader("") }, 400, "not a predictions_v1 JSON object"},
		{"wrong schema", http.MethodPost, "/predict", func() io.Reader {
			return bytes.NewReader(requestBody(t, "predictions_v2", textItem("a", "hi")))
		}, 400, `schema_version is "predictions_v2"`},
		{"no requests", http.MethodPost, "/predict", func() io.Reader {
			return bytes.NewReader(requestBody(t, contract.PredictionsV1))
		}, 400, "requests is empty"},
		{"duplicate ids", http.MethodPost, "/predict", func() io.Reader {
			return bytes.NewReader(requestBody(t, contract.PredictionsV1, textItem("a", "x"), textItem("a", "y")))
		}, 400, `duplicate sample_id "a"`},
		{"over batch", http.MethodPost, "/predict", func() io.Reader {
			return bytes.NewReader(requestBody(t, contract.PredictionsV1, textItem("a", "x"), textItem("b", "y"), textItem("c", "z")))
		}, 413, "batch of 3 items exceeds max_batch_size 2"},
		{"body over limit", http.MethodPost, "/predict", func() io.Reader { return bytes.NewReader(big) }, 413, "exceeds the limit of 65536 bytes"},
		{"chunked body over limit", http.MethodPost, "/predict", func() io.Reader { return onlyReader{bytes.NewReader(big)} }, 413, "exceeds the limit of 65536 bytes"},
		{"chunked valid", http.MethodPost, "/predict", func() io.Reader {
			return onlyReader{bytes.NewReader(requestBody(t, contract.PredictionsV1, textItem("a", "x")))}
		}, 200, ""},
		{"health", http.MethodGet, "/health", nil, 200, ""},
		{"info", http.MethodGet, "/info", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			status, ctype, b := call(t, tt.method, srv.URL+tt.path, body)
			if status != tt.want {
				t.Fatalf("status %d, want %d; body %s", status, tt.want, b)
			}
			if ctype != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ctype)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("body is not a JSON object: %v: %s", err, b)
			}
			if tt.wantError != "" {
				msg, _ := doc["error"].(string)
				if !strings.Contains(msg, tt.wantError) {
					t.Errorf("error %q does not contain %q", msg, tt.wantError)
				}
			}
			if status == 413 && strings.Contains(tt.wantError, "max_batch_size") {
				if got, _ := doc["max_batch_size"].(float64); got != 2 {
					t.Errorf("413 body max_batch_size = %v, want 2: %s", doc["max_batch_size"], b)
				}
			}
		})
	}
}

func TestHandlerPerItemErrors(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{}, ServerOptions{})
	good := audioItem("good", "what is it?")
	noMessages := audioItem("no-messages", "")
	noMessages.Messages = nil
	mismatch := audioItem("mismatch", "two placeholders "+contract.AudioPlaceholder)
	badB64 := audioItem("bad-base64", "x")
	badB64.AudioInputs[0].Data = "!!!!not base64!!!!"
	notWAV := audioItem("not-wav", "x")
	notWAV.AudioInputs[0].Data = base64.StdEncoding.EncodeToString([]byte("ID3\x03 this is an mp3, honest"))
	short := audioItem("short", "x")
	short.AudioInputs[0].Data = base64.StdEncoding.EncodeToString([]byte("RIFF"))
	badTail := audioItem("bad-tail", "x")
	badTail.AudioInputs[0].Data = wav64[:len(wav64)-8] + "@@@@@@@@"
	path := audioItem("file-path", "x")
	path.AudioInputs[0] = contract.AudioInput{PayloadType: contract.PayloadFilePath, Data: "/tmp/a.wav", SampleRate: 16000}
	noRate := audioItem("no-rate", "x")
	noRate.AudioInputs[0].SampleRate = 0
	text := textItem("text-only", "judge this")

	items := []contract.RequestItem{good, noMessages, mismatch, badB64, notWAV, short, badTail, path}
	items2 := []contract.RequestItem{noRate, text}
	want := map[string]string{
		"good":        "",
		"no-messages": "messages is empty",
		"mismatch":    "2 audio placeholder(s)",
		"bad-base64":  "audio_inputs[0]: not valid base64",
		"not-wav":     "audio_inputs[0]: not a WAV file",
		"short":       "audio_inputs[0]: not a WAV file",
		"bad-tail":    "audio_inputs[0]: not valid base64",
		"file-path":   `payload_type "file_path" is not supported`,
		"no-rate":     "sample_rate 0",
		"text-only":   "",
	}
	for _, batch := range [][]contract.RequestItem{items, items2} {
		status, _, body := call(t, http.MethodPost, srv.URL+"/predict", bytes.NewReader(requestBody(t, contract.PredictionsV1, batch...)))
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		for _, o := range contract.MatchResponse(body, ids(batch)) {
			w := want[o.SampleID]
			switch {
			case w == "" && o.Err != "":
				t.Errorf("%s failed: %s", o.SampleID, o.Err)
			case w == "" && !strings.HasPrefix(o.Prediction, "hash:"):
				t.Errorf("%s: prediction %q, want a hash answer", o.SampleID, o.Prediction)
			case w != "" && !strings.Contains(o.Err, w):
				t.Errorf("%s: error %q, want it to contain %q", o.SampleID, o.Err, w)
			}
		}
	}
}

func TestHandlerReordersResponses(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{}, ServerOptions{})
	for _, n := range []int{2, 3, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var items []contract.RequestItem
			for i := range n {
				items = append(items, audioItem(fmt.Sprintf("id-%d", i), fmt.Sprintf("q%d", i)))
			}
			// One malformed item: failed items are reordered too.
			items[1].AudioInputs = nil
			status, _, body := call(t, http.MethodPost, srv.URL+"/predict", bytes.NewReader(requestBody(t, contract.PredictionsV1, items...)))
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			got := responseIDs(body)
			want := ids(items)
			slices.Reverse(want)
			if !slices.Equal(got, want) {
				t.Errorf("response order %v, want %v", got, want)
			}
		})
	}
}

func TestHandlerHealthReady(t *testing.T) {
	var mu sync.Mutex
	ready := false
	srv := newDummyServer(t, DummyOptions{}, ServerOptions{Ready: func() bool { mu.Lock(); defer mu.Unlock(); return ready }})
	for _, tt := range []struct {
		ready bool
		want  int
	}{{false, 503}, {true, 200}, {false, 503}} {
		mu.Lock()
		ready = tt.ready
		mu.Unlock()
		if status, _, body := call(t, http.MethodGet, srv.URL+"/health", nil); status != tt.want {
			t.Errorf("ready=%t: /health %d, want %d (%s)", tt.ready, status, tt.want, body)
		}
	}
}

func TestHandlerInfo(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{Mode: ModeHash, MaxBatchSize: 5, Latency: 1500 * time.Millisecond, Slots: 3}, ServerOptions{})
	status, _, body := call(t, http.MethodGet, srv.URL+"/info", nil)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	info, err := contract.ParseInfo(body)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != DummyName || info.Model != "dummy-hash" || info.ModelRevision != DummyRevision ||
		info.MaxBatchSize != 5 || !info.SupportsBatching || !info.Speaks(contract.PredictionsV1) ||
		!slices.Equal(info.AudioPayloadTypes, []string{contract.PayloadBase64WAV}) {
		t.Errorf("unexpected /info %+v", info)
	}
	for k, v := range map[string]string{"mode": `"hash"`, "latency_ms": "1500", "slots": "3"} {
		if got := string(info.Extra[k]); got != v {
			t.Errorf("extra %s = %s, want %s", k, got, v)
		}
	}
	if _, ok := info.Extra["fail_every"]; ok {
		t.Error("fail_every present although FailEvery is 0")
	}
}

// fakeModel answers through a function, to test how the handler treats a model's answers.
type fakeModel struct {
	info    contract.Info
	predict func(ctx context.Context, items []contract.RequestItem) []contract.ResponseItem
}

func (f fakeModel) Info() contract.Info { return f.info }
func (f fakeModel) Predict(ctx context.Context, items []contract.RequestItem) []contract.ResponseItem {
	return f.predict(ctx, items)
}

func TestHandlerNormalisesModelAnswers(t *testing.T) {
	info := contract.Info{Name: "fake", Model: "m", ModelRevision: "r", AudioPayloadTypes: []string{"base64_wav"}, MaxBatchSize: 8, SupportsBatching: true, SchemaVersions: []string{contract.PredictionsV1}}
	var mu sync.Mutex
	var seen []string
	m := fakeModel{info: info, predict: func(_ context.Context, items []contract.RequestItem) []contract.ResponseItem {
		mu.Lock()
		seen = ids(items)
		mu.Unlock()
		blank := "  "
		return []contract.ResponseItem{
			{SampleID: "ok", Predictions: []string{"robin"}},
			{SampleID: "blank-error", Predictions: []string{"wren"}, Error: &blank},
			{SampleID: "empty", Predictions: nil},
			{SampleID: "stranger", Predictions: []string{"x"}},
			// "missing" is not answered at all.
		}
	}}
	srv := httptest.NewServer(NewHandler(m, ServerOptions{}))
	defer srv.Close()
	items := []contract.RequestItem{textItem("ok", "a"), textItem("blank-error", "b"), textItem("empty", "c"), textItem("missing", "d"), textItem("invalid", "")}
	items[4].Messages = nil
	status, _, body := call(t, http.MethodPost, srv.URL+"/predict", bytes.NewReader(requestBody(t, contract.PredictionsV1, items...)))
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"ok", "blank-error", "empty", "missing"}; !slices.Equal(seen, want) {
		t.Errorf("model saw %v, want %v (invalid items must not reach it)", seen, want)
	}
	if got := responseIDs(body); len(got) != len(items) {
		t.Errorf("response ids %v: want exactly one per request item", got)
	}
	want := map[string]string{"ok": "", "blank-error": "", "empty": "model returned no prediction", "missing": "model gave no answer", "invalid": "messages is empty"}
	for _, o := range contract.MatchResponse(body, ids(items)) {
		w := want[o.SampleID]
		if (w == "") != (o.Err == "") || !strings.Contains(o.Err, w) {
			t.Errorf("%s: err %q, want %q", o.SampleID, o.Err, w)
		}
	}
}

func TestServe(t *testing.T) {
	m, err := NewDummy(DummyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "127.0.0.1:0", NewHandler(m, ServerOptions{}), func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("Serve returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never called ready")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("base URL %q", base)
	}
	if status, _, body := call(t, http.MethodGet, base+"/health", nil); status != 200 {
		t.Errorf("/health: %d %s", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if err := Serve(context.Background(), "127.0.0.1:-1", http.NotFoundHandler(), nil); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("Serve on a bad address: %v", err)
	}
}

func FuzzPredictHandler(f *testing.F) {
	m, err := NewDummy(DummyOptions{MaxBatchSize: 3})
	if err != nil {
		f.Fatal(err)
	}
	h := NewHandler(m, ServerOptions{MaxBodyBytes: 1 << 20})
	f.Add(requestBody(f, contract.PredictionsV1, audioItem("a", "q"), textItem("b", "t")))
	f.Add(requestBody(f, contract.PredictionsV1, textItem("a", "q"), textItem("a", "t")))
	f.Add(requestBody(f, contract.PredictionsV1, textItem("a", "q"), textItem("b", "t"), textItem("c", "t"), textItem("d", "t")))
	f.Add([]byte(`{"schema_version":"predictions_v1","requests":[{"sample_id":"x","messages":[{"role":"user","content":"<Audio><AudioHere></Audio>"}],"audio_inputs":[{"payload_type":"base64_wav","data":"UklGRiQAAABXQVZF","sample_rate":1}],"generation_config":{"k":[1,{"z":null}]}}]}`))
	f.Add([]byte(`{"schema_version":"predictions_v1","requests":[{"sample_id":"","messages":null,"audio_inputs":[{}],"generation_config":null}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(body))
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.Bytes())
		}
		if rec.Code != 200 {
			return
		}
		req2, err := contract.DecodeRequest(body)
		if err != nil {
			t.Fatalf("200 for a request DecodeRequest refuses: %v", err)
		}
		sent := ids(req2.Requests)
		got := responseIDs(rec.Body.Bytes())
		if len(got) != len(sent) {
			t.Fatalf("%d answers for %d items", len(got), len(sent))
		}
		for _, o := range contract.MatchResponse(rec.Body.Bytes(), sent) {
			if o.SampleID == "" {
				continue // items without an id cannot be matched; each got its error
			}
			if strings.Contains(o.Err, "launcher sent no response item") || strings.Contains(o.Err, "malformed response item") || strings.Contains(o.Err, "more than once") {
				t.Fatalf("item %q: %s", o.SampleID, o.Err)
			}
		}
	})
}

// BenchmarkPredictHandler measures the dummy launcher's cost per batch of 8 items of 10 s
// at 20 kHz (about 530 KB of base64 each), through the handler without a network.
func BenchmarkPredictHandler(b *testing.B) {
	m, err := NewDummy(DummyOptions{})
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(m, ServerOptions{})
	clip := string(audio.AppendBase64WAV(nil, toneClip(20000, 10, 440), 20000))
	var items []contract.RequestItem
	for i := range 8 {
		it := audioItem(fmt.Sprint(i), "what is it?")
		it.AudioInputs[0].Data = clip
		items = append(items, it)
	}
	body := requestBody(b, contract.PredictionsV1, items...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func TestHandlerToken(t *testing.T) {
	srv := newDummyServer(t, DummyOptions{}, ServerOptions{Token: "s3cret-token"})
	body, err := json.Marshal(contract.Request{SchemaVersion: contract.PredictionsV1, Requests: []contract.RequestItem{audioItem("a", "q")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{http.MethodGet, "/health", "", 200},
		{http.MethodGet, "/info", "", 401},
		{http.MethodGet, "/info", "Bearer wrong", 401},
		{http.MethodGet, "/info", "s3cret-token", 401},
		{http.MethodGet, "/info", "Bearer s3cret-token", 200},
		{http.MethodPost, "/predict", "", 401},
		{http.MethodPost, "/predict", "Bearer s3cret-tokenX", 401},
		{http.MethodPost, "/predict", "Bearer s3cret-token", 200},
	} {
		var rd io.Reader
		if tt.method == http.MethodPost {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", tt.method, tt.path, tt.auth, resp.StatusCode, tt.want, b)
		}
		if tt.want == 401 && bytes.Contains(b, []byte("s3cret")) {
			t.Errorf("401 body leaks the token: %s", b)
		}
	}
}
