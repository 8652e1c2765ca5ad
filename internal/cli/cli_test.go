package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

type result struct {
	code     int
	out, err string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code, out.String(), errb.String()}
}

// demoDataDir is shared by the tests of this package: the demo is generated once.
var demoDataDir string

func readSuite(t *testing.T, dir string) eval.SuiteSummary {
	t.Helper()
	var s eval.SuiteSummary
	b, err := os.ReadFile(filepath.Join(dir, eval.SuiteFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func readSummary(t *testing.T, path string) eval.TaskSummary {
	t.Helper()
	var s eval.TaskSummary
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The demo: the dummy launcher (tone mode) as a real HTTP server, the demo suite through the
// code path of `run`, a perfect score, and `score` reproducing the live numbers exactly.
func TestDemoEndToEnd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo")
	r := runCLI(t, "demo", "--output-dir", out, "--data-dir", demoDataDir)
	if r.code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"demo_species", "demo_detection", "demo_captioning", "results: " + out} {
		if !strings.Contains(r.out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.out)
		}
	}
	suite := readSuite(t, out)
	if len(suite.Tasks) != 3 {
		t.Fatalf("suite has %d tasks, want 3", len(suite.Tasks))
	}
	wantN := map[string]int{"demo_species": 60, "demo_detection": 48, "demo_captioning": 36}
	for _, task := range suite.Tasks {
		if task.Headline.Value != 1 || task.Failed != 0 || task.N != wantN[task.TaskID] {
			t.Errorf("%s: headline %s = %v, n %d, failed %d; a correct pipeline scores 1.0 on all %d samples",
				task.TaskID, task.Headline.Name, task.Headline.Value, task.N, task.Failed, wantN[task.TaskID])
		}
		dir := filepath.Join(out, task.TaskID)
		for _, f := range []string{eval.PredictionsFile, eval.ProcessedFile, eval.ScoredFile, eval.SummaryFile, eval.TaskFile, eval.RunFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", task.TaskID, err)
			}
		}
		// Re-score elsewhere: the same numbers, the input untouched.
		pred := filepath.Join(dir, eval.PredictionsFile)
		before, _ := os.ReadFile(pred)
		re := filepath.Join(t.TempDir(), task.TaskID)
		r := runCLI(t, "score", pred, "-o", re)
		if r.code != 0 {
			t.Fatalf("score exited %d: %s", r.code, r.err)
		}
		live := readSummary(t, filepath.Join(dir, eval.SummaryFile))
		again := readSummary(t, filepath.Join(re, eval.SummaryFile))
		if !reflect.DeepEqual(live.Metrics, again.Metrics) || live.Headline != again.Headline || live.N != again.N || live.ConfigHash != again.ConfigHash {
			t.Errorf("%s: score gave %+v %v, live run %+v %v", task.TaskID, again.Headline, again.Metrics, live.Headline, live.Metrics)
		}
		for _, f := range []string{eval.ScoredFile, eval.ProcessedFile, eval.SummaryFile} {
			a, _ := os.ReadFile(filepath.Join(dir, f))
			b, _ := os.ReadFile(filepath.Join(re, f))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: re-scored %s differs from the live run's", task.TaskID, f)
			}
		}
		after, _ := os.ReadFile(pred)
		if !bytes.Equal(before, after) {
			t.Errorf("%s: score changed its input", task.TaskID)
		}
	}
}

// serve starts a launcher handler on loopback and returns its predict URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/predict"
}

func dummyHandler(t *testing.T, opts launcher.DummyOptions) http.Handler {
	t.Helper()
	m, err := launcher.NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	return launcher.NewHandler(m, launcher.ServerOptions{})
}

