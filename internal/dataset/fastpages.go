package dataset

// The fast path of audio decoding. Once an audio column chunk is in memory, its pages are
// found by parsing their headers here, decompressed on several goroutines (a bounded
// pipeline, consumed in order) and their levels and PLAIN doubles decoded without
// parquet-go's page machinery: values are decompressed straight into float64 buffers, and a
// row that lies within a page reaches the callback without a copy.
//
// Only the plain layout BEANS-Zero files use is handled: DATA_PAGE (RLE levels) and
// DATA_PAGE_V2 pages of PLAIN doubles, SNAPPY or UNCOMPRESSED, on a little-endian machine.
// Anything else (a dictionary page, another encoding or codec, a header that does not
// parse) hands the chunk to parquet-go before a row is delivered; a data error found later
// (a page that does not decompress, bad levels, a CRC mismatch, a row count that does not
// add up) hands the rest of the chunk to parquet-go from the first row not yet delivered, so
// that parquet-go decides what the data holds and which error to report. Correctness never
// depends on the fast path.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// fastPages enables the fast path (tests turn it off to compare with parquet-go).
var fastPages = true

// fastStats counts, for tests, the chunks the fast path decoded whole, those it refused
// (left to parquet-go from the start) and those it handed to parquet-go midway.
var fastStats struct{ decoded, refused, resumed atomic.Int64 }

// littleEndian: the fast path reinterprets little-endian PLAIN doubles in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// maxFastPage bounds the uncompressed size of a page the fast path accepts.
const maxFastPage = 1 << 30

// fastPage is a data page found in a column chunk.
type fastPage struct {
	v2             bool
	data           []byte // the page's bytes after its header
	uncSize        int    // uncompressed size (levels included)
	numValues      int    // levels
	numNulls       int    // v2
	repLen, defLen int    // v2: uncompressed level bytes before the values
	compressed     bool   // the values (v2) or the whole page (v1) are compressed
	crc            uint32 // 0: none
}

// scanPages parses the page headers of a column chunk. ok is false when a page is not one
// the fast path decodes (or a header does not parse): the chunk then goes to parquet-go.
func scanPages(chunk []byte, codec format.CompressionCodec, numValues int64) (pages []fastPage, ok bool) {
	defer func() {
		if recover() != nil { // a garbled header may index out of the buffer
			pages, ok = nil, false
		}
	}()
	if codec != format.Snappy && codec != format.Uncompressed {
		return nil, false
	}
	var proto thrift.CompactProtocol
	r := proto.NewReaderFromBytes(nil)
	br, canCount := r.(interface{ BytesRead() int })
	if !canCount {
		return nil, false
	}
	dec := thrift.NewDecoder(r)
	var total int64
	for pos := 0; pos < len(chunk); {
		r.ResetBytes(chunk[pos:])
		var h format.PageHeader
		if err := dec.Decode(&h); err != nil {
			return nil, false
		}
		pos += br.BytesRead()
		if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(chunk)-pos ||
			h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxFastPage {
			return nil, false
		}
		p := fastPage{data: chunk[pos : pos+int(h.CompressedPageSize)], uncSize: int(h.UncompressedPageSize), crc: uint32(h.CRC), compressed: codec == format.Snappy}
		pos += int(h.CompressedPageSize)
		switch h.Type {
		case format.DataPage:
			v := &h.DataPageHeader.V
			if !h.DataPageHeader.Valid || v.Encoding != format.Plain || v.NumValues < 0 ||
				v.DefinitionLevelEncoding != format.RLE || v.RepetitionLevelEncoding != format.RLE {
				return nil, false
			}
			p.numValues = int(v.NumValues)
		case format.DataPageV2:
			v := &h.DataPageHeaderV2.V
			if !h.DataPageHeaderV2.Valid || v.Encoding != format.Plain || v.NumValues < 0 || v.NumNulls < 0 || v.NumNulls > v.NumValues ||
				v.RepetitionLevelsByteLength < 0 || v.DefinitionLevelsByteLength < 0 ||
				int64(v.RepetitionLevelsByteLength)+int64(v.DefinitionLevelsByteLength) > int64(min(len(p.data), p.uncSize)) {
				return nil, false
			}
			p.v2 = true
			p.numValues, p.numNulls = int(v.NumValues), int(v.NumNulls)
			p.repLen, p.defLen = int(v.RepetitionLevelsByteLength), int(v.DefinitionLevelsByteLength)
			if v.IsCompressed.Valid && !v.IsCompressed.V {
				p.compressed = false
			}
		default: // a dictionary page, an index page
			return nil, false
		}
		total += int64(p.numValues)
		pages = append(pages, p)
	}
	if numValues >= 0 && total != numValues { // (tests pass -1 to list pages alone)
		return nil, false
	}
	return pages, true
}

