// Package spice runs the SPICE 1.0 caption metric (Anderson et al., 2016), a
// Java program, for the captioning scores of internal/metrics.
//
// Layout of the cache directory (DefaultCacheDir):
//
//	<cache>/spice-1.0.jar                         the SPICE jar (from the SPICE-1.0 release
//	<cache>/lib/…                                 or pycocoevalcap, with its bundled lib/)
//	<cache>/lib/stanford-corenlp-3.6.0.jar        downloaded by Setup
//	<cache>/lib/stanford-corenlp-3.6.0-models.jar downloaded by Setup
//
// The jar's manifest puts lib/*.jar on its class path, so CoreNLP must sit
// in lib/ beside it. Runs never pass SPICE's -cache option: its LMDB-backed
// parse cache crashes on Java >= 16.
package spice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// JarName is the SPICE jar's file name in the cache directory.
const JarName = "spice-1.0.jar"

// Defaults of a Runner.
const (
	DefaultBatchSize = 5000
	DefaultTimeout   = 60 * time.Minute
)

// DefaultCacheDir is <user cache dir>/beans-slurm/spice.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("spice: no user cache directory: %w", err)
	}
	return filepath.Join(d, "beans-slurm", "spice"), nil
}

// Available reports whether SPICE can run from cacheDir: java on PATH, the
// SPICE jar and the CoreNLP jars present. why explains what is missing.
func Available(cacheDir string) (ok bool, why string) {
	if _, err := exec.LookPath("java"); err != nil {
		return false, "java not found on PATH (SPICE needs a Java runtime, >= 8)"
	}
	jar := filepath.Join(cacheDir, JarName)
	if _, err := os.Stat(jar); err != nil {
		return false, fmt.Sprintf("%s missing (put the SPICE 1.0 jar and its lib/ directory there)", jar)
	}
	for _, a := range Artifacts {
		p := filepath.Join(cacheDir, "lib", a.Name)
		if _, err := os.Stat(p); err != nil {
			return false, fmt.Sprintf("%s missing (run `beans-slurm setup-spice`)", p)
		}
	}
	return true, ""
}

// Runner runs the SPICE jar.
type Runner struct {
	Java     string   // java executable; "java" when empty
	Jar      string   // path of spice-1.0.jar
	JavaArgs []string // JVM options before -jar, e.g. -Xmx8G
	// BatchSize is the number of captions per java process (each loads
	// CoreNLP once, about a minute); DefaultBatchSize when ≤ 0.
	BatchSize int
	// Timeout bounds each batch's process; DefaultTimeout when ≤ 0.
	Timeout time.Duration
	TempDir string    // for input/output files; os.TempDir() when empty
	Stderr  io.Writer // receives the process's stderr; kept for error messages when nil
}

// NewRunner returns a Runner for the jar in cacheDir with pycocoevalcap's
// JVM heap (-Xmx8G).
func NewRunner(cacheDir string) *Runner {
	return &Runner{Jar: filepath.Join(cacheDir, JarName), JavaArgs: []string{"-Xmx8G"}}
}

// Args returns the java command-line arguments for one batch: SPICE 1.0's
// options -out (scores file), -subset (per-category scores) and -silent (no
// stdout table); never -cache (crashes on Java >= 16).
func (r *Runner) Args(input, output string) []string {
	args := append([]string(nil), r.JavaArgs...)
	return append(args, "-jar", r.Jar, input, "-out", output, "-subset", "-silent")
}

// item is one entry of SPICE's input file.
type item struct {
	ImageID int      `json:"image_id"`
	Test    string   `json:"test"`
	Refs    []string `json:"refs"`
}

