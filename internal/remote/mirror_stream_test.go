package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// streamTreeScript makes, below the login directory, a tree that exercises the tar stream:
// nested and empty directories, empty files, symbolic links (to a file: copied as a file; to
// a directory and dangling: skipped), a hard link, names with spaces, a newline, a tab,
// quotes, leading dashes (tar options if taken as such), a name longer than tar's 100 bytes,
// and a file of random bytes. Every modification time is set to 2026-01-02 03:04:05 UTC.
const streamTreeScript = `set -e
R=%s
rm -rf "$R"
mkdir -p "$R/a/b/c" "$R/empty dir" "$R/dir with space"
printf deep > "$R/a/b/c/deep.txt"
: > "$R/empty"
: > "$R/a/empty2"
printf target > "$R/target.txt"
ln -s target.txt "$R/link-to-file"
ln -s a "$R/link-to-dir"
ln -s missing "$R/dangling"
ln "$R/a/b/c/deep.txt" "$R/hardlink"
printf sp > "$R/dir with space/file with space.txt"
printf nl > "$R/new"$'\n'"line"
printf tab > "$R/tab"$'\t'"name"
printf dash > "$R/-C"
printf dash2 > "$R/--null"
printf quote > "$R/it's \"q\""
printf long > "$R/a/$(printf 'x%%.0s' {1..150})"
head -c 300000 /dev/urandom > "$R/random.bin"
find "$R" -exec touch -h -d '2026-01-02 03:04:05 UTC' {} +
`

// makeStreamTree runs streamTreeScript through tr in dir (relative to the login directory)
// and returns the expected local copy.
func makeStreamTree(t *testing.T, tr Transport, dir string) map[string]string {
	t.Helper()
	ctx := context.Background()
	if _, err := Output(ctx, tr, fmt.Sprintf(streamTreeScript, Quote(dir))); err != nil {
		t.Fatal(err)
	}
	random, err := Output(ctx, tr, "cat "+Quote(dir+"/random.bin"))
	if err != nil || len(random) != 300000 {
		t.Fatalf("random.bin: %d bytes, %v", len(random), err)
	}
	return map[string]string{
		"a/b/c/deep.txt":                     "deep",
		"empty":                              "",
		"a/empty2":                           "",
		"target.txt":                         "target",
		"link-to-file":                       "target",
		"hardlink":                           "deep",
		"dir with space/file with space.txt": "sp",
		"new\nline":                          "nl",
		"tab\tname":                          "tab",
		"-C":                                 "dash",
		"--null":                             "dash2",
		`it's "q"`:                           "quote",
		"a/" + strings.Repeat("x", 150):      "long",
		"random.bin":                         string(random),
	}
}

// testMirrorStreamTree mirrors the tree of makeStreamTree through tr: one Walk and one
// stream, nothing one by one; then again with nothing new: one Walk, no copy.
func testMirrorStreamTree(t *testing.T, tr Transport, dir string) {
	want := makeStreamTree(t, tr, dir)
	ctx := context.Background()
	ct := Counting(tr)
	dst := filepath.Join(t.TempDir(), "mirror")
	stats, err := Mirror(ctx, ct, dir, dst, MirrorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, dst, want)
	n := len(want)
	if stats.Files != n || stats.Copied != n || stats.Streamed != n {
		t.Errorf("first Mirror: %+v, want %d files streamed", stats, n)
	}
	if c := ct.Counts(); c.Walks != 1 || c.Runs != 1 || c.Opens != 0 {
		t.Errorf("first Mirror counts %+v, want one Walk and one Run", c)
	}
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for p := range want {
		st, err := os.Lstat(filepath.Join(dst, filepath.FromSlash(p)))
		if err != nil || !st.Mode().IsRegular() || !st.ModTime().Equal(old) {
			t.Errorf("%q: %v, %v", p, st, err)
		}
	}
	ct.Reset()
	stats, err = Mirror(ctx, ct, dir, dst, MirrorOptions{})
	if err != nil || stats != (MirrorStats{Files: n, Skipped: n}) {
		t.Errorf("second Mirror: %+v, %v", stats, err)
	}
	if c := ct.Counts(); c != (Counts{Walks: 1}) {
		t.Errorf("second Mirror counts %+v, want one Walk", c)
	}
}

