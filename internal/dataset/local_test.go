package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// testRows makes n rows spread over three dataset names, with audio of varied length
// (including empty) holding awkward float values.
func testRows(prefix string, n int) []demo.Row {
	names := []string{"alpha", "beta", "gamma"}
	rows := make([]demo.Row, n)
	for i := range rows {
		length := (i * 397) % 1500
		if i%7 == 3 {
			length = 0
		}
		a := make([]float64, length)
		for j := range a {
			a[j] = math.Sin(float64(i*10000+j)) * 0.9
		}
		if length > 5 {
			a[0], a[1], a[2], a[3], a[4] = math.Copysign(0, -1), math.Inf(1), 5e-324, math.Float64frombits(0x7ff8000000000123), -1
		}
		rate := []int{16000, 22050, 44100}[i%3]
		rows[i] = demo.Row{
			ID:              fmt.Sprintf("%s-%03d", prefix, i),
			DatasetName:     names[(i/2)%3],
			Task:            "classification",
			Instruction:     "<Audio><AudioHere></Audio> What?",
			InstructionText: "What?",
			Output:          fmt.Sprintf("label %d", (i*5)%4),
			Metadata:        fmt.Sprintf(`{"duration": %d, "sample_rate": %d}`, i, rate),
			SampleRate:      rate,
			Audio:           a,
			FileName:        fmt.Sprintf("f%d.wav", i),
		}
	}
	return rows
}

func yieldAll(rows []demo.Row) func(func(demo.Row) error) error {
	return func(yield func(demo.Row) error) error {
		for _, r := range rows {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
}

type layout struct {
	name string
	dict bool
	opts []parquet.WriterOption
}

var layouts = []layout{
	{"plain", false, nil},
	{"dictionary", true, nil},
	{"small pages", false, []parquet.WriterOption{parquet.PageBufferSize(2048)}},
	{"dictionary small pages v1", true, []parquet.WriterOption{parquet.PageBufferSize(2048), parquet.DataPageVersion(1)}},
}

// writeDataset writes 13 rows to root/a.parquet (row groups of 4) and 8 rows to
// root/sub/b.parquet (row groups of 3) and returns all rows in file order.
func writeDataset(t testing.TB, root string, l layout) []demo.Row {
	t.Helper()
	a, b := testRows("a", 13), testRows("b", 8)
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeParquet(filepath.Join(root, "a.parquet"), yieldAll(a), 4, l.dict, l.opts...); err != nil {
		t.Fatal(err)
	}
	if err := writeParquet(filepath.Join(root, "sub", "b.parquet"), yieldAll(b), 3, l.dict, l.opts...); err != nil {
		t.Fatal(err)
	}
	return append(a, b...)
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func TestStream(t *testing.T) {
	queries := []Query{
		{},
		{Limit: 5},
		{Limit: 15}, // crosses the file boundary
		{Limit: 100},
		{DatasetNames: []string{"beta"}},
		{DatasetNames: []string{"alpha", "gamma"}, Limit: 9},
		{DatasetNames: []string{"gamma"}, Limit: 1},
		{DatasetNames: []string{"nothing"}},
		{DatasetNames: []string{"aaa", "zzz"}}, // outside every row group's statistics
	}
	ctx := context.Background()
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			root := t.TempDir()
			all := writeDataset(t, root, l)
			d, err := OpenLocal(ctx, root, "**/*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := d.Files(); len(got) != 2 {
				t.Fatalf("files %v", got)
			}
			if l.dict && !hasDictAudio(t, d.Files()[0]) {
				t.Fatal("dictionary layout wrote no dictionary-encoded audio page")
			}
			for _, q := range queries {
				var want []demo.Row
				var wantOutputs []string
				for _, r := range all {
					if len(q.DatasetNames) == 0 || slices.Contains(q.DatasetNames, r.DatasetName) {
						if q.Limit == 0 || len(want) < q.Limit {
							want = append(want, r)
						}
						if !slices.Contains(wantOutputs, r.Output) {
							wantOutputs = append(wantOutputs, r.Output)
						}
					}
				}
				var got []Sample
				err := d.Stream(ctx, q, func(s *Sample) error {
					c := *s
					c.Audio = slices.Clone(s.Audio)
					got = append(got, c)
					return nil
				})
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				if len(got) != len(want) {
					t.Fatalf("%+v: %d samples, want %d", q, len(got), len(want))
				}
				for i, w := range want {
					g := got[i]
					if g.ID != w.ID || g.DatasetName != w.DatasetName || g.Output != w.Output || g.Task != w.Task ||
						g.Instruction != w.Instruction || g.InstructionText != w.InstructionText ||
						g.Metadata != w.Metadata || g.SampleRate != w.SampleRate {
						t.Errorf("%+v sample %d: got %+v, want %+v", q, i, g, w)
					}
					if wantErr := badAudio(w.Audio); (g.Err != nil) != (wantErr != "") || (wantErr != "" && !strings.Contains(g.Err.Error(), wantErr)) {
						t.Errorf("%+v sample %d (%s): Err = %v, want one saying %q", q, i, w.ID, g.Err, wantErr)
					}
					if !sameBits(g.Audio, w.Audio) {
						t.Errorf("%+v sample %d (%s): audio differs (%d vs %d samples)", q, i, w.ID, len(g.Audio), len(w.Audio))
					}
					var n int64
					fmt.Sscanf(w.ID[2:], "%d", &n)
					if g.Row != n || !strings.HasSuffix(g.File, w.ID[:1]+".parquet") {
						t.Errorf("%+v sample %d: from %s row %d, want row %d of %s.parquet", q, i, g.File, g.Row, n, w.ID[:1])
					}
				}
				n, err := d.Count(ctx, q)
				if err != nil || n != len(want) {
					t.Errorf("%+v: Count = %d, %v; want %d", q, n, err, len(want))
				}
				outs, err := d.Outputs(ctx, q)
				if err != nil || !slices.Equal(outs, wantOutputs) {
					t.Errorf("%+v: Outputs = %q, %v; want %q", q, outs, err, wantOutputs)
				}
			}
		})
	}
}

