package predict

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

// fast are options that keep retries quick in tests (no assertion depends on time).
func fast(o Options) Options {
	o.Backoff = time.Millisecond
	o.Cooldown = 5 * time.Millisecond
	return o
}

// reference answers every item through a launcher without faults.
func reference(t *testing.T, items []Item) map[string]Result {
	t.Helper()
	srv := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 4})
	c, err := Connect(context.Background(), srv.URL+"/predict", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return runAll(t, c, items)
}

// Every fault of the dummy is retried until the item succeeds, and every answer is the
// sample's own.
func TestRetriesThroughEveryFault(t *testing.T) {
	items := makeItems(t, 40)
	// Items of one content share an answer; give each its own content so that a mis-
	// attributed answer shows.
	want := reference(t, items)
	for _, tc := range []struct {
		name string
		opts launcher.DummyOptions
	}{
		{"fail-rate", launcher.DummyOptions{FailRate: 0.3}},
		{"drop-rate", launcher.DummyOptions{DropRate: 0.3}},
		{"429", launcher.DummyOptions{StatusRate: 0.3, Status: 429, RetryAfter: 5 * time.Millisecond}},
		{"500", launcher.DummyOptions{StatusRate: 0.3, Status: 500}},
		{"503", launcher.DummyOptions{StatusRate: 0.3, Status: 503}},
		{"bad ids", launcher.DummyOptions{BadIDsRate: 0.4}},
		{"malformed", launcher.DummyOptions{MalformedRate: 0.3}},
		{"all at once", launcher.DummyOptions{FailRate: 0.2, DropRate: 0.1, StatusRate: 0.1, Status: 429, RetryAfter: time.Millisecond, BadIDsRate: 0.1, MalformedRate: 0.1, LatencyJitter: 2 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.MaxBatchSize = 4
			tc.opts.Seed = 11
			srv := dummyServer(t, tc.opts)
			c, err := Connect(context.Background(), srv.URL+"/predict", fast(Options{InFlight: 3, Attempts: 40}))
			if err != nil {
				t.Fatal(err)
			}
			got := runAll(t, c, items)
			retried := 0
			for id, r := range got {
				if r.Err != "" {
					t.Errorf("%s failed after %d attempts: %s", id, r.Attempts, r.Err)
					continue
				}
				if r.Prediction != want[id].Prediction {
					t.Errorf("%s: answer %q, its own is %q", id, r.Prediction, want[id].Prediction)
				}
				if !strings.Contains(string(r.Item), `"`+id+`"`) {
					t.Errorf("%s: the recorded answer item is another's: %s", id, r.Item)
				}
				if r.Attempts > 1 {
					retried++
				}
			}
			if retried == 0 {
				t.Error("no item needed a retry: the fault did not happen")
			}
		})
	}
}

// When attempts run out, each item gets its own error: never a prediction, never a Run error.
func TestFaultsExhaustAttempts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts launcher.DummyOptions
		want string
	}{
		{"fail-rate", launcher.DummyOptions{FailRate: 1}, launcher.InjectedItemFailure},
		{"drop-rate", launcher.DummyOptions{DropRate: 1}, "POST"},
		{"429", launcher.DummyOptions{StatusRate: 1, Status: 429, RetryAfter: time.Millisecond}, "HTTP 429"},
		{"bad ids", launcher.DummyOptions{BadIDsRate: 1}, ""},
		{"malformed", launcher.DummyOptions{MalformedRate: 1}, "not a predictions_v1 object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.MaxBatchSize = 4
			srv := dummyServer(t, tc.opts)
			c, err := Connect(context.Background(), srv.URL+"/predict", fast(Options{InFlight: 2, Attempts: 3}))
			if err != nil {
				t.Fatal(err)
			}
			items := makeItems(t, 10)
			want := reference(t, items)
			got := runAll(t, c, items)
			failed := 0
			for id, r := range got {
				if r.Err == "" {
					// Bad ids spoil one item of a batch: the others are answered, correctly.
					if tc.name != "bad ids" || r.Prediction != want[id].Prediction {
						t.Errorf("%s: prediction %q despite the fault", id, r.Prediction)
					}
					continue
				}
				failed++
				if r.Prediction != "" || r.Attempts != 3 || !strings.Contains(r.Err, tc.want) || !strings.Contains(r.Err, "after 3 attempts") {
					t.Errorf("%s: %q, prediction %q after %d attempts", id, r.Err, r.Prediction, r.Attempts)
				}
			}
			if failed == 0 {
				t.Error("no item failed")
			}
		})
	}
}

// countingHandler counts /predict requests and their highest concurrency.
type countingHandler struct {
	inner          http.Handler
	posts, now, hi atomic.Int64
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/predict" {
		h.posts.Add(1)
		n := h.now.Add(1)
		defer h.now.Add(-1)
		for {
			m := h.hi.Load()
			if n <= m || h.hi.CompareAndSwap(m, n) {
				break
			}
		}
	}
	h.inner.ServeHTTP(w, r)
}

func newCounting(t *testing.T, opts launcher.DummyOptions) *countingHandler {
	t.Helper()
	m, err := launcher.NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &countingHandler{inner: launcher.NewHandler(m, launcher.ServerOptions{})}
}

// restartable is a loopback server that can be stopped and started again on its port.
type restartable struct {
	t    *testing.T
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	r := &restartable{t: t, addr: "127.0.0.1:0", h: h}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: r.h}
	go r.srv.Serve(ln)
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *restartable) url() string { return "http://" + r.addr + "/predict" }

