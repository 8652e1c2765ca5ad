package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// streamed is what a stream delivered for one row, audio copied.
type streamed struct {
	file  string
	row   int64
	id    string
	audio []float64
	err   string
}

// streamWith streams root's files with the fast path on or off and returns every row
// delivered and the stream's error.
func streamWith(t *testing.T, root string, q Query, fast bool) ([]streamed, error) {
	t.Helper()
	defer func(v bool) { fastPages = v }(fastPages)
	fastPages = fast
	d, err := OpenLocal(context.Background(), root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out []streamed
	err = d.Stream(context.Background(), q, func(s *Sample) error {
		e := ""
		if s.Err != nil {
			e = s.Err.Error()
		}
		out = append(out, streamed{s.File, s.Row, s.ID, slices.Clone(s.Audio), e})
		return nil
	})
	return out, err
}

// sameStream reports how two streams differ, or "".
func sameStream(a, b []streamed) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d rows, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.file != y.file || x.row != y.row || x.id != y.id || x.err != y.err || !sameBits(x.audio, y.audio) ||
			(x.audio == nil) != (y.audio == nil) {
			return fmt.Sprintf("row %d: got %s row %d %q %d samples err %q, want %s row %d %q %d samples err %q",
				i, x.file, x.row, x.id, len(x.audio), x.err, y.file, y.row, y.id, len(y.audio), y.err)
		}
	}
	return ""
}

// fastRows are testRows with null lists and long rows (several pages each at small page
// sizes) mixed in.
func fastRows(n int) []demo.Row {
	rows := testRows("f", n)
	for i := range rows {
		switch i % 11 {
		case 5:
			rows[i].Audio = nil
		case 8:
			a := make([]float64, 5000+i)
			for j := range a {
				a[j] = math.Cos(float64(j*(i+1))) / 3
			}
			rows[i].Audio = a
		}
	}
	return rows
}

// nullElemRow has an audio list whose elements may be null (maximum definition level 3).
type nullElemRow struct {
	ID              string     `parquet:"id,optional,snappy"`
	DatasetName     string     `parquet:"dataset_name,optional,snappy"`
	Task            string     `parquet:"task,optional,snappy"`
	Audio           []*float64 `parquet:"audio,optional,list,snappy"`
	Metadata        string     `parquet:"metadata,optional,snappy"`
	Instruction     string     `parquet:"instruction,optional,snappy"`
	InstructionText string     `parquet:"instruction_text,optional,snappy"`
	Output          string     `parquet:"output,optional,snappy"`
}

// rawRow is nullElemRow without compression.
type rawRow struct {
	ID              string     `parquet:"id,optional"`
	DatasetName     string     `parquet:"dataset_name,optional"`
	Task            string     `parquet:"task,optional"`
	Audio           []*float64 `parquet:"audio,optional,list"`
	Metadata        string     `parquet:"metadata,optional"`
	Instruction     string     `parquet:"instruction,optional"`
	InstructionText string     `parquet:"instruction_text,optional"`
	Output          string     `parquet:"output,optional"`
}

