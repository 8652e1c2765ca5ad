// Package dataset reads BEANS-Zero rows from Parquet files held by any io.ReaderAt (a local
// file, a shared-filesystem mirror, the Hub through a block cache) with bounded memory, and
// writes the embedded demo benchmark in the same schema.
//
// The reading pattern suits remote files, where every ReadAt may be an HTTP range request:
//
//   - a file is opened from its footer, fetched with one ReadAt of its last footerRead bytes
//     (a second only when the footer is larger);
//   - the small string columns of a row group are read first, each column chunk whole, and
//     adjacent chunks in one ReadAt: dataset_name alone first (and not at all when the
//     column statistics rule the row group out), then id, task, output, metadata,
//     instruction and instruction_text, only for row groups that hold a selected row;
//   - the audio column chunk (LIST<DOUBLE>) of only those row groups is fetched with ONE
//     ReadAt (the next row group's while this one is decoded, when the stream is certain
//     to need it) and decoded at page level from memory, its pages decompressed on several
//     goroutines (see fastpages.go), a row that lies within a page being passed on without
//     a copy.
//
// Memory is bounded by about three audio column chunks of one row group (the fetched chunk,
// the next one being prefetched, a few decompressed pages and one row), whatever the number
// of rows.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/parquet-go/parquet-go"
)

// footerRead is how many bytes at the end of a file the first read fetches: enough for the
// footer of a shard with hundreds of row groups, so that opening a file costs one read.
const footerRead = 1 << 20

// coalesceGap is the largest gap between two small column chunks that one ReadAt spans
// rather than issuing two.
const coalesceGap = 64 << 10

// File is one Parquet file of a dataset.
type File struct {
	// Name is used in errors and records (a path, or "repo@rev:path").
	Name string
	// Size is the file's size in bytes.
	Size int64
	// Open returns the file's contents; it is called when the file is first needed, once
	// per Dataset (again only after a failed open). A reader that is an io.Closer is
	// closed by the Dataset's Close.
	Open func(ctx context.Context) (io.ReaderAt, error)
}

// Dataset is a list of Parquet files in the BEANS-Zero schema. Its methods may be called
// concurrently. Files are opened, and their footers read, once, when first needed.
type Dataset struct {
	files []*fileState
}

// fileState is a File, opened lazily.
type fileState struct {
	File
	mu sync.Mutex
	r  io.ReaderAt
	pf *parquet.File
}

// Sample is one row as a run uses it.
type Sample struct {
	ID, DatasetName, Task, Instruction, InstructionText, Output string
	// SampleRate comes from the metadata JSON's "sample_rate" (0 when Err says it is
	// missing or invalid).
	SampleRate int
	// Metadata is the raw metadata JSON.
	Metadata string
	// Audio is the waveform. It is valid only during the callback: do not retain it.
	Audio []float64
	// File and Row say where the sample came from (Row counts from 0 within the file).
	File string
	Row  int64
	// Err, when not nil, is a data error of this sample alone (metadata that is not JSON
	// or has no valid sample_rate; audio that is null, empty, holds null elements, NaN or
	// ±Inf). The sample must not be sent to a model: write an error row for it and go on.
	// Err wraps ErrSampleData; its message does not repeat File, Row or ID.
	Err error
}

// ErrSampleData is wrapped by every Sample.Err.
var ErrSampleData = errors.New("bad sample data")

// sampleErr makes a Sample.Err.
func sampleErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSampleData, fmt.Sprintf(format, args...))
}

// Query selects rows.
type Query struct {
	// DatasetNames keeps rows whose dataset_name is one of these (or an alias of one, see
	// Aliases); empty keeps all rows.
	DatasetNames []string
	// Limit keeps the first Limit matching rows in file order; 0 keeps all.
	Limit int
}

// Aliases are dataset names that designate the same rows: copies of BEANS-Zero spell the
// individual-counting task both ways. A query for either name matches rows of both.
var Aliases = [][]string{{"zf-indiv", "zf-indv"}}

