// Package dataset reads BEANS-Zero rows: local Parquet files streamed with bounded memory,
// and the embedded demo benchmark written out in the same schema.
//
// Rows are read column by column at the page level: only the columns a call needs, row
// groups without a matching row are never read for audio, and the audio column
// (LIST<DOUBLE>) is decoded from each page's values without per-sample work beyond a copy
// when a row spans pages.
package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Sample is one row as a run uses it.
type Sample struct {
	ID, DatasetName, Task, Instruction, InstructionText, Output string
	// SampleRate comes from the metadata JSON's "sample_rate"; a row without it is an error
	// naming file, row and id.
	SampleRate int
	// Metadata is the raw metadata JSON.
	Metadata string
	// Audio is the waveform. It is valid only during the callback: do not retain it.
	Audio []float64
	// File and Row say where the sample came from (Row counts from 0 within the file).
	File string
	Row  int64
}

// Query selects rows.
type Query struct {
	// DatasetNames keeps rows whose dataset_name is one of these; empty keeps all rows.
	DatasetNames []string
	// Limit keeps the first Limit matching rows in file order; 0 keeps all.
	Limit int
}

func (q Query) matches(name string) bool {
	return len(q.DatasetNames) == 0 || slices.Contains(q.DatasetNames, name)
}

// within reports whether any wanted dataset name lies in [lo, hi] (byte order, as Parquet
// statistics of strings are).
func (q Query) within(lo, hi []byte) bool {
	for _, name := range q.DatasetNames {
		if name >= string(lo) && name <= string(hi) {
			return true
		}
	}
	return false
}

// Local is a dataset made of local Parquet files. Its methods may be called concurrently;
// each call opens the files it reads and closes them before returning.
type Local struct {
	root  string
	files []string
}

// OpenLocal finds the Parquet files under root matching glob, a slash-separated pattern
// relative to root in which "**" as a whole path element matches any number of directories
// (e.g. "*.parquet", "**/*.parquet", "data/shard*"). Files are sorted by path. It is an error
// if none match.
func OpenLocal(ctx context.Context, root, glob string) (*Local, error) {
	if glob == "" {
		glob = "**/*.parquet"
	}
	pattern := strings.Split(path.Clean(filepath.ToSlash(glob)), "/")
	for _, p := range pattern {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("open dataset %s: bad file pattern %q: %w", root, glob, err)
		}
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !(e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0) {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") { // temporary files of an unfinished write
			return nil
		}
		if matchPath(pattern, strings.Split(filepath.ToSlash(rel), "/")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("open dataset: no file under %s matches %q (check --data-dir and the task's files pattern)", root, glob)
	}
	slices.Sort(files)
	return &Local{root: root, files: files}, nil
}

// matchPath matches path elements against pattern elements; "**" matches zero or more
// elements.
func matchPath(pattern, elems []string) bool {
	if len(pattern) == 0 {
		return len(elems) == 0
	}
	if pattern[0] == "**" {
		for i := 0; i <= len(elems); i++ {
			if matchPath(pattern[1:], elems[i:]) {
				return true
			}
		}
		return false
	}
	if len(elems) == 0 {
		return false
	}
	ok, _ := path.Match(pattern[0], elems[0])
	return ok && matchPath(pattern[1:], elems[1:])
}

// Files returns the dataset's files, sorted.
func (d *Local) Files() []string { return slices.Clone(d.files) }

// Close releases the dataset. Files are opened per call, so there is nothing to release
// today; callers should still close.
func (d *Local) Close() error { return nil }