// writeNullElems writes fastRows with every 13th element of some rows null, snappy-compressed
// or not at all.
func writeNullElems(t *testing.T, name string, n, rowGroup int, compressed bool, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	var w interface {
		Write([]nullElemRow) (int, error)
		Flush() error
		Close() error
	}
	if compressed {
		w = parquet.NewGenericWriter[nullElemRow](f, append([]parquet.WriterOption{parquet.Compression(&parquet.Snappy)}, opts...)...)
	} else {
		w = rawWriter{parquet.NewGenericWriter[rawRow](f, opts...)}
	}
	for i, r := range fastRows(n) {
		var a []*float64
		if r.Audio != nil {
			a = make([]*float64, len(r.Audio))
			for j := range r.Audio {
				if i%3 != 0 || j%13 != 4 {
					a[j] = &r.Audio[j]
				}
			}
		}
		row := nullElemRow{ID: r.ID, DatasetName: r.DatasetName, Task: r.Task, Audio: a, Metadata: r.Metadata,
			Instruction: r.Instruction, InstructionText: r.InstructionText, Output: r.Output}
		if _, err := w.Write([]nullElemRow{row}); err != nil {
			t.Fatal(err)
		}
		if (i+1)%rowGroup == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawWriter writes nullElemRows as rawRows.
type rawWriter struct{ *parquet.GenericWriter[rawRow] }

func (w rawWriter) Write(rows []nullElemRow) (int, error) {
	raw := make([]rawRow, len(rows))
	for i, r := range rows {
		raw[i] = rawRow(r)
	}
	return w.GenericWriter.Write(raw)
}

// TestFastPagesMatchParquetGo decodes files written with v1 and v2 data pages of several
// sizes, null and empty lists and null elements, with the fast path and with parquet-go
// alone, and wants the same rows, bit for bit, and the fast path to have been taken (or
// refused, for dictionary-encoded audio).
func TestFastPagesMatchParquetGo(t *testing.T) {
	queries := []Query{{}, {Limit: 7}, {DatasetNames: []string{"beta"}}, {DatasetNames: []string{"gamma"}, Limit: 4}}
	tests := []struct {
		name      string
		dict      bool
		nullElems bool // written by writeNullElems
		raw       bool // uncompressed (with nullElems)
		opts      []parquet.WriterOption
		refused   bool // the fast path must leave every chunk to parquet-go
	}{
		{"v2 default pages", false, false, false, nil, false},
		{"v2 pages of 512 bytes", false, false, false, []parquet.WriterOption{parquet.PageBufferSize(512)}, false},
		{"v2 pages of 4 KiB", false, false, false, []parquet.WriterOption{parquet.PageBufferSize(4096)}, false},
		{"v2 pages of 64 KiB", false, false, false, []parquet.WriterOption{parquet.PageBufferSize(64 << 10)}, false},
		{"v1 default pages", false, false, false, []parquet.WriterOption{parquet.DataPageVersion(1)}, false},
		{"v1 pages of 512 bytes", false, false, false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(512)}, false},
		{"v1 pages of 4 KiB", false, false, false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(4096)}, false},
		{"v1 uncompressed", false, true, true, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(4096)}, false},
		{"v2 uncompressed", false, true, true, []parquet.WriterOption{parquet.PageBufferSize(4096)}, false},
		{"v2 null elements", false, true, false, []parquet.WriterOption{parquet.PageBufferSize(4096)}, false},
		{"v1 null elements", false, true, false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(4096)}, false},
		{"v2 dictionary", true, false, false, nil, true},
		{"v1 dictionary small pages", true, false, false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(2048)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for k, rg := range []int{5, 40} {
				name := filepath.Join(root, fmt.Sprintf("%d.parquet", k))
				if tt.nullElems {
					writeNullElems(t, name, 40, rg, !tt.raw, tt.opts...)
				} else if err := writeParquet(name, yieldAll(fastRows(40)), rg, tt.dict, tt.opts...); err != nil {
					t.Fatal(err)
				}
			}
			for _, q := range queries {
				want, wantErr := streamWith(t, root, q, false)
				d0, r0, m0 := fastStats.decoded.Load(), fastStats.refused.Load(), fastStats.resumed.Load()
				got, err := streamWith(t, root, q, true)
				decoded, refused, resumed := fastStats.decoded.Load()-d0, fastStats.refused.Load()-r0, fastStats.resumed.Load()-m0
				if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
					t.Fatalf("%+v: err %v, want %v", q, err, wantErr)
				}
				if d := sameStream(got, want); d != "" {
					t.Fatalf("%+v: %s", q, d)
				}
				if len(want) == 0 {
					t.Fatalf("%+v: no rows", q)
				}
				if resumed != 0 {
					t.Errorf("%+v: %d chunks handed to parquet-go midway", q, resumed)
				}
				if tt.refused && decoded != 0 {
					t.Errorf("%+v: %d chunks decoded by the fast path, want none", q, decoded)
				}
				if !tt.refused && (refused != 0 || (len(q.DatasetNames) == 0 && q.Limit == 0 && decoded == 0)) {
					t.Errorf("%+v: fast path decoded %d chunks, refused %d", q, decoded, refused)
				}
			}
		})
	}
}

