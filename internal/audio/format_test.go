package audio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestFloat32WAV(t *testing.T) {
	samples := []float64{0, 0.5, -0.5, 1, -1, 0.123456789, math.NaN(), math.Inf(1), math.Inf(-1), 1.5, -2}
	want := []float64{0, 0.5, -0.5, 1, -1, float64(float32(0.123456789)), 0, 1, -1, 1, -1} // DecodeWAV clips to [-1,1]
	raw := []float32{0, 0.5, -0.5, 1, -1, 0.123456789, 0, 1, -1, 1.5, -2}                  // as stored: finite values not clipped
	b := AppendWAVFloat32([]byte("prefix"), samples, 22050)
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("prefix lost")
	}
	b = b[len("prefix"):]
	if len(b) != Float32.Size(len(samples)) || len(b) != 58+4*len(samples) {
		t.Fatalf("%d bytes, Size says %d", len(b), Float32.Size(len(samples)))
	}
	le := binary.LittleEndian
	header := []struct {
		name      string
		off, size int
		want      uint32
	}{
		{"RIFF size", 4, 4, uint32(len(b) - 8)},
		{"fmt size", 16, 4, 18},
		{"format", 20, 2, 3},
		{"channels", 22, 2, 1},
		{"rate", 24, 4, 22050},
		{"byte rate", 28, 4, 4 * 22050},
		{"block align", 32, 2, 4},
		{"bits", 34, 2, 32},
		{"cbSize", 36, 2, 0},
		{"fact size", 42, 4, 4},
		{"fact frames", 46, 4, uint32(len(samples))},
		{"data size", 54, 4, uint32(4 * len(samples))},
	}
	for _, h := range header {
		got := uint32(le.Uint16(b[h.off:]))
		if h.size == 4 {
			got = le.Uint32(b[h.off:])
		}
		if got != h.want {
			t.Errorf("%s = %d, want %d", h.name, got, h.want)
		}
	}
	if string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[38:42]) != "fact" || string(b[50:54]) != "data" {
		t.Errorf("chunk ids: %q", b[:58])
	}
	for i, r := range raw {
		if got := math.Float32frombits(le.Uint32(b[58+4*i:])); got != r {
			t.Errorf("stored sample %d = %v, want %v", i, got, r)
		}
	}
	dec, rate, err := DecodeWAV(b)
	if err != nil || rate != 22050 {
		t.Fatalf("DecodeWAV: %v, rate %d", err, rate)
	}
	for i := range want {
		if dec[i] != want[i] {
			t.Errorf("decoded sample %d = %v, want %v", i, dec[i], want[i])
		}
	}
}

func TestBase64WAVFormats(t *testing.T) {
	for _, f := range []WAVFormat{PCM16, Float32} {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 767, 768, 769, 770, 771, 2000, 16000} {
			samples := make([]float64, n)
			for i := range samples {
				samples[i] = math.Sin(float64(i) * 0.37)
			}
			wav := AppendWAVFormat(nil, samples, 16000, f)
			if len(wav) != f.Size(n) {
				t.Errorf("%v %d: %d bytes, Size %d", f, n, len(wav), f.Size(n))
			}
			want := "x" + base64.StdEncoding.EncodeToString(wav)
			if got := string(AppendBase64WAVFormat([]byte("x"), samples, 16000, f)); got != want {
				t.Errorf("%v %d samples: base64 differs from encoding the WAV", f, n)
			}
			if f.Base64Size(n) != len(want)-1 {
				t.Errorf("%v %d: Base64Size %d, want %d", f, n, f.Base64Size(n), len(want)-1)
			}
		}
	}
}

func TestParseWAVFormat(t *testing.T) {
	tests := []struct {
		in   string
		want WAVFormat
		err  bool
	}{
		{"pcm16", PCM16, false}, {"PCM", PCM16, false}, {"int16", PCM16, false},
		{"float32", Float32, false}, {" Float ", Float32, false}, {"f32", Float32, false},
		{"mp3", 0, true}, {"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseWAVFormat(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseWAVFormat(%q) = %v, %v", tt.in, got, err)
		}
		if !tt.err {
			if back, _ := ParseWAVFormat(got.String()); back != got {
				t.Errorf("%v does not round-trip through String", got)
			}
		}
	}
}

func TestWriteWAVFile(t *testing.T) {
	dir := t.TempDir()
	samples := []float64{0, 0.25, -0.25, 0.5}
	tests := []struct {
		name   string
		format WAVFormat
		rate   int
		err    bool
	}{
		{"a.wav", PCM16, 16000, false},
		{"b.wav", Float32, 48000, false},
		{"c.wav", PCM16, 0, true},
		{"d.wav", WAVFormat(7), 16000, true},
		{"missing/e.wav", PCM16, 16000, true},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		err := WriteWAVFile(path, samples, tt.rate, tt.format)
		if tt.err {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
			if _, err := os.Stat(path); err == nil {
				t.Errorf("%s: file written despite the error", tt.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, AppendWAVFormat(nil, samples, tt.rate, tt.format)) {
			t.Errorf("%s: contents differ from AppendWAVFormat", tt.name)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", tt.name, st.Mode())
		}
		got, rate, err := DecodeWAV(b)
		if err != nil || rate != tt.rate || len(got) != len(samples) {
			t.Errorf("%s: decodes to %d samples at %d: %v", tt.name, len(got), rate, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d entries in the directory, want the 2 files and no temporary ones", len(entries))
	}
}

func BenchmarkAppendBase64WAVFloat32(b *testing.B) {
	clip := clip10s()
	buf := make([]byte, 0, Float32.Base64Size(len(clip)))
	b.SetBytes(int64(8 * len(clip)))
	for b.Loop() {
		buf = AppendBase64WAVFloat32(buf[:0], clip, 16000)
	}
}
