package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// makeTree writes files (relative slash path → content) below dir with old modification
// times, as a finished job's results would be.
func makeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for p, c := range files {
		f := writeFile(t, filepath.Join(dir, filepath.FromSlash(p)), c)
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func checkTree(t testing.TB, dir string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("local tree:\n got %v\nwant %v", keys(got), keys(want))
	}
}

func keys(m map[string]string) []string {
	var k []string
	for p, c := range m {
		k = append(k, fmt.Sprintf("%s(%d)", p, len(c)))
	}
	slices.Sort(k)
	return k
}

// mirrorTransports gives the transports Mirror is tested over, with the local path of their
// login directory.
func mirrorTransports(t *testing.T) map[string]func(t *testing.T) (Transport, string) {
	return map[string]func(t *testing.T) (Transport, string){
		"local": func(t *testing.T) (Transport, string) { return NewLocal(), isolate(t) },
		"ssh": func(t *testing.T) (Transport, string) {
			c := newTestClient(t)
			return dialOK(t, c.Config()), c.Server.Home
		},
	}
}

func TestMirrorIncremental(t *testing.T) {
	for name, mk := range mirrorTransports(t) {
		for _, streams := range []int{0, -1} {
			mode := map[int]string{0: "/tar stream", -1: "/one by one"}[streams]
			t.Run(name+mode, func(t *testing.T) { testMirrorIncremental(t, mk, streams) })
		}
	}
}