// testMirrorStreamGrowShrink: a file that grows after the listing is kept whole (its later
// content); one that shrinks fails the Mirror and leaves neither the file nor a .part.
func testMirrorStreamGrowShrink(t *testing.T, tr Transport, dir string) {
	ctx := context.Background()
	if _, err := Output(ctx, tr, fmt.Sprintf("rm -rf %[1]s && mkdir -p %[1]s && printf 1234 > %[1]s/grow && printf 12345678 > %[1]s/shrink && printf ok > %[1]s/ok", Quote(dir))); err != nil {
		t.Fatal(err)
	}
	change := func(command string) func(string, FileInfo) bool {
		return func(rel string, fi FileInfo) bool { // runs after the listing, before any copy
			if rel == "ok" {
				if _, err := Output(ctx, tr, command); err != nil {
					t.Error(err)
				}
			}
			return true
		}
	}
	dst := t.TempDir()
	stats, err := Mirror(ctx, tr, dir, dst, MirrorOptions{Filter: change("printf 5678 >> " + Quote(dir+"/grow"))})
	if err != nil || stats.Streamed != 3 || stats.Bytes != 4+4+8+2 {
		t.Fatalf("Mirror of a growing file: %+v, %v", stats, err)
	}
	checkTree(t, dst, map[string]string{"grow": "12345678", "shrink": "12345678", "ok": "ok"})

	dst = t.TempDir()
	_, err = Mirror(ctx, tr, dir, dst, MirrorOptions{Filter: change("printf 1234 > " + Quote(dir+"/shrink"))})
	if err == nil || !strings.Contains(err.Error(), "got 4 bytes, the remote listing says 8") {
		t.Fatalf("Mirror of a shrinking file: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "shrink")); err == nil {
		t.Error("shrink is in place")
	}
	if _, err := os.Lstat(filepath.Join(dst, "shrink.part")); err == nil {
		t.Error("shrink.part is left")
	}
}

func TestMirrorStream(t *testing.T) {
	for name, mk := range mirrorTransports(t) {
		t.Run(name, func(t *testing.T) {
			tr, _ := mk(t)
			t.Run("tree", func(t *testing.T) { testMirrorStreamTree(t, tr, "tree") })
			t.Run("grow and shrink", func(t *testing.T) { testMirrorStreamGrowShrink(t, tr, "gs") })
		})
	}
	t.Run("system ssh", func(t *testing.T) {
		tr, _ := openSSHClient(t)
		testMirrorStreamTree(t, tr, "tree")
	})
}

// toolsPath makes a directory with bash (and the other tools named) and fakes (name →
// script), to serve as PATH.
func toolsPath(t *testing.T, tools []string, fakes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range append([]string{"bash"}, tools...) {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for name, script := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!"+mustLookPath(t, "bash")+"\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Without tar (and, over SSH, without find: Walk reads the directories over SFTP), or with a
// find that has no -printf, Mirror copies one by one, with the same result.
func TestMirrorWithoutTarOrFind(t *testing.T) {
	files := map[string]string{"a": "a", "d/b c": strings.Repeat("b", 100_000), "new\nline": "nl", "empty": ""}
	for _, tc := range []struct {
		name     string
		tools    []string
		fakes    map[string]string
		streamed bool
	}{
		{"no tar, no find", nil, nil, false},
		{"find without -printf", []string{"tar", "grep"}, map[string]string{"find": `echo "find: unknown primary or operator" >&2; exit 1`}, true},
	} {
		for name, mk := range mirrorTransports(t) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				tr, home := mk(t)
				makeTree(t, filepath.Join(home, "run"), files)
				t.Setenv("PATH", toolsPath(t, tc.tools, tc.fakes))
				ct := Counting(tr)
				dst := t.TempDir()
				stats, err := Mirror(context.Background(), ct, "run", dst, MirrorOptions{})
				if err != nil {
					t.Fatal(err)
				}
				checkTree(t, dst, files)
				c := ct.Counts()
				if tc.streamed && (stats.Streamed != 4 || c.Opens != 0) || !tc.streamed && (stats.Streamed != 0 || c.Opens != 3) || stats.Copied != 4 {
					t.Errorf("stats %+v, counts %+v", stats, c)
				}
				ct.Reset()
				stats, err = Mirror(context.Background(), ct, "run", dst, MirrorOptions{})
				if err != nil || stats.Skipped != 4 || ct.Counts() != (Counts{Walks: 1}) {
					t.Errorf("second Mirror: %+v, %v, %+v", stats, err, ct.Counts())
				}
			})
		}
	}
}