// Count returns how many rows Stream would deliver for q, reading only the dataset_name
// column (and nothing at all when q has no DatasetNames).
func (d *Local) Count(ctx context.Context, q Query) (int, error) {
	total := 0
	for _, name := range d.files {
		err := withFile(name, func(f *parquetFile) error {
			if len(q.DatasetNames) == 0 {
				total += int(f.NumRows())
				return nil
			}
			for i, rg := range f.RowGroups() {
				if err := ctx.Err(); err != nil {
					return err
				}
				mask, _, err := f.match(rg, i, q)
				if err != nil {
					return err
				}
				for _, m := range mask {
					if m {
						total++
					}
				}
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
// (ignoring q.Limit), in first-seen order: a task's label vocabulary from the whole split.
func (d *Local) Outputs(ctx context.Context, q Query) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, name := range d.files {
		err := withFile(name, func(f *parquetFile) error {
			for i, rg := range f.RowGroups() {
				if err := ctx.Err(); err != nil {
					return err
				}
				mask, n, err := f.match(rg, i, q)
				if err != nil {
					return err
				}
				if n == 0 {
					continue
				}
				outputs, err := f.strings(rg, i, "output", nil)
				if err != nil {
					return err
				}
				for r, o := range outputs {
					if mask[r] && !seen[o] {
						seen[o] = true
						out = append(out, o)
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Stream calls fn for each row matching q, in file order, stopping after q.Limit rows or at
// the first error (fn's errors are returned unchanged). Memory stays bounded whatever the
// file size: it holds the small string columns of one row group and at most one row of
// audio (plus the page being decoded). Row groups without a matching row are never read for
// audio. Each call gets a fresh *Sample, but its Audio is reused: copy what you keep.
func (d *Local) Stream(ctx context.Context, q Query, fn func(*Sample) error) error {
	s := &streamer{ctx: ctx, q: q, fn: fn}
	for _, name := range d.files {
		err := withFile(name, s.file)
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

// errLimit stops a stream that reached its limit.
var errLimit = errors.New("limit reached")

// passError carries an error out of the page loop unwrapped: the callback's own errors (which
// Stream returns unchanged) and errors that already say where they happened.
type passError struct{ err error }

func (e passError) Error() string { return e.err.Error() }
func (e passError) Unwrap() error { return e.err }

// parquetFile is an open Parquet file with the leaf columns it needs.
type parquetFile struct {
	*parquet.File
	name string
}

// withFile opens a Parquet file, calls fn and closes it.
func withFile(name string, fn func(*parquetFile) error) error {
	osf, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("open dataset file: %w", err)
	}
	defer osf.Close()
	st, err := osf.Stat()
	if err != nil {
		return fmt.Errorf("open dataset file: %w", err)
	}
	pf, err := parquet.OpenFile(osf, st.Size(),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("open %s: not a readable Parquet file: %w", name, err)
	}
	return fn(&parquetFile{File: pf, name: name})
}

// column returns the leaf column index of a top-level string column.
func (f *parquetFile) column(name string) (int, error) {
	leaf, ok := f.Schema().Lookup(name)
	if !ok || !leaf.Node.Leaf() {
		return 0, fmt.Errorf("read %s: no column %q: not a BEANS-Zero file?", f.name, name)
	}
	return leaf.ColumnIndex, nil
}

// audioColumn returns the leaf of the audio list's elements.
func (f *parquetFile) audioColumn() (parquet.LeafColumn, error) {
	for _, p := range [][]string{{"audio", "list", "element"}, {"audio", "list", "item"}, {"audio", "element"}, {"audio", "array"}} {
		if leaf, ok := f.Schema().Lookup(p...); ok && leaf.Node.Leaf() {
			return leaf, nil
		}
	}
	return parquet.LeafColumn{}, fmt.Errorf("read %s: no audio list column (audio.list.element): not a BEANS-Zero file?", f.name)
}

// match returns which rows of row group i match q, and how many do. The dataset_name
// column is read only when q filters on it, and not at all when its statistics rule the row
// group out.
func (f *parquetFile) match(rg parquet.RowGroup, i int, q Query) ([]bool, int, error) {
	n := int(rg.NumRows())
	mask := make([]bool, n)
	if len(q.DatasetNames) == 0 {
		for r := range mask {
			mask[r] = true
		}
		return mask, n, nil
	}
	col, err := f.column("dataset_name")
	if err != nil {
		return nil, 0, err
	}
	if cc, isFile := rg.ColumnChunks()[col].(*parquet.FileColumnChunk); isFile {
		if lo, hi, ok := cc.Bounds(); ok && !lo.IsNull() && !hi.IsNull() && !q.within(lo.ByteArray(), hi.ByteArray()) {
			return mask, 0, nil
		}
	}
	names, err := f.strings(rg, i, "dataset_name", nil)
	if err != nil {
		return nil, 0, err
	}
	count := 0
	for r, name := range names {
		if q.matches(name) {
			mask[r] = true
			count++
		}
	}
	return mask, count, nil
}

// strings reads a whole string column of row group i (nulls read as ""). Repeated values
// share one string.
func (f *parquetFile) strings(rg parquet.RowGroup, i int, name string, dst []string) ([]string, error) {
	col, err := f.column(name)
	if err != nil {
		return nil, err
	}
	pages := rg.ColumnChunks()[col].Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 256)
	last := ""
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s row group %d column %s: %w", f.name, i, name, err)
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
				return nil, fmt.Errorf("read %s row group %d column %s: %w", f.name, i, name, err)
			}
		}
		parquet.Release(p)
	}
	if int64(len(dst)) != rg.NumRows() {
		return nil, fmt.Errorf("read %s row group %d column %s: %d values for %d rows (a string column was expected)", f.name, i, name, len(dst), rg.NumRows())
	}
	return dst, nil
}

// streamer carries one Stream call's state across files.
type streamer struct {
	ctx       context.Context
	q         Query
	fn        func(*Sample) error
	delivered int
	rowBuf    []float64 // a row spanning pages
	dictBuf   []float64 // a dictionary page's values, resolved
	lastMeta  string
	lastRate  int
}

// file streams the matching rows of one file.
func (s *streamer) file(f *parquetFile) error {
	leaf, err := f.audioColumn()
	if err != nil {
		return err
	}
	var first int64 // file row index of the row group's first row
	for i, rg := range f.RowGroups() {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		err := s.rowGroup(f, rg, i, first, leaf)
		if err != nil {
			return err
		}
		first += rg.NumRows()
	}
	return nil
}

// rowGroupColumns are the string columns a sample carries.
var rowGroupColumns = []string{"id", "dataset_name", "task", "instruction", "instruction_text", "output", "metadata"}

// rowGroup streams the matching rows of one row group.
func (s *streamer) rowGroup(f *parquetFile, rg parquet.RowGroup, i int, first int64, leaf parquet.LeafColumn) error {
	mask, n, err := f.match(rg, i, s.q)
	if err != nil || n == 0 {
		return err
	}
	// Rows past the limit are not needed.
	if s.q.Limit > 0 {
		left := s.q.Limit - s.delivered
		for r := range mask {
			if mask[r] {
				if left == 0 {
					mask[r] = false
				} else {
					left--
				}
			}
		}
	}
	cols := make(map[string][]string, len(rowGroupColumns))
	for _, c := range rowGroupColumns {
		if cols[c], err = f.strings(rg, i, c, nil); err != nil {
			return err
		}
	}
	emit := func(row int, audio []float64) error {
		if !mask[row] {
			return nil
		}
		sm := &Sample{
			ID: cols["id"][row], DatasetName: cols["dataset_name"][row], Task: cols["task"][row],
			Instruction: cols["instruction"][row], InstructionText: cols["instruction_text"][row],
			Output: cols["output"][row], Metadata: cols["metadata"][row], Audio: audio,
			File: f.name, Row: first + int64(row),
		}
		rate, err := s.sampleRate(sm.Metadata)
		if err != nil {
			return passError{fmt.Errorf("read %s row %d (id %s): %w", f.name, sm.Row, sm.ID, err)}
		}
		sm.SampleRate = rate
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
		return nil
	}
	return s.audio(f, rg, i, leaf, mask, emit)
}

// sampleRate reads "sample_rate" from a metadata JSON document (a number, or a string
// holding one). Consecutive rows usually share metadata shapes, so the last answer is kept.
func (s *streamer) sampleRate(meta string) (int, error) {
	if meta == s.lastMeta && s.lastRate > 0 {
		return s.lastRate, nil
	}
	var m struct {
		SampleRate any `json:"sample_rate"`
	}
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return 0, fmt.Errorf("metadata is not JSON (%v): %.80q", err, meta)
	}
	var rate float64
	switch v := m.SampleRate.(type) {
	case float64:
		rate = v
	case string:
		var err error
		if rate, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, fmt.Errorf("metadata sample_rate %q is not a number", v)
		}
	case nil:
		return 0, fmt.Errorf("metadata has no sample_rate: %.80q", meta)
	default:
		return 0, fmt.Errorf("metadata sample_rate %v is not a number", v)
	}
	if rate < 1 || rate > 10_000_000 || rate != float64(int(rate)) {
		return 0, fmt.Errorf("metadata sample_rate %v is not a valid rate in Hz", rate)
	}
	s.lastMeta, s.lastRate = meta, int(rate)
	return int(rate), nil
}

// audio decodes the audio column of row group i page by page and calls emit for every row
// (emit ignores rows that do not match). A row held entirely by one page is passed as a
// slice of the page's values, without copying; a row spanning pages is gathered in rowBuf.
func (s *streamer) audio(f *parquetFile, rg parquet.RowGroup, i int, leaf parquet.LeafColumn, mask []bool, emit func(int, []float64) error) error {
	if leaf.MaxRepetitionLevel != 1 {
		return fmt.Errorf("read %s: audio column has repetition level %d, want a list of numbers", f.name, leaf.MaxRepetitionLevel)
	}
	if k := leaf.Node.Type().Kind(); k != parquet.Double {
		return fmt.Errorf("read %s: audio elements are %v, want DOUBLE", f.name, k)
	}
	maxDef := byte(leaf.MaxDefinitionLevel)
	pages := rg.ColumnChunks()[leaf.ColumnIndex].Pages()
	defer pages.Close()

	asm := assembler{maxDef: maxDef, mask: mask, row: -1, buf: &s.rowBuf, emit: emit}
	wrap := func(err error) error {
		var pe passError
		if errors.Is(err, errLimit) || errors.As(err, &pe) {
			return err
		}
		return fmt.Errorf("read %s row group %d column audio: %w", f.name, i, err)
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

// assembler cuts the values of a LIST column's pages into rows, using repetition levels
// (0 starts a row) and definition levels (only maxDef carries a value; lower levels are null
// or empty lists, which hold no samples).
type assembler struct {
	maxDef   byte
	mask     []bool // rows to emit
	row      int    // current row; -1 before the first
	spanning bool   // *buf holds the start of the current row
	buf      *[]float64
	emit     func(row int, audio []float64) error
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
				}
			}
			if vi > len(vals) {
				return fmt.Errorf("page has %d values, its levels need more", len(vals))
			}
		}
		li = next
	}
	if a.row >= 0 && a.mask[a.row] {
		*a.buf = append(*a.buf, vals[segStart:vi]...)
		a.spanning = true
	}
	return nil
}

// complete emits the current row, whose last values are tail.
func (a *assembler) complete(tail []float64) error {
	defer func() { a.spanning, *a.buf = false, (*a.buf)[:0] }()
	if a.row < 0 || !a.mask[a.row] {
		return nil
	}
	if a.spanning {
		*a.buf = append(*a.buf, tail...)
		tail = *a.buf
	}
	return a.emit(a.row, tail)
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