// Two launchers; one dies: the work carries on over the other, the dead one is taken out;
// once it answers again it is used again.
func TestSeveralLaunchersOneDead(t *testing.T) {
	opts := launcher.DummyOptions{MaxBatchSize: 2, Latency: time.Millisecond}
	ha, hb := newCounting(t, opts), newCounting(t, opts)
	a, b := newRestartable(t, ha), newRestartable(t, hb)
	var logs syncBuffer
	c, err := ConnectAll(context.Background(), []string{a.url(), b.url()}, fast(Options{InFlight: 2, Attempts: 10, Log: log.New(&logs)}))
	if err != nil {
		t.Fatal(err)
	}
	items := makeItems(t, 40)
	want := reference(t, items)
	check := func(got map[string]Result) {
		t.Helper()
		for id, r := range got {
			if r.Err != "" || r.Prediction != want[id].Prediction {
				t.Errorf("%s: %q %q", id, r.Err, r.Prediction)
			}
		}
	}
	check(runAll(t, c, items))
	if ha.posts.Load() == 0 || hb.posts.Load() == 0 {
		t.Fatalf("batches not spread: %d and %d", ha.posts.Load(), hb.posts.Load())
	}

	b.stop()
	before := ha.posts.Load()
	check(runAll(t, c, items))
	if ha.posts.Load() == before {
		t.Error("the live launcher got no work")
	}
	st := c.Stats()
	if st[1].TakenOut == 0 || st[1].Failures < TakeOutAfter {
		t.Errorf("the dead launcher was not taken out: %+v", st[1])
	}

	b.start()
	deadline := hb.posts.Load()
	for i := 0; i < 200 && hb.posts.Load() == deadline; i++ {
		check(runAll(t, c, items[:8]))
	}
	if hb.posts.Load() == deadline {
		t.Fatalf("the launcher is back but gets no work: %+v", c.Stats()[1])
	}
	if c.Stats()[1].Out {
		t.Errorf("the launcher is back but still out: %+v", c.Stats()[1])
	}
	// The take-out and the return are in the log, naming the launcher.
	out := logs.String()
	if !strings.Contains(out, "launcher taken out") || !strings.Contains(out, "launcher back") || !strings.Contains(out, b.addr) {
		t.Errorf("log:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the client's goroutines.
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

// Launchers of one client must serve one model; operational fields may differ.
func TestIdentityMismatchRefused(t *testing.T) {
	base := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 8})
	other := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 8, Model: "another-model"})
	tone := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 8, Mode: launcher.ModeTone})
	slower := dummyServer(t, launcher.DummyOptions{MaxBatchSize: 3, Latency: time.Millisecond, Slots: 2, FailRate: 0.1})
	for _, tc := range []struct {
		url, want string
	}{
		{other.URL, `model: "dummy-hash" vs "another-model"`},
		{tone.URL, `mode: "hash" vs "tone"`},
	} {
		_, err := ConnectAll(context.Background(), []string{base.URL + "/predict", tc.url + "/predict"}, Options{})
		var me *MismatchError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) {
			t.Errorf("ConnectAll = %v, want a mismatch naming %s and %q", err, tc.url, tc.want)
		}
	}
	c, err := ConnectAll(context.Background(), []string{base.URL + "/predict", slower.URL + "/predict"}, Options{})
	if err != nil {
		t.Fatalf("launchers differing only in operational fields: %v", err)
	}
	if c.BatchSize() != 3 || len(c.URLs()) != 2 {
		t.Errorf("batch size %d (want the smaller limit 3), urls %v", c.BatchSize(), c.URLs())
	}
	// Every launcher must answer.
	dead := dummyServer(t, launcher.DummyOptions{})
	dead.Close()
	_, err = ConnectAll(context.Background(), []string{base.URL + "/predict", dead.URL + "/predict"}, Options{})
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.URL != dead.URL+"/predict" {
		t.Errorf("ConnectAll with a dead launcher = %v", err)
	}
}

// Against a fast launcher the requests in flight grow beyond the start, up to the cap.
func TestAdaptiveInFlightGrows(t *testing.T) {
	h := newCounting(t, launcher.DummyOptions{MaxBatchSize: 1, Latency: 2 * time.Millisecond})
	srv := newRestartable(t, h)
	c, err := Connect(context.Background(), srv.url(), Options{InFlight: 1, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, c, makeItems(t, 300))
	st := c.Stats()[0]
	if st.PeakLimit != 4 || st.Limit > 4 || st.Cap != 4 {
		t.Errorf("limit grew to %d (now %d, cap %d), want the cap 4", st.PeakLimit, st.Limit, st.Cap)
	}
	if hi := h.hi.Load(); hi < 2 || hi > 4 {
		t.Errorf("the launcher saw at most %d requests at once, want 2…4", hi)
	}
}

// HTTP 429 halves the requests in flight, never below 1.
func TestAdaptiveInFlightShrinksOn429(t *testing.T) {
	var posts atomic.Int64
	m, _ := launcher.NewDummy(launcher.DummyOptions{MaxBatchSize: 2})
	inner := launcher.NewHandler(m, launcher.ServerOptions{})
	srv := newRestartable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/predict" {
			posts.Add(1)
			http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	c, err := Connect(context.Background(), srv.url(), fast(Options{InFlight: 8, Attempts: 4}))
	if err != nil {
		t.Fatal(err)
	}
	got := runAll(t, c, makeItems(t, 40))
	for id, r := range got {
		if !strings.Contains(r.Err, "HTTP 429") {
			t.Errorf("%s: %q", id, r.Err)
		}
	}
	st := c.Stats()[0]
	if st.Limit >= 8 || st.Limit < 1 || st.PeakLimit != 8 {
		t.Errorf("limit %d (peak %d) after nothing but 429s, want below the initial 8", st.Limit, st.PeakLimit)
	}
	if st.Out {
		t.Error("429 took the launcher out: it is alive, only busy")
	}
}
