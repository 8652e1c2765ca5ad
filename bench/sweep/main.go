// Command sweep measures the SLURM side of beans-slurm against the single-node test cluster
// of scripts/test-cluster.sh, over its real sshd (127.0.0.1:2222), in one run:
//
//  1. submit: the real binary submits the registry sweep beans_zero_paper (7 models × the 22
//     tasks of beans_zero_core, stub serving, memory cut to fit the test node) twice under two
//     names: the first uploads the binary, the second finds it there. Wall time, remote
//     commands and file writes come from the "remote calls" line the CLI logs at debug level.
//  2. status: `status NAME --json --no-end` of the first sweep, -polls times: remote commands
//     and wall time per poll.
//  3. fetch: a sweep-shaped result tree (7 models × 22 tasks × predictions, processed and
//     scored JSON lines, summary.json, task.json, run.json; rows per task in BEANS-Zero's
//     proportions × -scale) written on the cluster's side, copied by remote.Mirror (what
//     `fetch` runs) and by `rsync -a` over the same sshd into empty directories, alternating
//     over -rounds; then a second pass of each with nothing new; the copies are compared byte
//     for byte.
//
// With -rtt D (default 50ms; 0 turns it off) a third submit, the status polls, one full copy
// and one no-op pass of Mirror and rsync, the listing (Walk against the bare `find` command)
// and Mirror with -rtt-workers and -streams are measured again through a loopback TCP proxy that delays every
// chunk by D/2 in each direction, so that round trips cost what they cost on a far cluster.
//
// It needs the cluster up (scripts/test-cluster.sh up, as root) and rsync; it runs as root
// (it writes the tree directly under the cluster user's home and chowns it). Everything it
// creates is removed at the end, and every sweep it submits is cancelled.
//
// Usage: go run ./bench/sweep [-scale 0.25] [-rounds 3] [-polls 5] [-workers 4[,8,...]]
// [-rtt 50ms] [-rtt-workers 16] [-streams 1[,2,0,...]] [-only submit,status,fetch]
// [-rsync-fsync] [-keep]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

var (
	scale      = flag.Float64("scale", 0.25, "rows per task of the fetched tree as a fraction of BEANS-Zero's (91,965 rows in all); 0.25 ≈ 200 MB")
	rounds     = flag.Int("rounds", 3, "alternating rounds of Mirror and rsync (median reported)")
	polls      = flag.Int("polls", 5, "status polls")
	workers    = flag.String("workers", "4", "Mirror worker counts, comma-separated: the first is the headline (fetch's default is 4), the others are timed once each after the rounds")
	rtt        = flag.Duration("rtt", 50*time.Millisecond, "also measure through a loopback proxy adding this round-trip time (0: skip)")
	only       = flag.String("only", "submit,status,fetch", "which parts (status needs submit)")
	rttWorkers = flag.String("rtt-workers", "16", "Mirror worker counts also timed once each through the latency proxy (empty: none)")
	streams    = flag.String("streams", "auto", "Mirror tar stream counts, comma-separated: the first is the headline (auto: Mirror's default, as fetch), the others are timed once each after the rounds, on loopback and through the proxy; 0 copies file by file over SFTP (no stream, as before the stream existed)")
	noSyncPeer = flag.Bool("nosync-peer", false, "also time a copy that does what Mirror does (same transport, Walk, Open, workers, chmod, chtimes, rename) without its fsync per file")
	rsyncFsync = flag.Bool("rsync-fsync", false, "also time `rsync -a --fsync` (fsyncs every file, as Mirror does)")
	sweepID    = flag.String("sweep", "beans_zero_paper", "registry sweep to submit")
	keep       = flag.Bool("keep", false, "keep the local temporary directory and the remote trees")
	timeout    = flag.Duration("timeout", 30*time.Minute, "bound on the whole run")
)

// cluster is the test cluster, from BEANS_SLURM_TEST_* or `scripts/test-cluster.sh env`.
type cluster struct {
	host             string
	port             int
	user, key, known string
	home             string
}

var (
	cleanups []func()
	cleanMu  sync.Mutex
)

func atExit(f func()) {
	cleanMu.Lock()
	cleanups = append(cleanups, f)
	cleanMu.Unlock()
}

func runCleanups() {
	cleanMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		runCleanups()
		os.Exit(1)
	}
}

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	if parts["status"] && !parts["submit"] {
		check(fmt.Errorf("-only status needs submit too (it polls the sweep submit made)"))
	}
	cl := loadCluster()
	tmp, err := os.MkdirTemp("", "beans-sweep-bench-")
	check(err)
	check(os.Chmod(tmp, 0o755))
	if !*keep {
		atExit(func() { os.RemoveAll(tmp) })
	}
	var out report
	out.start = time.Now()

	// The latency proxy, shared by every part.
	var px *proxy
	if *rtt > 0 {
		px, err = startProxy(net.JoinHostPort(cl.host, strconv.Itoa(cl.port)), *rtt/2)
		check(err)
		atExit(px.Close)
		kh, err := proxyKnownHosts(cl, px.port, tmp)
		check(err)
		px.known = kh
	}

	tr := dial(ctx, cl, cl.port, cl.known)
	atExit(func() { tr.Close() })

	if parts["submit"] {
		submitPart(ctx, cl, tmp, tr, px, parts["status"], &out)
	}
	if parts["fetch"] {
		fetchPart(ctx, cl, tmp, tr, px, &out)
	}
	runCleanups()
	out.print()
}