// names returns the query's dataset names with their aliases.
func (q Query) names() []string {
	out := slices.Clone(q.DatasetNames)
	for _, group := range Aliases {
		for _, n := range q.DatasetNames {
			if slices.Contains(group, n) {
				for _, a := range group {
					if !slices.Contains(out, a) {
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// FileError is an error reading a file of the dataset: the file cannot be opened, is not
// Parquet, lacks a column or holds corrupt data. Other files may still be readable.
type FileError struct {
	File     string
	RowGroup int    // -1 when the error is not about one row group
	Column   string // "" when the error is not about one column
	Err      error
}

func (e *FileError) Error() string {
	s := "read " + e.File
	if e.RowGroup >= 0 {
		s += fmt.Sprintf(" row group %d", e.RowGroup)
	}
	if e.Column != "" {
		s += " column " + e.Column
	}
	return s + ": " + e.Err.Error()
}

func (e *FileError) Unwrap() error { return e.Err }

// Open returns a dataset of the given files, in the given order. Nothing is read until a
// method needs it.
func Open(ctx context.Context, files []File) (*Dataset, error) {
	if len(files) == 0 {
		return nil, errors.New("open dataset: no files")
	}
	d := &Dataset{}
	for _, f := range files {
		if f.Open == nil {
			return nil, fmt.Errorf("open dataset: file %s has no Open function", f.Name)
		}
		d.files = append(d.files, &fileState{File: f})
	}
	return d, ctx.Err()
}

// Files returns the names of the dataset's files, in order.
func (d *Dataset) Files() []string {
	out := make([]string, len(d.files))
	for i, f := range d.files {
		out[i] = f.Name
	}
	return out
}

// Close closes the readers of the files opened so far that are io.Closers. The dataset
// may be used again afterwards: files are then reopened.
func (d *Dataset) Close() error {
	var errs []error
	for _, f := range d.files {
		f.mu.Lock()
		if c, ok := f.r.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", f.Name, err))
			}
		}
		f.r, f.pf = nil, nil
		f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// parquetFile is an open Parquet file.
type parquetFile struct {
	*parquet.File
	name string
	r    io.ReaderAt
	size int64
}

// open opens the file and reads its footer, once.
func (f *fileState) open(ctx context.Context) (*parquetFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pf == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f.r == nil {
			r, err := f.File.Open(ctx)
			if err != nil {
				return nil, &FileError{File: f.Name, RowGroup: -1, Err: fmt.Errorf("open: %w", err)}
			}
			f.r = r
		}
		if f.Size < 12 {
			return nil, &FileError{File: f.Name, RowGroup: -1, Err: fmt.Errorf("%d bytes: too small for a Parquet file (truncated?)", f.Size)}
		}
		pf, err := parquet.OpenFile(f.r, f.Size,
			parquet.SkipMagicBytes(true), // the footer's magic is checked; the header's would cost a read
			parquet.OptimisticRead(true), parquet.ReadBufferSize(footerRead),
			parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		if err != nil {
			return nil, &FileError{File: f.Name, RowGroup: -1, Err: fmt.Errorf("not a readable Parquet file (truncated or corrupt?): %w", err)}
		}
		f.pf = pf
	}
	return &parquetFile{File: f.pf, name: f.Name, r: f.r, size: f.Size}, nil
}

// withFile opens a file of the dataset and calls fn.
func (d *Dataset) withFile(ctx context.Context, f *fileState, fn func(*parquetFile) error) error {
	pf, err := f.open(ctx)
	if err != nil {
		return err
	}
	return fn(pf)
}

// errorf returns a FileError about row group rg (-1: none) and column col ("": none).
func (f *parquetFile) errorf(rg int, col string, format string, args ...any) error {
	return &FileError{File: f.name, RowGroup: rg, Column: col, Err: fmt.Errorf(format, args...)}
}

// stringColumn returns the leaf column index of a top-level string column, checking its type.
func (f *parquetFile) stringColumn(name string) (int, error) {
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		return 0, f.errorf(-1, name, "no such column: not a BEANS-Zero file?")
	}
	if !leaf.Node.Leaf() || leaf.MaxRepetitionLevel != 0 || leaf.Node.Type().Kind() != parquet.ByteArray {
		return 0, f.errorf(-1, name, "column has type %s, want a string (BYTE_ARRAY)", typeName(leaf))
	}
	return leaf.ColumnIndex, nil
}

// typeName describes a leaf column's type for errors.
func typeName(leaf parquet.LeafColumn) string {
	if !leaf.Node.Leaf() {
		return "group"
	}
	s := leaf.Node.Type().Kind().String()
	if lt := leaf.Node.Type().LogicalType(); lt != nil {
		s += " (" + lt.String() + ")"
	}
	if leaf.MaxRepetitionLevel > 0 {
		s = fmt.Sprintf("list<%s> (repetition level %d)", s, leaf.MaxRepetitionLevel)
	}
	return s
}

// audioLeaf is the audio column's leaf with the definition levels its rows need.
type audioLeaf struct {
	index  int
	maxDef byte // a present value
	repDef byte // the list's repeated node: levels from repDef to maxDef-1 are null elements
}

// audioColumn returns the leaf of the audio list's elements (list.element or list.item
// layouts, or the two-level legacy ones).
func (f *parquetFile) audioColumn() (audioLeaf, error) {
	for _, p := range [][]string{{"audio", "list", "element"}, {"audio", "list", "item"}, {"audio", "element"}, {"audio", "array"}, {"audio", "bag", "array_element"}} {
		leaf, ok := f.Schema().Lookup(p...)
		if !ok || !leaf.Node.Leaf() {
			continue
		}
		if leaf.MaxRepetitionLevel != 1 || leaf.Node.Type().Kind() != parquet.Double {
			return audioLeaf{}, f.errorf(-1, "audio", "column has type %s, want a list of DOUBLE", typeName(leaf))
		}
		a := audioLeaf{index: leaf.ColumnIndex, maxDef: byte(leaf.MaxDefinitionLevel)}
		// The repeated node's definition level: optional and repeated nodes down to it.
		var node parquet.Node = f.Schema()
		def := byte(0)
		for _, name := range p {
			node = childNamed(node, name)
			if node == nil {
				break
			}
			if node.Optional() || node.Repeated() {
				def++
			}
			if node.Repeated() {
				a.repDef = def
				break
			}
		}
		if a.repDef == 0 {
			a.repDef = a.maxDef
		}
		return a, nil
	}
	if leaf, ok := f.Schema().Lookup("audio"); ok {
		return audioLeaf{}, f.errorf(-1, "audio", "column has type %s, want a list of DOUBLE", typeName(leaf))
	}
	if childNamed(f.Schema(), "audio") != nil {
		return audioLeaf{}, f.errorf(-1, "audio", "column is not a list of DOUBLE (audio.list.element)")
	}
	return audioLeaf{}, f.errorf(-1, "audio", "no such column: not a BEANS-Zero file?")
}

// childNamed returns the field of a group node with the given name, or nil.
func childNamed(n parquet.Node, name string) parquet.Node {
	if n.Leaf() {
		return nil
	}
	for _, f := range n.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// chunkRange returns the byte range of column col of row group rg, as PagesFrom reads it.
func (f *parquetFile) chunkRange(rg, col int, name string) (off, n int64, err error) {
	md := f.Metadata()
	if rg >= len(md.RowGroups) || col >= len(md.RowGroups[rg].Columns) {
		return 0, 0, f.errorf(rg, name, "no column chunk %d in the footer", col)
	}
	m := &md.RowGroups[rg].Columns[col].MetaData
	off = m.DataPageOffset
	if m.DictionaryPageOffset != 0 {
		off = m.DictionaryPageOffset
	}
	n = m.TotalCompressedSize
	if off < 0 || n < 0 || off+n > f.size || off+n < off {
		return 0, 0, f.errorf(rg, name, "column chunk [%d, %d) lies outside the file's %d bytes: truncated or corrupt file", off, off+n, f.size)
	}
	return off, n, nil
}

// memReaderAt serves ReadAt at absolute file offsets from bytes fetched at off.
type memReaderAt struct {
	off  int64
	data []byte
}

func (m *memReaderAt) ReadAt(p []byte, off int64) (int, error) {
	rel := off - m.off
	if rel < 0 || rel > int64(len(m.data)) {
		return 0, fmt.Errorf("read at %d: outside the fetched range [%d, %d)", off, m.off, m.off+int64(len(m.data)))
	}
	n := copy(p, m.data[rel:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readFull reads len(buf) bytes at off with one ReadAt (a short read with io.EOF is an
// error: the file is shorter than its footer says).
func (f *parquetFile) readFull(ctx context.Context, buf []byte, off int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := f.r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: got %d: %w", len(buf), off, n, err)
}

// fetchColumns fetches whole column chunks of row group rg, merging chunks less than
// coalesceGap apart into one ReadAt, and returns a reader per column (same order as cols).
func (f *parquetFile) fetchColumns(ctx context.Context, rg int, cols []int, names []string) ([]io.ReaderAt, error) {
	type rng struct {
		i        int
		off, end int64
	}
	rs := make([]rng, len(cols))
	for i, c := range cols {
		off, n, err := f.chunkRange(rg, c, names[i])
		if err != nil {
			return nil, err
		}
		rs[i] = rng{i, off, off + n}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b rng) int { return int(a.off - b.off) })
	out := make([]io.ReaderAt, len(cols))
	for lo := 0; lo < len(sorted); {
		hi, end := lo+1, sorted[lo].end
		for hi < len(sorted) && sorted[hi].off-end <= coalesceGap {
			end = max(end, sorted[hi].end)
			hi++
		}
		start := sorted[lo].off
		buf := make([]byte, end-start)
		if err := f.readFull(ctx, buf, start); err != nil {
			var cn []string
			for _, r := range sorted[lo:hi] {
				cn = append(cn, names[r.i])
			}
			return nil, f.errorf(rg, fmt.Sprint(cn), "%w", err)
		}
		for _, r := range sorted[lo:hi] {
			out[r.i] = &memReaderAt{off: r.off, data: buf[r.off-start : r.end-start : r.end-start]}
		}
		lo = hi
	}
	return out, nil
}