// pageBuf holds one decoded page: its values (8-byte aligned, decompressed in place) and
// levels. Buffers are pooled across streams.
type pageBuf struct {
	f        []float64
	rep, def []byte
}

// streamBufs are the large buffers of a stream: its fetched chunks and its page buffers.
type streamBufs struct {
	chunks [][]byte
	pages  []*pageBuf
}

// idle keeps the buffers of the last finished stream for the next one, which then does not
// allocate, fault in and zero tens of megabytes anew. They are dropped after two garbage
// collections without a stream taking them, as a sync.Pool would drop them (a sync.Pool is
// not used: it may drop them at the first collection). An idle process is collected at
// least every two minutes, so they do not outlive a few minutes of idleness.
var idle struct {
	mu   sync.Mutex
	bufs *streamBufs
	gcs  int // collections since bufs were left
}

// minIdleChunk is the size of the largest chunk a stream must have fetched for its buffers
// to be kept for the next: what a stream of smaller chunks allocates anew costs little next to its decoding.
// (This also keeps TestStreamMemoryBounded meaningful: its streams, of chunks below this,
// allocate their buffers as before, and their allocation per row does not hinge on
// whether parquet-go's pooled read buffers happened to be reused.)
const minIdleChunk = 4 << 20

// takeIdle returns the buffers a finished stream left, or nil.
func takeIdle() *streamBufs {
	idle.mu.Lock()
	defer idle.mu.Unlock()
	b := idle.bufs
	idle.bufs = nil
	return b
}

// putIdle leaves a stream's buffers for the next one (unless another stream's are kept).
func putIdle(b *streamBufs) {
	idle.mu.Lock()
	defer idle.mu.Unlock()
	if idle.bufs != nil {
		return
	}
	idle.bufs, idle.gcs = b, 0
	armIdle(b)
}

// armIdle counts the next collection against b.
func armIdle(b *streamBufs) {
	sentinel := new([64]byte) // not a tiny allocation, so that it is collected on its own
	runtime.AddCleanup(sentinel, func(b *streamBufs) {
		idle.mu.Lock()
		defer idle.mu.Unlock()
		if idle.bufs != b {
			return // taken (or replaced) since
		}
		if idle.gcs++; idle.gcs >= 2 {
			idle.bufs = nil
			return
		}
		armIdle(b)
	}, b)
}

// bytesOf views a float64 slice as its bytes (little-endian on the machines the fast path
// runs on). The view is always valid: a byte has no alignment requirement.
func bytesOf(f []float64) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 8*len(f))
}

// floats returns b's buffer with room for n bytes at byte offset shift.
func (b *pageBuf) floats(n, shift int) []byte {
	words := (n + shift + 7) / 8
	if cap(b.f) < words {
		grow := 0
		if cap(b.f) > 0 { // page sizes vary: leave room when growing
			grow = words / 8
		}
		b.f = nil
		b.f = make([]float64, words+grow)
	}
	b.f = b.f[:cap(b.f)]
	return bytesOf(b.f)
}

// pageJob is one page going through the pipeline.
type pageJob struct {
	page     *fastPage
	buf      *pageBuf
	repReady bool // rep levels already decoded into rep (v2 pages, by the dispatcher)
	skip     bool // no selected row has values in the page: levels only
	vals     []float64
	rep, def []byte
	err      error
	done     chan struct{}
}