func loadCluster() cluster {
	get := func(k string) string { return os.Getenv("BEANS_SLURM_TEST_" + k) }
	if get("SSH_ADDR") == "" {
		out, err := exec.Command("scripts/test-cluster.sh", "env").Output()
		check(err)
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && os.Getenv(k) == "" {
				os.Setenv(k, v)
			}
		}
	}
	host, port, ok := strings.Cut(get("SSH_ADDR"), ":")
	p, err := strconv.Atoi(port)
	if !ok || err != nil {
		check(fmt.Errorf("BEANS_SLURM_TEST_SSH_ADDR=%q: want host:port (is the test cluster set up? scripts/test-cluster.sh env)", get("SSH_ADDR")))
	}
	c := cluster{host: host, port: p, user: get("SSH_USER"), key: get("SSH_KEY"), known: get("KNOWN_HOSTS"), home: get("HOME")}
	if c.user == "" || c.key == "" || c.known == "" || c.home == "" {
		check(fmt.Errorf("incomplete test cluster environment: %+v", c))
	}
	st := exec.Command("scripts/test-cluster.sh", "status")
	if b, err := st.CombinedOutput(); err != nil {
		check(fmt.Errorf("the test cluster does not answer (run scripts/test-cluster.sh up as root):\n%s", b))
	}
	return c
}

func dial(ctx context.Context, c cluster, port int, known string) remote.Transport {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t, err := remote.Dial(dctx, remote.SSHConfig{Host: c.host, Port: port, User: c.user,
		IdentityFiles: []string{c.key}, KnownHostsFiles: []string{known}, ConfigFile: "none"})
	check(err)
	return t
}

// ---- 1 and 2: submit and status ------------------------------------------------------------

type calls struct {
	wall     time.Duration // the process, dial and all
	elapsed  time.Duration // the CLI's own "elapsed": from connected to closed
	commands int
	writes   int
	opens    int
	bytesW   int64
}

var kvRE = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// parseCalls reads the "remote calls" debug line of a CLI run.
func parseCalls(stderr string) (calls, error) {
	var c calls
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.Contains(l, "remote calls") {
			continue
		}
		kv := map[string]string{}
		for _, m := range kvRE.FindAllStringSubmatch(l, -1) {
			kv[m[1]] = strings.Trim(m[2], `"`)
		}
		c.commands, _ = strconv.Atoi(kv["commands"])
		c.writes, _ = strconv.Atoi(kv["file_writes"])
		c.opens, _ = strconv.Atoi(kv["file_opens"])
		c.bytesW, _ = strconv.ParseInt(kv["bytes_written"], 10, 64)
		d, err := time.ParseDuration(kv["elapsed"])
		if err != nil {
			return c, fmt.Errorf("remote calls line %q: elapsed: %v", l, err)
		}
		c.elapsed = d
		return c, nil
	}
	return c, fmt.Errorf("no \"remote calls\" line in the CLI's log:\n%s", tail(stderr, 2000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type cliEnv struct {
	bin, clusters, state string
}

// run runs the CLI with a bound, and returns its wall time, output and exit code.
func (e cliEnv) run(ctx context.Context, bound time.Duration, args ...string) (time.Duration, string, string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"--log-level", "debug"}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BEANS_SLURM_") { // no user registry, profiles or state
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "BEANS_SLURM_STATE_DIR="+e.state)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: cut off after %v", e.bin, strings.Join(args, " "), bound)
	}
	return wall, so.String(), se.String(), code, err
}

func writeProfiles(p string, c cluster, port int, known, work string) error {
	prof := map[string]any{
		"host": c.host, "port": port, "user": c.user, "identity_file": c.key, "known_hosts": known,
		"work_dir": work,
		"gpu":      map[string]any{"partition": "gpu", "time": "00:10:00", "memory": "500M"},
		"cpu":      map[string]any{"partition": "cpu", "time": "00:10:00", "memory": "500M"},
	}
	b, err := json.Marshal(map[string]any{"default": "test", "clusters": map[string]any{"test": prof}})
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o600) // JSON is YAML
}

