package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

// counting wraps a launcher handler: it counts the items POSTed to /predict and, when
// revision is set, announces that model_revision in /info.
type counting struct {
	h        http.Handler
	revision string
	items    atomic.Int64
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/predict") {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Requests []json.RawMessage `json:"requests"`
		}
		_ = json.Unmarshal(body, &req)
		c.items.Add(int64(len(req.Requests)))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if c.revision != "" && strings.HasSuffix(r.URL.Path, "/info") {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, r)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		m["model_revision"] = c.revision
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m)
		return
	}
	c.h.ServeHTTP(w, r)
}

func countingLauncher(t *testing.T, revision string, opts launcher.DummyOptions) (*counting, string) {
	c := &counting{h: dummyHandler(t, opts), revision: revision}
	return c, serve(t, c)
}

func runRecord(t *testing.T, dir, task string) eval.RunRecord {
	t.Helper()
	var r eval.RunRecord
	b, err := os.ReadFile(filepath.Join(dir, task, eval.RunFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// The answer cache: failed answers are not kept; a second run of the same model on another
// port sends nothing and writes the scored files of an uncached run; another
// model_revision, and --no-answer-cache, send everything.
func TestAnswerCache(t *testing.T) {
	t.Setenv("BEANS_SLURM_NO_ANSWER_CACHE", "")
	cacheDir := t.TempDir()
	tasks := []string{"demo_species", "demo_detection"}
	const n = 60 + 48
	run := func(url, out string, extra ...string) result {
		t.Helper()
		args := []string{"run", "--predict-url", url, "--suite", "demo", "--task", tasks[0], "--task", tasks[1],
			"--output-dir", out, "--data-dir", demoDataDir, "--cache-dir", cacheDir, "--concurrency", "1", "--no-spice", "--attempts", "1"}
		return runCLI(t, append(args, extra...)...)
	}
	cacheRec := func(out string) (hits, misses, stored int) {
		t.Helper()
		for _, task := range tasks {
			ac := runRecord(t, out, task).AnswerCache
			if ac == nil {
				t.Fatalf("%s: run.json has no answer_cache", task)
			}
			hits, misses, stored = hits+ac.Hits, misses+ac.Misses, stored+ac.Stored
		}
		return
	}
	hash := launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 4}

	// 1. A launcher that fails every 5th item: the successes are kept, the failures are not.
	flakyOpts := hash
	flakyOpts.FailEvery = 5
	flaky, flakyURL := countingLauncher(t, "", flakyOpts)
	r := run(flakyURL, filepath.Join(t.TempDir(), "flaky"))
	if r.code != 1 {
		t.Fatalf("flaky run: %d\n%s", r.code, r.err)
	}
	if got := flaky.items.Load(); got != n {
		t.Fatalf("flaky run sent %d items, want %d", got, n)
	}
	failed := n / 5

	// 2. The same model, sound, on another port: only the failed items are sent.
	a, aURL := countingLauncher(t, "", hash)
	outA := filepath.Join(t.TempDir(), "a")
	if r := run(aURL, outA); r.code != 0 {
		t.Fatalf("run A: %d\n%s", r.code, r.err)
	}
	if got := a.items.Load(); got != int64(failed) {
		t.Errorf("run A sent %d items, want the %d that failed before", got, failed)
	}
	if h, m, s := cacheRec(outA); h != n-failed || m != failed || s != failed {
		t.Errorf("run A: hits %d misses %d stored %d, want %d %d %d", h, m, s, n-failed, failed, failed)
	}

	// 3. Again on a third port: nothing is sent, every line is marked cached.
	b, bURL := countingLauncher(t, "", hash)
	outB := filepath.Join(t.TempDir(), "b")
	if r := run(bURL, outB); r.code != 0 {
		t.Fatalf("run B: %d\n%s", r.code, r.err)
	}
	if got := b.items.Load(); got != 0 {
		t.Errorf("run B sent %d items, want 0", got)
	}
	if h, m, _ := cacheRec(outB); h != n || m != 0 {
		t.Errorf("run B: hits %d misses %d, want %d 0", h, m, n)
	}
	pred, _ := os.ReadFile(filepath.Join(outB, tasks[0], eval.PredictionsFile))
	for _, l := range strings.Split(strings.TrimSpace(string(pred)), "\n") {
		var p eval.PredictionLine
		var item contract.ResponseItem
		if err := json.Unmarshal([]byte(l), &p); err != nil || !p.Cached || json.Unmarshal(p.Response, &item) != nil ||
			item.SampleID != p.SampleID || len(item.Predictions) == 0 || item.Predictions[0] != p.Prediction {
			t.Fatalf("cached line: %s", l)
		}
	}

	// 4. --no-answer-cache: everything is sent, and the scored files hold the lines of run B.
	// (Lines are in the order of predictions.jsonl, which is the order answers arrive in —
	// cached ones first — so the lines are compared sorted; bootstrap intervals depend on
	// that order too, the metrics do not.)
	outRef := filepath.Join(t.TempDir(), "ref")
	if r := run(bURL, outRef, "--no-answer-cache"); r.code != 0 {
		t.Fatalf("uncached run: %d\n%s", r.code, r.err)
	}
	if got := b.items.Load(); got != n {
		t.Errorf("--no-answer-cache sent %d items, want %d", got, n)
	}
	if runRecord(t, outRef, tasks[0]).AnswerCache != nil {
		t.Error("run.json of an uncached run has answer_cache")
	}
	ref, _ := os.ReadFile(filepath.Join(outRef, tasks[0], eval.PredictionsFile))
	if bytes.Contains(ref, []byte(`"cached"`)) {
		t.Error("an uncached run's lines carry cached")
	}
	for _, task := range tasks {
		for _, f := range []string{eval.ScoredFile, eval.ProcessedFile} {
			x, _ := os.ReadFile(filepath.Join(outRef, task, f))
			y, _ := os.ReadFile(filepath.Join(outB, task, f))
			if len(x) == 0 || sortedLines(x) != sortedLines(y) {
				t.Errorf("%s/%s: the cached run's file differs from the uncached run's", task, f)
			}
		}
		x, y := readSummary(t, filepath.Join(outRef, task, eval.SummaryFile)), readSummary(t, filepath.Join(outB, task, eval.SummaryFile))
		xm, _ := json.Marshal([]any{x.Metrics, x.N, x.Failed, x.Errors})
		ym, _ := json.Marshal([]any{y.Metrics, y.N, y.Failed, y.Errors})
		if !bytes.Equal(xm, ym) {
			t.Errorf("%s: summaries differ\n%s\n%s", task, xm, ym)
		}
	}

	// 5. Another model_revision: everything is sent.
	c, cURL := countingLauncher(t, "2", hash)
	if r := run(cURL, filepath.Join(t.TempDir(), "c")); r.code != 0 {
		t.Fatalf("run C: %d\n%s", r.code, r.err)
	}
	if got := c.items.Load(); got != n {
		t.Errorf("another model_revision sent %d items, want %d", got, n)
	}
	// --no-cache turns the answer cache off too.
	d, dURL := countingLauncher(t, "", hash)
	if r := run(dURL, filepath.Join(t.TempDir(), "d"), "--no-cache"); r.code != 0 {
		t.Fatalf("run D: %d\n%s", r.code, r.err)
	}
	if got := d.items.Load(); got != n {
		t.Errorf("--no-cache sent %d items, want %d", got, n)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "answers")); err != nil {
		t.Errorf("answers are not under <cache-dir>/answers: %v", err)
	}
}
