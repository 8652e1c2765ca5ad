package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/hub/hubtest"
)

const (
	repoID = "EarthSpeciesProject/BEANS-Zero"
	goodTK = "hf_good"
)

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// recorder keeps the delays the client asked to wait, instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newTestClient(t *testing.T, srv *hubtest.Server, opts Options) (*Client, *sleeps) {
	t.Helper()
	if opts.Endpoint == "" {
		opts.Endpoint = srv.URL
	}
	if opts.Token == "" {
		opts.Anonymous = true
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = srv.HTTPClient()
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	c.sleep = s.sleep
	return c, s
}

// seed fills a fake Hub with a small BEANS-Zero-like repository.
func seed(srv *hubtest.Server) map[string][]byte {
	files := map[string][]byte{
		"README.md":                      []byte("---\nlicense: other\n---\n# BEANS-Zero\n"),
		"data/test/shard-00000.parquet":  testData(300_000, 1),
		"data/test/shard-00001.parquet":  testData(250_001, 2),
		"data/test/extra/notes.txt":      []byte("hello"),
		"data/test/shard-00002.parquet":  testData(1, 3),
		"data/train/shard-00000.parquet": testData(10, 4),
		"empty.txt":                      {},
	}
	for p, d := range files {
		srv.AddFile(repoID, "main", p, d)
	}
	srv.AddFile(repoID, "refs/convert/parquet", "x.parquet", testData(100, 5))
	return files
}

func TestTokenFromEnv(t *testing.T) {
	type file struct {
		rel  string // under the fake HOME
		body string
		mode os.FileMode
	}
	tests := []struct {
		name       string
		env        map[string]string // values may use $HOME
		files      []file
		wantToken  string
		wantSource string // suffix of the source
		wantWarn   string // substring, "" = no warning
	}{
		{name: "none"},
		{name: "HF_TOKEN wins", env: map[string]string{"HF_TOKEN": " hf_env \n"},
			files: []file{{".cache/huggingface/token", "hf_file", 0o600}}, wantToken: "hf_env", wantSource: "HF_TOKEN"},
		{name: "legacy variable", env: map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_old"}, wantToken: "hf_old", wantSource: "HUGGING_FACE_HUB_TOKEN"},
		{name: "HF_TOKEN_PATH", env: map[string]string{"HF_TOKEN_PATH": "$HOME/secret/tok"},
			files: []file{{"secret/tok", "hf_path\n", 0o600}, {".cache/huggingface/token", "hf_file", 0o600}}, wantToken: "hf_path", wantSource: "secret/tok"},
		{name: "HF_TOKEN_PATH missing", env: map[string]string{"HF_TOKEN_PATH": "$HOME/nope"},
			files: []file{{".cache/huggingface/token", "hf_file", 0o600}}, wantToken: "hf_file", wantSource: ".cache/huggingface/token", wantWarn: "does not exist"},
		{name: "HF_HOME", env: map[string]string{"HF_HOME": "$HOME/hfhome"},
			files: []file{{"hfhome/token", "hf_home", 0o600}}, wantToken: "hf_home", wantSource: "hfhome/token"},
		{name: "default cache", files: []file{{".cache/huggingface/token", "hf_cache", 0o600}}, wantToken: "hf_cache", wantSource: ".cache/huggingface/token"},
		{name: "seed users' config file", files: []file{{".config/huggingface/hf_token", "hf_cfg", 0o600}}, wantToken: "hf_cfg", wantSource: ".config/huggingface/hf_token"},
		{name: "empty file skipped", files: []file{{".cache/huggingface/token", " \n", 0o600}, {".config/huggingface/hf_token", "hf_cfg", 0o600}},
			wantToken: "hf_cfg", wantSource: ".config/huggingface/hf_token"},
		{name: "readable by others", files: []file{{".config/huggingface/hf_token", "hf_cfg", 0o644}},
			wantToken: "hf_cfg", wantSource: ".config/huggingface/hf_token", wantWarn: "chmod 600"},
		{name: "readable by group", files: []file{{".cache/huggingface/token", "hf_g", 0o640}},
			wantToken: "hf_g", wantSource: ".cache/huggingface/token", wantWarn: "readable by other users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HOME", "XDG_CACHE_HOME"} {
				t.Setenv(k, "")
			}
			t.Setenv("HOME", home)
			for k, v := range tt.env {
				t.Setenv(k, strings.ReplaceAll(v, "$HOME", home))
			}
			for _, f := range tt.files {
				p := filepath.Join(home, f.rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, f.mode); err != nil {
					t.Fatal(err)
				}
			}
			tok, src, warn, err := TokenFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			if tok != tt.wantToken || !strings.HasSuffix(src, tt.wantSource) || (tt.wantSource == "" && src != "") {
				t.Errorf("got token %q from %q, want %q from …%q", tok, src, tt.wantToken, tt.wantSource)
			}
			if (tt.wantWarn == "") != (warn == "") || !strings.Contains(warn, tt.wantWarn) {
				t.Errorf("warning %q, want one containing %q", warn, tt.wantWarn)
			}
		})
	}
}