// cutStreamer is the local transport whose streams break (or cancel ctx) after n bytes.
type cutStreamer struct {
	Transport
	n      int64
	cancel context.CancelFunc // when set, cancel instead of failing
	cuts   atomic.Int32
}

type cutWriter struct {
	w      io.Writer
	left   int64
	cancel context.CancelFunc
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= c.left {
		c.left -= int64(len(p))
		return c.w.Write(p)
	}
	n, _ := c.w.Write(p[:c.left])
	c.left = 0
	if c.cancel != nil {
		c.cancel()
		time.Sleep(50 * time.Millisecond) // let the cancellation win
	}
	return n, errors.New("connection reset by the test")
}

func (c *cutStreamer) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	c.cuts.Add(1)
	return c.Transport.(Streamer).Stream(ctx, command, stdin, &cutWriter{w: stdout, left: c.n, cancel: c.cancel})
}

func bigFiles(n, size int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("f%d", i)] = strings.Repeat(string(rune('a'+i)), size)
	}
	return files
}

// A stream that breaks in the middle of a file: the files it delivered stay, the one it was
// writing continues from its .part, the others come one by one; nothing twice.
func TestMirrorStreamBreaks(t *testing.T) {
	home := isolate(t)
	files := bigFiles(5, 100_000)
	makeTree(t, filepath.Join(home, "run"), files)
	tr := &cutStreamer{Transport: NewLocal(), n: 2*(512+100_352) + 512 + 30_000} // f0, f1 (padded to 512 bytes), 30 kB of f2
	ct := Counting(tr)
	dst := t.TempDir()
	stats, err := Mirror(context.Background(), ct, "run", dst, MirrorOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, dst, files)
	c := ct.Counts()
	if stats.Streamed != 2 || stats.Resumed != 1 || stats.Copied != 5 || c.Opens != 3 || stats.Bytes != 500_000-30_000 {
		t.Errorf("stats %+v, counts %+v", stats, c)
	}
}

// Cancelled in the middle of the stream: only whole files are in place, the file being
// written is a .part, and the next Mirror continues it.
func TestMirrorStreamCancelled(t *testing.T) {
	home := isolate(t)
	files := bigFiles(4, 100_000)
	makeTree(t, filepath.Join(home, "run"), files)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &cutStreamer{Transport: NewLocal(), n: 512 + 100_352 + 512 + 40_000, cancel: cancel}
	dst := t.TempDir()
	_, err := Mirror(ctx, tr, "run", dst, MirrorOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Mirror: %v", err)
	}
	got := map[string]string{}
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dst, e.Name()))
		got[e.Name()] = string(b)
	}
	if len(got) != 2 || got["f0"] != files["f0"] || got["f1.part"] != files["f1"][:40_000] {
		t.Fatalf("after the cancel: %v", keys(got))
	}
	stats, err := Mirror(context.Background(), NewLocal(), "run", dst, MirrorOptions{})
	if err != nil || stats.Skipped != 1 || stats.Resumed != 1 || stats.Streamed != 2 || stats.Bytes != 300_000-40_000 {
		t.Fatalf("next Mirror: %+v, %v", stats, err)
	}
	checkTree(t, dst, files)
}

// tarStreamer answers every Stream with a made-up archive and exit code; Open reads the
// local files (fakeTransport).
type tarStreamer struct {
	*fakeTransport
	archive []byte
	exit    int
}

func (s *tarStreamer) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	io.Copy(io.Discard, stdin)
	_, err := stdout.Write(s.archive)
	return &Result{ExitCode: s.exit}, err
}

type tarEntry struct {
	name, content string
	link          string // a hard link to this earlier entry
}

func makeArchive(t *testing.T, entries ...tarEntry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.content)), Typeflag: tar.TypeReg, ModTime: time.Now()}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.content)
	}
	tw.Close()
	return b.Bytes()
}