func testMirrorIncremental(t *testing.T, mk func(t *testing.T) (Transport, string), streams int) {
	tr, home := mk(t)
	ctx := context.Background()
	files := map[string]string{
		"results.jsonl":      strings.Repeat("{}\n", 1000),
		"logs/serve-1.out":   "serving\n",
		"logs/infer 2.out":   "inference\n",
		"a/b/c/deep.txt":     "deep",
		"empty":              "",
		"big.bin":            strings.Repeat("0123456789", 200_000),
		"skip/me.tmp":        "filtered out",
		"weird name 'q'.txt": "q",
	}
	makeTree(t, filepath.Join(home, "run"), files)
	dst := filepath.Join(t.TempDir(), "mirror")
	ct := Counting(tr)
	var mu sync.Mutex
	var progress []string
	opts := MirrorOptions{
		Filter:   func(rel string, fi FileInfo) bool { return !strings.HasPrefix(rel, "skip/") },
		Workers:  3,
		Streams:  streams,
		Progress: func(p MirrorProgress) { mu.Lock(); progress = append(progress, p.Path); mu.Unlock() },
	}
	stats, err := Mirror(ctx, ct, "run", dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := maps(files)
	delete(want, "skip/me.tmp")
	checkTree(t, dst, want)
	var total int64
	for _, c := range want {
		total += int64(len(c))
	}
	streamed := 0
	if streams == 0 {
		streamed = 7
	}
	if stats != (MirrorStats{Files: 7, Copied: 7, Streamed: streamed, Bytes: total}) {
		t.Errorf("first run: %+v", stats)
	}
	if len(progress) != 7 {
		t.Errorf("progress calls: %v", progress)
	}
	if c := ct.Counts(); streams == 0 && (c.Walks != 1 || c.Runs != 1 || c.Opens != 0 || c.BytesRead < total) {
		t.Errorf("first run counts %+v, want one Walk and one Run (the tar stream)", c)
	} else if streams < 0 && (c.Walks != 1 || c.Runs != 0 || c.Opens != 6 || c.BytesRead != total) {
		t.Errorf("first run counts %+v (the empty file needs no Open)", c)
	}
	// mtimes and modes follow the remote.
	st, err := os.Stat(filepath.Join(dst, "a/b/c/deep.txt"))
	if err != nil || !st.ModTime().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || st.Mode().Perm() != 0o644 {
		t.Errorf("deep.txt: %v %v", st.ModTime(), err)
	}

	ct.Reset()
	stats, err = Mirror(ctx, ct, "run", dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (MirrorStats{Files: 7, Skipped: 7}) {
		t.Errorf("second run: %+v", stats)
	}
	if c := ct.Counts(); c != (Counts{Walks: 1}) {
		t.Errorf("second run counts %+v, want one Walk", c)
	}

	// One file changes remotely (same size, new mtime) and one is added.
	makeTree(t, filepath.Join(home, "run"), map[string]string{"new.txt": "new"})
	p := filepath.Join(home, "run/logs/serve-1.out")
	os.WriteFile(p, []byte("SERVING\n"), 0o644)
	ct.Reset()
	stats, err = Mirror(ctx, ct, "~/run", dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (MirrorStats{Files: 8, Copied: 2, Streamed: streamed / 7 * 2, Skipped: 6, Bytes: 11}) {
		t.Errorf("third run: %+v", stats)
	}
	want["new.txt"] = "new"
	want["logs/serve-1.out"] = "SERVING\n"
	checkTree(t, dst, want)
}

func maps(m map[string]string) map[string]string {
	c := map[string]string{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestMirrorResume(t *testing.T) {
	for name, mk := range mirrorTransports(t) {
		t.Run(name, func(t *testing.T) {
			tr, home := mk(t)
			ctx := context.Background()
			big := strings.Repeat("abcdefghij", 100_000)
			makeTree(t, filepath.Join(home, "run"), map[string]string{"big.bin": big, "small": "s", "small.part": "not a partial"})
			dst := t.TempDir()
			writeFile(t, filepath.Join(dst, "big.bin.part"), big[:123_456])
			// A stale .part longer than the file is started over.
			writeFile(t, filepath.Join(dst, "small.part"), "this is longer than the file")
			ct := Counting(tr)
			stats, err := Mirror(ctx, ct, "run", dst, MirrorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Resumed != 1 || stats.Copied != 3 || stats.Bytes != int64(len(big)-123_456+1+len("not a partial")) {
				t.Errorf("stats %+v", stats)
			}
			// big.bin continues its .part through Open; small and small.part come in the stream.
			if c := ct.Counts(); c.Opens != 1 || c.Runs != 1 || stats.Streamed != 2 || c.BytesRead < stats.Bytes {
				t.Errorf("read %d bytes, stats say %d; counts %+v", c.BytesRead, stats.Bytes, c)
			}
			checkTree(t, dst, map[string]string{"big.bin": big, "small": "s", "small.part": "not a partial"})
		})
	}
}

// fakeTransport serves a made-up listing over the local transport's file access.
type fakeTransport struct {
	Transport
	files []FileInfo
	open  func(ctx context.Context, p string, off int64) (io.ReadCloser, error)
}

func (f *fakeTransport) Walk(ctx context.Context, root string) ([]FileInfo, error) {
	return f.files, nil
}

func (f *fakeTransport) Open(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
	if f.open != nil {
		return f.open(ctx, p, off)
	}
	return f.Transport.Open(ctx, p, off)
}

func TestMirrorVerifiesSize(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), strings.Repeat("x", 50))
	tr := &fakeTransport{Transport: NewLocal(), files: []FileInfo{{Path: "f", Size: 100, ModTime: time.Now(), Mode: 0o644}}}
	dst := t.TempDir()
	_, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{})
	if err == nil || !strings.Contains(err.Error(), "got 50 bytes") || !strings.Contains(err.Error(), "says 100") {
		t.Fatalf("Mirror: %v", err)
	}
	checkTree(t, dst, map[string]string{}) // neither the file nor its .part
}

func TestMirrorInterruptedCopyKeepsPart(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	content := strings.Repeat("y", 1000)
	writeFile(t, filepath.Join(src, "f"), content)
	broken := errors.New("connection reset")
	tr := &fakeTransport{
		Transport: NewLocal(),
		files:     []FileInfo{{Path: "f", Size: 1000, ModTime: time.Unix(1e9, 0), Mode: 0o644}},
		open: func(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(strings.NewReader(content[off:off+300]), errReader{broken})), nil
		},
	}
	dst := t.TempDir()
	_, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{})
	if !errors.Is(err, broken) && !strings.Contains(fmt.Sprint(err), "connection reset") {
		t.Fatalf("Mirror: %v", err)
	}
	checkTree(t, dst, map[string]string{"f.part": content[:300]})
	tr.open = nil // the connection is back
	stats, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Resumed != 1 || stats.Bytes != 700 {
		t.Errorf("stats %+v", stats)
	}
	checkTree(t, dst, map[string]string{"f": content})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestMirrorRefusesHostileNames(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "ok"), "fine")
	for _, name := range []string{"../escape", "a/../../escape", "/etc/passwd", `a\..\b`, "a\x00b", "", "a//b", "./a", "a/."} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			tr := &fakeTransport{Transport: NewLocal(), files: []FileInfo{
				{Path: "ok", Size: 4, ModTime: time.Now()},
				{Path: name, Size: 4, ModTime: time.Now()},
			}, open: func(ctx context.Context, p string, off int64) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("evil")), nil
			}}
			_, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Fatalf("Mirror: %v, want an error naming %q", err, name)
			}
			checkTree(t, parent, map[string]string{}) // nothing written anywhere
		})
	}
}

func TestMirrorDoesNotFollowLocalSymlinksOut(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "sub/file"), "evil")
	writeFile(t, filepath.Join(src, "link"), "evil")
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "target"), "precious")
	for _, tc := range []struct{ name, link, linkTo string }{
		{"directory link", "sub", outside},
		{"file link", "link", filepath.Join(outside, "target")},
		{"relative link", "sub", "../" + filepath.Base(outside)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			if err := os.Symlink(tc.linkTo, filepath.Join(dst, tc.link)); err != nil {
				t.Fatal(err)
			}
			_, err := Mirror(context.Background(), NewLocal(), src, dst, MirrorOptions{Workers: 1})
			checkTree(t, outside, map[string]string{"target": "precious"})
			if tc.link == "link" {
				// Renaming over a symbolic link replaces the link, not its target.
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Lstat(filepath.Join(dst, "link")); err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("link: %v %v", fi, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "sub/file") {
				t.Fatalf("Mirror: %v, want an error naming sub/file", err)
			}
		})
	}
}