func TestNewEndpointFromEnv(t *testing.T) {
	srv := hubtest.New(t)
	seed(srv)
	t.Setenv("HF_ENDPOINT", srv.URL+"/")
	c, err := New(Options{Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != srv.URL {
		t.Fatalf("endpoint %q, want %q", c.Endpoint(), srv.URL)
	}
	if _, err := c.Resolve(context.Background(), "datasets", repoID, "main"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_ENDPOINT", "ftp://x")
	if _, err := New(Options{Anonymous: true}); err == nil || !strings.Contains(err.Error(), "HF_ENDPOINT") {
		t.Fatalf("bad endpoint accepted: %v", err)
	}
}

func TestResolve(t *testing.T) {
	srv := hubtest.New(t)
	seed(srv)
	c, _ := newTestClient(t, srv, Options{Token: goodTK})
	main := srv.Commit(repoID, "main")
	tests := []struct {
		name, repo, rev string
		want            string
		wantErr         error
		wantMsg         []string
	}{
		{name: "branch", repo: repoID, rev: "main", want: main},
		{name: "default branch", repo: repoID, rev: "", want: main},
		{name: "commit sha", repo: repoID, rev: main, want: main},
		{name: "branch with slashes", repo: repoID, rev: "refs/convert/parquet", want: srv.Commit(repoID, "refs/convert/parquet")},
		{name: "missing revision", repo: repoID, rev: "v9", wantErr: ErrNotFound, wantMsg: []string{`revision "v9" does not exist`, repoID, "--revision"}},
		{name: "missing repository", repo: "nobody/nothing", rev: "main", wantErr: ErrNotFound, wantMsg: []string{"nobody/nothing does not exist"}},
		{name: "bad repository name", repo: "a/b/c", rev: "main", wantMsg: []string{"owner/name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Resolve(context.Background(), "datasets", tt.repo, tt.rev)
			if tt.wantMsg == nil {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	srv := hubtest.New(t)
	files := seed(srv)
	c, _ := newTestClient(t, srv, Options{})
	tests := []struct {
		name      string
		pageSize  int
		path      string
		wantFiles []string
		wantDirs  []string
	}{
		{name: "one page", pageSize: 1000, path: "", wantDirs: []string{"data", "data/test", "data/test/extra", "data/train"}},
		{name: "pages of 2", pageSize: 2, path: "", wantDirs: []string{"data", "data/test", "data/test/extra", "data/train"}},
		{name: "pages of 1, sub-directory", pageSize: 1, path: "data/test",
			wantFiles: []string{"data/test/extra/notes.txt", "data/test/shard-00000.parquet", "data/test/shard-00001.parquet", "data/test/shard-00002.parquet"},
			wantDirs:  []string{"data/test/extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetPageSize(tt.pageSize)
			srv.ResetStats()
			entries, err := c.List(context.Background(), "datasets", repoID, "main", tt.path)
			if err != nil {
				t.Fatal(err)
			}
			var gotFiles, gotDirs []string
			for _, e := range entries {
				if e.Type == "directory" {
					gotDirs = append(gotDirs, e.Path)
					continue
				}
				gotFiles = append(gotFiles, e.Path)
				data := files[e.Path]
				if e.FileSize() != int64(len(data)) {
					t.Errorf("%s: size %d, want %d", e.Path, e.FileSize(), len(data))
				}
				sha, oid := srv.Hashes(repoID, "main", e.Path)
				algo, sum := e.ContentHash()
				if strings.HasSuffix(e.Path, ".parquet") {
					if e.LFS == nil || algo != "sha256" || sum != sha {
						t.Errorf("%s: LFS %+v, hash %s %s; want sha256 %s", e.Path, e.LFS, algo, sum, sha)
					}
				} else if e.LFS != nil || algo != "git-sha1" || sum != oid {
					t.Errorf("%s: LFS %+v, hash %s %s; want git-sha1 %s", e.Path, e.LFS, algo, sum, oid)
				}
			}
			want := tt.wantFiles
			if want == nil {
				for p := range files {
					want = append(want, p)
				}
				sort.Strings(want)
			}
			sort.Strings(gotFiles)
			sort.Strings(gotDirs)
			if fmt.Sprint(gotFiles) != fmt.Sprint(want) || fmt.Sprint(gotDirs) != fmt.Sprint(tt.wantDirs) {
				t.Errorf("files %v dirs %v;\nwant %v dirs %v", gotFiles, gotDirs, want, tt.wantDirs)
			}
			pages := (len(entries) + tt.pageSize - 1) / tt.pageSize
			if n := len(srv.Requests()); n != pages {
				t.Errorf("%d requests for %d entries in pages of %d, want %d", n, len(entries), tt.pageSize, pages)
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{`<https://h/api?cursor=a>; rel="next"`}, "https://h/api?cursor=a"},
		{[]string{`<https://h/p1>; rel="prev", <https://h/p3>; rel=next`}, "https://h/p3"},
		{[]string{`<https://h/p1>; rel="prev"`, `<https://h/p3>; title="x"; rel="last next"`}, "https://h/p3"},
		{[]string{`<https://h/p1>; rel="prev"`}, ""},
		{[]string{`garbage`}, ""},
	}
	for _, tt := range tests {
		if got := nextLink(tt.in); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAuthAndNotFoundMessages(t *testing.T) {
	srv := hubtest.New(t)
	seed(srv)
	srv.Gate(repoID, goodTK)
	pathRepo := srv.URL + "/datasets/" + repoID
	accept := "set HF_TOKEN, and accept the dataset's terms on the Hub (" + pathRepo + ")"
	type op func(c *Client) error
	ops := map[string]op{
		"resolve": func(c *Client) error {
			_, err := c.Resolve(context.Background(), "datasets", repoID, "main")
			return err
		},
		"list": func(c *Client) error {
			_, err := c.List(context.Background(), "datasets", repoID, "main", "")
			return err
		},
		"open": func(c *Client) error {
			_, err := c.Open(context.Background(), "datasets", repoID, "main", "data/test/shard-00000.parquet", -1)
			return err
		},
	}
	tests := []struct {
		name    string
		token   string
		wantErr error
		wantMsg []string
	}{
		{name: "no token", token: "", wantErr: ErrAuth, wantMsg: []string{"401", accept, "no token was sent"}},
		{name: "token without access", token: "hf_other", wantErr: ErrAuth, wantMsg: []string{"403", accept, "Options.Token was sent"}},
		{name: "granted token", token: goodTK},
	}
	for _, tt := range tests {
		for name, do := range ops {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				c, sl := newTestClient(t, srv, Options{Token: tt.token})
				err := do(c)
				if tt.wantErr == nil {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q\nlacks %q", err, m)
					}
				}
				if len(sl.all()) != 0 {
					t.Errorf("auth errors were retried")
				}
			})
		}
	}

	c, _ := newTestClient(t, srv, Options{Token: goodTK})
	notFound := []struct {
		name, rev, path string
		want            []string
	}{
		{"file", "main", "data/test/shard-09999.parquet", []string{`file "data/test/shard-09999.parquet" does not exist`, "dataset " + repoID, "revision main"}},
		{"revision", "v2", "data/test/shard-00000.parquet", []string{`revision "v2" does not exist`, repoID, "file data/test/shard-00000.parquet"}},
	}
	for _, tt := range notFound {
		t.Run("404 "+tt.name, func(t *testing.T) {
			_, err := c.Open(context.Background(), "datasets", repoID, tt.rev, tt.path, -1)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			for _, m := range tt.want {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q\nlacks %q", err, m)
				}
			}
		})
	}
}

// TestTokenNotLeakedOnRedirect reads through redirects to a CDN on another host, and on a
// subdomain of the Hub's host, where Go's own redirect policy would keep the token.
func TestTokenNotLeakedOnRedirect(t *testing.T) {
	tests := []struct {
		name    string
		hubHost string // "" = 127.0.0.1
		cdnHost string
		goLeaks bool // Go's default client would send the token there
	}{
		{name: "other host", cdnHost: "localhost"},
		{name: "subdomain", hubHost: "hub.test", cdnHost: "cdn-lfs.hub.test", goLeaks: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hubtest.New(t)
			files := seed(srv)
			srv.SetRedirect(true)
			srv.SetCDNHost(tt.cdnHost)
			ep := srv.URL
			if tt.hubHost != "" {
				ep = srv.EndpointAs(tt.hubHost)
			}
			const p = "data/test/shard-00000.parquet"
			if tt.goLeaks {
				// The fake does notice a leak: Go's default redirect policy sends the token.
				req, _ := http.NewRequest("GET", ep+"/datasets/"+repoID+"/resolve/main/"+p, nil)
				req.Header.Set("Authorization", "Bearer "+goodTK)
				resp, err := srv.HTTPClient().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if srv.CDNAuthSeen() == 0 {
					t.Fatal("the fake CDN did not see the token Go's default client forwards to a subdomain")
				}
				srv.ResetStats()
			}
			c, _ := newTestClient(t, srv, Options{Endpoint: ep, Token: goodTK})
			f, err := c.Open(context.Background(), "datasets", repoID, "main", p, int64(len(files[p])))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1000)
			if _, err := f.ReadAt(buf, 5000); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, files[p][5000:6000]) {
				t.Fatal("wrong bytes")
			}
			// Download follows the redirect chain from the resolve URL too.
			dir := t.TempDir()
			e := listed(t, c, p)
			if err := c.Download(context.Background(), "datasets", repoID, "main", e, filepath.Join(dir, "f")); err != nil {
				t.Fatal(err)
			}
			if n := srv.CDNAuthSeen(); n != 0 {
				t.Fatalf("the CDN received the token %d times", n)
			}
			var hubAuth, cdn int
			for _, r := range srv.Requests() {
				if r.Server == "hub" && r.Auth {
					hubAuth++
				}
				if r.Server == "cdn" {
					cdn++
				}
			}
			if hubAuth == 0 || cdn == 0 {
				t.Fatalf("hub requests with a token: %d, CDN requests: %d; want both > 0", hubAuth, cdn)
			}
		})
	}
}

func listed(t *testing.T, c *Client, p string) Entry {
	t.Helper()
	entries, err := c.List(context.Background(), "datasets", repoID, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Path == p {
			return e
		}
	}
	t.Fatalf("%s not listed", p)
	return Entry{}
}

func TestReadAt(t *testing.T) {
	for _, redirect := range []bool{false, true} {
		t.Run(fmt.Sprintf("redirect=%v", redirect), func(t *testing.T) {
			srv := hubtest.New(t)
			files := seed(srv)
			srv.SetRedirect(redirect)
			const p = "data/test/shard-00001.parquet"
			data := files[p]
			c, _ := newTestClient(t, srv, Options{})
			f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
			if err != nil {
				t.Fatal(err)
			}
			if f.Size() != int64(len(data)) || f.Commit() != srv.Commit(repoID, "main") {
				t.Fatalf("size %d commit %s", f.Size(), f.Commit())
			}
			if sha, _ := srv.Hashes(repoID, "main", p); f.ETag() != sha {
				t.Fatalf("etag %q, want the sha256 %q", f.ETag(), sha)
			}
			size := int64(len(data))
			tests := []struct {
				off     int64
				n       int
				wantN   int
				wantEOF bool
			}{
				{0, 10, 10, false},
				{1234, 100_000, 100_000, false},
				{size - 5, 5, 5, false},
				{size - 5, 10, 5, true},
				{size, 10, 0, true},
				{7, 0, 0, false},
			}
			for _, tt := range tests {
				srv.ResetStats()
				buf := make([]byte, tt.n)
				n, err := f.ReadAt(buf, tt.off)
				if n != tt.wantN || (err == io.EOF) != tt.wantEOF || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", tt.n, tt.off, n, err)
				}
				if !bytes.Equal(buf[:n], data[tt.off:tt.off+int64(n)]) {
					t.Fatalf("ReadAt(%d, %d): wrong bytes", tt.n, tt.off)
				}
				if got := srv.Stats(p).Bytes; got != int64(n) {
					t.Errorf("ReadAt(%d, %d): server sent %d bytes, want %d", tt.n, tt.off, got, n)
				}
			}
			srv.ResetStats()
			footer, err := f.ReadSuffix(context.Background(), 8)
			if err != nil || !bytes.Equal(footer, data[size-8:]) {
				t.Fatalf("ReadSuffix: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Range != "bytes=-8" || reqs[0].Status != http.StatusPartialContent {
				t.Fatalf("ReadSuffix sent %+v, want one GET with Range bytes=-8 answered 206", reqs)
			}
			all, err := f.ReadSuffix(context.Background(), size+100)
			if err != nil || !bytes.Equal(all, data) {
				t.Fatalf("ReadSuffix(beyond size): %v", err)
			}
		})
	}
}

func TestRangeFailures(t *testing.T) {
	const p = "data/test/shard-00000.parquet"
	tests := []struct {
		name    string
		mode    hubtest.RangeMode
		maxSkip int64
		off     int64
		wantErr error
		wantMsg []string
	}{
		{name: "416", mode: hubtest.Range416, off: 100, wantErr: ErrRangeNotSatisfiable, wantMsg: []string{p, "bytes=100-199", "416"}},
		{name: "ignored, small skip", mode: hubtest.RangeIgnore, off: 1000},
		{name: "ignored, skip too large", mode: hubtest.RangeIgnore, maxSkip: 999, off: 1000, wantErr: ErrRangeIgnored, wantMsg: []string{p, "ignored the range", "data fetch"}},
		{name: "ignored, skipping disabled", mode: hubtest.RangeIgnore, maxSkip: -1, off: 1, wantErr: ErrRangeIgnored},
		{name: "wrong Content-Range", mode: hubtest.RangeWrongContentRange, off: 100, wantErr: ErrBadAnswer, wantMsg: []string{"Content-Range", "bytes 100-199"}},
	}
	for _, tt := range tests {
		for _, redirect := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/redirect=%v", tt.name, redirect), func(t *testing.T) {
				srv := hubtest.New(t)
				files := seed(srv)
				srv.SetRedirect(redirect)
				c, sl := newTestClient(t, srv, Options{MaxSkip: tt.maxSkip})
				f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
				if err != nil {
					t.Fatal(err)
				}
				srv.SetRangeMode(tt.mode)
				buf := make([]byte, 100)
				_, err = f.ReadAt(buf, tt.off)
				if tt.wantErr == nil {
					if err != nil || !bytes.Equal(buf, files[p][tt.off:tt.off+100]) {
						t.Fatalf("err = %v, or wrong bytes", err)
					}
					if f.BytesRead() < tt.off+100 {
						t.Errorf("BytesRead %d does not count the skipped bytes", f.BytesRead())
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q\nlacks %q", err, m)
					}
				}
				if len(sl.all()) != 0 {
					t.Errorf("a permanent failure was retried %d times", len(sl.all()))
				}
			})
		}
	}
}

func TestRetries(t *testing.T) {
	const p = "data/test/shard-00000.parquet"
	tests := []struct {
		name       string
		retries    int
		inject     func(srv *hubtest.Server)
		wantErr    error
		wantSleeps []time.Duration // exact values; nil = only count
		wantCount  int
	}{
		{name: "503 twice", inject: func(s *hubtest.Server) { s.Fail(p, 503, 2, "") }, wantCount: 2},
		{name: "429 with Retry-After", inject: func(s *hubtest.Server) { s.Fail(p, 429, 1, "7") }, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "Retry-After capped", inject: func(s *hubtest.Server) { s.Fail(p, 429, 1, "86400") }, wantSleeps: []time.Duration{maxRetryAfter}},
		{name: "connection dropped mid-body", inject: func(s *hubtest.Server) { s.Drop(p, 3000, 2) }, wantCount: 2},
		{name: "5xx beyond the bound", retries: 2, inject: func(s *hubtest.Server) { s.Fail(p, 502, 10, "") }, wantErr: ErrUnavailable, wantCount: 2},
		{name: "drops beyond the bound", retries: 1, inject: func(s *hubtest.Server) { s.Drop(p, 10, 10) }, wantErr: ErrUnavailable, wantCount: 1},
	}
	for _, tt := range tests {
		for _, redirect := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/redirect=%v", tt.name, redirect), func(t *testing.T) {
				srv := hubtest.New(t)
				files := seed(srv)
				srv.SetRedirect(redirect)
				c, sl := newTestClient(t, srv, Options{Retries: tt.retries})
				f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
				if err != nil {
					t.Fatal(err)
				}
				tt.inject(srv)
				buf := make([]byte, 50_000)
				_, err = f.ReadAt(buf, 10)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "gave up after") {
						t.Fatalf("err = %v, want %v after bounded attempts", err, tt.wantErr)
					}
				} else if err != nil || !bytes.Equal(buf, files[p][10:50_010]) {
					t.Fatalf("err = %v, or wrong bytes", err)
				}
				got := sl.all()
				if tt.wantSleeps != nil && fmt.Sprint(got) != fmt.Sprint(tt.wantSleeps) {
					t.Errorf("waits %v, want %v", got, tt.wantSleeps)
				}
				if tt.wantSleeps == nil && len(got) != tt.wantCount {
					t.Errorf("%d waits (%v), want %d", len(got), got, tt.wantCount)
				}
				for _, d := range got {
					if d <= 0 || d > maxRetryAfter {
						t.Errorf("wait %v out of bounds", d)
					}
				}
			})
		}
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	c := &Client{}
	prevMax := time.Duration(0)
	for a := 0; a < 20; a++ {
		d := c.delay(a, nil)
		full := min(baseBackoff<<min(a, 10), maxBackoff)
		if d < full/2 || d > full {
			t.Fatalf("attempt %d: %v outside [%v, %v]", a, d, full/2, full)
		}
		if full < prevMax {
			t.Fatalf("backoff shrank")
		}
		prevMax = full
	}
}

