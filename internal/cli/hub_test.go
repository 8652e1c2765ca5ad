package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/demo"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/hub/hubtest"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

const beansRepo = "EarthSpeciesProject/BEANS-Zero"

// beansShards writes n BEANS-Zero-shaped shards in which tasks are interleaved across row
// groups, as on the Hub, and returns their paths in the repository and on disk.
func beansShards(t *testing.T, dir string, n, rowsPerShard, rowGroupRows int) map[string]string {
	t.Helper()
	specs := []struct{ name, task string }{
		{"esc50", "classification"}, {"enabirds", "detection"}, {"captioning", "captioning"}, {"watkins", "classification"},
	}
	files := map[string]string{}
	id := 0
	for s := 0; s < n; s++ {
		rows := func(yield func(demo.Row) error) error {
			for i := 0; i < rowsPerShard; i++ {
				sp := specs[(i/rowGroupRows+s)%len(specs)]
				id++
				out := fmt.Sprintf("label %d", id%7)
				switch sp.task {
				case "detection":
					out = []string{"None", "Sparrow", "Sparrow, Wren"}[id%3]
				case "captioning":
					out = fmt.Sprintf("a bird sings %d times", id%5)
				}
				if sp.name == "watkins" {
					out = []string{"Beluga, White Whale", "Orca"}[id%2]
				}
				a := make([]float64, 8000)
				for j := range a {
					a[j] = 0.3 * math.Sin(float64(j*(id%9+1))*0.05)
				}
				err := yield(demo.Row{ID: fmt.Sprintf("row-%05d", id), DatasetName: sp.name, Task: sp.task,
					Instruction: contract.AudioPlaceholder + " What is it?", InstructionText: "What is it?", Output: out,
					Audio: a, SampleRate: 16000, Metadata: `{"sample_rate": 16000, "duration": 0.5}`})
				if err != nil {
					return err
				}
			}
			return nil
		}
		name := fmt.Sprintf("shard_%04d.parquet", s)
		p := filepath.Join(dir, name)
		if err := dataset.WriteParquet(p, rows, rowGroupRows); err != nil {
			t.Fatal(err)
		}
		files["data/"+name] = p
	}
	return files
}

// A run of the smoke suite straight from the (fake) Hub transfers only what it needs, and a
// second run transfers nothing; `data fetch` mirrors the files, and a run on the mirror gives
// the same predictions.
func TestRunFromHub(t *testing.T) {
	srv := hubtest.New(t)
	shards := beansShards(t, t.TempDir(), 4, 96, 12)
	var total int64
	for p, disk := range shards {
		if err := srv.AddDiskFile(beansRepo, "main", p, disk); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(disk)
		total += st.Size()
	}
	srv.AddFile(beansRepo, "main", "README.md", []byte("# BEANS-Zero\n"))
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_TOKEN", "hf_test")
	cache := t.TempDir()
	launcherURL := serve(t, dummyHandler(t, launcher.DummyOptions{Mode: launcher.ModeHash}))

	run := func(out string, extra ...string) result {
		args := append([]string{"run", "--predict-url", launcherURL, "--suite", "beans_zero_smoke", "--limit", "5",
			"--output-dir", out, "--cache-dir", cache, "--block-size", "65536", "--bootstrap", "50"}, extra...)
		return runCLI(t, args...)
	}
	srv.ResetStats()
	out1 := filepath.Join(t.TempDir(), "hub1")
	if r := run(out1); r.code != 0 {
		t.Fatalf("run from the Hub: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	first := srv.TotalBytes()
	t.Logf("first run: %d of %d bytes (%.1f%%)", first, total, 100*float64(first)/float64(total))
	if first == 0 || float64(first) > 0.5*float64(total) {
		t.Errorf("the first run transferred %d of %d bytes; it should read only footers, small columns and the audio of a few row groups", first, total)
	}
	var sum eval.TaskSummary
	b, _ := os.ReadFile(filepath.Join(out1, "beans_zero_esc50", eval.SummaryFile))
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.N != 5 || sum.Dataset.Repo != beansRepo || sum.Dataset.Commit != srv.Commit(beansRepo, "main") || !sum.Dataset.Remote || len(sum.Dataset.Files) != 4 {
		t.Errorf("summary dataset record %+v (n %d)", sum.Dataset, sum.N)
	}
	if sum.Labels.Count != 7 {
		t.Errorf("esc50 vocabulary has %d labels, want the 7 of the whole split (not the 5 rows loaded)", sum.Labels.Count)
	}

	srv.ResetStats()
	if r := run(filepath.Join(t.TempDir(), "hub2")); r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.err)
	}
	// The revision and listing are asked again (a branch may move); data comes from the cache.
	for _, rq := range srv.Requests() {
		if strings.Contains(rq.Path, "/resolve/") && rq.Method == "GET" {
			t.Errorf("second run fetched data: %+v", rq)
		}
	}

	// Mirror, then run on the mirror: the same predictions.
	mirror := t.TempDir()
	if r := runCLI(t, "data", "fetch", "--suite", "beans_zero_smoke", "--data-dir", mirror, "--cache-dir", cache); r.code != 0 {
		t.Fatalf("data fetch: exit %d\n%s", r.code, r.err)
	}
	r := runCLI(t, "data", "info", "--suite", "beans_zero_smoke", "--data-dir", mirror, "--cache-dir", cache, "--verify")
	if r.code != 0 || strings.Count(r.out, "present") != 4 {
		t.Fatalf("data info after fetch:\n%s\n%s", r.out, r.err)
	}
	srv.ResetStats()
	out3 := filepath.Join(t.TempDir(), "mirror")
	if r := run(out3, "--data-dir", mirror); r.code != 0 {
		t.Fatalf("run on the mirror: exit %d\n%s", r.code, r.err)
	}
	if n := srv.TotalBytes(); n != 0 {
		t.Errorf("a run on the mirror transferred %d bytes from the Hub", n)
	}
	for _, task := range []string{"beans_zero_esc50", "beans_zero_enabirds", "beans_zero_captioning"} {
		a := predictionsOf(t, filepath.Join(out1, task, eval.PredictionsFile))
		b := predictionsOf(t, filepath.Join(out3, task, eval.PredictionsFile))
		if a != b {
			t.Errorf("%s: predictions from the Hub and from the mirror differ:\n%s\n%s", task, a, b)
		}
	}
	b, _ = os.ReadFile(filepath.Join(out3, "beans_zero_esc50", eval.SummaryFile))
	sum = eval.TaskSummary{}
	json.Unmarshal(b, &sum)
	if sum.Dataset.Commit != srv.Commit(beansRepo, "main") || sum.Dataset.Remote {
		t.Errorf("mirror run records %+v", sum.Dataset)
	}

	// vocab reads the whole split, comma-aware for labels it knows.
	r = runCLI(t, "vocab", "beans_zero_enabirds", "--cache-dir", cache)
	if r.code != 0 || !strings.Contains(r.out, "2 labels") || !strings.Contains(r.out, "Sparrow\nWren") {
		t.Errorf("vocab: %d\n%s%s", r.code, r.out, r.err)
	}

	// A revision that does not exist.
	r = run(filepath.Join(t.TempDir(), "x"), "--revision", "no-such-branch")
	if r.code == 0 || !strings.Contains(r.err, "no-such-branch") {
		t.Errorf("missing revision: exit %d, %s", r.code, r.err)
	}
}

