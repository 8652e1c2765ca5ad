package dataset

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDecodeVsDisk measures, in the same run, the rate of decoding the audio of a
// Parquet file (MB/s of float64 samples delivered by Stream, footer and small columns
// included) against the rate of simply reading the same file (io.Copy to io.Discard, MB/s
// of file bytes). Both read from the page cache after a warm-up, or, cold, from the device
// after the file's pages are dropped from the cache before every read.
func BenchmarkDecodeVsDisk(b *testing.B) {
	const rows, samples = 48, 160000 // 10 s at 16 kHz
	for _, c := range []struct {
		rg   int
		cold bool
	}{{8, false}, {48, false}, {8, true}} {
		rg := c.rg
		b.Run(fmt.Sprintf("rowgroup=%d/cold=%v", rg, c.cold), func(b *testing.B) {
			root := b.TempDir()
			name := filepath.Join(root, "big.parquet")
			if err := WriteParquet(name, yieldAll(bigRows(rows)), rg); err != nil {
				b.Fatal(err)
			}
			st, _ := os.Stat(name)
			drop := func() {
				if c.cold {
					dropCache(b, name)
				}
			}
			disk := func() time.Duration {
				drop()
				start := time.Now()
				f, err := os.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, f); err != nil {
					b.Fatal(err)
				}
				f.Close()
				return time.Since(start)
			}
			decode := func() time.Duration {
				drop()
				start := time.Now()
				d, err := OpenLocal(context.Background(), root, "*.parquet")
				if err != nil {
					b.Fatal(err)
				}
				var sum float64
				err = d.Stream(context.Background(), Query{}, func(s *Sample) error {
					if s.Err != nil {
						return s.Err
					}
					sum += s.Audio[len(s.Audio)/2]
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				d.Close()
				return time.Since(start)
			}
			disk()
			decode()
			var td, tp time.Duration
			b.SetBytes(rows * samples * 8)
			for b.Loop() {
				td += disk()
				tp += decode()
			}
			n := float64(b.N)
			diskMBs := float64(st.Size()) * n / td.Seconds() / 1e6
			decMBs := float64(rows*samples*8) * n / tp.Seconds() / 1e6
			b.ReportMetric(diskMBs, "disk-MB/s")
			b.ReportMetric(decMBs, "decode-MB/s")
			b.ReportMetric(100*decMBs/diskMBs, "%-of-disk")
		})
	}
}

// BenchmarkStreamRows reports the peak live heap while streaming one task of many rows
// (BEANS_BENCH_ROWS rows, default 20,000, of BEANS_BENCH_SAMPLES samples, default 1,600,
// in row groups of 100 rows), with the largest audio column chunk for comparison.
func BenchmarkStreamRows(b *testing.B) {
	n, samples := envInt("BEANS_BENCH_ROWS", 20000), envInt("BEANS_BENCH_SAMPLES", 1600)
	name := filepath.Join(b.TempDir(), "rows.parquet")
	if err := WriteParquet(name, yieldAll(taskRows([]string{"cbi"}, n, samples, true)), 100); err != nil {
		b.Fatal(err)
	}
	var chunk int64
	for _, r := range audioRanges(b, name) {
		chunk = max(chunk, r[1])
	}
	var peak, meta uint64
	b.SetBytes(int64(n * samples * 8))
	for b.Loop() {
		p, m, rows := streamPeak(b, name, max(n/40, 1))
		if rows != n {
			b.Fatalf("%d rows", rows)
		}
		peak, meta = max(peak, p), m
	}
	b.ReportMetric(float64(peak)/1e6, "peak-live-MB")
	b.ReportMetric(float64(meta)/1e6, "footer-live-MB")
	b.ReportMetric(float64(chunk)/1e6, "audio-chunk-MB")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