func TestExpiredSignedURLIsResolvedAgain(t *testing.T) {
	srv := hubtest.New(t)
	files := seed(srv)
	srv.SetRedirect(true)
	const p = "data/test/shard-00000.parquet"
	c, _ := newTestClient(t, srv, Options{})
	f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	srv.ExpireSignedURLs()
	srv.ResetStats()
	if _, err := f.ReadAt(buf, 100); err != nil || !bytes.Equal(buf, files[p][100:110]) {
		t.Fatalf("read after expiry: %v", err)
	}
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, fmt.Sprintf("%s %s %d", r.Server, r.Method, r.Status))
	}
	want := []string{"cdn GET 403", "hub HEAD 302", "cdn GET 206"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}

func TestDownload(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		redirect   bool
		partial    func(data []byte) []byte // content of a .part left behind, nil = none
		prepare    func(srv *hubtest.Server, p string)
		wantErr    error
		wantServed func(size int) int64 // bytes the server should send, -1 = don't check
	}{
		{name: "lfs", path: "data/test/shard-00000.parquet", wantServed: func(n int) int64 { return int64(n) }},
		{name: "lfs via CDN", path: "data/test/shard-00000.parquet", redirect: true, wantServed: func(n int) int64 { return int64(n) }},
		{name: "git file", path: "README.md", wantServed: func(n int) int64 { return int64(n) }},
		{name: "empty file", path: "empty.txt", wantServed: func(int) int64 { return 0 }},
		{name: "resume", path: "data/test/shard-00000.parquet", redirect: true,
			partial: func(d []byte) []byte { return d[:100_000] }, wantServed: func(n int) int64 { return int64(n) - 100_000 }},
		{name: "resume on a server ignoring ranges", path: "data/test/shard-00000.parquet",
			partial: func(d []byte) []byte { return d[:100_000] }, prepare: func(s *hubtest.Server, _ string) { s.SetRangeMode(hubtest.RangeIgnore) },
			wantServed: func(n int) int64 { return int64(n) }},
		{name: "stale partial file", path: "data/test/shard-00000.parquet",
			partial: func(d []byte) []byte { return bytes.Repeat([]byte{1}, 1000) }, wantServed: func(n int) int64 { return int64(n) - 1000 + int64(n) }},
		{name: "partial file too long", path: "README.md",
			partial: func(d []byte) []byte { return append(bytes.Clone(d), 'x') }, wantServed: func(n int) int64 { return int64(n) }},
		{name: "corrupted by the server", path: "data/test/shard-00000.parquet", redirect: true,
			prepare: func(s *hubtest.Server, p string) { s.Corrupt(p, true) }, wantErr: ErrIntegrity, wantServed: func(n int) int64 { return int64(n) }},
		{name: "corrupted git file", path: "README.md",
			prepare: func(s *hubtest.Server, p string) { s.Corrupt(p, true) }, wantErr: ErrIntegrity, wantServed: func(n int) int64 { return int64(n) }},
		{name: "connection drops are resumed", path: "data/test/shard-00000.parquet", redirect: true,
			prepare: func(s *hubtest.Server, p string) { s.Drop(p, 20_000, 3) }, wantServed: func(n int) int64 { return int64(n) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hubtest.New(t)
			files := seed(srv)
			srv.SetRedirect(tt.redirect)
			c, _ := newTestClient(t, srv, Options{})
			e := listed(t, c, tt.path)
			data := files[tt.path]
			dst := filepath.Join(t.TempDir(), "sub", filepath.Base(tt.path))
			if tt.partial != nil {
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if err := os.WriteFile(dst+".part", tt.partial(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.prepare != nil {
				tt.prepare(srv, tt.path)
			}
			srv.ResetStats()
			err := c.Download(context.Background(), "datasets", repoID, "main", e, dst)
			if served := srv.Stats(tt.path).Bytes; served != tt.wantServed(len(data)) {
				t.Errorf("server sent %d bytes, want %d", served, tt.wantServed(len(data)))
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				for _, p := range []string{dst, dst + ".part"} {
					if _, err := os.Stat(p); !os.IsNotExist(err) {
						t.Errorf("%s left behind after a failed verification", p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded content differs (%v)", err)
			}
			if _, err := os.Stat(dst + ".part"); !os.IsNotExist(err) {
				t.Errorf(".part left behind")
			}
			// Downloading again finds a verified file and sends nothing.
			srv.ResetStats()
			if err := c.Download(context.Background(), "datasets", repoID, "main", e, dst); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("second download sent %d requests, want 0", n)
			}
		})
	}
}

func TestDownloadInterruptedThenResumed(t *testing.T) {
	srv := hubtest.New(t)
	files := seed(srv)
	const p = "data/test/shard-00000.parquet"
	c, _ := newTestClient(t, srv, Options{Retries: -1})
	e := listed(t, c, p)
	dst := filepath.Join(t.TempDir(), "shard.parquet")
	srv.Drop(p, 70_000, 1)
	err := c.Download(context.Background(), "datasets", repoID, "main", e, dst)
	if err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("err = %v, want an interrupted download", err)
	}
	st, err := os.Stat(dst + ".part")
	if err != nil || st.Size() != 70_000 {
		t.Fatalf("partial file: %v, %v", st, err)
	}
	srv.ResetStats()
	if err := c.Download(context.Background(), "datasets", repoID, "main", e, dst); err != nil {
		t.Fatal(err)
	}
	if got := srv.Stats(p).Bytes; got != int64(len(files[p])-70_000) {
		t.Errorf("resume sent %d bytes, want %d", got, len(files[p])-70_000)
	}
	reqs := srv.Requests()
	if last := reqs[len(reqs)-1]; last.Range != "bytes=70000-299999" {
		t.Errorf("resume asked %q", last.Range)
	}
	if err := VerifyFile(dst, e); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSizeMismatch(t *testing.T) {
	srv := hubtest.New(t)
	seed(srv)
	c, _ := newTestClient(t, srv, Options{})
	_, err := c.Open(context.Background(), "datasets", repoID, "main", "README.md", 3)
	if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "pin --revision") {
		t.Fatalf("err = %v", err)
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	srv := hubtest.New(t)
	seed(srv)
	const p = "data/test/shard-00000.parquet"
	c, _ := newTestClient(t, srv, Options{})
	f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(p, 503, 100, "")
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, err = f.ReadAtContext(ctx, make([]byte, 10), 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A GET (not only Open's HEAD) that is redirected to another host drops the token too.
func TestTokenDroppedOnFollowedRedirect(t *testing.T) {
	srv := hubtest.New(t)
	files := seed(srv)
	srv.SetCDNHost("cdn.hub.test")
	const p = "data/test/shard-00000.parquet"
	c, _ := newTestClient(t, srv, Options{Endpoint: srv.EndpointAs("hub.test"), Token: goodTK})
	f, err := c.Open(context.Background(), "datasets", repoID, "main", p, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetRedirect(true) // the file moves behind the CDN after Open
	srv.ResetStats()
	buf := make([]byte, 100)
	if _, err := f.ReadAt(buf, 10); err != nil || !bytes.Equal(buf, files[p][10:110]) {
		t.Fatalf("read: %v", err)
	}
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, fmt.Sprintf("%s %s %d auth=%v", r.Server, r.Method, r.Status, r.Auth))
	}
	want := []string{"hub GET 302 auth=true", "cdn GET 206 auth=false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
}