// TestFastPagesResume corrupts a data page in the middle of a chunk, past its header: the
// fast path must hand the rest of the chunk to parquet-go, which reports the same error
// after the same rows as it does alone.
func TestFastPagesResume(t *testing.T) {
	for _, opts := range [][]parquet.WriterOption{
		{parquet.PageBufferSize(4096)},
		{parquet.PageBufferSize(4096), parquet.DataPageVersion(1)},
	} {
		root := t.TempDir()
		name := filepath.Join(root, "x.parquet")
		if err := writeParquet(name, yieldAll(fastRows(30)), 30, false, opts...); err != nil {
			t.Fatal(err)
		}
		r := audioRanges(t, name)[0]
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// Garble the end of a page body halfway through the chunk.
		pages, ok := scanPages(b[r[0]:r[0]+r[1]], format.Snappy, -1)
		if !ok || len(pages) < 3 {
			t.Fatalf("%d pages (ok %v), want several", len(pages), ok)
		}
		p := pages[len(pages)/2]
		end := len(b) - cap(p.data) + len(p.data) // p.data is a slice of b
		for i := end - 16; i < end; i++ {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		want, wantErr := streamWith(t, root, Query{}, false)
		m0 := fastStats.resumed.Load()
		got, err := streamWith(t, root, Query{}, true)
		if fastStats.resumed.Load() == m0 {
			t.Errorf("fast path did not hand the chunk to parquet-go")
		}
		var fe *FileError
		if wantErr == nil || err == nil || err.Error() != wantErr.Error() || !errors.As(err, &fe) {
			t.Fatalf("err %v, want %v", err, wantErr)
		}
		if d := sameStream(got, want); d != "" {
			t.Fatal(d)
		}
		if len(want) == 0 {
			t.Fatal("no row before the corrupt page")
		}
	}
}

func TestDecodeLevels(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		n    int
		max  byte
		want []byte // nil: an error
	}{
		{"rle", []byte{5 << 1, 1}, 5, 1, []byte{1, 1, 1, 1, 1}},
		{"rle zeros", []byte{3 << 1, 0}, 3, 3, []byte{0, 0, 0}},
		{"bit-packed, padding dropped", []byte{1<<1 | 1, 228, 27}, 6, 3, []byte{0, 1, 2, 3, 3, 2}},
		{"rle then bit-packed", []byte{2 << 1, 3, 1<<1 | 1, 228, 27}, 10, 3, []byte{3, 3, 0, 1, 2, 3, 3, 2, 1, 0}},
		{"long rle", []byte{0x80, 0x02, 2}, 128, 2, bytes.Repeat([]byte{2}, 128)},
		{"max 0", nil, 4, 0, []byte{0, 0, 0, 0}},
		{"rle over max", []byte{2 << 1, 2}, 2, 1, nil},
		{"bit-packed over max", []byte{1<<1 | 1, 228, 27}, 8, 2, nil},
		{"truncated bit-packed", []byte{2<<1 | 1, 228, 27}, 16, 3, nil},
		{"truncated rle", []byte{2 << 1}, 2, 1, nil},
		{"too few levels", []byte{2 << 1, 1}, 3, 1, nil},
		{"run past n", []byte{4 << 1, 1}, 3, 1, nil},
		{"empty", nil, 1, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLevels(make([]byte, 2), tt.src, tt.n, tt.max)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestAssemblerHold cuts rows into pages as TestAssembler does, in the fast path's mode: a
// page's values stay valid only until the next page is consumed, and pages that hold no
// value of a selected row are given by their levels alone.
func TestAssemblerHold(t *testing.T) {
	rows := [][]float64{{1, 2, 3}, nil, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}
	all := []bool{true, true, true, true, true, true}
	tests := []struct {
		name string
		cuts []int
		mask []bool
	}{
		{"one page", nil, all},
		{"pages at row starts", []int{3, 5}, all},
		{"rows across pages", []int{1, 2, 8, 9, 10}, all},
		{"every level a page", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, all},
		{"mask, skipped pages", []int{2, 7}, []bool{false, true, false, false, true, true}},
		{"mask, skipped pages mid-row", []int{1, 2, 5, 6, 9}, []bool{false, false, true, false, false, true}},
		{"nothing selected", []int{4, 8}, make([]bool, 6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals, rep, def := levelsOf(rows, nil)
			var want [][]float64
			for r, row := range rows {
				if tt.mask[r] {
					want = append(want, row)
				}
			}
			var got [][]float64
			var buf []float64
			a := assembler{maxDef: 3, repDef: 2, mask: tt.mask, row: -1, buf: &buf, hold: true, emit: func(_ int, audio []float64, _ rowState) error {
				got = append(got, slices.Clone(audio))
				return nil
			}}
			cuts := append(append([]int{0}, tt.cuts...), len(rep))
			var last []float64 // the previous page's values, clobbered once the next is consumed
			vi, row := 0, -1
			for k := 0; k+1 < len(cuts); k++ {
				lo, hi := cuts[k], cuts[k+1]
				n, selected := 0, false
				if rep[lo] != 0 && row >= 0 && tt.mask[row] {
					selected = true
				}
				for li := lo; li < hi; li++ {
					if rep[li] == 0 {
						row++
						selected = selected || tt.mask[row]
					}
					if def[li] == 3 {
						n++
					}
				}
				pv := slices.Clone(vals[vi : vi+n])
				vi += n
				var err error
				if selected {
					err = a.page(pv, rep[lo:hi], def[lo:hi])
				} else {
					err = a.skip(rep[lo:hi], def[lo:hi])
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := range last {
					last[i] = -1
				}
				last = pv
			}
			if err := a.finish(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("row %d: %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}