// Score returns the SPICE F-score of every candidate against its
// references: the "All" → "f" of SPICE's output item. Candidates that are
// empty (after trimming) or have no references score 0 without being sent
// to SPICE (they have no scene-graph tuples to match); a NaN F-score in
// SPICE's output (0/0) is read as 0. Batches run one after another.
func (r *Runner) Score(ctx context.Context, cands []string, refs [][]string) ([]float64, error) {
	if len(cands) != len(refs) {
		return nil, fmt.Errorf("spice: %d candidates, %d reference sets", len(cands), len(refs))
	}
	out := make([]float64, len(cands))
	var todo []int
	for i := range cands {
		if len(bytes.TrimSpace([]byte(cands[i]))) > 0 && len(refs[i]) > 0 {
			todo = append(todo, i)
		}
	}
	bs := r.BatchSize
	if bs <= 0 {
		bs = DefaultBatchSize
	}
	for start := 0; start < len(todo); start += bs {
		batch := todo[start:min(start+bs, len(todo))]
		items := make([]item, len(batch))
		for k, i := range batch {
			items[k] = item{ImageID: k, Test: cands[i], Refs: refs[i]}
		}
		f, err := r.runBatch(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("spice: batch of captions %d–%d: %w", batch[0], batch[len(batch)-1], err)
		}
		for k, i := range batch {
			out[i] = f[k]
		}
	}
	return out, nil
}

func (r *Runner) runBatch(ctx context.Context, items []item) ([]float64, error) {
	dir, err := os.MkdirTemp(r.TempDir, "spice-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, outPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "output.json")
	b, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return nil, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	java := r.Java
	if java == "" {
		java = "java"
	}
	cmd := exec.CommandContext(cctx, java, r.Args(in, outPath)...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	if r.Stderr != nil {
		cmd.Stderr = io.MultiWriter(r.Stderr, &tail{b: &stderr})
	} else {
		cmd.Stderr = &tail{b: &stderr}
	}
	if err := cmd.Run(); err != nil {
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return nil, fmt.Errorf("timed out after %s", timeout)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w: %s", java, err, bytes.TrimSpace(stderr.Bytes()))
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		return nil, fmt.Errorf("no output: %w", err)
	}
	return ParseOutput(raw, len(items))
}

// tail keeps the last 4 KiB written to it.
type tail struct{ b *bytes.Buffer }

func (t *tail) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 4096 {
		keep := append([]byte(nil), t.b.Bytes()[t.b.Len()-4096:]...)
		t.b.Reset()
		t.b.Write(keep)
	}
	return len(p), nil
}

// nanValue matches a bare NaN/Infinity value, which Java's JSON writer emits
// and JSON does not allow.
var nanValue = regexp.MustCompile(`:\s*-?(NaN|Infinity)\b`)

// ParseOutput reads SPICE's -out file for items with image ids 0..n−1 and
// returns each item's "scores" → "All" → "f" by image id. NaN reads as 0.
// Every id must be present exactly once.
func ParseOutput(raw []byte, n int) ([]float64, error) {
	raw = nanValue.ReplaceAll(raw, []byte(": null"))
	var items []struct {
		ImageID json.RawMessage `json:"image_id"`
		Scores  struct {
			All *struct {
				F *float64 `json:"f"`
			} `json:"All"`
		} `json:"scores"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("parse SPICE output: %w", err)
	}
	out := make([]float64, n)
	seen := make([]bool, n)
	for _, it := range items {
		idStr := string(bytes.Trim(it.ImageID, `"`))
		id, err := strconv.Atoi(idStr)
		if err != nil || id < 0 || id >= n {
			return nil, fmt.Errorf("parse SPICE output: unexpected image_id %s", it.ImageID)
		}
		if seen[id] {
			return nil, fmt.Errorf("parse SPICE output: image_id %d twice", id)
		}
		seen[id] = true
		if it.Scores.All == nil {
			return nil, fmt.Errorf("parse SPICE output: image_id %d has no scores.All", id)
		}
		if it.Scores.All.F != nil {
			out[id] = *it.Scores.All.F
		}
	}
	for id, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("parse SPICE output: image_id %d missing", id)
		}
	}
	return out, nil
}

// errChecksum reports a download whose digest differs from the published one.
var errChecksum = errors.New("checksum mismatch")
