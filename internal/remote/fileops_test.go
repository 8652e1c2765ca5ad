package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testTransportFiles exercises every file operation of tr. home is the local path of tr's
// login directory (every transport under test runs on this machine); base is a fresh
// directory name relative to it.
func testTransportFiles(t *testing.T, tr Transport, home, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	abs := filepath.Join(home, base)
	t.Cleanup(func() { os.RemoveAll(abs) })
	read := func(t *testing.T, p string, off int64) string {
		t.Helper()
		rc, err := tr.Open(ctx, p, off)
		if err != nil {
			t.Fatalf("Open(%s, %d): %v", p, off, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return string(b)
	}

	t.Run("WriteFile creates parents, Open reads from an offset", func(t *testing.T) {
		p := base + "/a/b/c.txt"
		if err := tr.WriteFile(ctx, p, strings.NewReader("hello, world"), 0o640); err != nil {
			t.Fatal(err)
		}
		if got := read(t, p, 0); got != "hello, world" {
			t.Fatalf("read %q", got)
		}
		if got := read(t, p, 7); got != "world" {
			t.Fatalf("read from 7: %q", got)
		}
		if got := read(t, p, 12); got != "" {
			t.Fatalf("read from the end: %q", got)
		}
		st, err := os.Stat(filepath.Join(abs, "a/b/c.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v, want 0640", st.Mode())
		}
		// No temporary file left beside it.
		entries, _ := os.ReadDir(filepath.Join(abs, "a/b"))
		if len(entries) != 1 {
			t.Fatalf("directory holds %d entries, want 1", len(entries))
		}
	})

	t.Run("WriteFile replaces, keeps the mode asked for, absolute and ~/ paths", func(t *testing.T) {
		p := filepath.Join(abs, "secret")
		if err := tr.WriteFile(ctx, p, strings.NewReader("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tr.WriteFile(ctx, p, bytes.NewReader([]byte("two!")), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := read(t, "~/"+base+"/secret", 0); got != "two!" {
			t.Fatalf("read %q", got)
		}
		fi, err := tr.Stat(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size != 4 || fi.Mode.Perm() != 0o600 || fi.Mode.IsDir() || fi.Path != p {
			t.Fatalf("Stat = %+v", fi)
		}
		if time.Since(fi.ModTime) > time.Hour || time.Until(fi.ModTime) > time.Hour {
			t.Fatalf("mtime %v", fi.ModTime)
		}
	})

	t.Run("large file round trip", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
		if err := tr.WriteFile(ctx, base+"/big", bytes.NewReader(data), 0o644); err != nil {
			t.Fatal(err)
		}
		got := read(t, base+"/big", 1_000_001)
		if got != string(data[1_000_001:]) {
			t.Fatalf("read %d bytes, want %d", len(got), len(data)-1_000_001)
		}
	})

	t.Run("missing paths", func(t *testing.T) {
		if _, err := tr.Stat(ctx, base+"/nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat: %v, want ErrNotExist", err)
		}
		if _, err := tr.Open(ctx, base+"/nope", 0); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open: %v, want ErrNotExist", err)
		}
		if _, err := tr.Walk(ctx, base+"/nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Walk: %v, want ErrNotExist", err)
		}
		if err := tr.Remove(ctx, base+"/nope"); err != nil {
			t.Errorf("Remove of a missing file: %v", err)
		}
	})

	t.Run("Walk lists regular files and links to files", func(t *testing.T) {
		tree := filepath.Join(abs, "tree")
		writeFile(t, filepath.Join(tree, "a.txt"), "a")
		writeFile(t, filepath.Join(tree, "sub/b.txt"), "bb")
		writeFile(t, filepath.Join(tree, "sub/deeper/c d.txt"), "ccc")
		writeFile(t, filepath.Join(tree, "new\nline\ttab"), "nl")
		if err := os.Symlink("a.txt", filepath.Join(tree, "link-to-file")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("sub", filepath.Join(tree, "link-to-dir")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("missing", filepath.Join(tree, "dangling")); err != nil {
			t.Fatal(err)
		}
		files, err := tr.Walk(ctx, base+"/tree")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, f.Path+":"+string(rune('0'+f.Size)))
			if f.ModTime.IsZero() || !f.Mode.IsRegular() {
				t.Errorf("%s: %+v", f.Path, f)
			}
		}
		slices.Sort(got)
		want := []string{"a.txt:1", "link-to-file:1", "new\nline\ttab:2", "sub/b.txt:2", "sub/deeper/c d.txt:3"}
		if !slices.Equal(got, want) {
			t.Fatalf("Walk = %v, want %v", got, want)
		}
		if _, err := tr.Walk(ctx, base+"/tree/a.txt"); err == nil {
			t.Errorf("Walk of a file: no error")
		}
	})

	t.Run("MkdirAll and Remove", func(t *testing.T) {
		d := base + "/x/y/z"
		if err := tr.MkdirAll(ctx, d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tr.MkdirAll(ctx, d, 0o755); err != nil {
			t.Fatalf("second MkdirAll: %v", err)
		}
		fi, err := tr.Stat(ctx, d)
		if err != nil || !fi.Mode.IsDir() {
			t.Fatalf("Stat dir = %+v, %v", fi, err)
		}
		if err := tr.WriteFile(ctx, d+"/f", strings.NewReader("f"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tr.Remove(ctx, d+"/f"); err != nil {
			t.Fatal(err)
		}
		if err := tr.Remove(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(abs, "x/y/z")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("directory still there: %v", err)
		}
	})

	t.Run("done context", func(t *testing.T) {
		dctx, dcancel := context.WithCancel(ctx)
		dcancel()
		if err := tr.WriteFile(dctx, base+"/cancelled", strings.NewReader("x"), 0o644); !errors.Is(err, context.Canceled) {
			t.Errorf("WriteFile: %v", err)
		}
		if _, err := tr.Stat(dctx, base); !errors.Is(err, context.Canceled) {
			t.Errorf("Stat: %v", err)
		}
		if _, err := tr.Run(dctx, "true", nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
}

// testTransportRun exercises Run. The system ssh transport cannot signal a cancelled
// command (see NewOpenSSH), so for it only the return of Run is checked.
func testTransportRun(t *testing.T, tr Transport, home string) {
	_, systemSSH := tr.(*openSSH)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tests := []struct {
		name, cmd, stdin string
		stdout, stderr   string
		code             int
	}{
		{"stdout", "echo hello", "", "hello\n", "", 0},
		{"stderr and code", "echo oops >&2; exit 3", "", "", "oops\n", 3},
		{"stdin", "tr a-z A-Z", "shout", "SHOUT", "", 0},
		{"quoting", "printf '%s\\n' " + Join("it's", "a b", "$HOME"), "", "it's\na b\n$HOME\n", "", 0},
		{"login directory", "pwd -P", "", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in io.Reader
			if tt.stdin != "" {
				in = strings.NewReader(tt.stdin)
			}
			res, err := tr.Run(ctx, tt.cmd, in)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.stdout
			if tt.name == "login directory" {
				h, _ := filepath.EvalSymlinks(home)
				want = h + "\n"
			}
			if string(res.Stdout) != want || string(res.Stderr) != tt.stderr || res.ExitCode != tt.code {
				t.Fatalf("Run(%q) = %q, %q, %d; want %q, %q, %d", tt.cmd, res.Stdout, res.Stderr, res.ExitCode, want, tt.stderr, tt.code)
			}
		})
	}
	t.Run("Stream", func(t *testing.T) {
		s, ok := tr.(Streamer)
		if !ok {
			t.Fatalf("%T is not a Streamer", tr)
		}
		var out bytes.Buffer
		res, err := s.Stream(ctx, "tr a-z A-Z; echo err >&2; exit 4", strings.NewReader("shout"), &out)
		if err != nil || out.String() != "SHOUT" || len(res.Stdout) != 0 || string(res.Stderr) != "err\n" || res.ExitCode != 4 {
			t.Fatalf("Stream = %q, %+v, %v", out.String(), res, err)
		}
		// A writer that fails stops the command (here, one that would never end).
		broken := errors.New("disk full")
		start := time.Now()
		_, err = s.Stream(ctx, "yes", nil, &failingWriter{n: 100_000, err: broken})
		if !errors.Is(err, broken) {
			t.Fatalf("Stream into a failing writer: %v", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("Stream took %v to stop", d)
		}
	})
	t.Run("Output", func(t *testing.T) {
		_, err := Output(ctx, tr, "echo bad >&2; exit 2")
		var ee *ExitError
		if !errors.As(err, &ee) || ee.ExitCode != 2 || !strings.Contains(err.Error(), "bad") {
			t.Fatalf("Output error = %v", err)
		}
	})
	t.Run("context cancel kills the command", func(t *testing.T) {
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "pid")
		cctx, ccancel := context.WithCancel(ctx)
		go func() { // cancel once the command runs (synchronization, not an assertion)
			for {
				if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
					ccancel()
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		_, err := tr.Run(cctx, "sleep 100 & echo $! > "+Quote(pidFile+".tmp")+" && mv "+Quote(pidFile+".tmp")+" "+Quote(pidFile)+"; wait", nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v, want context.Canceled", err)
		}
		pid := strings.TrimSpace(string(mustRead(t, pidFile)))
		if systemSSH {
			NewLocal().Run(ctx, "kill -9 "+pid, nil)
			return
		}
		// The sleep must die; wait for it (bounded by ctx, not asserted on time).
		res, err := NewLocal().Run(ctx, "while kill -0 "+pid+" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' /proc/"+pid+"/stat 2>/dev/null; do sleep 0.02; done; echo gone", nil)
		if err != nil || string(res.Stdout) != "gone\n" {
			t.Fatalf("sleep %s still running: %v", pid, err)
		}
	})
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct {
	n   int
	err error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}
