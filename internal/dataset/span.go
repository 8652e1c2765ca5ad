package dataset

// Reading only the pages that hold the selected rows. A task's rows often start in the middle
// of a row group (the split holds the tasks one after the other), and a smoke test wants a
// few of them: rather than transferring the audio chunk from its start, the page headers are
// walked with small reads to find the pages that hold those rows, and only they are read.
//
// Files without a page index say where a page starts only in the header before it, and how
// many rows it holds only in its levels: a DATA_PAGE_V2 header counts its rows and its levels
// are not compressed; a DATA_PAGE (v1, what pyarrow writes by default) holds its levels at the
// start of its (compressed) body, so the first bytes of the body are decompressed, as far as
// the repetition levels reach. A page that starts inside a row (v1 allows it) is never where
// the span starts.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// spanStats counts, for tests and benchmarks, the spans read, the chunks whose pages could not
// be walked, and the page headers read.
var spanStats struct{ spans, refused, walked atomic.Int64 }

// span is a run of whole pages of a column chunk: bytes [off, end) of the file hold rows
// [row, row+rows) of the row group.
type span struct {
	off, end  int64
	row, rows int
	pages     int // pages in the span
	walked    int // page headers read to find it
}

// spanProbe is how much of a page is read to parse its header and, for a v1 page, the start
// of its body; spanProbeMax how far that read may grow for levels that do not fit.
const (
	spanProbe    = 1 << 10
	spanProbeMax = 256 << 10
)

// errNoSpan says that the pages cannot be walked here (a dictionary page, another codec or
// encoding, a header that does not parse): the chunk is read from its start instead.
var errNoSpan = errors.New("pages cannot be walked")

// pageSpan finds the pages of the audio chunk at [off, off+size) that hold rows first..last
// (row indexes within the row group; nRows rows in all): it starts at the last page that
// starts a row at or before first and ends where a page starts a row after last (or at the
// chunk's end).
func (s *streamer) pageSpan(f *parquetFile, off, size int64, codec format.CompressionCodec, first, last, nRows int) (span, error) {
	if codec != format.Snappy && codec != format.Uncompressed {
		return span{}, errNoSpan
	}
	var proto thrift.CompactProtocol
	r := proto.NewReaderFromBytes(nil)
	br, ok := r.(interface{ BytesRead() int })
	if !ok {
		return span{}, errNoSpan
	}
	dec := thrift.NewDecoder(r)
	end := off + size
	sp := span{off: -1}
	rows := 0 // rows started before pos
	var buf, levels []byte
	for pos := off; pos < end; {
		probe := min(int64(spanProbe), end-pos)
		var h format.PageHeader
		var hlen int
		for {
			buf = grow(buf, int(probe))
			if err := f.readFull(s.ctx, buf, pos); err != nil {
				return span{}, err
			}
			r.ResetBytes(buf)
			h = format.PageHeader{}
			err := dec.Decode(&h)
			if err == nil {
				hlen = br.BytesRead()
				break
			}
			if probe >= min(int64(spanProbeMax), end-pos) {
				return span{}, errNoSpan
			}
			probe = min(probe*4, int64(spanProbeMax), end-pos)
		}
		sp.walked++
		body := pos + int64(hlen)
		if h.CompressedPageSize < 0 || body+int64(h.CompressedPageSize) > end {
			return span{}, errNoSpan
		}
		next := body + int64(h.CompressedPageSize)
		var starts int
		var atBoundary bool
		switch h.Type {
		case format.DataPageV2:
			v := &h.DataPageHeaderV2.V
			if !h.DataPageHeaderV2.Valid || v.NumRows < 0 {
				return span{}, errNoSpan
			}
			// v2 pages start and end on row boundaries.
			starts, atBoundary = int(v.NumRows), true
		case format.DataPage:
			v := &h.DataPageHeader.V
			if !h.DataPageHeader.Valid || v.NumValues < 0 || v.RepetitionLevelEncoding != format.RLE {
				return span{}, errNoSpan
			}
			rep, err := s.v1RepLevels(f, buf[:probe], hlen, pos, next, codec, int(v.NumValues), &levels)
			if err != nil {
				return span{}, err
			}
			starts = bytes.Count(rep, []byte{0})
			atBoundary = len(rep) > 0 && rep[0] == 0
		default: // a dictionary or index page: not walked
			return span{}, errNoSpan
		}
		if atBoundary {
			if sp.off >= 0 && rows > last {
				sp.end = pos
				sp.rows = rows - sp.row
				return sp, nil
			}
			if rows <= first {
				sp.off, sp.row, sp.pages = pos, rows, 0
			}
		}
		sp.pages++
		rows += starts
		pos = next
	}
	if sp.off < 0 || rows != nRows {
		return span{}, errNoSpan
	}
	sp.end = end
	sp.rows = rows - sp.row
	return sp, nil
}

