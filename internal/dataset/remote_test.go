package dataset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// countingReaderAt records every ReadAt, as a Hub client would see range requests.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64 // offset, length
	bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads = append(c.reads, [2]int64{off, int64(len(p))})
	c.bytes += int64(len(p))
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func (c *countingReaderAt) reset() {
	c.mu.Lock()
	c.reads, c.bytes = nil, 0
	c.mu.Unlock()
}

// openCounting opens a local file as a one-file Dataset whose reads are counted.
func openCounting(t testing.TB, name string) (*Dataset, *countingReaderAt) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	c := &countingReaderAt{r: f}
	d, err := Open(context.Background(), []File{{Name: "repo@rev:" + filepath.Base(name), Size: st.Size(),
		Open: func(context.Context) (io.ReaderAt, error) { return c, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

// taskRows makes rows of the given tasks, each clip of samples samples. In blocks, each
// task's rows are contiguous (as in BEANS-Zero); otherwise tasks alternate row by row.
func taskRows(tasks []string, perTask, samples int, blocks bool) []demo.Row {
	rows := make([]demo.Row, 0, len(tasks)*perTask)
	for i := range len(tasks) * perTask {
		task := tasks[i%len(tasks)]
		if blocks {
			task = tasks[i/perTask]
		}
		a := make([]float64, samples)
		for j := range a {
			a[j] = math.Round(math.Sin(float64(j)*0.01*float64(i%17+1))*20000) / 32767
		}
		rows = append(rows, demo.Row{
			ID: fmt.Sprintf("row-%05d", i), DatasetName: task, Task: "detection",
			Instruction: "<Audio><AudioHere></Audio> Which?", InstructionText: "Which?",
			Output: fmt.Sprintf("label %d", i%5), Metadata: `{"sample_rate": 16000}`, Audio: a,
		})
	}
	return rows
}

// audioRanges returns the byte range of the audio column chunk of each row group.
func audioRanges(t testing.TB, name string) [][2]int64 {
	t.Helper()
	d, _ := openCounting(t, name)
	var out [][2]int64
	err := d.withFile(context.Background(), d.files[0], func(f *parquetFile) error {
		leaf, err := f.audioColumn()
		if err != nil {
			return err
		}
		for i := range f.RowGroups() {
			off, n, err := f.chunkRange(i, leaf.index, "audio")
			if err != nil {
				return err
			}
			out = append(out, [2]int64{off, n})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadPattern(t *testing.T) {
	tasks := []string{"alpha", "beta", "gamma"}
	dir := t.TempDir()
	const perTask, rgRows = 200, 10
	blocks := filepath.Join(dir, "blocks.parquet")
	if err := WriteParquet(blocks, yieldAll(taskRows(tasks, perTask, 8000, true)), rgRows); err != nil {
		t.Fatal(err)
	}
	mixed := filepath.Join(dir, "mixed.parquet")
	if err := WriteParquet(mixed, yieldAll(taskRows(tasks, perTask, 8000, false)), rgRows); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		file         string
		q            Query
		wantRows     int
		wantAudioRGs []int   // row groups whose audio is read
		maxFraction  float64 // of the file's bytes read by the stream (after the footer)
	}{
		{"one whole task", blocks, Query{DatasetNames: []string{"beta"}}, perTask, seq(20, 40), 0.34},
		{"limit 5", blocks, Query{DatasetNames: []string{"gamma"}, Limit: 5}, 5, []int{40}, 0.02},
		{"limit 5 any task", blocks, Query{Limit: 5}, 5, []int{0}, 0.02},
		{"limit 15 spans row groups", blocks, Query{DatasetNames: []string{"alpha"}, Limit: 15}, 15, []int{0, 1}, 0.04},
		{"limit 5 interleaved tasks", mixed, Query{DatasetNames: []string{"beta"}, Limit: 5}, 5, []int{0, 1}, 0.04},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := os.Stat(tt.file)
			size := st.Size()
			ranges := audioRanges(t, tt.file)
			d, c := openCounting(t, tt.file)

			// Opening costs the footer: at most 2 reads, the first of the last ~1 MB.
			if n, err := d.Count(ctx, Query{}); err != nil || n != 3*perTask {
				t.Fatalf("Count = %d, %v", n, err)
			}
			footer := c.bytes
			if len(c.reads) > 2 || len(c.reads) == 0 || c.reads[0] != [2]int64{size - min(footerRead, size), min(footerRead, size)} {
				t.Fatalf("footer reads %v (file of %d bytes), want one of the last %d bytes", c.reads, size, footerRead)
			}
			c.reset()

			got := 0
			err := d.Stream(ctx, tt.q, func(s *Sample) error {
				got++
				if s.Err != nil || len(s.Audio) != 8000 || (len(tt.q.DatasetNames) > 0 && !slices.Contains(tt.q.DatasetNames, s.DatasetName)) {
					t.Errorf("sample %s: %s, %d samples, %v", s.ID, s.DatasetName, len(s.Audio), s.Err)
				}
				return nil
			})
			if err != nil || got != tt.wantRows {
				t.Fatalf("Stream = %v with %d rows, want %d", err, got, tt.wantRows)
			}
			for rg, r := range ranges {
				var hits [][2]int64
				for _, rd := range c.reads {
					if rd[0] < r[0]+r[1] && r[0] < rd[0]+rd[1] {
						hits = append(hits, rd)
					}
				}
				if slices.Contains(tt.wantAudioRGs, rg) {
					if len(hits) != 1 || hits[0] != r {
						t.Errorf("row group %d: audio chunk %v read by %v, want one read of exactly it", rg, r, hits)
					}
				} else if len(hits) > 0 {
					t.Errorf("row group %d holds no selected row, but its audio chunk %v was read by %v", rg, r, hits)
				}
			}
			frac := float64(c.bytes) / float64(size)
			t.Logf("%s: %d reads, %d bytes (%.2f%%), + footer %d, of %d bytes", tt.name, len(c.reads), c.bytes, 100*frac, footer, size)
			if frac > tt.maxFraction {
				t.Errorf("read %.1f%% of the file, want at most %.1f%%", 100*frac, 100*tt.maxFraction)
			}
		})
	}
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// TestLargeChunkWindows checks that an audio chunk above maxChunkRead is read in windows,
// only as far as the selected rows need.
func TestLargeChunkWindows(t *testing.T) {
	name := filepath.Join(t.TempDir(), "one-group.parquet")
	rows := taskRows([]string{"alpha", "beta"}, 50, 32000, true)
	if err := WriteParquet(name, yieldAll(rows), 1000); err != nil {
		t.Fatal(err)
	}
	r := audioRanges(t, name)[0]
	defer func(v int64) { maxChunkRead = v }(maxChunkRead)
	maxChunkRead = r[1] / 10
	for _, tt := range []struct {
		q        Query
		rows     int
		maxBytes int64
	}{
		{Query{Limit: 3}, 3, 2 * maxChunkRead},
		{Query{DatasetNames: []string{"beta"}}, 50, r[1]},
	} {
		d, c := openCounting(t, name)
		if _, err := d.Count(context.Background(), Query{}); err != nil {
			t.Fatal(err)
		}
		c.reset()
		var got []string
		err := d.Stream(context.Background(), tt.q, func(s *Sample) error {
			if s.Err != nil || !sameBits(s.Audio, rows[s.Row].Audio) {
				t.Errorf("row %d differs: %v", s.Row, s.Err)
			}
			got = append(got, s.ID)
			return nil
		})
		if err != nil || len(got) != tt.rows {
			t.Fatalf("%+v: %v, %d rows", tt.q, err, len(got))
		}
		var audioBytes int64
		for _, rd := range c.reads {
			if rd[0] >= r[0] && rd[0] < r[0]+r[1] {
				audioBytes += rd[1]
				if rd[1] > maxChunkRead {
					t.Errorf("read of %d bytes, over the window of %d", rd[1], maxChunkRead)
				}
			}
		}
		if audioBytes > tt.maxBytes {
			t.Errorf("%+v: %d audio bytes read, want at most %d", tt.q, audioBytes, tt.maxBytes)
		}
	}
}

// corrupt writes a copy of src with edit applied.
func corrupt(t *testing.T, src string, edit func([]byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "shard-00000.parquet")
	if err := os.WriteFile(dst, edit(slices.Clone(b)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	if err := WriteParquet(good, yieldAll(taskRows([]string{"alpha", "beta", "gamma"}, 8, 500, true)), 4); err != nil {
		t.Fatal(err)
	}
	ranges := audioRanges(t, good)
	var dsRanges [][2]int64 // dataset_name chunks
	{
		d, _ := openCounting(t, good)
		d.withFile(context.Background(), d.files[0], func(f *parquetFile) error {
			col, _ := f.stringColumn("dataset_name")
			for i := range f.RowGroups() {
				off, n, _ := f.chunkRange(i, col, "dataset_name")
				dsRanges = append(dsRanges, [2]int64{off, n})
			}
			return nil
		})
	}
	garble := func(r [2]int64) func([]byte) []byte {
		return func(b []byte) []byte {
			for i := r[0]; i < r[0]+min(r[1], 64); i++ {
				b[i] = 0xff
			}
			return b
		}
	}
	tests := []struct {
		name     string
		file     string
		q        Query
		want     []string // in the error
		rgErr    int      // FileError.RowGroup
		before   int      // rows delivered before the error
		otherOK  Query    // a query that still succeeds on the same file (zero: none)
		hasOther bool
	}{
		{"truncated", corrupt(t, good, func(b []byte) []byte { return b[:len(b)/2] }), Query{},
			[]string{"shard-00000.parquet", "truncated or corrupt"}, -1, 0, Query{}, false},
		{"empty file", corrupt(t, good, func([]byte) []byte { return nil }), Query{},
			[]string{"shard-00000.parquet", "too small"}, -1, 0, Query{}, false},
		{"not parquet", corrupt(t, good, func([]byte) []byte { return []byte("<html>rate limited</html>") }), Query{},
			[]string{"shard-00000.parquet", "not a readable Parquet file"}, -1, 0, Query{}, false},
		{"corrupt audio of row group 3", corrupt(t, good, garble(ranges[3])), Query{},
			[]string{"shard-00000.parquet row group 3 column audio"}, 3, 12, Query{DatasetNames: []string{"alpha"}}, true},
		{"corrupt dataset_name of row group 4", corrupt(t, good, garble(dsRanges[4])), Query{DatasetNames: []string{"gamma"}},
			[]string{"shard-00000.parquet row group 4 column dataset_name"}, 4, 0, Query{DatasetNames: []string{"alpha"}}, true},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := OpenLocal(ctx, filepath.Dir(tt.file), "*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 0
			err = d.Stream(ctx, tt.q, func(*Sample) error { n++; return nil })
			var fe *FileError
			if err == nil || !errors.As(err, &fe) || fe.RowGroup != tt.rgErr || fe.File != tt.file {
				t.Fatalf("err = %v, want a FileError of %s, row group %d", err, tt.file, tt.rgErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
			if n != tt.before {
				t.Errorf("%d rows before the error, want %d", n, tt.before)
			}
			if tt.hasOther {
				if err := d.Stream(ctx, tt.otherOK, func(*Sample) error { return nil }); err != nil {
					t.Errorf("other task of the same file: %v", err)
				}
			}
		})
	}
	// The size a listing gives may be wrong.
	st, _ := os.Stat(good)
	for _, size := range []int64{st.Size() + 100, st.Size() - 100} {
		d, err := Open(ctx, []File{{Name: "hub:good.parquet", Size: size, Open: func(context.Context) (io.ReaderAt, error) { return os.Open(good) }}})
		if err != nil {
			t.Fatal(err)
		}
		err = d.Stream(ctx, Query{}, func(*Sample) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "hub:good.parquet") {
			t.Errorf("size %d (real %d): err = %v, want one naming the file", size, st.Size(), err)
		}
		d.Close()
	}
	// An Open that fails.
	d, _ := Open(ctx, []File{{Name: "hub:gone.parquet", Size: 100, Open: func(context.Context) (io.ReaderAt, error) { return nil, errors.New("404 not found") }}})
	if _, err := d.Count(ctx, Query{}); err == nil || !strings.Contains(err.Error(), "hub:gone.parquet") || !strings.Contains(err.Error(), "404") {
		t.Errorf("failed open: %v", err)
	}
}

// Rows with a column missing or of the wrong type.
type (
	noMetadataRow struct {
		ID              string    `parquet:"id,optional"`
		DatasetName     string    `parquet:"dataset_name,optional"`
		Task            string    `parquet:"task,optional"`
		Audio           []float64 `parquet:"audio,optional,list"`
		Instruction     string    `parquet:"instruction,optional"`
		InstructionText string    `parquet:"instruction_text,optional"`
		Output          string    `parquet:"output,optional"`
	}
	intOutputRow struct {
		ID              string    `parquet:"id,optional"`
		DatasetName     string    `parquet:"dataset_name,optional"`
		Task            string    `parquet:"task,optional"`
		Audio           []float64 `parquet:"audio,optional,list"`
		Metadata        string    `parquet:"metadata,optional"`
		Instruction     string    `parquet:"instruction,optional"`
		InstructionText string    `parquet:"instruction_text,optional"`
		Output          int64     `parquet:"output,optional"`
	}
	floatAudioRow struct {
		ID              string    `parquet:"id,optional"`
		DatasetName     string    `parquet:"dataset_name,optional"`
		Task            string    `parquet:"task,optional"`
		Audio           []float32 `parquet:"audio,optional,list"`
		Metadata        string    `parquet:"metadata,optional"`
		Instruction     string    `parquet:"instruction,optional"`
		InstructionText string    `parquet:"instruction_text,optional"`
		Output          string    `parquet:"output,optional"`
	}
	bytesAudioRow struct {
		ID              string `parquet:"id,optional"`
		DatasetName     string `parquet:"dataset_name,optional"`
		Task            string `parquet:"task,optional"`
		Audio           []byte `parquet:"audio,optional"`
		Metadata        string `parquet:"metadata,optional"`
		Instruction     string `parquet:"instruction,optional"`
		InstructionText string `parquet:"instruction_text,optional"`
		Output          string `parquet:"output,optional"`
	}
	noAudioRow struct {
		ID              string `parquet:"id,optional"`
		DatasetName     string `parquet:"dataset_name,optional"`
		Task            string `parquet:"task,optional"`
		Metadata        string `parquet:"metadata,optional"`
		Instruction     string `parquet:"instruction,optional"`
		InstructionText string `parquet:"instruction_text,optional"`
		Output          string `parquet:"output,optional"`
	}
	itemAudioRow struct { // the list.item layout of older writers
		ID          string `parquet:"id,optional"`
		DatasetName string `parquet:"dataset_name,optional"`
		Task        string `parquet:"task,optional"`
		Audio       *struct {
			List []struct {
				Item float64 `parquet:"item"`
			} `parquet:"list"`
		} `parquet:"audio,optional"`
		Metadata        string `parquet:"metadata,optional"`
		Instruction     string `parquet:"instruction,optional"`
		InstructionText string `parquet:"instruction_text,optional"`
		Output          string `parquet:"output,optional"`
	}
)

func writeRows[T any](t *testing.T, rows ...T) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "odd.parquet")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := parquet.NewGenericWriter[T](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestColumns(t *testing.T) {
	meta := `{"sample_rate": 8000}`
	item := itemAudioRow{ID: "i", DatasetName: "x", Metadata: meta, Output: "o"}
	item.Audio = &struct {
		List []struct {
			Item float64 `parquet:"item"`
		} `parquet:"list"`
	}{}
	for _, v := range []float64{0.5, -0.5, 0.25} {
		item.Audio.List = append(item.Audio.List, struct {
			Item float64 `parquet:"item"`
		}{v})
	}
	tests := []struct {
		name      string
		file      string
		want      []string // in Stream's error; nil: no error
		labelsErr bool     // Labels (dataset_name and output only) fails too
	}{
		{"no metadata", writeRows(t, noMetadataRow{ID: "a", DatasetName: "x", Audio: []float64{1}}), []string{`column metadata`, "no such column", "odd.parquet"}, false},
		{"output is int64", writeRows(t, intOutputRow{ID: "a", DatasetName: "x", Audio: []float64{1}, Metadata: meta, Output: 3}), []string{`column output`, "INT64", "want a string", "odd.parquet"}, true},
		{"audio is list<float>", writeRows(t, floatAudioRow{ID: "a", DatasetName: "x", Audio: []float32{1}, Metadata: meta}), []string{`column audio`, "FLOAT", "want a list of DOUBLE", "odd.parquet"}, false},
		{"audio is bytes", writeRows(t, bytesAudioRow{ID: "a", DatasetName: "x", Audio: []byte{1}, Metadata: meta}), []string{`column audio`, "want a list of DOUBLE", "odd.parquet"}, false},
		{"no audio", writeRows(t, noAudioRow{ID: "a", DatasetName: "x", Metadata: meta}), []string{`column audio`, "no such column", "odd.parquet"}, false},
		{"audio list.item", writeRows(t, item), nil, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := OpenLocal(ctx, filepath.Dir(tt.file), "*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			var got []*Sample
			err = d.Stream(ctx, Query{}, func(s *Sample) error {
				c := *s
				c.Audio = slices.Clone(s.Audio)
				got = append(got, &c)
				return nil
			})
			if tt.want == nil {
				if err != nil || len(got) != 1 || got[0].Err != nil || !slices.Equal(got[0].Audio, []float64{0.5, -0.5, 0.25}) || got[0].SampleRate != 8000 {
					t.Fatalf("Stream = %v, %+v", err, got)
				}
			} else {
				var fe *FileError
				if err == nil || !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a FileError", err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to say %q", err, w)
					}
				}
			}
			_, err = d.Labels(ctx, Query{DatasetNames: []string{"x"}}, false, nil)
			if (err != nil) != tt.labelsErr {
				t.Errorf("Labels: %v", err)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	root := t.TempDir()
	rows := taskRows([]string{"zf-indiv", "zf-indv", "esc50"}, 3, 10, true)
	if err := WriteParquet(filepath.Join(root, "s.parquet"), yieldAll(rows), 4); err != nil {
		t.Fatal(err)
	}
	d, err := OpenLocal(context.Background(), root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		names []string
		want  int
	}{
		{[]string{"zf-indiv"}, 6},
		{[]string{"zf-indv"}, 6},
		{[]string{"zf-indv", "zf-indiv"}, 6},
		{[]string{"esc50"}, 3},
		{[]string{"zf"}, 0},
	} {
		n, err := d.Count(context.Background(), Query{DatasetNames: tt.names})
		if err != nil || n != tt.want {
			t.Errorf("%q: Count = %d, %v; want %d", tt.names, n, err, tt.want)
		}
		m := 0
		d.Stream(context.Background(), Query{DatasetNames: tt.names}, func(*Sample) error { m++; return nil })
		if m != tt.want {
			t.Errorf("%q: Stream delivered %d, want %d", tt.names, m, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	outputs := map[string][]string{
		"watkins":  {"Beluga, White Whale", "Fin, Finback Whale", "Humpback Whale", "Beluga, White Whale"},
		"rfcx":     {"None", "species a, species b", "species b", "None", "Beluga, White Whale, species c", " species d ,species a"},
		"gibbons":  {"None", "None"},
		"captions": {"a bird, singing"},
	}
	var rows []demo.Row
	for _, task := range []string{"watkins", "rfcx", "gibbons", "captions"} {
		for i, o := range outputs[task] {
			rows = append(rows, demo.Row{ID: fmt.Sprintf("%s-%d", task, i), DatasetName: task, Output: o, Metadata: "{}", Audio: []float64{0}})
		}
	}
	root := t.TempDir()
	if err := WriteParquet(filepath.Join(root, "s.parquet"), yieldAll(rows), 3); err != nil {
		t.Fatal(err)
	}
	d, err := OpenLocal(context.Background(), root, "*.parquet")
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"Beluga, White Whale", "Fin, Finback Whale"}
	tests := []struct {
		task      string
		detection bool
		known     []string
		want      []string
	}{
		{"watkins", false, nil, []string{"Beluga, White Whale", "Fin, Finback Whale", "Humpback Whale"}},
		{"rfcx", true, nil, []string{"species a", "species b", "Beluga", "White Whale", "species c", "species d"}},
		{"rfcx", true, known, []string{"species a", "species b", "Beluga, White Whale", "species c", "species d"}},
		{"rfcx", true, []string{"Beluga,White Whale"}, []string{"species a", "species b", "Beluga,White Whale", "species c", "species d"}},
		{"gibbons", true, nil, nil},
		{"captions", false, nil, []string{"a bird, singing"}},
		{"missing", true, nil, nil},
	}
	for _, tt := range tests {
		// A limit must not change the vocabulary.
		got, err := d.Labels(context.Background(), Query{DatasetNames: []string{tt.task}, Limit: 1}, tt.detection, tt.known)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s detection=%v known=%q: %q, %v; want %q", tt.task, tt.detection, tt.known, got, err, tt.want)
		}
	}
	splits := []struct {
		in   string
		want []string
	}{
		{"Beluga, White Whale, Fin, Finback Whale", []string{"Beluga, White Whale", "Fin, Finback Whale"}},
		{"Fin, Beluga, White Whale", []string{"Fin", "Beluga, White Whale"}},
		{"None", []string{"None"}},
		{" a ,, b ", []string{"a", "b"}},
		{"", nil},
	}
	for _, s := range splits {
		if got := SplitLabels(s.in, known); !slices.Equal(got, s.want) {
			t.Errorf("SplitLabels(%q) = %q, want %q", s.in, got, s.want)
		}
	}
}

// streamPeak streams a file of rows and returns the peak live heap above the level of the
// open dataset, measured after a GC every every rows, and the live heap of the open dataset
// (its parsed footer).
func streamPeak(t testing.TB, name string, every int) (peak, meta uint64, rows int) {
	d, err := OpenLocal(context.Background(), filepath.Dir(name), filepath.Base(name))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	// The footer's metadata, parsed, is held while the dataset is open: it grows with the
	// number of row groups of a file, not with what is streamed. Count it apart.
	if _, err := d.Count(context.Background(), Query{}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	if base > before {
		meta = base - before
	}
	err = d.Stream(context.Background(), Query{}, func(s *Sample) error {
		if s.Err != nil {
			return s.Err
		}
		if rows++; rows%every == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base {
				peak = max(peak, ms.HeapAlloc-base)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return peak, meta, rows
}

// TestMemory20000Rows streams one task of 20,000 short rows and checks that the live heap
// stays within a small multiple of one row group's audio column chunk, and does not grow
// with the number of rows (2,000 rows peak alike).
func TestMemory20000Rows(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 rows")
	}
	dir := t.TempDir()
	const samples, rgRows = 1600, 100 // 0.1 s at 16 kHz; 1.28 MB of audio per row group
	peaks := map[int]uint64{}
	var chunk int64
	for _, n := range []int{2000, 20000} {
		name := filepath.Join(dir, fmt.Sprintf("rows-%d.parquet", n))
		if err := WriteParquet(name, yieldAll(taskRows([]string{"cbi"}, n, samples, true)), rgRows); err != nil {
			t.Fatal(err)
		}
		for _, r := range audioRanges(t, name) {
			chunk = max(chunk, r[1])
		}
		peak, meta, rows := streamPeak(t, name, 250)
		if rows != n {
			t.Fatalf("%d rows streamed, want %d", rows, n)
		}
		// The parsed footer grows with the number of row groups of a file (documented); the
		// bound is on what streaming itself holds.
		peaks[n] = peak - min(peak, meta)
		t.Logf("%d rows of %d samples, row groups of %d (audio chunk ≤ %d bytes, footer %d bytes, parsed %.2f MB): peak live heap while streaming %.2f MB", n, samples, rgRows, chunk, footerLen(t, name), float64(meta)/1e6, float64(peak)/1e6)
	}
	if limit := uint64(4*chunk) + 2<<20; peaks[20000] > limit {
		t.Errorf("peak live heap beyond the parsed footer %d bytes for 20,000 rows, want at most 4 audio chunks + 2 MiB = %d", peaks[20000], limit)
	}
	if peaks[20000] > peaks[2000]+uint64(chunk) {
		t.Errorf("peak live heap beyond the parsed footer grows with rows: %d (2,000 rows) → %d (20,000 rows)", peaks[2000], peaks[20000])
	}
}

// footerLen returns the length of a Parquet file's footer.
func footerLen(t testing.TB, name string) int64 {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return int64(binary.LittleEndian.Uint32(b[len(b)-8:]))
}