func TestRunWritesReScorableLines(t *testing.T) {
	url := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash, MaxBatchSize: 3, FailEvery: 4}))
	out := filepath.Join(t.TempDir(), "run")
	r := runCLI(t, "run", "--predict-url", url, "--suite", "demo", "--task", "demo_species", "--task", "demo_detection",
		"--limit", "7", "--output-dir", out, "--data-dir", demoDataDir, "--concurrency", "2", "--attempts", "1")
	if r.code != 1 {
		t.Fatalf("run with failed items exited %d, want 1\n%s\n%s", r.code, r.out, r.err)
	}
	suite := readSuite(t, out)
	if len(suite.Tasks) != 2 || suite.Tasks[0].N != 7 || suite.Tasks[1].N != 7 {
		t.Fatalf("suite summary %+v", suite.Tasks)
	}
	b, err := os.ReadFile(filepath.Join(out, "demo_species", eval.PredictionsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d prediction lines, want 7", len(lines))
	}
	failed := 0
	for _, l := range lines {
		var p eval.PredictionLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		if p.SampleID == "" || p.TaskID != "demo_species" || p.Target == "" || p.DatasetName != "demo-species" {
			t.Errorf("line lacks fields: %s", l)
		}
		var item contract.ResponseItem
		if err := json.Unmarshal(p.Response, &item); err != nil || item.SampleID != p.SampleID {
			t.Errorf("line does not carry the launcher's whole answer item: %s", l)
		}
		if p.Error != "" {
			failed++
			if p.Prediction != "" || !strings.Contains(p.Error, launcher.InjectedFailure) {
				t.Errorf("failed line: %s", l)
			}
		} else if !strings.HasPrefix(p.Prediction, "hash:") {
			t.Errorf("prediction %q", p.Prediction)
		}
	}
	if failed == 0 {
		t.Error("no failed items recorded, though the launcher failed every 4th")
	}
	var rec eval.TaskRecord
	tb, _ := os.ReadFile(filepath.Join(out, "demo_species", eval.TaskFile))
	if err := json.Unmarshal(tb, &rec); err != nil || len(rec.Labels) != 6 || rec.Task.ID != "demo_species" {
		t.Errorf("task.json: %v %+v", err, rec)
	}

	// Results are never overwritten.
	r = runCLI(t, "run", "--predict-url", url, "--suite", "demo", "--output-dir", out, "--data-dir", demoDataDir)
	if r.code != 2 || !strings.Contains(r.err, "already exists") {
		t.Fatalf("second run into the same dir: exit %d, %s", r.code, r.err)
	}
}

// Tone mode really listens: a pipeline that mangles audio (here: a wrong sample rate on the
// way) scores lower.
func TestToneModeCatchesMangledAudio(t *testing.T) {
	inner := dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeTone})
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/predict" {
			b, _ := io.ReadAll(r.Body)
			var req contract.Request
			if err := json.Unmarshal(b, &req); err == nil {
				for i := range req.Requests {
					for j := range req.Requests[i].AudioInputs {
						req.Requests[i].AudioInputs[j].SampleRate = req.Requests[i].AudioInputs[j].SampleRate * 3 / 4
					}
				}
				// The dummy hears the WAV header's rate; rewrite the body with a header
				// rate that lies, as a resampling bug would.
				b = mangleWAVRates(t, req)
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
		}
		inner.ServeHTTP(w, r)
	}))
	out := filepath.Join(t.TempDir(), "mangled")
	r := runCLI(t, "run", "--predict-url", url, "--task", "demo_species", "--output-dir", out, "--data-dir", demoDataDir)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	s := readSuite(t, out)
	if acc := s.Tasks[0].Headline.Value; acc > 0.5 {
		t.Fatalf("accuracy %.3f with mangled audio; tone mode should not recognise the calls", acc)
	}
}

