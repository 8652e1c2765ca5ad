// Command run measures `beans-slurm run` as a whole program against the dummy launcher, each
// in its own process, and writes the figures that docs/performance.md records:
//
//  1. hash: run's samples/s against a minimal client that sends the same pre-encoded
//     requests at the same concurrency (ceiling: the launcher and the loopback link);
//  2. capacity: run's samples/s against a launcher of fixed capacity (--latency 200ms
//     --slots 4, batch 8 → 160 samples/s), and a client with one batch in flight;
//  3. memory: peak RSS of run for two dataset sizes, one ten times the other.
//
// Usage: go run ./bench/run [-rows 240] [-rounds 3] [-only hash,capacity,memory]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/demo"
)

var (
	rows     = flag.Int("rows", 240, "rows of 10 s 16 kHz audio for the throughput benchmarks")
	rounds   = flag.Int("rounds", 3, "alternating rounds per comparison (median reported)")
	inFlight = flag.Int("concurrency", 8, "batches in flight, for run and the minimal client")
	only     = flag.String("only", "hash,capacity,memory", "which benchmarks")
	keep     = flag.Bool("keep", false, "keep the work directory")
)

// Placement of the processes on a 2-core machine. "shared": launcher and client compete for
// both cores (the worst case: every cycle the client spends is taken from the launcher).
// "isolated": the launcher on CPU 1, the client on CPU 0, as on a cluster where the model
// serves on a GPU node and the benchmark runs on another node.
type placement struct {
	name             string
	launcher, client []string // command prefixes
}

var placements = []placement{
	{name: "shared"},
	{name: "isolated", launcher: []string{"taskset", "-c", "1"}, client: []string{"taskset", "-c", "0"}},
}

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("", "beans-bench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "beans-slurm")
	run("go", "build", "-o", bin, "./cmd/beans-slurm")
	fmt.Printf("machine: %d CPUs; work dir %s\n", numCPU(), work)

	if strings.Contains(*only, "hash") {
		data := makeData(work, "hash", *rows, 10*16000, 16000)
		hashBench(bin, work, data)
	}
	if strings.Contains(*only, "capacity") {
		data := makeData(work, "cap", 4*160, 16000, 16000) // 1 s clips: model time dominates
		capacityBench(bin, work, data)
	}
	if strings.Contains(*only, "memory") {
		small := makeData(work, "mem-small", 1000, 4000, 16000)
		large := makeData(work, "mem-large", 10000, 4000, 16000)
		memoryBench(bin, work, small, large)
	}
}

type dataSet struct {
	dir, registry string
	rows          int
}

