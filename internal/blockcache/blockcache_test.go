package blockcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/hub"
	"github.com/beans-slurm/beans-slurm/internal/hub/hubtest"
)

func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// source is an in-memory remote file that counts its reads.
type source struct {
	data  []byte
	reads atomic.Int64
	bytes atomic.Int64
	fail  atomic.Bool
}

func (s *source) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return 0, errors.New("network down")
	}
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	s.bytes.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// streamer adds OpenRange to a source.
type streamer struct {
	*source
	opens atomic.Int64
}

func (s *streamer) OpenRange(_ context.Context, off, n int64) (io.ReadCloser, error) {
	s.opens.Add(1)
	s.bytes.Add(n)
	return io.NopCloser(bytes.NewReader(s.data[off : off+n])), nil
}

func TestReadAt(t *testing.T) {
	const bs = 1000
	data := testData(10_500, 1) // 11 blocks, the last one short
	type read struct {
		off, n       int64
		wantReads    int64 // src.ReadAt calls for this read
		wantFetched  int64 // bytes from the source for this read
		wantN        int
		wantEOF      bool
		wantBlockHit int64
	}
	tests := []struct {
		name  string
		reads []read
	}{
		{name: "all missing: one read, then none", reads: []read{
			{off: 1500, n: 5000, wantReads: 1, wantFetched: 6000, wantN: 5000},
			{off: 1500, n: 5000, wantReads: 0, wantFetched: 0, wantN: 5000, wantBlockHit: 6},
			{off: 2000, n: 10, wantReads: 0, wantN: 10, wantBlockHit: 1},
		}},
		{name: "coalesced runs around cached blocks", reads: []read{
			{off: 3000, n: 1000, wantReads: 1, wantFetched: 1000, wantN: 1000},
			{off: 6000, n: 1000, wantReads: 1, wantFetched: 1000, wantN: 1000},
			// blocks 0-2 missing, 3 cached, 4-5 missing, 6 cached, 7 missing
			{off: 0, n: 7500, wantReads: 3, wantFetched: 6000, wantN: 7500, wantBlockHit: 2},
		}},
		{name: "aligned read goes straight into p", reads: []read{
			{off: 2000, n: 3000, wantReads: 1, wantFetched: 3000, wantN: 3000},
		}},
		{name: "end of file", reads: []read{
			{off: 10_000, n: 1000, wantReads: 1, wantFetched: 500, wantN: 500, wantEOF: true},
			{off: 10_499, n: 1, wantReads: 0, wantN: 1, wantBlockHit: 1},
			{off: 10_500, n: 1, wantReads: 0, wantN: 0, wantEOF: true},
			{off: 0, n: 0, wantReads: 0, wantN: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(t.TempDir(), bs)
			if err != nil {
				t.Fatal(err)
			}
			src := &source{data: data}
			r := c.Reader("sha256-abc", int64(len(data)), src)
			for _, rd := range tt.reads {
				reads0, bytes0, hits0 := src.reads.Load(), src.bytes.Load(), r.Stats().Hits
				p := make([]byte, rd.n)
				n, err := r.ReadAt(p, rd.off)
				if n != rd.wantN || (err == io.EOF) != rd.wantEOF || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v", rd.n, rd.off, n, err)
				}
				if !bytes.Equal(p[:n], data[rd.off:rd.off+int64(n)]) {
					t.Fatalf("ReadAt(%d, %d): wrong bytes", rd.n, rd.off)
				}
				if got := src.reads.Load() - reads0; got != rd.wantReads {
					t.Errorf("ReadAt(%d, %d): %d source reads, want %d", rd.n, rd.off, got, rd.wantReads)
				}
				if got := src.bytes.Load() - bytes0; rd.wantFetched > 0 && got != rd.wantFetched {
					t.Errorf("ReadAt(%d, %d): %d bytes fetched, want %d", rd.n, rd.off, got, rd.wantFetched)
				}
				if got := r.Stats().Hits - hits0; got != rd.wantBlockHit {
					t.Errorf("ReadAt(%d, %d): %d block hits, want %d", rd.n, rd.off, got, rd.wantBlockHit)
				}
			}
			if st := c.Stats(); st.BytesFetched != src.bytes.Load() || st.WriteErrors != 0 || st.Torn != 0 {
				t.Errorf("stats %+v, source sent %d bytes", st, src.bytes.Load())
			}
		})
	}
}