// errStopped marks jobs abandoned when the pipeline stops early.
var errStopped = errors.New("pipeline stopped")

// pageDecoder decodes pages; one per worker goroutine.
type pageDecoder struct {
	maxDef byte
	guess  int // v1: where values began in the last page, to align the next one
}

// decode fills j.vals, j.rep and j.def, or sets j.err.
func (d *pageDecoder) decode(j *pageJob) {
	j.err = d.decodePage(j)
}

func (d *pageDecoder) decodePage(j *pageJob) error {
	p, b := j.page, j.buf
	if p.crc != 0 && crc32.ChecksumIEEE(p.data) != p.crc {
		return errors.New("crc32 checksum mismatch")
	}
	if p.v2 {
		if !j.repReady {
			var err error
			if b.rep, err = decodeLevels(b.rep, p.data[:p.repLen], p.numValues, 1); err != nil {
				return err
			}
		}
		var err error
		if b.def, err = decodeLevels(b.def, p.data[p.repLen:p.repLen+p.defLen], p.numValues, d.maxDef); err != nil {
			return err
		}
		j.rep, j.def = b.rep, b.def
		if j.skip {
			return nil
		}
		nonNull := bytes.Count(b.def, []byte{d.maxDef})
		if nonNull != p.numValues-p.numNulls || p.uncSize-p.repLen-p.defLen != 8*nonNull {
			return fmt.Errorf("page holds %d values for %d bytes", nonNull, p.uncSize-p.repLen-p.defLen)
		}
		src := p.data[p.repLen+p.defLen:]
		dst := b.floats(8*nonNull, 0)[:8*nonNull]
		if p.compressed {
			if err := decompress(dst, src); err != nil {
				return err
			}
		} else if len(src) != len(dst) {
			return fmt.Errorf("page holds %d value bytes, want %d", len(src), len(dst))
		} else {
			copy(dst, src)
		}
		j.vals = b.f[:nonNull]
		return nil
	}
	// v1: levels and values together, all compressed. Decompress at an offset that
	// aligns the values if their offset is that of the last page.
	shift := (8 - d.guess%8) % 8
	var raw []byte
	if p.compressed {
		raw = b.floats(p.uncSize, shift)[shift : shift+p.uncSize]
		if err := decompress(raw, p.data); err != nil {
			return err
		}
	} else {
		if len(p.data) != p.uncSize {
			return fmt.Errorf("page of %d bytes, its header says %d", len(p.data), p.uncSize)
		}
		raw = p.data
	}
	at := 0
	section := func() ([]byte, error) {
		if len(raw)-at < 4 {
			return nil, errors.New("levels run past the page")
		}
		n := int(binary.LittleEndian.Uint32(raw[at:]))
		at += 4
		if n < 0 || n > len(raw)-at {
			return nil, errors.New("levels run past the page")
		}
		at += n
		return raw[at-n : at], nil
	}
	rl, err := section()
	if err == nil {
		b.rep, err = decodeLevels(b.rep, rl, p.numValues, 1)
	}
	if err != nil {
		return err
	}
	dl, err := section()
	if err == nil {
		b.def, err = decodeLevels(b.def, dl, p.numValues, d.maxDef)
	}
	if err != nil {
		return err
	}
	j.rep, j.def = b.rep, b.def
	nonNull := bytes.Count(b.def, []byte{d.maxDef})
	if len(raw)-at != 8*nonNull {
		return fmt.Errorf("page holds %d values for %d bytes", nonNull, len(raw)-at)
	}
	d.guess = at
	if !p.compressed {
		dst := b.floats(8*nonNull, 0)
		copy(dst, raw[at:])
		j.vals = b.f[:nonNull]
		return nil
	}
	start := shift + at
	if start%8 != 0 { // misaligned: move the values down (copy handles the overlap)
		aligned := start &^ 7
		all := bytesOf(b.f)
		copy(all[aligned:aligned+8*nonNull], all[start:start+8*nonNull])
		start = aligned
	}
	j.vals = b.f[start/8 : start/8+nonNull]
	return nil
}

