// Package blockcache reads remote files through a cache of fixed-size blocks on disk, so
// that resuming, rerunning or a second task in the same shard downloads nothing again.
//
// Blocks are content-addressed: by a key naming the file's content (an LFS sha256, an
// etag) and the block's index. The cache is safe for several processes and nodes at once
// without locks: a block is written to a temporary file in its directory and renamed into
// place, so a reader sees either no block or a whole one. Every block file carries a
// trailer (CRC-32C and a magic number); a block file of the wrong size or with a bad
// checksum (a torn write, a crash before the data reached the disk) is fetched again,
// never served. Memory stays bounded: blocks are streamed to disk, never the whole file.
//
// Within one process, concurrent reads of the same missing block fetch it once.
//
// Layout: DIR/<2 hex>/<key>/b<blockSize>/<index>. Temporary files start with a dot; ones
// left by crashed processes can be deleted at any time.
package blockcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultBlockSize is the block size used when Open is given 0.
const DefaultBlockSize = 4 << 20

// maxBuffer bounds the memory of one Prefetch from a source that cannot stream.
const maxBuffer = 64 << 20

const (
	trailerLen = 8
	magic      = "bsc1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RangeOpener is implemented by sources that stream a byte range with one request
// (*hub.File). Prefetch uses it to fetch large spans with bounded memory.
type RangeOpener interface {
	OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
}

// Stats count what a Cache or a Reader did.
type Stats struct {
	Hits         int64 // blocks served from disk
	Misses       int64 // blocks fetched from the source
	Fetches      int64 // reads from the source (one range request each for *hub.File)
	BytesFetched int64 // bytes read from the source
	BytesServed  int64 // bytes returned by ReadAt
	Torn         int64 // block files found short or corrupt, and fetched again
	WriteErrors  int64 // blocks that could not be stored (the reads still succeeded)
}

type counters struct {
	hits, misses, fetches, bytesFetched, bytesServed, torn, writeErrors atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Fetches: c.fetches.Load(),
		BytesFetched: c.bytesFetched.Load(), BytesServed: c.bytesServed.Load(), Torn: c.torn.Load(),
		WriteErrors: c.writeErrors.Load()}
}

// Cache is a directory of cached blocks. It is safe for concurrent use.
type Cache struct {
	dir       string
	blockSize int64

	mu       sync.Mutex
	inflight map[string]chan struct{} // block path → closed when its fetch ends
	verified map[string]bool          // block files whose checksum this process checked
	lastErr  error

	stats counters
}

