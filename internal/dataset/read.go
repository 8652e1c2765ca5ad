package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// maxChunkRead is the largest audio column chunk fetched with one ReadAt. A larger chunk
// (a shard written as one huge row group) is fetched in windows of this size, in order,
// and only as far as the selected rows need: memory then stays bounded by a window.
var maxChunkRead int64 = 256 << 20

// Count returns how many rows Stream would deliver for q, reading only the dataset_name
// column (and nothing but footers when q has no DatasetNames). It stops reading once
// q.Limit rows are found.
func (d *Dataset) Count(ctx context.Context, q Query) (int, error) {
	total := 0
	for _, fs := range d.files {
		err := d.withFile(ctx, fs, func(f *parquetFile) error {
			if len(q.DatasetNames) == 0 {
				total += int(f.NumRows())
				return nil
			}
			for i := range f.RowGroups() {
				if q.Limit > 0 && total >= q.Limit {
					return nil
				}
				_, n, _, err := f.match(ctx, i, q)
				if err != nil {
					return err
				}
				total += n
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if q.Limit > 0 && total >= q.Limit {
			return q.Limit, nil
		}
	}
	return total, nil
}

// Outputs returns the distinct values of the output column over the rows matching q
// (ignoring q.Limit), in first-seen order, reading only dataset_name and output.
func (d *Dataset) Outputs(ctx context.Context, q Query) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	err := d.outputs(ctx, q, func(o string) {
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	})
	return out, err
}

// outputs calls fn with the output of every row matching q (ignoring q.Limit).
func (d *Dataset) outputs(ctx context.Context, q Query, fn func(string)) error {
	for _, fs := range d.files {
		err := d.withFile(ctx, fs, func(f *parquetFile) error {
			col, err := f.stringColumn("output")
			if err != nil {
				return err
			}
			for i := range f.RowGroups() {
				mask, n, _, err := f.match(ctx, i, q)
				if err != nil {
					return err
				}
				if n == 0 {
					continue
				}
				rs, err := f.fetchColumns(ctx, i, []int{col}, []string{"output"})
				if err != nil {
					return err
				}
				outs, err := f.strings(i, col, "output", rs[0])
				if err != nil {
					return err
				}
				for r, o := range outs {
					if mask[r] {
						fn(o)
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// match returns which rows of row group i match q, how many do, and the dataset_name
// column when it was read. The dataset_name column is read only when q filters on it, and
// not at all when its statistics rule the row group out.
func (f *parquetFile) match(ctx context.Context, i int, q Query) (mask []bool, count int, names []string, err error) {
	rg := f.RowGroups()[i]
	n := int(rg.NumRows())
	mask = make([]bool, n)
	if len(q.DatasetNames) == 0 {
		for r := range mask {
			mask[r] = true
		}
		return mask, n, nil, nil
	}
	wanted := q.names()
	col, err := f.stringColumn("dataset_name")
	if err != nil {
		return nil, 0, nil, err
	}
	if cc, ok := rg.ColumnChunks()[col].(*parquet.FileColumnChunk); ok {
		if lo, hi, ok := cc.Bounds(); ok && !lo.IsNull() && !hi.IsNull() {
			in := false
			for _, w := range wanted {
				if w >= string(lo.ByteArray()) && w <= string(hi.ByteArray()) {
					in = true
				}
			}
			if !in {
				return mask, 0, nil, nil
			}
		}
	}
	rs, err := f.fetchColumns(ctx, i, []int{col}, []string{"dataset_name"})
	if err != nil {
		return nil, 0, nil, err
	}
	names, err = f.strings(i, col, "dataset_name", rs[0])
	if err != nil {
		return nil, 0, nil, err
	}
	for r, name := range names {
		if slices.Contains(wanted, name) {
			mask[r] = true
			count++
		}
	}
	return mask, count, names, nil
}

// strings decodes a whole string column chunk of row group i from r (nulls read as "").
// Repeated consecutive values share one string.
func (f *parquetFile) strings(i, col int, name string, r io.ReaderAt) ([]string, error) {
	rg := f.RowGroups()[i]
	cc, ok := rg.ColumnChunks()[col].(*parquet.FileColumnChunk)
	if !ok {
		return nil, f.errorf(i, name, "not a file column chunk")
	}
	pages := cc.PagesFrom(r)
	defer pages.Close()
	dst := make([]string, 0, rg.NumRows())
	buf := make([]parquet.Value, 256)
	last := ""
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, f.errorf(i, name, "%w (corrupt file?)", err)
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				if v.IsNull() {
					dst = append(dst, "")
					continue
				}
				b := v.ByteArray()
				if string(b) != last { // no allocation for the comparison
					last = string(b)
				}
				dst = append(dst, last)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return nil, f.errorf(i, name, "%w (corrupt file?)", err)
			}
		}
		parquet.Release(p)
	}
	if int64(len(dst)) != rg.NumRows() {
		return nil, f.errorf(i, name, "%d values for %d rows (corrupt file?)", len(dst), rg.NumRows())
	}
	return dst, nil
}

// Stream calls fn for each row matching q, in file order, stopping after q.Limit rows or at
// the first error (fn's errors are returned unchanged; errors of the data are *FileError
// naming file, row group and column). A row whose own data is bad (see Sample.Err) is
// delivered with Err set and the stream goes on.
//
// Memory stays bounded whatever the number of rows: the small string columns of one row
// group, one row group's audio column chunk (compressed, as fetched) and the next one's
// when it is prefetched, the few pages being decompressed (GOMAXPROCS+2) and at most one
// row of audio. Row groups without a matching row are never read
// for audio. Each call gets a fresh *Sample, but its Audio is reused: copy what you keep.
func (d *Dataset) Stream(ctx context.Context, q Query, fn func(*Sample) error) error {
	s := &streamer{ctx: ctx, q: q, fn: fn}
	s.takeBufs()
	defer s.release()
	for _, fs := range d.files {
		err := d.withFile(ctx, fs, s.file)
		if errors.Is(err, errLimit) {
			return nil
		}
		var pe passError
		if errors.As(err, &pe) {
			return pe.err
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errLimit stops a stream that reached its limit; errDone stops decoding a row group whose
// selected rows were all delivered.
var (
	errLimit = errors.New("limit reached")
	errDone  = errors.New("row group done")
)

// passError carries an error out of the page loop unwrapped: the callback's own errors (which
// Stream returns unchanged) and context errors.
type passError struct{ err error }

func (e passError) Error() string { return e.err.Error() }
func (e passError) Unwrap() error { return e.err }

// streamer carries one Stream call's state across files.
type streamer struct {
	ctx       context.Context
	q         Query
	fn        func(*Sample) error
	delivered int
	rowBuf    []float64  // a row spanning pages
	dictBuf   []float64  // a dictionary page's values, resolved
	chunk     []byte     // the fetched audio column chunk, reused
	spare     []byte     // a chunk buffer for the next prefetch
	pre       *prefetch  // the audio chunk of the next row group, being fetched
	pages     []*pageBuf // the fast path's page buffers, reused
	bufs      streamBufs // buffers left by an earlier stream, not in use
	maxChunk  int64      // the largest chunk buffer asked for
	chunkHint int64      // the size of the current file's largest audio chunk (up to maxChunkRead)
	lastMeta  string
	lastRate  int
	lastErr   error
}

// smallColumns are the string columns a sample carries, read before the audio.
var smallColumns = []string{"id", "dataset_name", "task", "output", "metadata", "instruction", "instruction_text"}

// file streams the matching rows of one file.
func (s *streamer) file(f *parquetFile) error {
	leaf, err := f.audioColumn()
	if err != nil {
		return err
	}
	cols := make([]int, len(smallColumns))
	for k, name := range smallColumns {
		if cols[k], err = f.stringColumn(name); err != nil {
			return err
		}
	}
	var first int64 // file row index of the row group's first row
	for i, rg := range f.RowGroups() {
		if err := s.ctx.Err(); err != nil {
			return passError{err}
		}
		if err := s.rowGroup(f, i, first, leaf, cols); err != nil {
			return err
		}
		first += rg.NumRows()
	}
	return nil
}

// rowGroup streams the matching rows of row group i.
func (s *streamer) rowGroup(f *parquetFile, i int, first int64, leaf audioLeaf, cols []int) error {
	mask, n, names, err := f.match(s.ctx, i, s.q)
	if err != nil || n == 0 {
		return err
	}
	// Rows past the limit are not needed.
	if s.q.Limit > 0 {
		left := s.q.Limit - s.delivered
		n = 0
		for r := range mask {
			if mask[r] {
				if n == left {
					mask[r] = false
				} else {
					n++
				}
			}
		}
	}
	// The small columns, in one or two reads.
	var need []int
	var needNames []string
	for k, name := range smallColumns {
		if name == "dataset_name" && names != nil {
			continue
		}
		need, needNames = append(need, cols[k]), append(needNames, name)
	}
	rs, err := f.fetchColumns(s.ctx, i, need, needNames)
	if err != nil {
		return err
	}
	values := make(map[string][]string, len(smallColumns))
	values["dataset_name"] = names
	for k, name := range needNames {
		if values[name], err = f.strings(i, need[k], name, rs[k]); err != nil {
			return err
		}
	}
	remaining := n
	emit := func(row int, audio []float64, st rowState) error {
		sm := &Sample{
			ID: values["id"][row], DatasetName: values["dataset_name"][row], Task: values["task"][row],
			Instruction: values["instruction"][row], InstructionText: values["instruction_text"][row],
			Output: values["output"][row], Metadata: values["metadata"][row], Audio: audio,
			File: f.name, Row: first + int64(row),
		}
		sm.SampleRate, sm.Err = s.sampleRate(sm.Metadata)
		if sm.Err == nil {
			sm.Err = checkAudio(audio, st)
		}
		if err := s.ctx.Err(); err != nil {
			return passError{err}
		}
		if err := s.fn(sm); err != nil {
			return passError{err}
		}
		s.delivered++
		if s.q.Limit > 0 && s.delivered >= s.q.Limit {
			return errLimit
		}
		if remaining--; remaining == 0 {
			return errDone
		}
		return nil
	}
	err = s.audio(f, i, leaf, mask, emit)
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// checkAudio returns the data error of a row's audio, or nil.
func checkAudio(a []float64, st rowState) error {
	switch {
	case st.null:
		return sampleErr("audio is null")
	case st.nullElems > 0:
		return sampleErr("audio holds %d null samples", st.nullElems)
	case len(a) == 0:
		return sampleErr("audio is empty")
	}
	// x*0 is NaN for NaN and ±Inf and ±0 otherwise: one branch-free pass.
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * 0
		s1 += a[k+1] * 0
		s2 += a[k+2] * 0
		s3 += a[k+3] * 0
	}
	for ; k < len(a); k++ {
		s0 += a[k] * 0
	}
	if s0+s1+s2+s3 == 0 {
		return nil
	}
	for k, x := range a {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return sampleErr("audio holds %v at sample %d of %d", x, k, len(a))
		}
	}
	return nil
}

// sampleRate reads "sample_rate" from a metadata JSON document (a number, or a string
// holding one). Consecutive rows usually share metadata, so the last answer is kept.
func (s *streamer) sampleRate(meta string) (int, error) {
	if meta == s.lastMeta && s.lastMeta != "" {
		return s.lastRate, s.lastErr
	}
	rate, err := parseSampleRate(meta)
	s.lastMeta, s.lastRate, s.lastErr = meta, rate, err
	return rate, err
}

// parseSampleRate reads "sample_rate" from a metadata JSON document.
func parseSampleRate(meta string) (int, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(meta), &m); err != nil || m == nil {
		if err == nil {
			err = errors.New("null")
		}
		return 0, sampleErr("metadata is not a JSON object (%v): %.80q", err, meta)
	}
	var rate float64
	switch v := m["sample_rate"].(type) {
	case float64:
		rate = v
	case string:
		var err error
		if rate, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, sampleErr("metadata sample_rate %q is not a number", v)
		}
	case nil:
		return 0, sampleErr("metadata has no sample_rate: %.80q", meta)
	default:
		return 0, sampleErr("metadata sample_rate %v is not a number", v)
	}
	if !(rate >= 1 && rate <= 10_000_000) || rate != math.Trunc(rate) {
		return 0, sampleErr("metadata sample_rate %v is not a valid rate in Hz", rate)
	}
	return int(rate), nil
}

// audio fetches the audio column chunk of row group i with one ReadAt (see maxChunkRead),
// decodes it page by page and calls emit for every row the mask selects. A chunk fetched
// whole goes to the fast path (fastAudio) first; parquet-go decodes what it leaves.
func (s *streamer) audio(f *parquetFile, i int, leaf audioLeaf, mask []bool, emit func(int, []float64, rowState) error) error {
	cc, ok := f.RowGroups()[i].ColumnChunks()[leaf.index].(*parquet.FileColumnChunk)
	if !ok {
		return f.errorf(i, "audio", "not a file column chunk")
	}
	off, size, err := f.chunkRange(i, leaf.index, "audio")
	if err != nil {
		return err
	}
	// When only the first rows of the group are selected (a --limit), read about as far as
	// they reach, then further in growing windows if the estimate was short: a smoke test
	// then transfers a few rows' audio, not whole row groups.
	need := size
	if last := lastSelected(mask); last >= 0 && last+1 < len(mask) {
		per := size / int64(len(mask))
		need = per*int64(last+1) + per/4 + 64<<10
	}
	// When the selected rows start deep in the chunk, read only the pages that hold them.
	if done, rest, err := s.audioSpan(f, i, leaf, off, size, need, mask, emit); done || err != nil {
		return err
	} else if rest != nil {
		mask = rest
	}
	var r io.ReaderAt
	if need >= size && size <= maxChunkRead {
		s.chunkHint = size
		for k := range f.RowGroups() {
			if _, n, err := f.chunkRange(k, leaf.index, "audio"); err == nil && n <= maxChunkRead {
				s.chunkHint = max(s.chunkHint, n)
			}
		}
		var err error
		if p := s.takePrefetch(f, i); p != nil {
			// Fetched while the last row group was decoded.
			s.spare, s.chunk = s.chunk, p.buf
			err = p.err
		} else {
			if int64(cap(s.chunk)) < size {
				s.putChunk(s.chunk)
				s.chunk = s.getChunk(size)
			}
			err = f.readFull(s.ctx, s.chunk[:size], off)
		}
		if err != nil {
			if ce := s.ctx.Err(); ce != nil {
				return passError{ce}
			}
			return f.errorf(i, "audio", "%w", err)
		}
		buf := s.chunk[:size]
		s.prefetch(f, i+1, leaf, mask)
		r = &memReaderAt{off: off, data: buf}
		md := &f.Metadata().RowGroups[i].Columns[leaf.index].MetaData
		from, err := s.fastAudio(md, leaf, buf, mask, emit)
		if err != nil || from < 0 {
			return err
		}
		if from > 0 { // parquet-go decodes the rest, and finds what the fast path did not like
			mask = slices.Clone(mask)
			clear(mask[:from])
		}
	} else {
		r = &windowReader{r: f.r, ctx: s.ctx, end: off + size, window: min(need, maxChunkRead), grow: true, step: 1 << 20}
	}
	pages := cc.PagesFrom(r)
	defer pages.Close()

	asm := assembler{maxDef: leaf.maxDef, repDef: leaf.repDef, mask: mask, row: -1, buf: &s.rowBuf, emit: emit}
	wrap := func(err error) error {
		var pe passError
		if errors.Is(err, errLimit) || errors.Is(err, errDone) || errors.As(err, &pe) {
			return err
		}
		if ce := s.ctx.Err(); ce != nil {
			return passError{ce}
		}
		return f.errorf(i, "audio", "%w (corrupt file?)", err)
	}
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return wrap(err)
		}
		vals, err := s.pageValues(p)
		if err == nil {
			err = asm.page(vals, p.RepetitionLevels(), p.DefinitionLevels())
		}
		parquet.Release(p)
		if err != nil {
			return wrap(err)
		}
	}
	if err := asm.finish(); err != nil {
		return wrap(err)
	}
	return nil
}

// spanMinSkip is how many bytes before the first selected row make walking the pages worth
// it (reading them is one request; walking them, one small request per page).
var spanMinSkip int64 = 4 << 20

// audioSpan reads only the pages that hold the selected rows when they start deep in the
// chunk and are few (a --limit) or start past its middle, and decodes them with the fast
// path. done says every selected row was delivered; otherwise rest, when not nil, is the
// mask of the rows still to deliver (the fast path gave up midway) and the chunk is decoded
// from its start as usual.
func (s *streamer) audioSpan(f *parquetFile, i int, leaf audioLeaf, off, size, need int64, mask []bool, emit func(int, []float64, rowState) error) (done bool, rest []bool, err error) {
	first, last := firstSelected(mask), lastSelected(mask)
	if !fastPages || first <= 0 || len(mask) == 0 {
		return false, nil, nil
	}
	per := size / int64(len(mask))
	if per*int64(first) < spanMinSkip || (need >= size && 2*first < len(mask)) ||
		per*int64(last-first+2) > maxChunkRead { // one read holds the span: memory stays bounded
		return false, nil, nil
	}
	md := f.Metadata().RowGroups[i].Columns[leaf.index].MetaData
	sp, err := s.pageSpan(f, off, size, md.Codec, first, last, len(mask))
	if err != nil {
		if ce := s.ctx.Err(); ce != nil {
			return false, nil, passError{ce}
		}
		spanStats.refused.Add(1)
		return false, nil, nil // read from the chunk's start
	}
	n := sp.end - sp.off
	if n > maxChunkRead {
		spanStats.refused.Add(1)
		return false, nil, nil
	}
	if int64(cap(s.chunk)) < n {
		s.putChunk(s.chunk)
		s.chunk = s.getChunk(n)
	}
	buf := s.chunk[:n]
	if err := f.readFull(s.ctx, buf, sp.off); err != nil {
		if ce := s.ctx.Err(); ce != nil {
			return false, nil, passError{ce}
		}
		return false, nil, f.errorf(i, "audio", "%w", err)
	}
	spanStats.spans.Add(1)
	spanStats.walked.Add(int64(sp.walked))
	part := md
	part.NumValues = -1 // the span's values are not the chunk's
	sub := mask[sp.row : sp.row+sp.rows]
	from, err := s.fastAudio(&part, leaf, buf, sub, func(r int, a []float64, st rowState) error { return emit(sp.row+r, a, st) })
	if err != nil {
		return false, nil, err
	}
	if from < 0 {
		return true, nil, nil
	}
	// The fast path gave up at row from of the span: the rest from the chunk's start.
	rest = slices.Clone(mask)
	clear(rest[:sp.row+from])
	return false, rest, nil
}

// firstSelected is the index of the first selected row of a mask, or -1.
func firstSelected(mask []bool) int {
	return slices.Index(mask, true)
}

// lastSelected is the index of the last selected row of a mask, or -1.
func lastSelected(mask []bool) int {
	for i := len(mask) - 1; i >= 0; i-- {
		if mask[i] {
			return i
		}
	}
	return -1
}

// windowReader reads a large column chunk sequentially in windows, each with one ReadAt;
// with grow, each window is twice the last, up to maxChunkRead.
type windowReader struct {
	r      io.ReaderAt
	ctx    context.Context
	end    int64 // end of the chunk
	window int64
	grow   bool
	step   int64
	off    int64 // file offset of buf
	buf    []byte
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off + int64(n)
		if o >= w.end {
			return n, io.EOF
		}
		if o < w.off || o >= w.off+int64(len(w.buf)) {
			size := min(max(w.window, int64(len(p)-n)), w.end-o)
			if int64(cap(w.buf)) < size {
				w.buf = nil
				w.buf = make([]byte, size)
			}
			w.buf = w.buf[:size]
			if err := w.ctx.Err(); err != nil {
				return n, err
			}
			if k, err := w.r.ReadAt(w.buf, o); k < len(w.buf) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				w.buf = w.buf[:0]
				return n, err
			}
			w.off = o
			if w.grow {
				// The estimate fell short by a row or so: continue in small steps first.
				w.window = min(max(w.step, w.window/4), maxChunkRead)
				w.step = min(2*w.window, maxChunkRead)
			}
		}
		n += copy(p[n:], w.buf[o-w.off:])
	}
	return n, nil
}

// rowState describes a row of a LIST column beyond its values.
type rowState struct {
	null      bool // the list itself is null
	nullElems int  // null elements (not in the values)
}

// assembler cuts the values of a LIST column's pages into rows, using repetition levels
// (0 starts a row) and definition levels: maxDef carries a value; levels from repDef to
// maxDef-1 are null elements; at a row's start, repDef-1 is an empty list and lower levels a
// null list.
type assembler struct {
	maxDef, repDef byte
	mask           []bool // rows to emit
	row            int    // current row; -1 before the first
	state          rowState
	spanning       bool // *buf holds the start of the current row
	buf            *[]float64
	emit           func(row int, audio []float64, st rowState) error
	// hold: a page's values stay valid until the next call to page (or skip, or finish)
	// returns, so a row that ends with a page is kept as a slice of it (pending) and
	// copied into *buf only if it continues on the next page.
	hold    bool
	held    bool // pending holds the current row, which started on the last page
	pending []float64
}

// page consumes one page. A row that starts and ends within the page is emitted as a slice
// of vals; the page's last row is kept in *buf, since it may continue on the next page.
func (a *assembler) page(vals []float64, rep, def []byte) error {
	if len(rep) != len(def) {
		return fmt.Errorf("page has %d repetition and %d definition levels", len(rep), len(def))
	}
	noNulls := bytes.Count(def, []byte{a.maxDef}) == len(def)
	if noNulls && len(vals) != len(def) {
		return fmt.Errorf("page has %d values for %d levels", len(vals), len(def))
	}
	if len(rep) > 0 && rep[0] != 0 && a.row < 0 {
		return fmt.Errorf("first page does not start a row")
	}
	if a.held && (len(rep) == 0 || rep[0] != 0) {
		a.unhold()
	}
	vi, segStart := 0, 0 // value cursor; start of the current row's values in this page
	for li := 0; li < len(rep); {
		if rep[li] == 0 {
			// A new row starts: the previous one is complete.
			if err := a.complete(vals[segStart:vi]); err != nil {
				return err
			}
			a.row++
			if a.row >= len(a.mask) {
				return fmt.Errorf("more rows than the row group's %d", len(a.mask))
			}
			segStart = vi
			if d := def[li]; d+1 < a.repDef {
				a.state.null = true
			}
		}
		// Advance to the next row start.
		next := len(rep)
		if j := bytes.IndexByte(rep[li+1:], 0); j >= 0 {
			next = li + 1 + j
		}
		if noNulls {
			vi += next - li
		} else {
			for _, d := range def[li:next] {
				if d == a.maxDef {
					vi++
				} else if d >= a.repDef {
					a.state.nullElems++
				}
			}
			if vi > len(vals) {
				return fmt.Errorf("page has %d values, its levels need more", len(vals))
			}
		}
		li = next
	}
	if a.row >= 0 && a.mask[a.row] {
		if a.hold && !a.spanning {
			a.pending, a.held = vals[segStart:vi], true
		} else {
			*a.buf = append(*a.buf, vals[segStart:vi]...)
			a.spanning = true
		}
	}
	return nil
}

// unhold copies the pending start of the current row into *buf.
func (a *assembler) unhold() {
	*a.buf = append((*a.buf)[:0], a.pending...)
	a.pending, a.held, a.spanning = nil, false, true
}

// skip consumes a page, given by its levels alone, that holds no value of a selected row:
// rows are counted, and a selected row that ended with the previous page is emitted.
func (a *assembler) skip(rep, def []byte) error {
	if len(rep) != len(def) {
		return fmt.Errorf("page has %d repetition and %d definition levels", len(rep), len(def))
	}
	if len(rep) == 0 {
		return nil
	}
	if rep[0] != 0 {
		if a.row < 0 {
			return fmt.Errorf("first page does not start a row")
		}
		if a.mask[a.row] {
			return fmt.Errorf("skipped page continues selected row %d", a.row)
		}
	}
	for li, r := range rep {
		if r != 0 {
			continue
		}
		if err := a.complete(nil); err != nil {
			return err
		}
		a.row++
		if a.row >= len(a.mask) {
			return fmt.Errorf("more rows than the row group's %d", len(a.mask))
		}
		if a.mask[a.row] {
			return fmt.Errorf("skipped page holds selected row %d", a.row)
		}
		if def[li]+1 < a.repDef {
			a.state.null = true
		}
	}
	return nil
}

// complete emits the current row, whose last values are tail.
func (a *assembler) complete(tail []float64) error {
	st := a.state
	spanning := a.spanning
	a.spanning, a.state = false, rowState{}
	if a.row < 0 || !a.mask[a.row] {
		return nil
	}
	if a.held { // the row lies within the previous page; tail is empty
		tail = a.pending
		a.pending, a.held = nil, false
	}
	if spanning {
		*a.buf = append(*a.buf, tail...)
		tail = *a.buf
	}
	err := a.emit(a.row, tail, st)
	*a.buf = (*a.buf)[:0]
	return err
}

// finish emits the last row and checks the row count.
func (a *assembler) finish() error {
	if err := a.complete(nil); err != nil {
		return err
	}
	if a.row+1 != len(a.mask) {
		return fmt.Errorf("audio holds %d rows, the row group %d", a.row+1, len(a.mask))
	}
	return nil
}

// pageValues returns a page's non-null doubles: zero-copy for plain pages, resolved through
// the dictionary for dictionary-encoded pages.
func (s *streamer) pageValues(p parquet.Page) ([]float64, error) {
	dict := p.Dictionary()
	if dict == nil {
		d := p.Data()
		return d.Double(), nil
	}
	dd := dict.Page().Data()
	dvals := dd.Double()
	pd := p.Data()
	idx := pd.Int32()
	s.dictBuf = slices.Grow(s.dictBuf[:0], len(idx))[:len(idx)]
	for k, j := range idx {
		if uint(j) >= uint(len(dvals)) {
			return nil, fmt.Errorf("dictionary index %d out of range (%d entries)", j, len(dvals))
		}
		s.dictBuf[k] = dvals[j]
	}
	return s.dictBuf, nil
}
