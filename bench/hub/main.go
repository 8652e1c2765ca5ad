// Command hub measures what `beans-slurm run --suite beans_zero_smoke --limit 5` transfers
// from a Hugging Face Hub: a generated BEANS-Zero-shaped dataset (the real schema, audio as
// list<float64>, 10 s at 16 kHz, the 22 tasks' rows one after the other as in the real
// split, snappy) of at least 2 GB in 4 shards, served by the project's fake Hub on loopback.
// It reports the bytes of the first run as a fraction of the dataset, and of a second run
// (served from the block cache).
//
// Usage: go run ./bench/hub [-gb 2] [-rowgroup 100] [-pages v1|v2]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/demo"
	"github.com/beans-slurm/beans-slurm/internal/hub/hubtest"
)

var (
	gb       = flag.Float64("gb", 2, "size of the generated dataset in GB (at least)")
	rowGroup = flag.Int("rowgroup", 100, "rows per row group")
	keep     = flag.Bool("keep", false, "keep the work directory")
	pages    = flag.String("pages", "v1", "data pages: v1 (what pyarrow, and so the Hub's BEANS-Zero, writes by default) or v2; 1 MiB each")
)

// The 22 tasks' dataset_name values, in the split's order.
var names = []string{"esc50", "watkins", "cbi", "humbugdb", "lifestage", "call-type",
	"unseen-species-cmn", "unseen-species-sci", "unseen-species-tax", "unseen-genus-cmn", "unseen-genus-sci",
	"unseen-genus-tax", "unseen-family-cmn", "unseen-family-sci", "unseen-family-tax", "zf-indiv",
	"enabirds", "hiceas", "rfcx", "gibbons", "dcase", "captioning"}

func main() {
	flag.Parse()
	work, err := os.MkdirTemp("", "beans-hub-bench-")
	check(err)
	if !*keep {
		defer os.RemoveAll(work)
	}
	bin := filepath.Join(work, "beans-slurm")
	run("go", "build", "-o", bin, "./cmd/beans-slurm")

	const samples = 160000 // 10 s at 16 kHz
	rowBytes := float64(samples * 8)
	total := int(math.Ceil(*gb * 1e9 / rowBytes))
	perShard := (total + 3) / 4
	perTask := (total + len(names) - 1) / len(names)
	srv := hubtest.New(nil)
	defer srv.Close()
	var size int64
	start := time.Now()
	rng := rand.New(rand.NewPCG(7, 7))
	for s := 0; s < 4; s++ {
		rows := func(yield func(demo.Row) error) error {
			buf := make([]float64, samples)
			for i := s * perShard; i < min((s+1)*perShard, total); i++ {
				name := names[min(i/perTask, len(names)-1)]
				f := 200 + rng.Float64()*3000
				for j := range buf {
					buf[j] = 0.4*math.Sin(2*math.Pi*f*float64(j)/16000) + 0.05*rng.NormFloat64()
				}
				task, out := "classification", fmt.Sprintf("label %d", i%20)
				switch name {
				case "enabirds", "hiceas", "rfcx", "gibbons", "dcase":
					task, out = "detection", []string{"None", "Sparrow", "Sparrow, Wren"}[i%3]
				case "captioning":
					task, out = "captioning", fmt.Sprintf("a bird calls %d times", i%6)
				}
				if err := yield(demo.Row{ID: fmt.Sprintf("id-%07d", i), DatasetName: name, Task: task,
					Instruction: contract.AudioPlaceholder + " What is in the audio?", InstructionText: "What is in the audio?",
					Output: out, Audio: buf, SampleRate: 16000, Metadata: `{"sample_rate": 16000, "duration": 10.0}`}); err != nil {
					return err
				}
			}
			return nil
		}
		name := fmt.Sprintf("shard_%05d.parquet", s)
		disk := filepath.Join(work, name)
		opts := []parquet.WriterOption{parquet.PageBufferSize(1 << 20)}
		if *pages == "v1" {
			opts = append(opts, parquet.DataPageVersion(1))
		}
		check(dataset.WriteParquet(disk, rows, *rowGroup, opts...))
		st, err := os.Stat(disk)
		check(err)
		size += st.Size()
		check(srv.AddDiskFile("EarthSpeciesProject/BEANS-Zero", "main", "data/"+name, disk))
	}
	fmt.Printf("dataset: %d rows in 4 shards, %.2f GB, row groups of %d rows, %s pages (generated in %s)\n", total, float64(size)/1e9, *rowGroup, *pages, time.Since(start).Round(time.Second))

	// The dummy launcher in its own process.
	l := exec.Command(bin, "launcher", "dummy", "--port", "0", "--log-level", "error")
	out, err := l.StdoutPipe()
	check(err)
	check(l.Start())
	defer func() { l.Process.Signal(os.Interrupt); l.Wait() }()
	url, err := bufio.NewReader(out).ReadString('\n')
	check(err)
	url = strings.TrimSpace(url)

	cache := filepath.Join(work, "cache")
	runOnce := func(label string) {
		srv.ResetStats()
		o := filepath.Join(work, "out-"+label)
		cmd := exec.Command(bin, "run", "--predict-url", url, "--suite", "beans_zero_smoke", "--limit", "5",
			"--output-dir", o, "--cache-dir", cache, "--log-level", "error", "--no-spice")
		cmd.Env = append(os.Environ(), "HF_ENDPOINT="+srv.URL, "HF_TOKEN=hf_bench")
		t0 := time.Now()
		b, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s\n", b)
			check(err)
		}
		n := srv.TotalBytes()
		if os.Getenv("BENCH_VERBOSE") != "" {
			for _, r := range srv.Requests() {
				fmt.Println(" ", r.Method, r.Path, r.Range, r.Bytes)
			}
		}
		fmt.Printf("%s run: %d bytes = %.3f%% of the dataset, %d requests, %s\n", label, n, 100*float64(n)/float64(size), len(srv.Requests()), time.Since(t0).Round(time.Millisecond))
	}
	runOnce("first")
	runOnce("second")
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	check(cmd.Run())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