func submitPart(ctx context.Context, c cluster, tmp string, tr remote.Transport, px *proxy, withStatus bool, out *report) {
	reg, err := registry.Default()
	check(err)
	sw, err := reg.Sweep(*sweepID)
	check(err)
	tasks, err := reg.SuiteTasks(sw.Suite)
	check(err)
	out.models, out.tasks, out.suite = len(sw.Models), len(tasks), sw.Suite
	fmt.Fprintf(os.Stderr, "bench: registry sweep %s: %d models × %d tasks of %s\n", sw.ID, len(sw.Models), len(tasks), sw.Suite)

	bin := filepath.Join(tmp, "beans-slurm")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/beans-slurm")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	check(build.Run())
	if fi, err := os.Stat(bin); err == nil {
		out.binBytes = fi.Size()
	}

	stamp := time.Now().UnixNano()
	work := path.Join(c.home, fmt.Sprintf("bench-sweep-%d", stamp))
	if !*keep {
		atExit(func() {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, _ = remote.Output(cctx, tr, "rm -rf "+remote.Quote(work))
		})
	}
	env := cliEnv{bin: bin, clusters: filepath.Join(tmp, "clusters.yaml"), state: filepath.Join(tmp, "state")}
	check(writeProfiles(env.clusters, c, c.port, c.known, work))

	// The registry sweep with the serving jobs' memory cut to fit the test node (presets ask up
	// to 64G; the node has about 19 GB) and a short time limit: everything else is as is.
	sweepFile := func(name string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "id: %s\nmodels:\n", name)
		for _, m := range sw.Models {
			fmt.Fprintf(&b, "  - model: %s\n    stub: true\n    memory: 500M\n    time: \"00:10:00\"\n", m.Model)
		}
		fmt.Fprintf(&b, "suite: %s\n", sw.Suite)
		p := filepath.Join(tmp, name+".yaml")
		check(os.WriteFile(p, []byte(b.String()), 0o644))
		return p
	}
	var submitted []string
	cancelled := false
	atExit(func() {
		if cancelled {
			return
		}
		for _, name := range submitted {
			wall, so, se, code, err := env.run(context.Background(), time.Minute, "cancel", name, "--clusters", env.clusters)
			if err != nil || code != 0 {
				fmt.Fprintf(os.Stderr, "bench: cancel %s: exit %d %v\n%s%s", name, code, err, so, tail(se, 1000))
				continue
			}
			fmt.Fprintf(os.Stderr, "bench: cancelled sweep %s (%v)\n", name, wall.Round(time.Millisecond))
		}
	})
	submit := func(name, profiles string) calls {
		cfg := sweepFile(name)
		wall, so, se, code, err := env.run(ctx, 5*time.Minute, "submit", "--clusters", profiles, "--binary", bin,
			"--config", cfg, "--cluster", "test", "--stub", "--sweep", name)
		submitted = append(submitted, name)
		check(err)
		if code != 0 {
			check(fmt.Errorf("submit %s: exit %d\n%s\n%s", name, code, so, tail(se, 3000)))
		}
		cs, err := parseCalls(se)
		check(err)
		cs.wall = wall
		m, err := (slurm.Store{Dir: filepath.Join(env.state, "sweeps")}).Load(name)
		check(err)
		if n := len(m.JobIDs("")); n != 2*len(sw.Models) {
			check(fmt.Errorf("submit %s: %d jobs, want %d\n%s", name, n, 2*len(sw.Models), so))
		}
		fmt.Fprintf(os.Stderr, "bench: submitted %s: %d jobs in %v (%d commands, %d writes)\n", name, len(m.JobIDs("")), wall.Round(time.Millisecond), cs.commands, cs.writes)
		return cs
	}
	first := fmt.Sprintf("bench%d-a", stamp%1000000)
	second := fmt.Sprintf("bench%d-b", stamp%1000000)
	out.submitFirst = submit(first, env.clusters)
	out.submitSecond = submit(second, env.clusters)
	slow := filepath.Join(tmp, "clusters-rtt.yaml")
	if px != nil {
		// A third sweep through the latency proxy (the binary is there already).
		check(writeProfiles(slow, c, px.port, px.known, work))
		out.submitRTT = submit(fmt.Sprintf("bench%d-c", stamp%1000000), slow)
	}

	if withStatus {
		poll := func(profiles string) calls {
			wall, so, se, code, err := env.run(ctx, 2*time.Minute, "status", first, "--json", "--no-end", "--clusters", profiles)
			check(err)
			var st slurm.SweepStatus
			if err := json.Unmarshal([]byte(so), &st); err != nil {
				check(fmt.Errorf("status --json (exit %d): %v\n%s\n%s", code, err, so, tail(se, 2000)))
			}
			n := 0
			for _, m := range st.Models {
				n += len(m.Tasks)
			}
			out.statusTasks = n
			out.statusModels = len(st.Models)
			cs, err := parseCalls(se)
			check(err)
			cs.wall = wall
			return cs
		}
		for range *polls {
			out.status = append(out.status, poll(env.clusters))
		}
		if px != nil {
			for range *polls {
				out.statusRTT = append(out.statusRTT, poll(slow))
			}
		}
	}
	// Cancel now (and not only at exit): the jobs must not run while fetch is timed.
	cancelled = true
	for _, name := range submitted {
		wall, so, se, code, err := env.run(ctx, time.Minute, "cancel", name, "--clusters", env.clusters)
		check(err)
		if code != 0 {
			check(fmt.Errorf("cancel %s: exit %d\n%s\n%s", name, code, so, tail(se, 2000)))
		}
		fmt.Fprintf(os.Stderr, "bench: cancelled sweep %s (%v)\n", name, wall.Round(time.Millisecond))
	}
	// Wait (bounded) until the cancelled jobs are gone from the queue.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		o, err := remote.Output(ctx, tr, `squeue -h -u "$USER" -o '%j' | grep -c '^beans-bench' || true`)
		if err == nil && strings.TrimSpace(string(o)) == "0" {
			break
		}
		time.Sleep(time.Second)
	}
}

// ---- 3: fetch ------------------------------------------------------------------------------

// rowsPerTask is the BEANS-Zero test split (91,965 rows) by task, as in BEANS_ZERO.md.
var rowsPerTask = map[string]int{
	"esc50": 400, "watkins": 339, "cbi": 3620, "humbugdb": 1859, "lifestage": 466, "call_type": 1000,
	"unseen_species_cmn": 1255, "unseen_species_sci": 1255, "unseen_species_tax": 1255,
	"unseen_genus_cmn": 951, "unseen_genus_sci": 951, "unseen_genus_tax": 951,
	"unseen_family_cmn": 451, "unseen_family_sci": 451, "unseen_family_tax": 451, "zf_indiv": 1160,
	"enabirds": 4543, "hiceas": 1485, "rfcx": 10406, "gibbons": 18560, "dcase": 13688, "captioning": 26468,
}

var words = strings.Fields(`a the bird birds sings singing calls call repeated short long high pitched whistle trill chirps
in background with and noise wind rain frog croaks insects buzzing distant loud soft series of notes descending rising while
another responds water flowing several individuals chorus at dawn harsh clear melodic song is heard Northern Common Lesser
Great Spotted Warbler Thrush Sparrow Owl Finch Wren Dove Hawk`)