// Open opens (creating it if needed) a cache in dir with blocks of blockSize bytes (0 =
// DefaultBlockSize). It checks that dir is writable.
func Open(dir string, blockSize int64) (*Cache, error) {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	if blockSize < 0 {
		return nil, fmt.Errorf("block cache: negative block size %d", blockSize)
	}
	if dir == "" {
		return nil, errors.New("block cache: no directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("block cache: create %s: %w; choose another cache directory", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("block cache: %s is not writable: %w; choose another cache directory", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Cache{dir: dir, blockSize: blockSize, inflight: map[string]chan struct{}{}, verified: map[string]bool{}}, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// BlockSize is the size of the blocks.
func (c *Cache) BlockSize() int64 { return c.blockSize }

// Stats sums the work of all the cache's readers.
func (c *Cache) Stats() Stats { return c.stats.snapshot() }

// LastWriteError is the last error met while storing a block, if any.
func (c *Cache) LastWriteError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Reader returns a reader of the file of the given size whose content key names (the LFS
// sha256, an etag: anything that changes when the content changes), reading missing blocks
// from src. The Reader is an io.ReaderAt, safe for concurrent use.
func (c *Cache) Reader(key string, size int64, src io.ReaderAt) *Reader {
	name := key
	if !plainKey.MatchString(key) {
		h := sha256.Sum256([]byte(key))
		name = hex.EncodeToString(h[:])
	}
	h := sha256.Sum256([]byte(name))
	kdir := filepath.Join(c.dir, hex.EncodeToString(h[:1]), name, "b"+strconv.FormatInt(c.blockSize, 10))
	return &Reader{c: c, key: key, size: size, src: src, dir: kdir}
}

// Reader reads one file through the cache.
type Reader struct {
	c     *Cache
	key   string
	size  int64
	src   io.ReaderAt
	dir   string
	stats counters
}

// Size is the file's size.
func (r *Reader) Size() int64 { return r.size }

// Stats counts this reader's work.
func (r *Reader) Stats() Stats { return r.stats.snapshot() }

func (r *Reader) blockPath(i int64) string {
	return filepath.Join(r.dir, strconv.FormatInt(i, 10))
}

// blockLen is the length of block i's data.
func (r *Reader) blockLen(i int64) int64 {
	return min(r.c.blockSize, r.size-i*r.c.blockSize)
}

func (r *Reader) add(f func(*counters)) {
	f(&r.stats)
	f(&r.c.stats)
}

// ReadAt reads len(p) bytes at off: blocks on disk are served from there, the missing ones
// are fetched, each run of consecutive missing blocks with one src.ReadAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("block cache %s: negative offset %d", r.key, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	end := off + n
	var missing []int64
	for i := off / r.c.blockSize; i*r.c.blockSize < end; i++ {
		ok, err := r.copyBlock(i, p, off, end)
		if err != nil {
			return 0, err
		}
		if !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		if n <= r.c.blockSize/smallFraction {
			// A small read (a footer, a column of ids or labels) whose blocks are not all
			// here: fetch and keep exactly that range, rather than whole blocks, so that
			// reading the small columns spread through a file does not download it.
			if err := r.readSmall(p[:n], off); err != nil {
				return 0, err
			}
		} else if err := r.fetch(nil, missing, p, off, end); err != nil {
			return 0, err
		}
	}
	r.add(func(c *counters) { c.bytesServed.Add(n) })
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// Prefetch makes sure the blocks that hold [off, off+n) are on disk, fetching each run of
// consecutive missing blocks with one request and bounded memory when src is a
// RangeOpener (as *hub.File is); otherwise with reads of at most 64 MiB.
func (r *Reader) Prefetch(ctx context.Context, off, n int64) error {
	if off < 0 || n < 0 {
		return fmt.Errorf("block cache %s: bad range %d+%d", r.key, off, n)
	}
	end := min(off+n, r.size)
	var missing []int64
	for i := off / r.c.blockSize; i*r.c.blockSize < end; i++ {
		ok, err := r.present(i)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return r.fetch(ctx, missing, nil, 0, 0)
}

// present tells whether block i is on disk and sound (checking it once per process).
func (r *Reader) present(i int64) (bool, error) {
	return r.copyBlock(i, nil, 0, 0)
}

// copyBlock copies the part of block i that falls in [off, end) into p (p[0] is at off),
// from disk. It returns false when the block is missing, short or corrupt.
func (r *Reader) copyBlock(i int64, p []byte, off, end int64) (bool, error) {
	path := r.blockPath(i)
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("block cache: %w", err)
	}
	defer fh.Close()
	blen := r.blockLen(i)
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("block cache: %w", err)
	}
	if st.Size() != blen+trailerLen {
		r.add(func(c *counters) { c.torn.Add(1) })
		return false, nil
	}
	bstart := i * r.c.blockSize
	lo, hi := max(off, bstart), min(end, bstart+blen)
	r.c.mu.Lock()
	verified := r.c.verified[path]
	r.c.mu.Unlock()
	if !verified {
		buf := make([]byte, blen+trailerLen)
		if _, err := io.ReadFull(fh, buf); err != nil {
			r.add(func(c *counters) { c.torn.Add(1) })
			return false, nil
		}
		if !sound(buf) {
			r.add(func(c *counters) { c.torn.Add(1) })
			return false, nil
		}
		r.c.mu.Lock()
		r.c.verified[path] = true
		r.c.mu.Unlock()
		if lo < hi {
			copy(p[lo-off:hi-off], buf[lo-bstart:hi-bstart])
		}
	} else if lo < hi {
		if _, err := fh.ReadAt(p[lo-off:hi-off], lo-bstart); err != nil {
			r.add(func(c *counters) { c.torn.Add(1) })
			return false, nil
		}
	}
	r.add(func(c *counters) { c.hits.Add(1) })
	return true, nil
}

// smallFraction: reads of at most blockSize/smallFraction bytes (1 MiB with the default
// blocks: a footer read) are cached as exact ranges.
const smallFraction = 4

func (r *Reader) rangePath(off, n int64) string {
	return filepath.Join(r.dir, "r"+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(n, 10))
}

// readSmall serves [off, off+len(p)) from a range kept by an earlier identical read, else
// fetches exactly that range from the source and keeps it.
func (r *Reader) readSmall(p []byte, off int64) error {
	path := r.rangePath(off, int64(len(p)))
	if buf, err := os.ReadFile(path); err == nil {
		if len(buf) == len(p)+trailerLen && sound(buf) {
			copy(p, buf)
			r.add(func(c *counters) { c.hits.Add(1) })
			return nil
		}
		r.add(func(c *counters) { c.torn.Add(1) })
	}
	r.add(func(c *counters) { c.misses.Add(1); c.fetches.Add(1) })
	k, err := r.src.ReadAt(p, off)
	if k < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("block cache %s: read %d bytes at %d: %w", r.key, len(p), off, err)
	}
	r.add(func(c *counters) { c.bytesFetched.Add(int64(len(p))) })
	if err := r.write(path, p); err != nil {
		r.add(func(c *counters) { c.writeErrors.Add(1) })
		r.c.mu.Lock()
		r.c.lastErr = err
		r.c.mu.Unlock()
	}
	return nil
}

// sound checks a block file's trailer.
func sound(buf []byte) bool {
	n := len(buf) - trailerLen
	if n < 0 || string(buf[n+4:]) != magic {
		return false
	}
	return binary.BigEndian.Uint32(buf[n:n+4]) == crc32.Checksum(buf[:n], castagnoli)
}

// fetch fetches the missing blocks (sorted): the ones no other goroutine is fetching are
// claimed and fetched in runs; then the others are awaited and read from disk. With p ==
// nil the blocks are only stored (Prefetch), streamed when ctx != nil and src can.
func (r *Reader) fetch(ctx context.Context, missing []int64, p []byte, off, end int64) error {
	var mine []int64
	waits := map[int64]chan struct{}{}
	r.c.mu.Lock()
	for _, i := range missing {
		path := r.blockPath(i)
		if ch, ok := r.c.inflight[path]; ok {
			waits[i] = ch
			continue
		}
		r.c.inflight[path] = make(chan struct{})
		mine = append(mine, i)
	}
	r.c.mu.Unlock()
	release := func(is []int64) {
		r.c.mu.Lock()
		for _, i := range is {
			path := r.blockPath(i)
			close(r.c.inflight[path])
			delete(r.c.inflight, path)
		}
		r.c.mu.Unlock()
	}
	// Claims are released as soon as their run is stored and before waiting for others, so
	// two readers waiting for each other's blocks cannot deadlock.
	for len(mine) > 0 {
		j := 1
		for j < len(mine) && mine[j] == mine[j-1]+1 {
			j++
		}
		run := mine[:j]
		err := r.fetchRun(ctx, run[0], run[len(run)-1], p, off, end)
		release(run)
		mine = mine[j:]
		if err != nil {
			release(mine)
			return err
		}
	}
	for i, ch := range waits {
		<-ch // bounded by the other fetch, itself bounded by src
		ok, err := r.copyBlock(i, p, off, end)
		if err != nil {
			return err
		}
		if !ok { // the other fetch failed (or could not store the block): fetch it here
			if err := r.fetchRun(ctx, i, i, p, off, end); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetchRun reads blocks a..b from the source, stores them, and copies what falls in
// [off, end) into p.
func (r *Reader) fetchRun(ctx context.Context, a, b int64, p []byte, off, end int64) error {
	bs := r.c.blockSize
	runOff, runEnd := a*bs, min((b+1)*bs, r.size)
	if p == nil {
		if ro, ok := r.src.(RangeOpener); ok && ctx != nil {
			return r.streamRun(ctx, ro, a, b)
		}
		// Bounded buffers: chunks of whole blocks.
		per := max(1, maxBuffer/bs)
		for x := a; x <= b; x += per {
			y := min(b, x+per-1)
			if err := r.readRun(x, y, nil, 0, 0, x*bs, min((y+1)*bs, r.size)); err != nil {
				return err
			}
		}
		return nil
	}
	return r.readRun(a, b, p, off, end, runOff, runEnd)
}

// readRun reads blocks a..b ([runOff, runEnd)) with one src.ReadAt.
func (r *Reader) readRun(a, b int64, p []byte, off, end, runOff, runEnd int64) error {
	var buf []byte
	direct := p != nil && runOff >= off && runEnd <= end
	if direct {
		buf = p[runOff-off : runEnd-off] // the run lies inside p: read straight into it
	} else {
		buf = make([]byte, runEnd-runOff)
	}
	n, err := r.src.ReadAt(buf, runOff)
	r.add(func(c *counters) {
		c.fetches.Add(1)
		c.bytesFetched.Add(int64(n))
	})
	if n == len(buf) && err == io.EOF {
		err = nil
	}
	if (err == nil || err == io.EOF) && n < len(buf) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("block cache %s: fetch bytes %d-%d: %w", r.key, runOff, runEnd-1, err)
	}
	for i := a; i <= b; i++ {
		s := (i - a) * r.c.blockSize
		r.store(i, buf[s:s+r.blockLen(i)])
	}
	r.add(func(c *counters) { c.misses.Add(b - a + 1) })
	if p != nil && !direct {
		lo, hi := max(off, runOff), min(end, runEnd)
		copy(p[lo-off:hi-off], buf[lo-runOff:hi-runOff])
	}
	return nil
}

// streamRun fetches blocks a..b with one streamed range request, one block in memory.
func (r *Reader) streamRun(ctx context.Context, ro RangeOpener, a, b int64) error {
	bs := r.c.blockSize
	runOff, runEnd := a*bs, min((b+1)*bs, r.size)
	rc, err := ro.OpenRange(ctx, runOff, runEnd-runOff)
	r.add(func(c *counters) { c.fetches.Add(1) })
	if err != nil {
		return fmt.Errorf("block cache %s: fetch bytes %d-%d: %w", r.key, runOff, runEnd-1, err)
	}
	defer rc.Close()
	buf := make([]byte, bs)
	for i := a; i <= b; i++ {
		blk := buf[:r.blockLen(i)]
		n, err := io.ReadFull(rc, blk)
		r.add(func(c *counters) { c.bytesFetched.Add(int64(n)) })
		if err != nil {
			return fmt.Errorf("block cache %s: fetch bytes %d-%d: %w", r.key, i*bs, runEnd-1, err)
		}
		r.store(i, blk)
		r.add(func(c *counters) { c.misses.Add(1) })
	}
	return nil
}

// store writes block i: a temporary file renamed into place. Failures are counted, not
// returned: the data was read, only the caching failed.
func (r *Reader) store(i int64, data []byte) {
	err := r.write(r.blockPath(i), data)
	if err != nil {
		r.add(func(c *counters) { c.writeErrors.Add(1) })
		r.c.mu.Lock()
		r.c.lastErr = err
		r.c.mu.Unlock()
		return
	}
	r.c.mu.Lock()
	r.c.verified[r.blockPath(i)] = true
	r.c.mu.Unlock()
}

func (r *Reader) write(path string, data []byte) error {
	tmp, err := os.CreateTemp(r.dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(r.dir, 0o755); err == nil {
			tmp, err = os.CreateTemp(r.dir, ".tmp-*")
		}
	}
	if err != nil {
		return fmt.Errorf("block cache: store %s: %w", path, err)
	}
	var trailer [trailerLen]byte
	binary.BigEndian.PutUint32(trailer[:4], crc32.Checksum(data, castagnoli))
	copy(trailer[4:], magic)
	_, err = io.Copy(tmp, io.MultiReader(bytes.NewReader(data), bytes.NewReader(trailer[:])))
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("block cache: store %s: %w", path, err)
	}
	return nil
}

var _ io.ReaderAt = (*Reader)(nil)