func TestDamagedBlocksAreFetchedAgain(t *testing.T) {
	const bs = 1000
	data := testData(5000, 2)
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{name: "truncated", damage: func(t *testing.T, p string) {
			if err := os.Truncate(p, 500); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "empty", damage: func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "flipped byte, same size", damage: func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[10] ^= 1
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "zeroed (lost writes)", damage: func(t *testing.T, p string) {
			st, _ := os.Stat(p)
			if err := os.WriteFile(p, make([]byte, st.Size()), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c1, _ := Open(dir, bs)
			src := &source{data: data}
			if _, err := c1.Reader("k", 5000, src).ReadAt(make([]byte, 5000), 0); err != nil {
				t.Fatal(err)
			}
			blocks, _ := filepath.Glob(filepath.Join(dir, "*", "k", "b1000", "2"))
			if len(blocks) != 1 {
				t.Fatalf("block file not found: %v", blocks)
			}
			tt.damage(t, blocks[0])
			// Another process (a fresh Cache) reads the same blocks.
			c2, _ := Open(dir, bs)
			r := c2.Reader("k", 5000, src)
			src.reads.Store(0)
			p := make([]byte, 5000)
			if _, err := r.ReadAt(p, 0); err != nil || !bytes.Equal(p, data) {
				t.Fatalf("read after damage: %v, equal=%v", err, bytes.Equal(p, data))
			}
			if st := r.Stats(); st.Torn != 1 || st.Misses != 1 || src.reads.Load() != 1 {
				t.Fatalf("stats %+v, %d source reads; want the damaged block fetched again, once", st, src.reads.Load())
			}
			// and it is repaired on disk
			c3, _ := Open(dir, bs)
			if _, err := c3.Reader("k", 5000, src).ReadAt(p, 0); err != nil || c3.Stats().Misses != 0 {
				t.Fatalf("block not repaired: %v %+v", err, c3.Stats())
			}
		})
	}
}

func TestPrefetch(t *testing.T) {
	const bs = 1000
	data := testData(9_999, 3)
	t.Run("streaming source: one request, then all hits", func(t *testing.T) {
		c, _ := Open(t.TempDir(), bs)
		src := &streamer{source: &source{data: data}}
		r := c.Reader("k", int64(len(data)), src)
		if err := r.Prefetch(context.Background(), 1200, 7000); err != nil {
			t.Fatal(err)
		}
		if src.opens.Load() != 1 || src.reads.Load() != 0 || src.bytes.Load() != 8000 {
			t.Fatalf("%d opens, %d reads, %d bytes; want one streamed range of 8000", src.opens.Load(), src.reads.Load(), src.bytes.Load())
		}
		p := make([]byte, 7000)
		if _, err := r.ReadAt(p, 1200); err != nil || !bytes.Equal(p, data[1200:8200]) {
			t.Fatalf("read: %v", err)
		}
		if src.opens.Load() != 1 || src.reads.Load() != 0 {
			t.Fatal("prefetched blocks were fetched again")
		}
		if err := r.Prefetch(context.Background(), 0, int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if src.opens.Load() != 3 { // blocks 0 and 9 remained
			t.Fatalf("%d opens, want 3", src.opens.Load())
		}
	})
	t.Run("plain ReaderAt", func(t *testing.T) {
		c, _ := Open(t.TempDir(), bs)
		src := &source{data: data}
		r := c.Reader("k", int64(len(data)), src)
		if err := r.Prefetch(context.Background(), 0, 1<<30); err != nil {
			t.Fatal(err)
		}
		if src.reads.Load() != 1 || src.bytes.Load() != int64(len(data)) {
			t.Fatalf("%d reads, %d bytes", src.reads.Load(), src.bytes.Load())
		}
	})
}

func TestSourceErrors(t *testing.T) {
	c, _ := Open(t.TempDir(), 100)
	src := &source{data: testData(1000, 4)}
	src.fail.Store(true)
	r := c.Reader("k", 1000, src)
	_, err := r.ReadAt(make([]byte, 40), 150)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("fetch bytes 100-199")) {
		t.Fatalf("err = %v", err)
	}
	// Claims were released: the next read fetches.
	src.fail.Store(false)
	p := make([]byte, 40)
	if _, err := r.ReadAt(p, 150); err != nil || !bytes.Equal(p, src.data[150:190]) {
		t.Fatalf("read after recovery: %v", err)
	}
	// A source shorter than announced is an error, not zeros.
	short := &source{data: testData(50, 5)}
	if _, err := c.Reader("short", 1000, short).ReadAt(make([]byte, 100), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short source: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes everywhere")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if _, err := Open(filepath.Join(dir, "x"), 0); err == nil {
		t.Fatal("unwritable directory accepted")
	}
	if _, err := Open(dir, 0); err == nil || !bytes.Contains([]byte(err.Error()), []byte("not writable")) {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentReaders(t *testing.T) {
	const bs = 512
	data := testData(100_000, 6)
	dir := t.TempDir()
	src := &source{data: data}
	// Two caches on one directory: two processes sharing a scratch cache.
	caches := make([]*Cache, 2)
	for i := range caches {
		caches[i], _ = Open(dir, bs)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			r := caches[g%2].Reader("shared", int64(len(data)), src)
			for i := 0; i < 200; i++ {
				off := rng.Int64N(int64(len(data)))
				p := make([]byte, rng.IntN(5000))
				n, err := r.ReadAt(p, off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- fmt.Errorf("goroutine %d: wrong bytes at %d", g, off)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Within one Cache a block is fetched at most once; two Caches may race for a block.
	for i, c := range caches {
		if st := c.Stats(); st.Misses > int64(len(data)/bs+1) {
			t.Errorf("cache %d fetched %d blocks of %d", i, st.Misses, len(data)/bs+1)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*", "shared", "*", ".tmp-*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// The cache over the Hub client: a second read, a rerun (a new process) and a second task
// reading the same shard download nothing.
func TestOverHub(t *testing.T) {
	srv := hubtest.New(t)
	const repo, p = "EarthSpeciesProject/BEANS-Zero", "data/test/shard-00000.parquet"
	data := testData(3_000_000, 7)
	srv.AddFile(repo, "main", p, data)
	srv.SetRedirect(true)
	client, err := hub.New(hub.Options{Endpoint: srv.URL, Anonymous: true, HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entries, err := client.List(ctx, "datasets", repo, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	var e hub.Entry
	for _, x := range entries {
		if x.Path == p {
			e = x
		}
	}
	dir := t.TempDir()
	open := func() (*hub.File, *Reader) {
		f, err := client.Open(ctx, "datasets", repo, "main", p, e.FileSize())
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(dir, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		return f, c.Reader(e.CacheKey(), f.Size(), f)
	}

	f, r := open()
	// Footer (the last 64 KiB) and a column chunk fetched with one request each.
	footer := make([]byte, 64<<10)
	if _, err := r.ReadAt(footer, int64(len(data))-int64(len(footer))); err != nil {
		t.Fatal(err)
	}
	srv.ResetStats()
	before := f.BytesRead()
	if err := r.Prefetch(ctx, 100_000, 1_500_000); err != nil {
		t.Fatal(err)
	}
	var gets int
	for _, q := range srv.Requests() {
		if q.Method == "GET" {
			gets++
		}
	}
	if gets != 1 {
		t.Fatalf("column chunk fetched with %d GET requests, want 1: %+v", gets, srv.Requests())
	}
	chunk := make([]byte, 1_500_000)
	if _, err := r.ReadAt(chunk, 100_000); err != nil || !bytes.Equal(chunk, data[100_000:1_600_000]) {
		t.Fatalf("chunk: %v", err)
	}
	// Whole blocks 1-24 (64 KiB each) hold bytes 100,000-1,599,999.
	if got := f.BytesRead() - before; got != srv.TotalBytes() || got != 24<<16 {
		t.Errorf("client counted %d bytes, server sent %d; want %d", got, srv.TotalBytes(), 24<<16)
	}

	// A rerun and a concurrent second task: nothing from the server.
	srv.ResetStats()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, r := open()
			p := make([]byte, 1_500_000)
			if _, err := r.ReadAt(p, 100_000); err != nil || !bytes.Equal(p, data[100_000:1_600_000]) {
				t.Errorf("second read: %v", err)
			}
			footer := make([]byte, 64<<10)
			if _, err := r.ReadAt(footer, int64(len(data))-int64(len(footer))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.TotalBytes(); n != 0 {
		t.Fatalf("second reads transferred %d bytes, want 0", n)
	}
}

// Small reads are kept as exact ranges: reading the small columns spread through a file
// fetches only their bytes, and the same reads again fetch nothing.
func TestSmallReads(t *testing.T) {
	c, _ := Open(t.TempDir(), 1000)
	src := &source{data: testData(10000, 6)}
	r := c.Reader("k", 10000, src)
	p := make([]byte, 50)
	for _, off := range []int64{0, 3000, 9950} {
		if _, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p, src.data[off:off+50]) {
			t.Fatalf("read at %d: %v", off, err)
		}
	}
	if got := src.bytes.Load(); got != 150 {
		t.Fatalf("small reads fetched %d bytes, want exactly 150", got)
	}
	r2 := c.Reader("k", 10000, src)
	for _, off := range []int64{0, 3000, 9950} {
		if _, err := r2.ReadAt(p, off); err != nil || !bytes.Equal(p, src.data[off:off+50]) {
			t.Fatalf("second read at %d: %v", off, err)
		}
	}
	if got := src.bytes.Load(); got != 150 {
		t.Fatalf("repeated small reads fetched again: %d bytes", got)
	}
	// Blocks on disk serve small reads inside them without a range fetch.
	if _, err := r.ReadAt(make([]byte, 1000), 5000); err != nil {
		t.Fatal(err)
	}
	before := src.bytes.Load()
	if _, err := r.ReadAt(p, 5100); err != nil || !bytes.Equal(p, src.data[5100:5150]) || src.bytes.Load() != before {
		t.Fatalf("small read inside a cached block: %v, fetched %d", err, src.bytes.Load()-before)
	}
}