func TestMirrorCancel(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	makeTree(t, src, map[string]string{"a": "a", "b": "b"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Mirror(ctx, NewLocal(), src, t.TempDir(), MirrorOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Mirror: %v", err)
	}
	if _, err := Mirror(context.Background(), NewLocal(), filepath.Join(src, "missing"), t.TempDir(), MirrorOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Mirror of a missing root: %v", err)
	}
}

func TestCounting(t *testing.T) {
	home := isolate(t)
	ctx := context.Background()
	c := Counting(NewLocal())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("f%d", i)
			c.WriteFile(ctx, p, strings.NewReader("12345"), 0o644)
			rc, _ := c.Open(ctx, p, 1)
			io.Copy(io.Discard, rc)
			rc.Close()
			c.Stat(ctx, p)
			c.Run(ctx, "true", nil)
			c.Remove(ctx, p)
		}()
	}
	wg.Wait()
	c.Walk(ctx, home)
	c.MkdirAll(ctx, "d", 0o755)
	c.Stream(ctx, "printf 1234567", nil, io.Discard)
	want := Counts{Runs: 9, Writes: 8, Opens: 8, Stats: 8, Walks: 1, Mkdirs: 1, Removes: 8, BytesRead: 39, BytesWritten: 40}
	if got := c.Counts(); got != want {
		t.Fatalf("Counts = %+v, want %+v", got, want)
	}
	if c.String() != "local" {
		t.Error(c.String())
	}
	// Over a transport that cannot stream, Stream says so and counts nothing.
	nc := Counting(&fakeTransport{Transport: NewLocal()})
	if _, err := nc.Stream(ctx, "true", nil, io.Discard); !errors.Is(err, errors.ErrUnsupported) || nc.Counts() != (Counts{}) {
		t.Fatalf("Stream over a non-Streamer: %v, %+v", err, nc.Counts())
	}
}

// BenchmarkMirror copies many small files and a few large ones over the in-process SSH
// server (and the real sshd of the test cluster when BEANS_SLURM_TEST_CLUSTER=1).
func BenchmarkMirror(b *testing.B) {
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("small/%03d.json", i)] = strings.Repeat("s", 1000+i)
	}
	for i := range 3 {
		files[fmt.Sprintf("large/%d.bin", i)] = strings.Repeat(string(rune('a'+i)), 4<<20)
	}
	var total int64
	for _, c := range files {
		total += int64(len(c))
	}
	bench := func(b *testing.B, tr Transport, remoteRoot string) {
		b.SetBytes(total)
		for b.Loop() {
			dst, err := os.MkdirTemp("", "bench-mirror")
			if err != nil {
				b.Fatal(err)
			}
			stats, err := Mirror(context.Background(), tr, remoteRoot, dst, MirrorOptions{})
			os.RemoveAll(dst)
			if err != nil || stats.Copied != len(files) {
				b.Fatalf("Mirror: %+v, %v", stats, err)
			}
		}
	}
	b.Run("ssh", func(b *testing.B) {
		home := b.TempDir()
		b.Setenv("HOME", home)
		b.Setenv("SSH_AUTH_SOCK", "")
		s := newTestServer(b)
		key, pub := newKeyFile(b, b.TempDir(), "")
		s.Authorize(pub)
		kh := writeFile(b, filepath.Join(b.TempDir(), "known_hosts"), s.KnownHostsLine()+"\n")
		makeTree(b, filepath.Join(s.Home, "run"), files)
		tr, err := Dial(context.Background(), SSHConfig{Host: "127.0.0.1", Port: s.Port, User: "bench",
			IdentityFiles: []string{key}, KnownHostsFiles: []string{kh}, ConfigFile: "none"})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		bench(b, tr, "run")
	})
	b.Run("local", func(b *testing.B) {
		src := b.TempDir()
		makeTree(b, src, files)
		bench(b, NewLocal(), src)
	})
	b.Run("sshd", func(b *testing.B) {
		env := clusterEnv(b)
		if env == nil {
			b.Skip("BEANS_SLURM_TEST_CLUSTER is not 1")
		}
		tr, err := Dial(context.Background(), env.config())
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		dir := fmt.Sprintf("bench-mirror-%s", randomSuffix())
		ctx := context.Background()
		for p, c := range files {
			if err := tr.WriteFile(ctx, path.Join(dir, p), strings.NewReader(c), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		defer tr.Run(ctx, "rm -rf "+Quote(dir), nil)
		bench(b, tr, dir)
	})
}