// badAudio returns what Sample.Err must say of audio a ("" for good audio).
func badAudio(a []float64) string {
	if len(a) == 0 {
		return "audio is empty"
	}
	for _, x := range a {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "audio holds"
		}
	}
	return ""
}

// hasDictAudio reports whether any audio page of the file is dictionary-encoded.
func hasDictAudio(t *testing.T, name string) bool {
	found := false
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(context.Background(), []File{LocalFile(name, st.Size())})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.withFile(context.Background(), d.files[0], func(f *parquetFile) error {
		leaf, err := f.audioColumn()
		if err != nil {
			return err
		}
		for _, rg := range f.RowGroups() {
			pages := rg.ColumnChunks()[leaf.index].Pages()
			for {
				p, err := pages.ReadPage()
				if err != nil {
					break
				}
				if p.Dictionary() != nil {
					found = true
				}
			}
			pages.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestStreamStops(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	writeDataset(t, root, layouts[0])
	d, err := OpenLocal(ctx, root, "**/*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	stop := fmt.Errorf("stop here")
	n := 0
	err = d.Stream(ctx, Query{}, func(*Sample) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("Stream = %v after %d rows, want the callback's error after 3", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Stream(cctx, Query{}, func(*Sample) error { return nil }); err == nil {
		t.Error("Stream with a cancelled context succeeded")
	}
}

// TestSampleErrors checks that bad data of one row is that sample's Err, and the stream
// goes on to the next row.
func TestSampleErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*demo.Row)
		want  string // in Err; "" for none
		rate0 bool   // SampleRate is 0
	}{
		{"good", func(*demo.Row) {}, "", false},
		{"metadata not JSON", func(r *demo.Row) { r.Metadata = `{"sample_rate": 16000` }, "metadata is not a JSON object", true},
		{"metadata a JSON array", func(r *demo.Row) { r.Metadata = `[16000]` }, "metadata is not a JSON object", true},
		{"metadata null", func(r *demo.Row) { r.Metadata = `null` }, "metadata is not a JSON object", true},
		{"metadata empty", func(r *demo.Row) { r.Metadata = `` }, "metadata is not a JSON object", true},
		{"no sample_rate", func(r *demo.Row) { r.Metadata = `{"duration": 3}` }, "no sample_rate", true},
		{"sample_rate text", func(r *demo.Row) { r.Metadata = `{"sample_rate": "fast"}` }, "not a number", true},
		{"sample_rate zero", func(r *demo.Row) { r.Metadata = `{"sample_rate": 0}` }, "not a valid rate", true},
		{"sample_rate fractional", func(r *demo.Row) { r.Metadata = `{"sample_rate": 16000.5}` }, "not a valid rate", true},
		{"sample_rate as string", func(r *demo.Row) { r.Metadata = `{"sample_rate": "22050"}` }, "", false},
		{"audio null", func(r *demo.Row) { r.Audio = nil }, "audio is null", false},
		{"audio empty", func(r *demo.Row) { r.Audio = []float64{} }, "audio is empty", false},
		{"audio NaN", func(r *demo.Row) { r.Audio[7] = math.NaN() }, "audio holds NaN at sample 7", false},
		{"audio +Inf", func(r *demo.Row) { r.Audio[len(r.Audio)-1] = math.Inf(1) }, "audio holds +Inf", false},
		{"audio -Inf", func(r *demo.Row) { r.Audio[0] = math.Inf(-1) }, "audio holds -Inf at sample 0", false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rows := testRows("x", 6)
			for i := range rows {
				rows[i].Audio = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
				rows[i].Metadata = `{"sample_rate": 22050}`
			}
			tt.edit(&rows[4])
			if err := WriteParquet(filepath.Join(root, "x.parquet"), yieldAll(rows), 4); err != nil {
				t.Fatal(err)
			}
			d, err := OpenLocal(ctx, root, "*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 0
			err = d.Stream(ctx, Query{}, func(s *Sample) error {
				defer func() { n++ }()
				if s.Row != 4 {
					if s.Err != nil {
						t.Errorf("row %d: Err %v", s.Row, s.Err)
					}
					return nil
				}
				if tt.want == "" {
					if s.Err != nil || s.SampleRate != 22050 {
						t.Errorf("Err = %v, rate %d; want none, 22050", s.Err, s.SampleRate)
					}
					return nil
				}
				if s.Err == nil || !strings.Contains(s.Err.Error(), tt.want) || !errors.Is(s.Err, ErrSampleData) {
					t.Errorf("Err = %v, want ErrSampleData saying %q", s.Err, tt.want)
				}
				if tt.rate0 != (s.SampleRate == 0) {
					t.Errorf("SampleRate = %d", s.SampleRate)
				}
				if s.ID != "x-004" {
					t.Errorf("ID = %q", s.ID)
				}
				return nil
			})
			if err != nil || n != 6 {
				t.Fatalf("Stream = %v after %d rows, want all 6 rows", err, n)
			}
		})
	}
}

func TestOpenLocal(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for _, f := range []string{"shard-00000.parquet", "shard-00001.parquet", "x/test-00000-of-00002.parquet", "x/y/z.parquet", "readme.md", ".shard-0.parquet.tmp-1"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		glob string
		want []string
	}{
		{"*.parquet", []string{"shard-00000.parquet", "shard-00001.parquet"}},
		{"shard*", []string{"shard-00000.parquet", "shard-00001.parquet"}},
		{"**/*.parquet", []string{"shard-00000.parquet", "shard-00001.parquet", "x/test-00000-of-00002.parquet", "x/y/z.parquet"}},
		{"x/**/*.parquet", []string{"x/test-00000-of-00002.parquet", "x/y/z.parquet"}},
		{"**/test-*", []string{"x/test-00000-of-00002.parquet"}},
		{"**", []string{"readme.md", "shard-00000.parquet", "shard-00001.parquet", "x/test-00000-of-00002.parquet", "x/y/z.parquet"}},
		{"nothing*", nil},
	}
	for _, tt := range tests {
		d, err := OpenLocal(ctx, root, tt.glob)
		if tt.want == nil {
			if err == nil || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), tt.glob) {
				t.Errorf("%q: err = %v, want one naming root and glob", tt.glob, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.glob, err)
			continue
		}
		var got []string
		for _, f := range d.Files() {
			rel, _ := filepath.Rel(root, f)
			got = append(got, filepath.ToSlash(rel))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.glob, got, tt.want)
		}
	}
	if _, err := OpenLocal(ctx, root, "[x"); err == nil {
		t.Error("bad pattern accepted")
	}
	if _, err := OpenLocal(ctx, filepath.Join(root, "missing"), "*"); err == nil {
		t.Error("missing root accepted")
	}
}

func TestNotParquet(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "bad.parquet"), []byte("not parquet at all"), 0o644)
	d, err := OpenLocal(ctx, root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Stream(ctx, Query{}, func(*Sample) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "bad.parquet") {
		t.Errorf("err = %v, want one naming the file", err)
	}
}

func TestEnsureDemo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, err := EnsureDemo(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if root != filepath.Join(dir, demo.Version) {
		t.Errorf("root %s", root)
	}
	shard := filepath.Join(root, DemoShard)
	st1, err := os.Stat(shard)
	if err != nil {
		t.Fatal(err)
	}
	// Complete: reused as is.
	if _, err := EnsureDemo(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(shard); !os.SameFile(st1, st2) {
		t.Error("complete demo data was regenerated")
	}
	// Interrupted (no marker): regenerated.
	os.Remove(filepath.Join(root, demoDone))
	if _, err := EnsureDemo(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if st3, _ := os.Stat(shard); os.SameFile(st1, st3) {
		t.Error("incomplete demo data was not regenerated")
	}

	var want []demo.Row
	demo.Rows(func(r demo.Row) error { want = append(want, r); return nil })
	d, err := OpenLocal(ctx, root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	err = d.Stream(ctx, Query{}, func(s *Sample) error {
		w := want[i]
		if s.ID != w.ID || s.Output != w.Output || s.SampleRate != w.SampleRate || s.Task != w.Task || !sameBits(s.Audio, w.Audio) {
			t.Errorf("demo row %d differs", i)
		}
		i++
		return nil
	})
	if err != nil || i != len(want) {
		t.Fatalf("streamed %d of %d demo rows: %v", i, len(want), err)
	}
	vocab, err := d.Outputs(ctx, Query{DatasetNames: []string{demo.DatasetSpecies}})
	if err != nil || len(vocab) != len(demo.Species) {
		t.Errorf("demo species vocabulary %q, %v", vocab, err)
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*.parquet", "a.parquet", true},
		{"*.parquet", "x/a.parquet", false},
		{"**/*.parquet", "a.parquet", true},
		{"**/*.parquet", "x/y/a.parquet", true},
		{"x/**", "x", true},
		{"x/**/b", "x/1/2/b", true},
		{"x/**/b", "y/1/b", false},
		{"shard*", "shard-1", true},
	}
	for _, tt := range tests {
		if got := matchPath(strings.Split(tt.pattern, "/"), strings.Split(tt.path, "/")); got != tt.want {
			t.Errorf("matchPath(%q, %q) = %v", tt.pattern, tt.path, got)
		}
	}
}

// bigRows makes n rows of 10 s of 16 kHz audio.
func bigRows(n int) []demo.Row {
	rows := testRows("big", n)
	for i := range rows {
		a := make([]float64, 160000)
		for j := range a {
			a[j] = math.Round(math.Sin(float64(j)*0.0137*float64(i+1))*20000) / 32767
		}
		rows[i].Audio = a
	}
	return rows
}

// allocatedPerRow streams a file of n 10 s rows and returns the bytes allocated per row.
func allocatedPerRow(t *testing.T, n int) float64 {
	root := t.TempDir()
	if err := WriteParquet(filepath.Join(root, "big.parquet"), yieldAll(bigRows(n)), 4); err != nil {
		t.Fatal(err)
	}
	d, err := OpenLocal(context.Background(), root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	stream := func() {
		if err := d.Stream(context.Background(), Query{}, func(*Sample) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	stream() // warm the buffer pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stream()
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
}

// TestStreamMemoryBounded checks that allocation per row does not grow with the number of
// rows, and stays below the size of one row's audio: a reader that copied each row's audio
// (or held a row group) would allocate at least that much per row. The figure itself varies
// with page and decompression buffer reuse, so only these two bounds are checked.
func TestStreamMemoryBounded(t *testing.T) {
	small, large := allocatedPerRow(t, 4), allocatedPerRow(t, 16)
	t.Logf("allocated per 10 s row: %.0f bytes (4 rows), %.0f bytes (16 rows); audio is %d bytes", small, large, 160000*8)
	if large > 1.25*small+4096 {
		t.Errorf("allocation per row grows with rows: %.0f → %.0f bytes", small, large)
	}
	if large >= 160000*8 {
		t.Errorf("%.0f bytes allocated per row: audio is being copied around", large)
	}
}

func BenchmarkStreamAudio(b *testing.B) {
	for _, l := range []layout{layouts[0], {"small pages", false, []parquet.WriterOption{parquet.PageBufferSize(64 << 10)}}} {
		b.Run(l.name, func(b *testing.B) {
			const n = 16
			root := b.TempDir()
			if err := writeParquet(filepath.Join(root, "big.parquet"), yieldAll(bigRows(n)), 4, l.dict, l.opts...); err != nil {
				b.Fatal(err)
			}
			d, err := OpenLocal(context.Background(), root, "*.parquet")
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n * 160000 * 8)
			b.ReportAllocs()
			for b.Loop() {
				var sum float64
				err := d.Stream(context.Background(), Query{}, func(s *Sample) error { sum += s.Audio[len(s.Audio)/2]; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