// decompress decodes a snappy block into dst, which must be exactly its decoded size.
func decompress(dst, src []byte) error {
	n, k := binary.Uvarint(src)
	if k <= 0 || n != uint64(len(dst)) {
		return fmt.Errorf("snappy block of %d bytes, want %d", n, len(dst))
	}
	var c snappy.Codec
	out, err := c.Decode(dst, src)
	if err != nil {
		return err
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return errors.New("snappy block decoded out of place")
	}
	return nil
}

// decodeLevels decodes n levels (RLE/bit-packed hybrid, without a length prefix) of at most
// max from src into dst, reusing its storage.
func decodeLevels(dst, src []byte, n int, max byte) ([]byte, error) {
	if cap(dst) < n {
		grow := 0
		if cap(dst) > 0 {
			grow = n / 8
		}
		dst = nil
		dst = make([]byte, n+grow)
	}
	dst = dst[:n]
	bw := bits.Len8(max)
	if bw == 0 {
		clear(dst)
		return dst, nil
	}
	mask := uint64(1)<<bw - 1
	out := 0
	for out < n {
		h, k := binary.Uvarint(src)
		if k <= 0 {
			return nil, fmt.Errorf("levels: %d of %d decoded", out, n)
		}
		src = src[k:]
		if h&1 == 0 { // RLE run: a value of (bw+7)/8 bytes, here one
			count := h >> 1
			if len(src) < 1 {
				return nil, errors.New("levels: truncated run")
			}
			v := src[0]
			src = src[1:]
			if v > max {
				return nil, fmt.Errorf("level %d over the maximum %d", v, max)
			}
			if count > uint64(n-out) {
				return nil, fmt.Errorf("levels: run of %d past the page's %d", count, n)
			}
			run := dst[out : out+int(count)]
			fill(run, v)
			out += int(count)
			continue
		}
		groups := h >> 1
		if groups > uint64(len(src)/bw) {
			return nil, errors.New("levels: truncated bit-packed run")
		}
		for g := uint64(0); g < groups; g++ {
			var w uint64
			for i := range bw {
				w |= uint64(src[i]) << (8 * i)
			}
			src = src[bw:]
			for i := 0; i < 8 && out < n; i++ {
				v := byte(w >> (uint(i) * uint(bw)) & mask)
				if v > max {
					return nil, fmt.Errorf("level %d over the maximum %d", v, max)
				}
				dst[out] = v
				out++
			}
		}
	}
	return dst, nil
}

// isPassing tells the errors that stop a stream (the callback's, the limit) from data errors.
func isPassing(err error) bool {
	var pe passError
	return errors.Is(err, errLimit) || errors.Is(err, errDone) || errors.As(err, &pe)
}

