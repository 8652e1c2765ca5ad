package dataset

import (
	"slices"

	"github.com/parquet-go/parquet-go"
)

// prefetch is the audio column chunk of a row group, fetched with one ReadAt on another
// goroutine while the previous row group is decoded.
//
// A stream prefetches only when it is certain to need the chunk: when it selects every
// row (no DatasetNames) and its limit, if any, reaches past the whole next row group. The
// read is then the one the stream would make anyway, made earlier; the stream holds two
// fetched chunks instead of one.
type prefetch struct {
	file *parquet.File
	rg   int
	off  int64
	buf  []byte // the chunk, once done is closed
	err  error
	done chan struct{}
}

// prefetch starts fetching the audio chunk of row group next of f, when the stream is
// certain to read it whole; mask is the selection of the row group before it.
func (s *streamer) prefetch(f *parquetFile, next int, leaf audioLeaf, mask []bool) {
	if s.pre != nil || len(s.q.DatasetNames) > 0 || next >= len(f.RowGroups()) {
		return
	}
	rows := f.RowGroups()[next].NumRows()
	if rows == 0 {
		return
	}
	if s.q.Limit > 0 {
		n := 0
		for _, m := range mask {
			if m {
				n++
			}
		}
		if int64(s.delivered+n)+rows > int64(s.q.Limit) {
			return
		}
	}
	off, size, err := f.chunkRange(next, leaf.index, "audio")
	if err != nil || size > maxChunkRead {
		return
	}
	buf := s.spare
	s.spare = nil
	if int64(cap(buf)) < size {
		s.putChunk(buf)
		buf = s.getChunk(size)
	}
	p := &prefetch{file: f.File, rg: next, off: off, buf: buf, done: make(chan struct{})}
	s.pre = p
	go func() {
		defer close(p.done)
		p.err = f.readFull(s.ctx, p.buf[:size], off)
	}()
}

// takePrefetch returns the prefetched chunk of row group rg of f, once fetched, or nil
// when it was not prefetched. A prefetch of another chunk is dropped.
func (s *streamer) takePrefetch(f *parquetFile, rg int) *prefetch {
	p := s.pre
	if p == nil {
		return nil
	}
	s.pre = nil
	<-p.done
	if p.file != f.File || p.rg != rg {
		s.spare = p.buf
		return nil
	}
	return p
}

// takeBufs gives the stream the buffers a finished stream left.
func (s *streamer) takeBufs() {
	if b := takeIdle(); b != nil {
		s.bufs = *b
		s.pages = b.pages
	}
}

// release waits for a prefetch and hands the stream's buffers back for the next stream.
func (s *streamer) release() {
	if p := s.pre; p != nil {
		s.pre = nil
		<-p.done
		s.bufs.chunks = append(s.bufs.chunks, p.buf)
	}
	for _, b := range [][]byte{s.chunk, s.spare} {
		if cap(b) > 0 {
			s.bufs.chunks = append(s.bufs.chunks, b)
		}
	}
	s.chunk, s.spare = nil, nil
	// Keep the two largest: a stream uses two at most.
	slices.SortFunc(s.bufs.chunks, func(a, b []byte) int { return cap(b) - cap(a) })
	if len(s.bufs.chunks) > 2 {
		clear(s.bufs.chunks[2:])
		s.bufs.chunks = s.bufs.chunks[:2]
	}
	s.bufs.pages = s.pages
	if s.maxChunk >= minIdleChunk {
		putIdle(&streamBufs{chunks: s.bufs.chunks, pages: s.bufs.pages})
	}
}