// makeData writes n rows of synthetic audio (samples per row at rate) in the BEANS-Zero
// schema, and a registry directory with a task over them.
func makeData(work, name string, n, samples, rate int) dataSet {
	dir := filepath.Join(work, "data-"+name)
	check(os.MkdirAll(dir, 0o755))
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	rowsFn := func(yield func(demo.Row) error) error {
		buf := make([]float64, samples)
		for i := 0; i < n; i++ {
			f := 300 + rng.Float64()*3000
			for j := range buf {
				buf[j] = 0.5*math.Sin(2*math.Pi*f*float64(j)/float64(rate)) + 0.05*rng.NormFloat64()
			}
			label := []string{"alpha", "beta", "gamma"}[i%3]
			err := yield(demo.Row{
				ID: fmt.Sprintf("bench-%06d", i), DatasetName: "bench-clips", Task: "classification",
				Instruction:     contract.AudioPlaceholder + " What is the common name for the focal species in the audio? Answer:",
				InstructionText: "What is the common name for the focal species in the audio? Answer:",
				Output:          label, Audio: buf, SampleRate: rate,
				Metadata: fmt.Sprintf(`{"sample_rate": %d, "duration": %g}`, rate, float64(samples)/float64(rate)),
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	check(dataset.WriteParquet(filepath.Join(dir, "test-00000-of-00001.parquet"), rowsFn, 64))
	reg := filepath.Join(work, "registry-"+name)
	check(os.MkdirAll(filepath.Join(reg, "tasks"), 0o755))
	check(os.WriteFile(filepath.Join(reg, "tasks", "bench_clips.yaml"), []byte(`id: bench_clips
description: synthetic 16 kHz clips for benchmarks
type: classification
source: {kind: parquet, files: "*.parquet"}
dataset_names: [bench-clips]
labels: [alpha, beta, gamma]
prompt: beans_zero_instruction
generation_config: {max_tokens: 16, temperature: 0.0}
`), 0o644))
	return dataSet{dir: dir, registry: reg, rows: n}
}

// launcher starts the dummy launcher in its own process and returns its predict URL.
func launcher(prefix []string, bin string, args ...string) (string, func()) {
	argv := append(append(append([]string(nil), prefix...), bin), append([]string{"launcher", "dummy", "--port", "0", "--log-level", "error"}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	check(err)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	check(err)
	return strings.TrimSpace(line), func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}

type runResult struct {
	rate   float64 // samples/s of the inference phase (run.json)
	maxRSS int64   // bytes
	wall   time.Duration
}

func runOnce(prefix []string, bin, work string, d dataSet, url string, extra ...string) runResult {
	out, err := os.MkdirTemp(work, "out-")
	check(err)
	args := append([]string{"run", "--predict-url", url, "--task", "bench_clips", "--data-dir", d.dir,
		"--registry", d.registry, "--output-dir", out, "--log-level", "error"}, extra...)
	argv := append(append(append([]string(nil), prefix...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "run failed: %v\n%s\n", err, stderr.String())
		os.Exit(1)
	}
	wall := time.Since(start)
	var rr struct {
		SamplesPerSec float64 `json:"samples_per_sec"`
		Samples       int     `json:"samples"`
		Failed        int     `json:"failed"`
		PeakRSSMiB    float64 `json:"peak_rss_mib"`
	}
	b, err := os.ReadFile(filepath.Join(out, "bench_clips", "run.json"))
	check(err)
	check(json.Unmarshal(b, &rr))
	if rr.Samples != d.rows || rr.Failed != 0 {
		fmt.Fprintf(os.Stderr, "run answered %d of %d rows, %d failed\n", rr.Samples, d.rows, rr.Failed)
		os.Exit(1)
	}
	// The run's own VmHWM: the rusage of a child started by Go (vfork) would count this
	// process's memory too.
	os.RemoveAll(out)
	return runResult{rate: rr.SamplesPerSec, maxRSS: int64(rr.PeakRSSMiB * (1 << 20)), wall: wall}
}

// minimalClient pre-encodes every request body of the data set (batches of batch items,
// encoded exactly as run encodes them), then only sends them with inFlight goroutines.
func minimalClient(d dataSet, url string, batch, inFlight int) float64 {
	ds, err := dataset.OpenLocal(context.Background(), d.dir, "*.parquet")
	check(err)
	defer ds.Close()
	var bodies [][]byte
	var cur [][]byte
	flush := func() {
		if len(cur) == 0 {
			return
		}
		b := []byte(`{"schema_version":"predictions_v1","requests":[`)
		b = append(b, bytes.Join(cur, []byte(","))...)
		b = append(b, "]}"...)
		bodies = append(bodies, b)
		cur = nil
	}
	check(ds.Stream(context.Background(), dataset.Query{}, func(s *dataset.Sample) error {
		it := contract.RequestItem{SampleID: s.ID, Messages: []contract.Message{{Role: "user", Content: s.Instruction}},
			AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: string(audio.AppendBase64WAV(nil, s.Audio, s.SampleRate)), SampleRate: s.SampleRate}},
			GenerationConfig: contract.GenerationConfig{"max_tokens": 16, "temperature": 0.0}}
		b, err := contract.AppendRequestItem(nil, &it)
		cur = append(cur, b)
		if len(cur) == batch {
			flush()
		}
		return err
	}))
	flush()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight * 2}}
	work := make(chan []byte)
	var wg sync.WaitGroup
	start := time.Now()
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				resp, err := client.Post(url, "application/json", bytes.NewReader(b))
				check(err)
				var r contract.Response
				check(json.NewDecoder(resp.Body).Decode(&r))
				resp.Body.Close()
				if resp.StatusCode != 200 {
					check(fmt.Errorf("minimal client: HTTP %d", resp.StatusCode))
				}
			}
		}()
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	return float64(d.rows) / time.Since(start).Seconds()
}

func hashBench(bin, work string, d dataSet) {
	for _, p := range placements {
		url, stop := launcher(p.launcher, bin, "--mode", "hash", "--max-batch-size", "8")
		pin(p.client)
		minimalClient(d, url, 8, *inFlight) // warm-up
		var runs, mins []float64
		for r := 0; r < *rounds; r++ {
			mins = append(mins, minimalClient(d, url, 8, *inFlight))
			runs = append(runs, runOnce(p.client, bin, work, d, url, "--concurrency", fmt.Sprint(*inFlight)).rate)
		}
		pin(nil)
		stop()
		m, rr := median(mins), median(runs)
		fmt.Printf("\n## hash mode, %s cores, %d rows of 10 s 16 kHz, batch 8, %d batches in flight, %d rounds\n", p.name, d.rows, *inFlight, *rounds)
		fmt.Printf("minimal client (pre-encoded requests): %.1f samples/s  %v\n", m, fmtAll(mins))
		fmt.Printf("beans-slurm run:                       %.1f samples/s  %v\n", rr, fmtAll(runs))
		fmt.Printf("ratio run / minimal client:            %.2f\n", rr/m)
	}
}

// pin moves this process (the minimal client) onto the CPUs of a taskset prefix, or back to
// all CPUs.
func pin(prefix []string) {
	cpus := fmt.Sprintf("0-%d", numCPU()-1)
	if len(prefix) == 3 {
		cpus = prefix[2]
	}
	run("taskset", "-a", "-p", "-c", cpus, fmt.Sprint(os.Getpid()))
}

func capacityBench(bin, work string, d dataSet) {
	url, stop := launcher(nil, bin, "--mode", "hash", "--max-batch-size", "8", "--latency", "200ms", "--slots", "4")
	defer stop()
	const capacity = 4 * 8 / 0.2
	var def, one []float64
	for r := 0; r < *rounds; r++ {
		def = append(def, runOnce(nil, bin, work, d, url).rate)
		one = append(one, runOnce(nil, bin, work, d, url, "--concurrency", "1").rate)
	}
	fmt.Printf("\n## fixed-capacity launcher (--latency 200ms --slots 4, batch 8 = %.0f samples/s), %d rows of 1 s\n", capacity, d.rows)
	fmt.Printf("beans-slurm run (default in flight): %.1f samples/s = %.0f%% of capacity  %v\n", median(def), 100*median(def)/capacity, fmtAll(def))
	fmt.Printf("one batch in flight (--concurrency 1): %.1f samples/s = %.0f%% of capacity  %v\n", median(one), 100*median(one)/capacity, fmtAll(one))
	fmt.Printf("ratio default / one in flight: %.2f\n", median(def)/median(one))
}

func memoryBench(bin, work string, small, large dataSet) {
	url, stop := launcher(nil, bin, "--mode", "hash", "--max-batch-size", "8")
	defer stop()
	s := runOnce(nil, bin, work, small, url)
	l := runOnce(nil, bin, work, large, url)
	fmt.Printf("\n## peak memory of run (0.25 s 16 kHz rows)\n")
	fmt.Printf("%5d rows: max RSS %.1f MiB\n", small.rows, float64(s.maxRSS)/(1<<20))
	fmt.Printf("%5d rows: max RSS %.1f MiB\n", large.rows, float64(l.maxRSS)/(1<<20))
	fmt.Printf("ratio large / small: %.2f (rows ×%d)\n", float64(l.maxRSS)/float64(s.maxRSS), large.rows/small.rows)
}

func median(x []float64) float64 {
	y := append([]float64(nil), x...)
	sort.Float64s(y)
	return y[len(y)/2]
}

func fmtAll(x []float64) string {
	parts := make([]string, len(x))
	for i, v := range x {
		parts[i] = fmt.Sprintf("%.1f", v)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	check(cmd.Run())
}

func numCPU() int {
	b, _ := exec.Command("nproc").Output()
	var n int
	fmt.Sscan(string(b), &n)
	return n
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