func phrase(r *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[r.IntN(len(words))]
	}
	return strings.Join(ws, " ")
}

// writeTree writes a sweep-shaped result tree under root and returns its files and bytes.
func writeTree(root string, models []string, tasks []string, sc float64) (int, int64, error) {
	r := rand.New(rand.NewPCG(1, 2))
	var files int
	var size int64
	for _, m := range models {
		for _, task := range tasks {
			dir := filepath.Join(root, m, task)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return files, size, err
			}
			short := strings.TrimPrefix(task, "beans_zero_")
			n := max(1, int(float64(rowsPerTask[short])*sc+0.5))
			var pred, proc, scored bytes.Buffer
			for i := range n {
				id := fmt.Sprintf("%s-%06d", short, i)
				target := phrase(r, 2+r.IntN(3))
				if short == "captioning" {
					target = phrase(r, 10+r.IntN(8))
				}
				answer := target
				if r.IntN(3) == 0 {
					answer = "The recording most likely contains " + phrase(r, 3+r.IntN(4)) + "."
				}
				lat := 0.2 + r.Float64()*2
				fmt.Fprintf(&pred, `{"sample_id":%q,"task_id":%q,"dataset_name":%q,"instruction":%q,"target":%q,"prediction":%q,"response":{"prediction":[%q],"model":%q},"latency_sec":%.4f,"attempts":1}`+"\n",
					id, task, short, "<Audio><AudioHere></Audio> What is the common name for the focal species in the audio? Answer: "+phrase(r, 4), target, answer, answer, m, lat)
				fmt.Fprintf(&proc, `{"sample_id":%q,"task_id":%q,"target":%q,"prediction":%q,"processed":%q,"labels_matched":[%q],"postprocess":"fuzzy-label-match","distance":%d}`+"\n",
					id, task, target, answer, strings.ToLower(target), target, r.IntN(4))
				fmt.Fprintf(&scored, `{"sample_id":%q,"task_id":%q,"target":%q,"prediction":%q,"processed":%q,"correct":%t,"score":%.4f,"metric":"accuracy","notes":%q}`+"\n",
					id, task, target, answer, strings.ToLower(target), r.IntN(2) == 0, r.Float64(), phrase(r, 5))
			}
			summary := fmt.Sprintf(`{"task":%q,"model":%q,"n":%d,"failed":%d,"metrics":{"accuracy":%.4f,"macro_f1":%.4f},"ci95":{"accuracy":[%.4f,%.4f]}}`+"\n",
				task, m, n, r.IntN(3), r.Float64(), r.Float64(), r.Float64(), r.Float64())
			taskJSON := fmt.Sprintf(`{"task":{"id":%q,"dataset_name":%q},"labels":[%q,%q],"labels_source":"split","prompt":{"id":"beans_zero_instruction","template":"{{.instruction}}"},"predict_url":"http://gpu-node:8000/predict","dataset":{"kind":"hub","repo":"EarthSpeciesProject/BEANS-Zero","rows":%d},"config_hash":"%016x","beans_slurm":"bench","created":"2026-11-26T12:00:00Z"}`+"\n",
				task, short, phrase(r, 2), phrase(r, 2), n, r.Uint64())
			run := fmt.Sprintf(`{"started":"2026-11-26T12:00:00Z","finished":"2026-11-26T12:10:00Z","inference_sec":%.2f,"samples":%d,"failed":0,"samples_per_sec":%.2f,"batch_size":8,"in_flight":8,"peak_rss_mib":31.5}`+"\n",
				600.0, n, float64(n)/600)
			for name, b := range map[string][]byte{
				"predictions.jsonl": pred.Bytes(), "processed_predictions.jsonl": proc.Bytes(), "scored_predictions.jsonl": scored.Bytes(),
				"summary.json": []byte(summary), "task.json": []byte(taskJSON), "run.json": []byte(run),
			} {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					return files, size, err
				}
				files++
				size += int64(len(b))
			}
		}
	}
	return files, size, nil
}

