package audio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// wavSpec describes a hand-built WAV file for decoder tests.
type wavSpec struct {
	format     uint16 // 1, 3 or 0xFFFE
	subFormat  uint16 // for 0xFFFE
	channels   int
	bits       int
	rate       int
	frames     []byte // raw data chunk content
	before     []byte // extra chunks before fmt
	between    []byte // extra chunks between fmt and data
	after      []byte // extra chunks after data
	truncateBy int
}

func chunk(id string, body []byte) []byte {
	b := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func (s wavSpec) build() []byte {
	var f []byte
	f = binary.LittleEndian.AppendUint16(f, s.format)
	f = binary.LittleEndian.AppendUint16(f, uint16(s.channels))
	f = binary.LittleEndian.AppendUint32(f, uint32(s.rate))
	align := s.channels * s.bits / 8
	f = binary.LittleEndian.AppendUint32(f, uint32(s.rate*align))
	f = binary.LittleEndian.AppendUint16(f, uint16(align))
	f = binary.LittleEndian.AppendUint16(f, uint16(s.bits))
	if s.format == formatExtensible {
		f = binary.LittleEndian.AppendUint16(f, 22)
		f = binary.LittleEndian.AppendUint16(f, uint16(s.bits))
		f = binary.LittleEndian.AppendUint32(f, 4) // channel mask
		f = binary.LittleEndian.AppendUint16(f, s.subFormat)
		f = append(f, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
	}
	body := []byte("WAVE")
	body = append(body, s.before...)
	body = append(body, chunk("fmt ", f)...)
	body = append(body, s.between...)
	body = append(body, chunk("data", s.frames)...)
	body = append(body, s.after...)
	out := chunk("RIFF", body)
	return out[:len(out)-s.truncateBy]
}

func le16(vs ...int16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestDecodeWAV(t *testing.T) {
	f32 := func(vs ...float32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	f64 := func(vs ...float64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
		return b
	}
	i32 := func(vs ...int32) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		return b
	}
	tests := []struct {
		name string
		spec wavSpec
		want []float64
		rate int
	}{
		{"pcm16 mono", wavSpec{format: 1, channels: 1, bits: 16, rate: 16000, frames: le16(0, 16384, -32768, 32767)},
			[]float64{0, 16384.0 / 32767, -1, 1}, 16000},
		{"pcm8", wavSpec{format: 1, channels: 1, bits: 8, rate: 8000, frames: []byte{128, 192, 0}},
			[]float64{0, 64.0 / 127, -1}, 8000},
		{"pcm24", wavSpec{format: 1, channels: 1, bits: 24, rate: 48000, frames: []byte{0, 0, 0x40, 0, 0, 0x80}},
			[]float64{4194304.0 / 8388607, -1}, 48000},
		{"pcm32", wavSpec{format: 1, channels: 1, bits: 32, rate: 44100, frames: i32(1<<30, math.MinInt32)},
			[]float64{1073741824.0 / 2147483647, -1}, 44100},
		{"float32 clipped", wavSpec{format: 3, channels: 1, bits: 32, rate: 22050, frames: f32(0.25, -2, 1.5)},
			[]float64{0.25, -1, 1}, 22050},
		{"float64 NaN", wavSpec{format: 3, channels: 1, bits: 64, rate: 32000, frames: f64(-0.125, math.NaN())},
			[]float64{-0.125, 0}, 32000},
		{"stereo downmix", wavSpec{format: 1, channels: 2, bits: 16, rate: 16000, frames: le16(16384, 0, -16384, -16384)},
			[]float64{8192.0 / 32767, -16384.0 / 32767}, 16000},
		{"extensible float 3ch", wavSpec{format: formatExtensible, subFormat: 3, channels: 3, bits: 32, rate: 96000, frames: f32(0.3, 0.3, 0.3)},
			[]float64{float64(float32(0.3))}, 96000},
		{"extensible pcm16", wavSpec{format: formatExtensible, subFormat: 1, channels: 1, bits: 16, rate: 16000, frames: le16(-16384)},
			[]float64{-16384.0 / 32767}, 16000},
		{"LIST and odd chunks", wavSpec{format: 1, channels: 1, bits: 16, rate: 16000, frames: le16(8192),
			before: chunk("JUNK", []byte{1, 2, 3}), between: chunk("LIST", []byte("INFOabcde")), after: chunk("id3 ", []byte{9})},
			[]float64{8192.0 / 32767}, 16000},
		{"empty data", wavSpec{format: 1, channels: 1, bits: 16, rate: 16000}, []float64{}, 16000},
		{"partial last frame dropped", wavSpec{format: 1, channels: 1, bits: 16, rate: 16000, frames: []byte{0, 0x40, 7}},
			[]float64{16384.0 / 32767}, 16000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rate, err := DecodeWAV(tt.spec.build())
			if err != nil {
				t.Fatal(err)
			}
			if rate != tt.rate {
				t.Errorf("rate = %d, want %d", rate, tt.rate)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples %v, want %v", len(got), got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-12 {
					t.Errorf("sample %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	good := wavSpec{format: 1, channels: 1, bits: 16, rate: 16000, frames: le16(1, 2, 3, 4)}
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "not a RIFF/WAVE"},
		{"mp3", []byte("ID3\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "not a RIFF/WAVE"},
		{"truncated data", func() []byte { s := good; s.truncateBy = 3; return s.build() }(), "truncated"},
		{"only header", []byte("RIFF\x04\x00\x00\x00WAVE"), "no fmt chunk"},
		{"no data", func() []byte { b := good.build(); return b[:len(b)-16] }(), "no data chunk"},
		{"bad bits", wavSpec{format: 1, channels: 1, bits: 12, rate: 16000, frames: le16(1)}.build(), "unsupported encoding"},
		{"alaw", wavSpec{format: 6, channels: 1, bits: 8, rate: 8000, frames: []byte{1}}.build(), "unsupported encoding"},
		{"zero channels", wavSpec{format: 1, channels: 0, bits: 16, rate: 16000, frames: le16(1)}.build(), "0 channels"},
		{"zero rate", wavSpec{format: 1, channels: 1, bits: 16, rate: 0, frames: le16(1)}.build(), "sample rate 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeWAV(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, _, err := DecodeWAV([]byte("nope")); !errors.Is(err, ErrNotWAV) {
		t.Errorf("err = %v, want ErrNotWAV", err)
	}
}

func TestDecodeWAVStreamingSize(t *testing.T) {
	b := AppendWAV(nil, []float64{0.5, -0.5}, 8000)
	binary.LittleEndian.PutUint32(b[40:], 0xFFFFFFFF)
	got, _, err := DecodeWAV(b)
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v; want 2 samples", got, err)
	}
}

func TestAppendWAV(t *testing.T) {
	tests := []struct {
		in   []float64
		want []int16
	}{
		{nil, nil},
		{[]float64{0, 1, -1, 2, -2, math.NaN()}, []int16{0, 32767, -32767, 32767, -32767, 0}},
		{[]float64{0.5, -0.5, 1.0 / 32767 * 0.49, 1.0 / 32767 * 0.51}, []int16{16384, -16384, 0, 1}},
	}
	for _, tt := range tests {
		prefix := []byte("xyz")
		b := AppendWAV(prefix, tt.in, 22050)
		if string(b[:3]) != "xyz" {
			t.Fatal("prefix lost")
		}
		b = b[3:]
		if len(b) != WAVSize(len(tt.in)) {
			t.Fatalf("len = %d, want %d", len(b), WAVSize(len(tt.in)))
		}
		if !bytes.Equal(b[:4], []byte("RIFF")) || binary.LittleEndian.Uint32(b[4:]) != uint32(len(b)-8) ||
			binary.LittleEndian.Uint32(b[24:]) != 22050 || binary.LittleEndian.Uint32(b[40:]) != uint32(2*len(tt.in)) {
			t.Fatalf("bad header % x", b[:44])
		}
		for i, w := range tt.want {
			if got := int16(binary.LittleEndian.Uint16(b[44+2*i:])); got != w {
				t.Errorf("sample %d = %d, want %d", i, got, w)
			}
		}
	}
}

func TestAppendBase64WAVMatchesWAV(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 3071, 3072, 3073, 3074, 9223} {
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Sin(float64(i) * 0.01)
		}
		if n > 7 {
			s[3], s[4], s[5], s[6], s[7] = 1.5, -1.5, math.NaN(), -1, 32767.0/32768
		}
		want := base64.StdEncoding.EncodeToString(AppendWAV(nil, s, 16000))
		got := AppendBase64WAV([]byte("pre"), s, 16000)
		if string(got) != "pre"+want {
			t.Errorf("n=%d: base64 differs from base64(AppendWAV)", n)
		}
	}
}

func TestCap(t *testing.T) {
	s := make([]float64, 100)
	tests := []struct {
		rate    int
		seconds float64
		want    int
	}{
		{10, 0, 100}, {10, -1, 100}, {10, 5, 50}, {10, 10, 100}, {10, 20, 100}, {16000, 0.001, 16}, {30, 0.1, 3},
	}
	for _, tt := range tests {
		if got := len(Cap(s, tt.rate, tt.seconds)); got != tt.want {
			t.Errorf("Cap(100 samples, %d Hz, %v s) = %d samples, want %d", tt.rate, tt.seconds, got, tt.want)
		}
	}
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add(AppendWAV(nil, []float64{0.1, -0.2}, 16000))
	f.Add(wavSpec{format: formatExtensible, subFormat: 3, channels: 2, bits: 32, rate: 8, frames: make([]byte, 16),
		between: chunk("LIST", []byte("x"))}.build())
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, rate, err := DecodeWAV(b)
		if err != nil {
			return
		}
		if rate <= 0 {
			t.Fatalf("rate %d without error", rate)
		}
		for i, x := range s {
			if !(x >= -1 && x <= 1) {
				t.Fatalf("sample %d = %v out of [-1,1]", i, x)
			}
		}
	})
}

func FuzzWAVRoundTrip(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, uint16(16000))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 127}, uint16(1))
	f.Fuzz(func(t *testing.T, raw []byte, rate uint16) {
		if rate == 0 {
			return
		}
		in := make([]float64, len(raw)/8)
		for i := range in {
			in[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		wav := AppendWAV(nil, in, int(rate))
		out, gotRate, err := DecodeWAV(wav)
		if err != nil {
			t.Fatal(err)
		}
		if gotRate != int(rate) || len(out) != len(in) {
			t.Fatalf("rate %d len %d, want %d, %d", gotRate, len(out), rate, len(in))
		}
		for i, x := range in {
			want := clip(x)
			if math.Abs(out[i]-want) > 0.5/32767+1e-12 {
				t.Fatalf("sample %d: %v → %v", i, x, out[i])
			}
		}
		if b64 := AppendBase64WAV(nil, in, int(rate)); string(b64) != base64.StdEncoding.EncodeToString(wav) {
			t.Fatal("AppendBase64WAV differs from base64(AppendWAV)")
		}
	})
}

func clip10s() []float64 {
	s := make([]float64, 160000)
	for i := range s {
		s[i] = 0.8 * math.Sin(float64(i)*2*math.Pi*440/16000)
	}
	return s
}

func BenchmarkAppendBase64WAV(b *testing.B) {
	s := clip10s()
	dst := make([]byte, 0, base64.StdEncoding.EncodedLen(WAVSize(len(s))))
	b.SetBytes(int64(8 * len(s))) // float64 input bytes
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendBase64WAV(dst[:0], s, 16000)
	}
}

func BenchmarkAppendWAV(b *testing.B) {
	s := clip10s()
	dst := make([]byte, 0, WAVSize(len(s)))
	b.SetBytes(int64(8 * len(s)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendWAV(dst[:0], s, 16000)
	}
}

func BenchmarkDecodeWAV(b *testing.B) {
	wav := AppendWAV(nil, clip10s(), 16000)
	b.SetBytes(int64(len(wav)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeWAV(wav); err != nil {
			b.Fatal(err)
		}
	}
}