func TestLauncherDownIsReportedBeforeData(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/predict"
	srv.Close()
	data := filepath.Join(t.TempDir(), "never-created")
	r := runCLI(t, "run", "--predict-url", url, "--suite", "demo", "--output-dir", t.TempDir(), "--data-dir", data)
	if r.code != 2 || !strings.Contains(r.err, url) {
		t.Fatalf("exit %d, stderr %q; want 2 naming %s", r.code, r.err, url)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data was read or generated before the launcher was checked")
	}
	// A launcher without predictions_v1.
	url = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/info" {
			io.WriteString(w, `{"name":"old","model":"m","model_revision":"r","audio_payload_types":["base64_wav"],"max_batch_size":1,"supports_batching":false,"schema_versions":["predictions_v0"]}`)
		}
	}))
	r = runCLI(t, "run", "--predict-url", url, "--suite", "demo", "--output-dir", t.TempDir(), "--data-dir", data)
	if r.code != 2 || !strings.Contains(r.err, "predictions_v0") {
		t.Fatalf("exit %d, stderr %q; want 2 quoting what /info said", r.code, r.err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--suite", "demo"}, "--predict-url is required"},
		{[]string{"run", "--predict-url", "http://127.0.0.1:1/predict"}, "--suite"},
		{[]string{"run", "--predict-url", "http://127.0.0.1:1/predict", "--suite", "dmeo"}, "demo"},
		{[]string{"run", "--bogus"}, "unknown flag"},
		{[]string{"list", "gadgets"}, "choose one of"},
		{[]string{"describe", "esc5"}, "beans_zero_esc50"},
		{[]string{"launcher", "dummy", "--mode", "loud"}, "loud"},
		{[]string{"score", "/nonexistent/out.txt"}, "predictions.jsonl"},
	} {
		r := runCLI(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.err, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

func TestRegistryCommands(t *testing.T) {
	r := runCLI(t, "list", "suites")
	for _, want := range []string{"beans_zero_core", "beans_zero_smoke", "demo"} {
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("list suites lacks %s: %s", want, r.out)
		}
	}
	r = runCLI(t, "list", "tasks", "--json")
	var l map[string][]map[string]any
	if err := json.Unmarshal([]byte(r.out), &l); err != nil || len(l["tasks"]) != 25 {
		t.Errorf("list tasks --json: %v, %d tasks, want 22 BEANS-Zero + 3 demo", err, len(l["tasks"]))
	}
	r = runCLI(t, "describe", "af3")
	if r.code != 0 || !strings.Contains(r.out, "af_next_local_8000") {
		t.Errorf("describe af3: %d %s %s", r.code, r.out, r.err)
	}
	r = runCLI(t, "describe", "beans_zero_core")
	if r.code != 0 || !strings.Contains(r.out, "22 tasks, 91965 rows") {
		t.Errorf("describe beans_zero_core: %s", r.out)
	}
	r = runCLI(t, "--version")
	if r.code != 0 || !strings.HasPrefix(r.out, "beans-slurm ") || !strings.Contains(r.out, "(") {
		t.Errorf("--version: %q", r.out)
	}
}

func TestCheckLauncherCommand(t *testing.T) {
	good := serve(t, dummyHandler(t, launcher.DummyOptions{}))
	r := runCLI(t, "check-launcher", good)
	if r.code != 0 || !strings.Contains(r.out, "PASS") || strings.Contains(r.out, "FAIL") {
		t.Fatalf("check-launcher on the dummy: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// A launcher that ignores its batch limit.
	m, _ := launcher.NewDummy(launcher.DummyOptions{MaxBatchSize: 2})
	bad := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/predict" {
			b, _ := io.ReadAll(r.Body)
			req, err := contract.DecodeRequest(b)
			if err == nil {
				resp := contract.Response{SchemaVersion: contract.PredictionsV1}
				for _, it := range req.Requests {
					resp.Responses = append(resp.Responses, contract.ResponseItem{SampleID: it.SampleID, Predictions: []string{"x"}})
				}
				json.NewEncoder(w).Encode(resp)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		launcher.NewHandler(m, launcher.ServerOptions{}).ServeHTTP(w, r)
	}))
	r = runCLI(t, "check-launcher", bad)
	if r.code != 1 || !strings.Contains(r.out, "FAIL") {
		t.Fatalf("check-launcher on a broken launcher: exit %d\n%s", r.code, r.out)
	}
}

// mangleWAVRates re-encodes a request whose WAV headers claim the (wrong) sample_rate of
// their audio input, keeping the samples: the audio now plays at the wrong speed.
func mangleWAVRates(t *testing.T, req contract.Request) []byte {
	t.Helper()
	for i := range req.Requests {
		for j := range req.Requests[i].AudioInputs {
			a := &req.Requests[i].AudioInputs[j]
			raw, err := base64.StdEncoding.DecodeString(a.Data)
			if err != nil || len(raw) < 32 {
				continue
			}
			binary.LittleEndian.PutUint32(raw[24:28], uint32(a.SampleRate))
			binary.LittleEndian.PutUint32(raw[28:32], uint32(a.SampleRate*2))
			a.Data = base64.StdEncoding.EncodeToString(raw)
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