func TestMirrorStreamEntries(t *testing.T) {
	isolate(t)
	src := t.TempDir()
	files := map[string]string{"a": "aaaa", "b": "bbbb", "z": "zz\x00"}
	makeTree(t, src, files)
	list := func(names ...string) []FileInfo {
		var fis []FileInfo
		for _, n := range names {
			fis = append(fis, FileInfo{Path: n, Size: int64(len(files[n])), ModTime: time.Unix(1e9, 0), Mode: 0o644})
		}
		return fis
	}
	t.Run("an entry not asked for is refused", func(t *testing.T) {
		for _, name := range []string{"../evil", "c", "a/../b", "/etc/passwd"} {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			tr := &tarStreamer{fakeTransport: &fakeTransport{Transport: NewLocal(), files: list("a", "b")},
				archive: makeArchive(t, tarEntry{name: name, content: "evil"}, tarEntry{name: "a", content: "aaaa"})}
			_, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("refusing tar entry %q", name)) {
				t.Fatalf("Mirror: %v", err)
			}
			checkTree(t, parent, map[string]string{})
		}
	})
	t.Run("an entry sent twice is refused", func(t *testing.T) {
		dst := t.TempDir()
		tr := &tarStreamer{fakeTransport: &fakeTransport{Transport: NewLocal(), files: list("a", "b")},
			archive: makeArchive(t, tarEntry{name: "a", content: "aaaa"}, tarEntry{name: "a", content: "AAAA"})}
		if _, err := Mirror(context.Background(), tr, src, dst, MirrorOptions{Workers: 1}); err == nil || !strings.Contains(err.Error(), "sent twice") {
			t.Fatalf("Mirror: %v", err)
		}
	})
	t.Run("links and missing entries come one by one", func(t *testing.T) {
		dst := t.TempDir()
		ft := &fakeTransport{Transport: NewLocal(), files: list("a", "b", "z")}
		tr := &tarStreamer{fakeTransport: ft, archive: makeArchive(t, tarEntry{name: "a", content: "aaaa"}, tarEntry{name: "b", link: "a"})}
		ct := Counting(tr)
		stats, err := Mirror(context.Background(), ct, src, dst, MirrorOptions{})
		if err != nil || stats.Streamed != 1 || stats.Copied != 3 || ct.Counts().Opens != 2 {
			t.Fatalf("Mirror: %+v, %v, %+v", stats, err, ct.Counts())
		}
		checkTree(t, dst, files)
	})
	t.Run("a file ending in NUL waits for tar's exit status", func(t *testing.T) {
		for _, exit := range []int{0, 1} {
			dst := t.TempDir()
			ft := &fakeTransport{Transport: NewLocal(), files: list("a", "z")}
			// tar pads a file that shrank with NULs and exits 1.
			tr := &tarStreamer{fakeTransport: ft, exit: exit, archive: makeArchive(t, tarEntry{name: "a", content: "aaaa"}, tarEntry{name: "z", content: "z\x00\x00"})}
			ct := Counting(tr)
			stats, err := Mirror(context.Background(), ct, src, dst, MirrorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"a": "aaaa", "z": "zz\x00"}
			if exit == 0 {
				want["z"] = "z\x00\x00" // trusted: tar said all went well
			}
			checkTree(t, dst, want)
			if wantOpens := int64(exit); stats.Copied != 2 || ct.Counts().Opens != wantOpens {
				t.Errorf("exit %d: %+v, %+v", exit, stats, ct.Counts())
			}
		}
	})
}

// Streams: N splits the files into N tar streams of about the same size.
func TestMirrorStreamsSplit(t *testing.T) {
	for name, mk := range mirrorTransports(t) {
		t.Run(name, func(t *testing.T) {
			tr, home := mk(t)
			files := bigFiles(7, 50_000)
			files["small"] = "s"
			makeTree(t, filepath.Join(home, "run"), files)
			ct := Counting(tr)
			stats, err := Mirror(context.Background(), ct, "run", t.TempDir()+"/m", MirrorOptions{Streams: 3})
			if err != nil || stats.Streamed != 8 || ct.Counts().Runs != 3 || ct.Counts().Opens != 0 {
				t.Fatalf("Mirror: %+v, %v, %+v", stats, err, ct.Counts())
			}
		})
	}
	var jobs []mirrorJob
	for _, size := range []int64{10, 10, 10, 10, 10, 10, 1000, 10} {
		jobs = append(jobs, mirrorJob{fi: FileInfo{Size: size}})
	}
	// Sizes count a 512-byte header per file; never more groups than files.
	for n, want := range map[int][]int{1: {8}, 2: {5, 3}, 3: {4, 3, 1}, 20: {2, 1, 1, 1, 2, 1}} {
		var got []int
		for _, g := range splitJobs(jobs, n) {
			got = append(got, len(g))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("splitJobs(%d) = %v, want %v", n, got, want)
		}
	}
}