func chownTree(root, who string) error {
	u, err := user.Lookup(who)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

type copyRun struct {
	d     time.Duration
	files int
	bytes int64
}

func fetchPart(ctx context.Context, c cluster, tmp string, tr remote.Transport, px *proxy, out *report) {
	reg, err := registry.Default()
	check(err)
	sw, err := reg.Sweep(*sweepID)
	check(err)
	tasks, err := reg.SuiteTasks(sw.Suite)
	check(err)
	var models, taskIDs []string
	for _, m := range sw.Models {
		models = append(models, m.Model)
	}
	for _, t := range tasks {
		taskIDs = append(taskIDs, t.ID)
	}
	out.models, out.tasks, out.suite = len(models), len(taskIDs), sw.Suite

	base := filepath.Join(c.home, fmt.Sprintf("bench-fetch-%d", time.Now().UnixNano()))
	tree := filepath.Join(base, "results")
	if !*keep {
		atExit(func() { os.RemoveAll(base) })
	}
	start := time.Now()
	files, size, err := writeTree(tree, models, taskIDs, *scale)
	check(err)
	check(chownTree(base, c.user))
	syscall.Sync()
	out.treeFiles, out.treeBytes = files, size
	fmt.Fprintf(os.Stderr, "bench: wrote %d files, %.1f MB under %s in %v\n", files, float64(size)/1e6, tree, time.Since(start).Round(time.Millisecond))

	ws := parseInts(*workers)
	if len(ws) == 0 {
		check(fmt.Errorf("-workers: give at least one worker count"))
	}
	counted := remote.Counting(tr)
	ss := parseStreams(*streams)
	mirror := func(t remote.Transport, dst string, w int, s string) copyRun {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		start := time.Now()
		st, err := remote.Mirror(mctx, t, tree, dst, remote.MirrorOptions{Workers: w, Streams: mirrorStreams(s)})
		d := time.Since(start)
		check(err)
		if st.Files != files {
			check(fmt.Errorf("mirror: %d files, want %d", st.Files, files))
		}
		return copyRun{d, st.Copied, st.Bytes}
	}
	rsync := func(port int, known, dst string, extra ...string) copyRun {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		e := fmt.Sprintf("ssh -p %d -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes", port, c.key, known)
		args := append([]string{"-a", "--stats"}, extra...)
		args = append(args, "-e", e, fmt.Sprintf("%s@%s:%s/", c.user, c.host, tree), dst+"/")
		cmd := exec.CommandContext(rctx, "rsync", args...)
		var so, se bytes.Buffer
		cmd.Stdout, cmd.Stderr = &so, &se
		cmd.WaitDelay = 5 * time.Second
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			check(fmt.Errorf("rsync: %v\n%s", err, se.String()))
		}
		var cr copyRun
		cr.d = d
		for _, l := range strings.Split(so.String(), "\n") {
			if v, ok := strings.CutPrefix(l, "Number of regular files transferred: "); ok {
				cr.files, _ = strconv.Atoi(strings.ReplaceAll(v, ",", ""))
			}
			if v, ok := strings.CutPrefix(l, "Total transferred file size: "); ok {
				v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimSpace(v), " bytes"), ",", "")
				cr.bytes, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		return cr
	}
	fresh := func(name string) string {
		d := filepath.Join(tmp, name)
		check(os.RemoveAll(d))
		check(os.MkdirAll(d, 0o755))
		syscall.Sync() // the previous copy's writeback does not land in this one's time
		return d
	}

	mDst, rDst, fDst := filepath.Join(tmp, "mirror"), filepath.Join(tmp, "rsync"), filepath.Join(tmp, "rsync-fsync")
	for i := range *rounds {
		doMirror := func() {
			counted.Reset()
			r := mirror(counted, fresh("mirror"), ws[0], ss[0])
			out.mirror = append(out.mirror, r)
			out.mirrorCounts = counted.Counts()
		}
		doRsync := func() { out.rsync = append(out.rsync, rsync(c.port, c.known, fresh("rsync"))) }
		doNoSync := func() {
			if *noSyncPeer {
				out.noSync = append(out.noSync, copyNoSync(ctx, tr, tree, fresh("nosync"), ws[0], files))
			}
		}
		doFsync := func() {
			if *rsyncFsync {
				out.rsyncFsync = append(out.rsyncFsync, rsync(c.port, c.known, fresh("rsync-fsync"), "--fsync"))
			}
		}
		if i%2 == 0 {
			doMirror()
			doRsync()
			doFsync()
			doNoSync()
		} else {
			doNoSync()
			doFsync()
			doRsync()
			doMirror()
		}
		fmt.Fprintf(os.Stderr, "bench: round %d: mirror %v, rsync %v\n", i+1, out.mirror[i].d.Round(time.Millisecond), out.rsync[i].d.Round(time.Millisecond))
	}
	// Nothing new: Mirror and rsync again over their own copies.
	for range 3 {
		counted.Reset()
		r := mirror(counted, mDst, ws[0], ss[0])
		if r.files != 0 {
			check(fmt.Errorf("no-op mirror copied %d files", r.files))
		}
		out.mirrorNoop = append(out.mirrorNoop, r)
		out.noopCounts = counted.Counts()
		out.rsyncNoop = append(out.rsyncNoop, rsync(c.port, c.known, rDst))
	}
	// The copies must be the tree, byte for byte.
	check(sameTree(mDst, rDst))
	check(sameTree(tree, mDst))
	if *rsyncFsync {
		check(sameTree(tree, fDst))
	}
	out.identical = true

	// Other worker counts, once each (after the rounds, into a fresh directory).
	for _, w := range ws[1:] {
		r := mirror(tr, fresh("mirror-w"), w, ss[0])
		out.workerRuns = append(out.workerRuns, workerRun{w, ss[0], r.d})
		fmt.Fprintf(os.Stderr, "bench: mirror with %d workers: %v\n", w, r.d.Round(time.Millisecond))
	}
	for _, s := range ss[1:] {
		r := mirror(tr, fresh("mirror-w"), ws[0], s)
		out.workerRuns = append(out.workerRuns, workerRun{ws[0], s, r.d})
		fmt.Fprintf(os.Stderr, "bench: mirror with %s streams: %v\n", s, r.d.Round(time.Millisecond))
	}
	os.RemoveAll(filepath.Join(tmp, "mirror-w"))

	// Through the latency proxy: one full copy and one no-op pass of each.
	if px != nil {
		slow := dial(ctx, c, px.port, px.known)
		defer slow.Close()
		out.rttMirror = mirror(slow, fresh("mirror-rtt"), ws[0], ss[0])
		out.rttRsync = rsync(px.port, px.known, fresh("rsync-rtt"))
		out.rttMirrorNoop = mirror(slow, filepath.Join(tmp, "mirror-rtt"), ws[0], ss[0])
		out.rttRsyncNoop = rsync(px.port, px.known, filepath.Join(tmp, "rsync-rtt"))
		check(sameTree(tree, filepath.Join(tmp, "mirror-rtt")))
		// Where the time goes: the listing (Walk: one find command, or SFTP readdirs where find
		// has no -printf) against the bare find command; then Mirror with other worker and
		// stream counts.
		lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		start := time.Now()
		fis, err := slow.Walk(lctx, tree)
		check(err)
		out.rttWalk = time.Since(start)
		if len(fis) != files {
			check(fmt.Errorf("walk: %d files, want %d", len(fis), files))
		}
		start = time.Now()
		lst, err := remote.Output(lctx, slow, "find "+remote.Quote(tree)+` -type f -printf '%P\t%s\t%T@\t%m\n'`)
		check(err)
		out.rttFind = time.Since(start)
		if n := strings.Count(string(lst), "\n"); n != files {
			check(fmt.Errorf("find: %d files, want %d", n, files))
		}
		for _, w := range parseInts(*rttWorkers) {
			r := mirror(slow, fresh("mirror-rtt-w"), w, ss[0])
			out.rttWorkerRuns = append(out.rttWorkerRuns, workerRun{w, ss[0], r.d})
			fmt.Fprintf(os.Stderr, "bench: at %v RTT, mirror with %d workers: %v\n", *rtt, w, r.d.Round(time.Millisecond))
		}
		for _, s := range ss[1:] {
			r := mirror(slow, fresh("mirror-rtt-w"), ws[0], s)
			out.rttWorkerRuns = append(out.rttWorkerRuns, workerRun{ws[0], s, r.d})
			fmt.Fprintf(os.Stderr, "bench: at %v RTT, mirror with %s streams: %v\n", *rtt, s, r.d.Round(time.Millisecond))
		}
		os.RemoveAll(filepath.Join(tmp, "mirror-rtt-w"))
		fmt.Fprintf(os.Stderr, "bench: at %v RTT: mirror %v, rsync %v; no-op %v, %v\n", *rtt, out.rttMirror.d.Round(time.Millisecond),
			out.rttRsync.d.Round(time.Millisecond), out.rttMirrorNoop.d.Round(time.Millisecond), out.rttRsyncNoop.d.Round(time.Millisecond))
	}
}

