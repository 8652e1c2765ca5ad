package audio

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
)

// WAVFormat is the sample encoding of the WAV files a run produces.
type WAVFormat int

const (
	// PCM16 is 16-bit signed integer PCM (format 1): samples clipped to [-1,1], scaled by
	// 32767 and rounded. The default.
	PCM16 WAVFormat = iota
	// Float32 is 32-bit IEEE float (format 3, with the cbSize field and the fact chunk that
	// non-PCM WAV files carry): samples as float32, not clipped; NaN is written as 0 and
	// ±Inf as ±1.
	Float32
)

// String returns the format's name, as ParseWAVFormat reads it.
func (f WAVFormat) String() string {
	switch f {
	case PCM16:
		return "pcm16"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("WAVFormat(%d)", int(f))
}

// ParseWAVFormat reads a format name: "pcm16" (also "pcm", "int16", "s16"), or "float32"
// (also "float", "f32"), case-insensitive.
func ParseWAVFormat(s string) (WAVFormat, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pcm16", "pcm", "int16", "s16", "pcm_s16le":
		return PCM16, nil
	case "float32", "float", "f32", "pcm_f32le":
		return Float32, nil
	}
	return 0, fmt.Errorf("unknown WAV format %q: want pcm16 or float32", s)
}

// float32HeaderSize is the header AppendWAVFloat32 writes: RIFF header, an 18-byte fmt
// chunk, a fact chunk and the data chunk header.
const float32HeaderSize = 58

// Size returns the byte size of the WAV file of n samples in format f.
func (f WAVFormat) Size(n int) int {
	if f == Float32 {
		return float32HeaderSize + 4*n
	}
	return WAVSize(n)
}

// Base64Size returns the length of the base64 encoding of the WAV file of n samples.
func (f WAVFormat) Base64Size(n int) int { return base64.StdEncoding.EncodedLen(f.Size(n)) }

// appendFloat32Header appends the 58-byte header of a mono float32 WAV file of n samples.
func appendFloat32Header(dst []byte, n, rate int) []byte {
	dataSize := uint32(4 * n)
	dst = append(dst, "RIFF"...)
	dst = binary.LittleEndian.AppendUint32(dst, float32HeaderSize-8+dataSize)
	dst = append(dst, "WAVEfmt "...)
	dst = binary.LittleEndian.AppendUint32(dst, 18)
	dst = binary.LittleEndian.AppendUint16(dst, formatFloat)
	dst = binary.LittleEndian.AppendUint16(dst, 1) // mono
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate)*4) // byte rate
	dst = binary.LittleEndian.AppendUint16(dst, 4)              // block align
	dst = binary.LittleEndian.AppendUint16(dst, 32)             // bits per sample
	dst = binary.LittleEndian.AppendUint16(dst, 0)              // cbSize
	dst = append(dst, "fact"...)
	dst = binary.LittleEndian.AppendUint32(dst, 4)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n)) // sample frames
	dst = append(dst, "data"...)
	return binary.LittleEndian.AppendUint32(dst, dataSize)
}

// f32 converts a sample for a float WAV: NaN → 0, ±Inf → ±1.
func f32(x float64) uint32 {
	switch {
	case x != x:
		x = 0
	case x > math.MaxFloat32:
		x = 1
	case x < -math.MaxFloat32:
		x = -1
	}
	return math.Float32bits(float32(x))
}

// putFloat32 writes samples as little-endian float32 into out (4*len(samples) bytes).
func putFloat32(out []byte, samples []float64) {
	_ = out[4*len(samples)-1]
	for i, x := range samples {
		binary.LittleEndian.PutUint32(out[4*i:], f32(x))
	}
}

// AppendWAVFloat32 appends a complete RIFF/WAV file (IEEE float 32-bit, mono) of samples
// at rate Hz to dst.
func AppendWAVFloat32(dst []byte, samples []float64, rate int) []byte {
	dst = slices.Grow(dst, Float32.Size(len(samples)))
	dst = appendFloat32Header(dst, len(samples), rate)
	if len(samples) == 0 {
		return dst
	}
	start := len(dst)
	dst = dst[:start+4*len(samples)]
	putFloat32(dst[start:], samples)
	return dst
}

// AppendWAVFormat appends a complete WAV file of samples in format f.
func AppendWAVFormat(dst []byte, samples []float64, rate int, f WAVFormat) []byte {
	if f == Float32 {
		return AppendWAVFloat32(dst, samples, rate)
	}
	return AppendWAV(dst, samples, rate)
}

// AppendBase64WAVFloat32 appends the standard base64 encoding of the WAV file that
// AppendWAVFloat32 would produce, converting and encoding in small chunks straight into dst.
func AppendBase64WAVFloat32(dst []byte, samples []float64, rate int) []byte {
	enc := base64.StdEncoding
	total := Float32.Base64Size(len(samples))
	dst = slices.Grow(dst, total)
	start := len(dst)
	out := dst[start : start+total]

	// The 58-byte header and the first 2 samples make 66 bytes, a whole number of base64
	// quanta; after it, chunks of 3k samples (12k bytes) keep every chunk on a boundary.
	const chunk = 3 * 256
	var buf [4 * chunk]byte
	head := appendFloat32Header(buf[:0], len(samples), rate)
	first := min(2, len(samples))
	if first > 0 {
		putFloat32(buf[len(head):], samples[:first])
	}
	n := len(head) + 4*first
	enc.Encode(out, buf[:n])
	o := enc.EncodedLen(n)
	for i := first; i < len(samples); i += chunk {
		part := samples[i:min(i+chunk, len(samples))]
		putFloat32(buf[:], part)
		enc.Encode(out[o:], buf[:4*len(part)])
		o += enc.EncodedLen(4 * len(part))
	}
	return dst[:start+total]
}

// AppendBase64WAVFormat appends the base64 encoding of the WAV file of samples in format f.
func AppendBase64WAVFormat(dst []byte, samples []float64, rate int, f WAVFormat) []byte {
	if f == Float32 {
		return AppendBase64WAVFloat32(dst, samples, rate)
	}
	return AppendBase64WAV(dst, samples, rate)
}

// WriteWAVFile writes samples as a WAV file in format f at path (mode 0644), atomically:
// the file appears whole or not at all, as a launcher on another node may read it at once.
// The directory must exist.
func WriteWAVFile(path string, samples []float64, rate int, f WAVFormat) error {
	if rate <= 0 {
		return fmt.Errorf("write %s: sample rate %d", path, rate)
	}
	if f != PCM16 && f != Float32 {
		return fmt.Errorf("write %s: unknown %v", path, f)
	}
	return atomicfile.Write(path, AppendWAVFormat(nil, samples, rate, f))
}
