// Command judge measures the judges against a judge launcher of fixed capacity, and writes the
// figures that docs/performance.md records:
//
//  1. YES/NO and extractor passes over N answers, in samples/s, against the launcher's
//     capacity (the dummy in judge mode with --latency and --slots: slots × batch / latency);
//  2. the same pass again, answered from the answer cache (nothing sent), against the first.
//
// The launcher runs in this process on a real loopback HTTP server; the judges run exactly as
// `score --judge-url` runs them (internal/judge).
//
// Usage: go run ./bench/judge [-n 6400] [-latency 50ms] [-slots 4] [-batch 8]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/judge"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

var (
	n       = flag.Int("n", 6400, "answers to judge")
	latency = flag.Duration("latency", 50*time.Millisecond, "the judge launcher's model time per batch")
	slots   = flag.Int("slots", 4, "batches the judge launcher works on at once")
	batch   = flag.Int("batch", 8, "the judge launcher's max_batch_size")
)

func main() {
	flag.Parse()
	dir, err := os.MkdirTemp("", "bench-judge-")
	check(err)
	defer os.RemoveAll(dir)
	labels := make([]string, 50)
	for i := range labels {
		labels[i] = fmt.Sprintf("Species number %02d", i)
	}
	preds := writeTask(dir, labels)

	m, err := launcher.NewDummy(launcher.DummyOptions{Mode: launcher.ModeJudge, Latency: *latency, Slots: *slots, MaxBatchSize: *batch})
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: launcher.NewHandler(m, launcher.ServerOptions{})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/predict"
	capacity := float64(*slots**batch) / latency.Seconds()
	fmt.Printf("judge launcher: %d slots × batch %d / %s = %.0f samples/s; %d answers\n", *slots, *batch, *latency, capacity, *n)

	for _, mode := range []string{"yesno", "extract"} {
		ac := cache.Open(filepath.Join(dir, "cache-"+mode))
		opts := judge.Options{Cache: ac, Score: eval.ScoreOptions{Bootstrap: -1}}
		if mode == "yesno" {
			opts.URL, opts.Mode = url, judge.ModeYesNo
		} else {
			opts.ExtractURL = url
		}
		ctx := context.Background()
		j, err := judge.Connect(ctx, opts)
		check(err)
		first := timeIt(func() { _, err := j.Task(ctx, preds, filepath.Join(dir, "out-"+mode)); check(err) })
		again := timeIt(func() { _, err := j.Task(ctx, preds, filepath.Join(dir, "again-"+mode)); check(err) })
		rate := float64(*n) / first.Seconds()
		fmt.Printf("%-8s first pass %6.2f s  %7.0f samples/s = %.2f × capacity; from the cache %5.2f s = %.3f × the first pass\n",
			mode, first.Seconds(), rate, rate/capacity, again.Seconds(), again.Seconds()/first.Seconds())
		check(ac.Close())
	}
}

func writeTask(dir string, labels []string) string {
	td := filepath.Join(dir, "bench_task")
	check(os.MkdirAll(td, 0o755))
	rec := eval.TaskRecord{Task: registry.Task{ID: "bench_task", Type: "classification", Prompt: "p"}, Labels: labels,
		Model: json.RawMessage(`{"name":"bench","model":"m","model_revision":"1"}`)}
	b, err := json.Marshal(rec)
	check(err)
	check(os.WriteFile(filepath.Join(td, eval.TaskFile), b, 0o644))
	p := filepath.Join(td, eval.PredictionsFile)
	f, err := os.Create(p)
	check(err)
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range *n {
		target := labels[i%len(labels)]
		answer := labels[(i*7)%len(labels)]
		check(enc.Encode(eval.PredictionLine{
			SampleID: fmt.Sprintf("s%06d", i), TaskID: "bench_task", DatasetName: "bench",
			Instruction: "<Audio><AudioHere></Audio> What is the common name for the focal species in the audio? Answer:",
			Target:      target,
			Prediction:  "I am fairly confident that the focal species in this recording is " + answer + ", judging by its call.",
			Response:    json.RawMessage(`null`),
		}))
	}
	check(w.Flush())
	check(f.Close())
	return p
}

func timeIt(f func()) time.Duration {
	t := time.Now()
	f()
	return time.Since(t)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench judge:", err)
		os.Exit(1)
	}
}