// copyNoSync copies the tree as Mirror does a first copy (Walk, then workers that Open each
// file and io.Copy it into NAME.part, chmod, chtimes, rename), without the fsync per file: the
// peer that tells what Mirror's fsyncs cost.
func copyNoSync(ctx context.Context, t remote.Transport, tree, dst string, workers, want int) copyRun {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	fis, err := t.Walk(ctx, tree)
	check(err)
	if len(fis) != want {
		check(fmt.Errorf("walk: %d files, want %d", len(fis), want))
	}
	jobs := make(chan remote.FileInfo)
	errs := make(chan error, workers)
	var n sync.WaitGroup
	var total int64
	var mu sync.Mutex
	for range workers {
		n.Add(1)
		go func() {
			defer n.Done()
			for fi := range jobs {
				local := filepath.Join(dst, filepath.FromSlash(fi.Path))
				err := func() error {
					if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
						return err
					}
					f, err := os.OpenFile(local+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
					if err != nil {
						return err
					}
					rc, err := t.Open(ctx, path.Join(tree, fi.Path), 0)
					if err != nil {
						f.Close()
						return err
					}
					c, err := io.Copy(f, rc)
					rc.Close()
					if err != nil {
						f.Close()
						return err
					}
					if err := f.Close(); err != nil {
						return err
					}
					mu.Lock()
					total += c
					mu.Unlock()
					if err := os.Chmod(local+".part", fi.Mode.Perm()); err != nil {
						return err
					}
					if err := os.Chtimes(local+".part", fi.ModTime, fi.ModTime); err != nil {
						return err
					}
					return os.Rename(local+".part", local)
				}()
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, fi := range fis {
		jobs <- fi
	}
	close(jobs)
	n.Wait()
	d := time.Since(start)
	select {
	case err := <-errs:
		check(err)
	default:
	}
	return copyRun{d, len(fis), total}
}

func parseInts(s string) []int {
	var out []int
	if strings.TrimSpace(s) == "" {
		return nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			check(fmt.Errorf("-workers %q: want positive integers", s))
		}
		out = append(out, n)
	}
	return out
}

// sameTree checks that b holds exactly a's regular files with the same bytes.
func sameTree(a, b string) error {
	list := func(root string) (map[string]bool, error) {
		m := map[string]bool{}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.Type().IsRegular() {
				rel, _ := filepath.Rel(root, p)
				m[rel] = true
			}
			return nil
		})
		return m, err
	}
	la, err := list(a)
	if err != nil {
		return err
	}
	lb, err := list(b)
	if err != nil {
		return err
	}
	if len(la) != len(lb) {
		return fmt.Errorf("%s has %d files, %s has %d", a, len(la), b, len(lb))
	}
	for rel := range la {
		if !lb[rel] {
			return fmt.Errorf("%s is in %s, not in %s", rel, a, b)
		}
		x, err := os.ReadFile(filepath.Join(a, rel))
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s differs between %s and %s", rel, a, b)
		}
	}
	return nil
}

// ---- the latency proxy ---------------------------------------------------------------------

// proxy forwards loopback TCP connections to target, holding every chunk back by delay in
// each direction (order kept, no bandwidth limit beyond a 4096-chunk queue).
type proxy struct {
	ln    net.Listener
	port  int
	known string
	delay time.Duration
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(target string, delay time.Duration) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, delay: delay}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p, nil
}