// fastAudio decodes the pages of an audio column chunk held in chunk and emits the rows the
// mask selects. It returns from = -1 when the whole chunk was decoded; otherwise the chunk
// must be decoded by parquet-go from row from on (rows before it were delivered or are not
// selected). err is only ever a stopping error of emit.
func (s *streamer) fastAudio(md *format.ColumnMetaData, leaf audioLeaf, chunk []byte, mask []bool, emit func(int, []float64, rowState) error) (from int, err error) {
	if !fastPages || !littleEndian || leaf.maxDef == 0 {
		return 0, nil
	}
	pages, ok := scanPages(chunk, md.Codec, md.NumValues)
	if !ok || len(pages) == 0 {
		fastStats.refused.Add(1)
		return 0, nil
	}
	asm := assembler{maxDef: leaf.maxDef, repDef: leaf.repDef, mask: mask, row: -1, buf: &s.rowBuf, emit: emit, hold: true}
	fallback := func() int {
		fastStats.resumed.Add(1)
		*asm.buf = (*asm.buf)[:0]
		return max(asm.row, 0)
	}

	workers := max(1, min(runtime.GOMAXPROCS(0), len(pages)))
	depth := workers + 1 // pages dispatched ahead of the one consumed
	jobs := make(chan *pageJob, depth)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := pageDecoder{maxDef: leaf.maxDef}
			for j := range jobs {
				if stop.Load() {
					j.err = errStopped
				} else {
					d.decode(j)
				}
				close(j.done)
			}
		}()
	}
	for len(s.pages) < depth+1 { // + the page whose last row the assembler holds
		s.pages = append(s.pages, &pageBuf{})
	}
	free := slices.Clone(s.pages[:depth+1])
	defer func() {
		stop.Store(true)
		close(jobs)
		wg.Wait()
	}()

	var queue []*pageJob
	next, rows, rowsKnown := 0, 0, true
	dispatch := func() {
		p := &pages[next]
		next++
		j := &pageJob{page: p, buf: free[len(free)-1], done: make(chan struct{})}
		free = free[:len(free)-1]
		if p.v2 && rowsKnown {
			// Levels of v2 pages are not compressed: count the page's rows now, and skip
			// the values of a page none of whose rows is selected.
			rep, err := decodeLevels(j.buf.rep, p.data[:p.repLen], p.numValues, 1)
			if err != nil {
				rowsKnown = false
			} else {
				j.buf.rep, j.repReady = rep, true
				starts := bytes.Count(rep, []byte{0})
				first, last := rows, rows+starts-1
				if len(rep) > 0 && rep[0] != 0 {
					first--
				}
				rows += starts
				j.skip = len(rep) > 0 && first >= 0 && last < len(mask) && first <= last &&
					!slices.Contains(mask[first:last+1], true)
			}
		} else {
			rowsKnown = false
		}
		queue = append(queue, j)
		jobs <- j
	}
	var held *pageJob
	for range pages {
		for next < len(pages) && len(queue) < depth && len(free) > 0 {
			dispatch()
		}
		j := queue[0]
		queue = queue[1:]
		<-j.done
		if j.err != nil {
			return fallback(), nil
		}
		if j.skip {
			err = asm.skip(j.rep, j.def)
		} else {
			err = asm.page(j.vals, j.rep, j.def)
		}
		if err != nil {
			if isPassing(err) {
				fastStats.decoded.Add(1)
				return 0, err
			}
			return fallback(), nil
		}
		if held != nil {
			free = append(free, held.buf)
		}
		held = j
	}
	if err := asm.finish(); err != nil {
		if isPassing(err) {
			fastStats.decoded.Add(1)
			return 0, err
		}
		// finish emitted the last row before finding the row count wrong.
		fastStats.resumed.Add(1)
		*asm.buf = (*asm.buf)[:0]
		return min(asm.row+1, len(mask)), nil
	}
	fastStats.decoded.Add(1)
	return -1, nil
}

// getChunk returns a buffer of at least size bytes, one of the last stream's if it is
// large enough. A new one is of at least chunkHint bytes: the file's largest audio chunk,
// so that a stream allocates its (two at most) chunk buffers once per file.
func (s *streamer) getChunk(size int64) []byte {
	s.maxChunk = max(s.maxChunk, size)
	best := -1 // the smallest that fits
	for k, b := range s.bufs.chunks {
		if int64(cap(b)) >= size && (best < 0 || cap(b) < cap(s.bufs.chunks[best])) {
			best = k
		}
	}
	if best < 0 {
		return make([]byte, max(size, s.chunkHint))
	}
	b := s.bufs.chunks[best]
	s.bufs.chunks = slices.Delete(s.bufs.chunks, best, best+1)
	return b[:cap(b)]
}

// putChunk keeps a chunk buffer too small for a row group, for another.
func (s *streamer) putChunk(b []byte) {
	if cap(b) > 0 {
		s.bufs.chunks = append(s.bufs.chunks, b)
	}
}

// fill sets every byte of b to v.
func fill(b []byte, v byte) {
	if v == 0 {
		clear(b)
		return
	}
	if len(b) == 0 {
		return
	}
	b[0] = v
	for k := 1; k < len(b); k *= 2 {
		copy(b[k:], b[:k])
	}
}