// predictionsOf returns the sample ids and predictions of a predictions file, sorted.
func predictionsOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var p eval.PredictionLine
		if err := json.Unmarshal(l, &p); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, p.SampleID+" "+p.Prediction+" "+p.Target)
	}
	return strings.Join(lines, "\n")
}

// A corrupt shard fails its task with an error that names the file; the other tasks run
// and their results are written.
func TestCorruptShardOtherTasksContinue(t *testing.T) {
	data := t.TempDir()
	for _, d := range []string{"good", "bad"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
		shards := beansShards(t, filepath.Join(data, d), 1, 48, 12)
		for _, p := range shards {
			if d == "bad" {
				b, _ := os.ReadFile(p)
				os.WriteFile(p, b[:len(b)/2], 0o644) // truncated: no footer
			}
		}
	}
	reg := t.TempDir()
	os.MkdirAll(filepath.Join(reg, "tasks"), 0o755)
	os.MkdirAll(filepath.Join(reg, "suites"), 0o755)
	for _, d := range []string{"good", "bad"} {
		os.WriteFile(filepath.Join(reg, "tasks", "t_"+d+".yaml"), []byte(fmt.Sprintf(`id: t_%s
type: classification
source: {kind: parquet, files: "%s/*.parquet"}
dataset_names: [esc50]
prompt: beans_zero_instruction
`, d, d)), 0o644)
	}
	os.WriteFile(filepath.Join(reg, "suites", "two.yaml"), []byte("id: two\ntasks: [t_bad, t_good]\n"), 0o644)
	url := serve(t, dummyHandler(t, launcher.DummyOptions{}))
	out := filepath.Join(t.TempDir(), "out")
	r := runCLI(t, "--registry", reg, "run", "--predict-url", url, "--suite", "two", "--data-dir", data, "--output-dir", out, "--bootstrap", "-1")
	if r.code != 1 || !strings.Contains(r.err, "1 task(s) failed: t_bad") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.err, "shard_0000.parquet") {
		t.Errorf("the error does not name the broken file:\n%s", r.err)
	}
	var s eval.SuiteSummary
	b, _ := os.ReadFile(filepath.Join(out, eval.SuiteFile))
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Tasks) != 2 || s.Tasks[0].Error == "" || s.Tasks[1].Error != "" || s.Tasks[1].N == 0 {
		t.Fatalf("suite summary %+v", s.Tasks)
	}
	if _, err := os.Stat(filepath.Join(out, "t_good", eval.SummaryFile)); err != nil {
		t.Error(err)
	}
	if !strings.Contains(r.out, "FAILED") {
		t.Errorf("the table does not show the failed task:\n%s", r.out)
	}
}