type chunk struct {
	due time.Time
	b   []byte
}

func (p *proxy) pipe(from, to net.Conn) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := from.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(p.delay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		if d := time.Until(ch.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := to.Write(ch.b); err != nil {
			from.Close()
			break
		}
	}
	if tc, ok := to.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	for range q { // drain, so the reader ends
	}
}

func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// proxyKnownHosts copies the cluster's known_hosts with its entries renamed to the proxy's
// port, so that host keys are still checked strictly through it.
func proxyKnownHosts(c cluster, port int, dir string) (string, error) {
	b, err := os.ReadFile(c.known)
	if err != nil {
		return "", err
	}
	from := fmt.Sprintf("[%s]:%d", c.host, c.port)
	to := fmt.Sprintf("[%s]:%d", c.host, port)
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out.WriteString(strings.ReplaceAll(sc.Text(), from, to) + "\n")
	}
	p := filepath.Join(dir, "known_hosts-proxy")
	return p, os.WriteFile(p, []byte(out.String()), 0o600)
}

// ---- the report ----------------------------------------------------------------------------

type workerRun struct {
	workers int
	streams string
	d       time.Duration
}

// mirrorStreams maps a -streams value to MirrorOptions.Streams ("auto": 0, the default; "0":
// -1, none).
func mirrorStreams(s string) int {
	if s == "auto" {
		return 0
	}
	n, _ := strconv.Atoi(s)
	if n == 0 {
		return -1
	}
	return n
}

func parseStreams(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if n, err := strconv.Atoi(f); f != "auto" && (err != nil || n < 0) {
			check(fmt.Errorf("-streams %q: want auto or integers ≥ 0", s))
		}
		out = append(out, f)
	}
	return out
}

type report struct {
	start                       time.Time
	models, tasks               int
	suite                       string
	binBytes                    int64
	submitFirst, submitSecond   calls
	submitRTT                   calls
	status, statusRTT           []calls
	statusModels, statusTasks   int
	treeFiles                   int
	treeBytes                   int64
	mirror, rsync, rsyncFsync   []copyRun
	noSync                      []copyRun
	mirrorNoop, rsyncNoop       []copyRun
	mirrorCounts, noopCounts    remote.Counts
	workerRuns                  []workerRun
	identical                   bool
	rttMirror, rttRsync         copyRun
	rttMirrorNoop, rttRsyncNoop copyRun
	rttWalk, rttFind            time.Duration
	rttWorkerRuns               []workerRun
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func durs(rs []copyRun) []time.Duration {
	var out []time.Duration
	for _, r := range rs {
		out = append(out, r.d)
	}
	return out
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func all(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, secs(d))
	}
	return strings.Join(s, ", ")
}

