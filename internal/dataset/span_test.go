package dataset

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

// A task that starts deep in a row group: only the pages holding its selected rows are read
// (found by walking the page headers), whatever the page layout, and the samples are exactly
// the rows written.
func TestSpanReadsOnlyTheSelectedRows(t *testing.T) {
	defer func(v int64) { spanMinSkip = v }(spanMinSkip)
	spanMinSkip = 64 << 10
	rows := taskRows([]string{"alpha", "beta", "gamma"}, 20, 32000, true) // 256 KB of audio per row
	for _, tt := range []struct {
		name    string
		dict    bool
		opts    []parquet.WriterOption
		refused bool
	}{
		{"v2 pages of 64 KiB", false, []parquet.WriterOption{parquet.PageBufferSize(64 << 10)}, false},
		{"v2 pages of 1 MiB", false, []parquet.WriterOption{parquet.PageBufferSize(1 << 20)}, false},
		{"v1 pages of 64 KiB (rows span pages)", false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(64 << 10)}, false},
		{"v1 pages of 1 MiB (rows share pages)", false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(1 << 20)}, false},
		{"v1 uncompressed", false, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(64 << 10), parquet.Compression(&parquet.Uncompressed)}, false},
		{"dictionary pages", true, []parquet.WriterOption{parquet.PageBufferSize(64 << 10)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "f.parquet")
			if err := writeParquet(name, yieldAll(rows), 60, tt.dict, tt.opts...); err != nil {
				t.Fatal(err)
			}
			chunk := audioRanges(t, name)[0]
			for _, q := range []struct {
				q        Query
				from, to int // the rows expected
				maxFrac  float64
			}{
				{Query{DatasetNames: []string{"gamma"}, Limit: 3}, 40, 43, 0.15},
				{Query{DatasetNames: []string{"beta"}, Limit: 2}, 20, 22, 0.15},
				{Query{DatasetNames: []string{"gamma"}}, 40, 60, 0.45},
			} {
				d, c := openCounting(t, name)
				if _, err := d.Count(context.Background(), Query{}); err != nil {
					t.Fatal(err)
				}
				c.reset()
				spans, refused := spanStats.spans.Load(), spanStats.refused.Load()
				var got []int
				err := d.Stream(context.Background(), q.q, func(s *Sample) error {
					if s.Err != nil || !sameBits(s.Audio, rows[s.Row].Audio) || s.ID != rows[s.Row].ID {
						t.Errorf("%+v: row %d differs: %v", q.q, s.Row, s.Err)
					}
					got = append(got, int(s.Row))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != q.to-q.from || got[0] != q.from {
					t.Fatalf("%+v: rows %v, want %d..%d", q.q, got, q.from, q.to-1)
				}
				var audioBytes int64
				for _, rd := range c.reads {
					if rd[0] >= chunk[0] && rd[0] < chunk[0]+chunk[1] {
						audioBytes += rd[1]
					}
				}
				frac := float64(audioBytes) / float64(chunk[1])
				t.Logf("%+v: %.1f%% of the chunk in %d reads", q.q, 100*frac, len(c.reads))
				if tt.refused {
					if spanStats.refused.Load() == refused {
						t.Errorf("%+v: dictionary pages were walked", q.q)
					}
					continue
				}
				if spanStats.spans.Load() != spans+1 {
					t.Errorf("%+v: no span read (%d refused)", q.q, spanStats.refused.Load()-refused)
				}
				if frac > q.maxFrac {
					t.Errorf("%+v: read %.0f%% of the audio chunk (%d of %d bytes), want at most %.0f%%", q.q, 100*frac, audioBytes, chunk[1], 100*q.maxFrac)
				}
			}
		})
	}
}

// snappyPrefix decodes the start of any snappy block cut anywhere.
func FuzzSnappyPrefix(f *testing.F) {
	f.Add([]byte("levels levels levels and then doubles doubles doubles"), 10)
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 5000), 100)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		var c snappy.Codec
		enc, err := c.Encode(nil, data)
		if err != nil {
			t.Skip()
		}
		if cut < 0 {
			cut = -cut
		}
		cut %= len(enc) + 1
		got, err := snappyPrefix(enc[:cut])
		if err != nil {
			if cut > 0 {
				// Only the length varint may be cut.
				if _, k := binary.Uvarint(enc); cut >= k {
					t.Fatalf("cut %d of %d: %v", cut, len(enc), err)
				}
			}
			return
		}
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("cut %d of %d: decoded %d bytes that are not the data's start", cut, len(enc), len(got))
		}
		if cut == len(enc) && !bytes.Equal(got, data) {
			t.Fatalf("whole block: %d of %d bytes", len(got), len(data))
		}
	})
}

func TestSnappyPrefixRejectsGarbage(t *testing.T) {
	if _, err := snappyPrefix([]byte{10, 0x01<<2 | 1, 0xff}); err == nil { // a copy before any literal
		t.Error("a copy with nothing to copy from was accepted")
	}
}

// Damage in the audio chunk never yields wrong audio: damage in the pages the walk skips (other
// rows) is not read at all, damage in the selected rows' pages is an error, as when the chunk
// is read whole.
func TestSpanDamage(t *testing.T) {
	defer func(v int64) { spanMinSkip = v }(spanMinSkip)
	spanMinSkip = 64 << 10
	rows := taskRows([]string{"alpha", "beta", "gamma"}, 20, 32000, true)
	name := filepath.Join(t.TempDir(), "f.parquet")
	if err := writeParquet(name, yieldAll(rows), 60, false, parquet.DataPageVersion(1), parquet.PageBufferSize(64<<10)); err != nil {
		t.Fatal(err)
	}
	chunk := audioRanges(t, name)[0]
	q := Query{DatasetNames: []string{"gamma"}, Limit: 3} // rows 40–42: 67%–72% of the chunk
	for _, tt := range []struct {
		at     float64
		inSpan bool
	}{{0.1, false}, {0.5, false}, {0.675, true}, {0.69, true}, {0.71, true}} {
		pos := chunk[0] + int64(tt.at*float64(chunk[1]))
		bad := corrupt(t, name, func(b []byte) []byte {
			for k := range 64 {
				b[pos+int64(k)] ^= 0x5a
			}
			return b
		})
		d, _ := openCounting(t, bad)
		good, failed := 0, 0
		err := d.Stream(context.Background(), q, func(s *Sample) error {
			switch {
			case s.Err != nil:
				failed++
			case !sameBits(s.Audio, rows[s.Row].Audio):
				t.Errorf("damage at %.1f%%: row %d delivered with wrong audio", 100*tt.at, s.Row)
			default:
				good++
			}
			return nil
		})
		switch {
		case !tt.inSpan && (err != nil || good != 3):
			t.Errorf("damage at %.1f%% (not in the selected rows): %d good rows, %v", 100*tt.at, good, err)
		case tt.inSpan && err == nil && failed == 0:
			t.Errorf("damage at %.1f%% (in the selected rows) went unnoticed: %d good rows", 100*tt.at, good)
		}
	}
}