// v1RepLevels decodes the repetition levels at the start of a v1 page's body. head holds the
// page from its header on (hlen bytes of header); more is read, up to the page's end, when
// the levels reach further.
func (s *streamer) v1RepLevels(f *parquetFile, head []byte, hlen int, pos, next int64, codec format.CompressionCodec, n int, levels *[]byte) ([]byte, error) {
	body := head[hlen:]
	size := int(next - pos - int64(hlen))
	if len(body) > size {
		body = body[:size]
	}
	for {
		raw := body
		if codec == format.Snappy {
			var err error
			if raw, err = snappyPrefix(body); err != nil {
				return nil, errNoSpan
			}
		}
		if len(raw) >= 4 {
			l := int(binary.LittleEndian.Uint32(raw))
			if l >= 0 && l <= len(raw)-4 {
				rep, err := decodeLevels(*levels, raw[4:4+l], n, 1)
				if err != nil {
					return nil, errNoSpan
				}
				*levels = rep
				return rep, nil
			}
		}
		// The levels reach past what was read: read more of the page.
		if len(body) >= size || len(body) >= spanProbeMax {
			return nil, errNoSpan
		}
		more := make([]byte, min(size, max(2*len(body), spanProbe), spanProbeMax))
		if err := f.readFull(s.ctx, more, pos+int64(hlen)); err != nil {
			return nil, err
		}
		body = more
	}
}

// snappyPrefix decodes as much of a snappy block as the bytes given allow: the start of the
// decoded data. It fails only on data that cannot be snappy.
func snappyPrefix(src []byte) ([]byte, error) {
	total, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, errors.New("snappy: bad length")
	}
	src = src[k:]
	dst := make([]byte, 0, min(int(min(total, 1<<20)), 16*len(src)+64))
	for len(src) > 0 && uint64(len(dst)) < total {
		tag := src[0]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			x := int(tag >> 2)
			hdr := 1
			if x >= 60 {
				nb := x - 59
				if len(src) < 1+nb {
					return dst, nil
				}
				x = 0
				for i := 0; i < nb; i++ {
					x |= int(src[1+i]) << (8 * i)
				}
				hdr += nb
			}
			length = x + 1
			lit := src[hdr:]
			if len(lit) < length {
				return append(dst, lit...), nil // a literal cut short: its start
			}
			dst = append(dst, lit[:length]...)
			src = lit[length:]
			continue
		case 1:
			if len(src) < 2 {
				return dst, nil
			}
			length = 4 + int(tag>>2)&7
			offset = int(tag&0xe0)<<3 | int(src[1])
			src = src[2:]
		case 2:
			if len(src) < 3 {
				return dst, nil
			}
			length = 1 + int(tag>>2)
			offset = int(src[1]) | int(src[2])<<8
			src = src[3:]
		case 3:
			if len(src) < 5 {
				return dst, nil
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[1:]))
			src = src[5:]
		}
		if offset <= 0 || offset > len(dst) {
			return nil, errors.New("snappy: bad copy offset")
		}
		for i := 0; i < length; i++ {
			dst = append(dst, dst[len(dst)-offset])
		}
	}
	return dst, nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