func yes(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

func (r *report) print() {
	w := os.Stdout
	fmt.Fprintf(w, "\n## go run ./bench/sweep %s\n\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "%d models × %d tasks (%s), %d cores, %s total\n\n", r.models, r.tasks, r.suite, runtime.NumCPU(), time.Since(r.start).Round(time.Second))
	if r.submitFirst.wall > 0 {
		fmt.Fprintf(w, "### submit (%d jobs per sweep; binary %.1f MB)\n\n", 2*r.models, float64(r.binBytes)/1e6)
		fmt.Fprintln(w, "| submit | wall | CLI elapsed (after the handshake) | remote commands | file writes | bytes written |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, x := range []struct {
			n string
			c calls
		}{{"first (uploads the binary)", r.submitFirst}, {"second (binary already there)", r.submitSecond},
			{fmt.Sprintf("third, through the +%v RTT proxy (binary there)", *rtt), r.submitRTT}} {
			if x.c.wall == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %.1f MB |\n", x.n, secs(x.c.wall), secs(x.c.elapsed), x.c.commands, x.c.writes, float64(x.c.bytesW)/1e6)
		}
		fmt.Fprintln(w)
	}
	if len(r.status) > 0 {
		printStatus := func(title string, cs []calls) {
			var walls, els []time.Duration
			maxCmd := 0
			for _, c := range cs {
				walls = append(walls, c.wall)
				els = append(els, c.elapsed)
				maxCmd = max(maxCmd, c.commands)
			}
			fmt.Fprintf(w, "| %s | %d | %s (%s) | %s |\n", title, maxCmd, secs(median(walls)), all(walls), secs(median(els)))
		}
		fmt.Fprintf(w, "### status (%d models, %d task rows; `status NAME --json --no-end`, %d polls)\n\n", r.statusModels, r.statusTasks, len(r.status))
		fmt.Fprintln(w, "| link | remote commands per poll (max) | wall per poll, median (all) | CLI elapsed, median |")
		fmt.Fprintln(w, "|---|---|---|---|")
		printStatus("loopback", r.status)
		if len(r.statusRTT) > 0 {
			printStatus(fmt.Sprintf("+%v RTT proxy", *rtt), r.statusRTT)
		}
		maxCmd := 0
		for _, c := range append(append([]calls{}, r.status...), r.statusRTT...) {
			maxCmd = max(maxCmd, c.commands)
		}
		fmt.Fprintf(w, "\nstatus ≤ 2 remote commands per poll: %s (%d)\n\n", yes(maxCmd <= 2), maxCmd)
	}
	if len(r.mirror) > 0 {
		mm, rm := median(durs(r.mirror)), median(durs(r.rsync))
		fmt.Fprintf(w, "### fetch: %d files, %.1f MB (-scale %g), %d alternating rounds\n\n", r.treeFiles, float64(r.treeBytes)/1e6, *scale, len(r.mirror))
		fmt.Fprintln(w, "| copy | median | rounds | MB/s |")
		fmt.Fprintln(w, "|---|---|---|---|")
		mbps := func(d time.Duration) float64 { return float64(r.treeBytes) / 1e6 / d.Seconds() }
		fmt.Fprintf(w, "| remote.Mirror (fetch), %s workers, %s streams | %s | %s | %.0f |\n", strings.Split(*workers, ",")[0], parseStreams(*streams)[0], secs(mm), all(durs(r.mirror)), mbps(mm))
		fmt.Fprintf(w, "| rsync -a | %s | %s | %.0f |\n", secs(rm), all(durs(r.rsync)), mbps(rm))
		if len(r.rsyncFsync) > 0 {
			fm := median(durs(r.rsyncFsync))
			fmt.Fprintf(w, "| rsync -a --fsync | %s | %s | %.0f |\n", secs(fm), all(durs(r.rsyncFsync)), mbps(fm))
		}
		if len(r.noSync) > 0 {
			nm := median(durs(r.noSync))
			fmt.Fprintf(w, "| Mirror's steps without fsync (bench copy) | %s | %s | %.0f |\n", secs(nm), all(durs(r.noSync)), mbps(nm))
			fmt.Fprintf(w, "\nno-fsync copy / rsync = **%.2f**", nm.Seconds()/rm.Seconds())
		}
		fmt.Fprintf(w, "\nfetch / rsync = **%.2f** (no slower than rsync: %s)", mm.Seconds()/rm.Seconds(), yes(mm <= rm))
		if len(r.rsyncFsync) > 0 {
			fmt.Fprintf(w, "; fetch / rsync --fsync = **%.2f**", mm.Seconds()/median(durs(r.rsyncFsync)).Seconds())
		}
		fmt.Fprintf(w, "\nMirror's calls: %d walk, %d commands (streams), %d opens, %.1f MB read\n\n", r.mirrorCounts.Walks, r.mirrorCounts.Runs, r.mirrorCounts.Opens, float64(r.mirrorCounts.BytesRead)/1e6)
		nm, nr := median(durs(r.mirrorNoop)), median(durs(r.rsyncNoop))
		fmt.Fprintln(w, "| nothing new | median | passes |")
		fmt.Fprintln(w, "|---|---|---|")
		fmt.Fprintf(w, "| remote.Mirror | %s | %s |\n", secs(nm), all(durs(r.mirrorNoop)))
		fmt.Fprintf(w, "| rsync -a | %s | %s |\n", secs(nr), all(durs(r.rsyncNoop)))
		fmt.Fprintf(w, "\nno-op fetch / no-op rsync = **%.2f**; no-op fetch under 1 s: %s; no-op calls: %d walk, %d opens\n",
			nm.Seconds()/nr.Seconds(), yes(nm < time.Second), r.noopCounts.Walks, r.noopCounts.Opens)
		fmt.Fprintf(w, "copies byte-identical (Mirror = rsync = source): %v\n\n", r.identical)
		if len(r.workerRuns) > 0 {
			fmt.Fprintln(w, "| Mirror workers | streams | time (one run) | vs rsync median |")
			fmt.Fprintln(w, "|---|---|---|---|")
			fmt.Fprintf(w, "| %s (median above) | %s | %s | %.2f |\n", strings.Split(*workers, ",")[0], parseStreams(*streams)[0], secs(mm), mm.Seconds()/rm.Seconds())
			for _, x := range r.workerRuns {
				fmt.Fprintf(w, "| %d | %s | %s | %.2f |\n", x.workers, x.streams, secs(x.d), x.d.Seconds()/rm.Seconds())
			}
			fmt.Fprintln(w)
		}
		if r.rttMirror.d > 0 {
			fmt.Fprintf(w, "### through the +%v RTT proxy (one pass each)\n\n", *rtt)
			fmt.Fprintln(w, "| | remote.Mirror | rsync -a | ratio |")
			fmt.Fprintln(w, "|---|---|---|---|")
			fmt.Fprintf(w, "| full copy | %s | %s | %.2f |\n", secs(r.rttMirror.d), secs(r.rttRsync.d), r.rttMirror.d.Seconds()/r.rttRsync.d.Seconds())
			fmt.Fprintf(w, "| nothing new | %s | %s | %.2f |\n\n", secs(r.rttMirrorNoop.d), secs(r.rttRsyncNoop.d), r.rttMirrorNoop.d.Seconds()/r.rttRsyncNoop.d.Seconds())
			fmt.Fprintf(w, "listing the tree at +%v RTT: Walk %s; the bare `find -printf` command %s; ratio %.2f\n\n",
				*rtt, secs(r.rttWalk), secs(r.rttFind), r.rttWalk.Seconds()/r.rttFind.Seconds())
			if len(r.rttWorkerRuns) > 0 {
				fmt.Fprintln(w, "| Mirror workers at +RTT | streams | full copy | vs rsync |")
				fmt.Fprintln(w, "|---|---|---|---|")
				fmt.Fprintf(w, "| %s | %s | %s | %.2f |\n", strings.Split(*workers, ",")[0], parseStreams(*streams)[0], secs(r.rttMirror.d), r.rttMirror.d.Seconds()/r.rttRsync.d.Seconds())
				for _, x := range r.rttWorkerRuns {
					fmt.Fprintf(w, "| %d | %s | %s | %.2f |\n", x.workers, x.streams, secs(x.d), x.d.Seconds()/r.rttRsync.d.Seconds())
				}
				fmt.Fprintln(w)
			}
		}
	}
}
