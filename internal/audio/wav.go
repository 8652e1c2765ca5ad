// Package audio holds the small audio helpers of a run: encoding samples as 16-bit PCM WAV
// (plain or base64, as predictions_v1 carries it), decoding the WAV files launchers receive,
// and capping clips to a duration.
package audio

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// wavHeaderSize is the size of the canonical RIFF/WAVE header AppendWAV writes
// (RIFF header, a 16-byte fmt chunk, the data chunk header).
const wavHeaderSize = 44

// WAVSize is the byte size AppendWAV will produce for n samples.
func WAVSize(n int) int { return wavHeaderSize + 2*n }

// appendHeader appends the 44-byte header of a mono 16-bit PCM WAV file of n samples.
func appendHeader(dst []byte, n, rate int) []byte {
	dataSize := uint32(2 * n)
	dst = append(dst, "RIFF"...)
	dst = binary.LittleEndian.AppendUint32(dst, 36+dataSize)
	dst = append(dst, "WAVEfmt "...)
	dst = binary.LittleEndian.AppendUint32(dst, 16)
	dst = binary.LittleEndian.AppendUint16(dst, 1) // PCM
	dst = binary.LittleEndian.AppendUint16(dst, 1) // mono
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(rate)*2) // byte rate
	dst = binary.LittleEndian.AppendUint16(dst, 2)              // block align
	dst = binary.LittleEndian.AppendUint16(dst, 16)             // bits per sample
	dst = append(dst, "data"...)
	return binary.LittleEndian.AppendUint32(dst, dataSize)
}

// pcm16 converts a sample in [-1,1] to a 16-bit PCM value: clipped, scaled by 32767 and
// rounded half away from zero. NaN becomes 0.
func pcm16(x float64) int16 {
	switch {
	case x >= 1:
		return 32767
	case x <= -1:
		return -32767
	case x != x: // NaN
		return 0
	}
	// Round half away from zero without a branch on the sign, which audio makes
	// unpredictable.
	v := x * 32767
	return int16(v + math.Copysign(0.5, v))
}

// putPCM16 writes samples as little-endian 16-bit PCM into out, which must hold 2*len(samples)
// bytes.
func putPCM16(out []byte, samples []float64) {
	_ = out[2*len(samples)-1]
	for i, x := range samples {
		v := uint16(pcm16(x))
		out[2*i] = byte(v)
		out[2*i+1] = byte(v >> 8)
	}
}

// AppendWAV appends a complete RIFF/WAV file (PCM 16-bit little-endian, mono) of samples
// (float64 in [-1,1], clipped; scaled by 32767, rounded) at rate Hz to dst.
func AppendWAV(dst []byte, samples []float64, rate int) []byte {
	dst = slices.Grow(dst, WAVSize(len(samples)))
	dst = appendHeader(dst, len(samples), rate)
	if len(samples) == 0 {
		return dst
	}
	start := len(dst)
	dst = dst[:start+2*len(samples)]
	putPCM16(dst[start:], samples)
	return dst
}

// b64Pairs maps 12 bits to their two standard base64 characters (little-endian uint16).
var b64Pairs = func() (t [4096]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for v := range t {
		t[v] = uint16(alphabet[v>>6]) | uint16(alphabet[v&0x3f])<<8
	}
	return t
}()

// AppendBase64WAV appends the standard base64 encoding (no prefix) of the WAV file that
// AppendWAV would produce. The WAV bytes are never built in full: samples are converted and
// encoded in small chunks, straight into dst, which grows at most once.
func AppendBase64WAV(dst []byte, samples []float64, rate int) []byte {
	enc := base64.StdEncoding
	total := enc.EncodedLen(WAVSize(len(samples)))
	dst = slices.Grow(dst, total)
	start := len(dst)
	out := dst[start : start+total]

	var buf [wavHeaderSize + 8]byte
	// The 44-byte header is not a multiple of 3: encode it together with the first 2 samples
	// (44+4 = 48 bytes) so every later chunk starts on a quantum boundary.
	head := appendHeader(buf[:0], len(samples), rate)
	first := min(2, len(samples))
	if first > 0 {
		putPCM16(buf[len(head):], samples[:first])
	}
	n := len(head) + 2*first
	enc.Encode(out, buf[:n])
	o := enc.EncodedLen(n)
	i := first
	// Three samples are six bytes, two base64 quanta: convert and encode them in one step
	// through a table of 12-bit pairs, with no intermediate buffer.
	for ; i+3 <= len(samples); i += 3 {
		a, b, c := uint32(uint16(pcm16(samples[i]))), uint32(uint16(pcm16(samples[i+1]))), uint32(uint16(pcm16(samples[i+2])))
		q1 := (a&0xff)<<16 | (a>>8)<<8 | (b & 0xff)
		q2 := (b>>8)<<16 | (c&0xff)<<8 | (c >> 8)
		binary.LittleEndian.PutUint64(out[o:o+8], uint64(b64Pairs[q1>>12])|uint64(b64Pairs[q1&0xfff])<<16|
			uint64(b64Pairs[q2>>12])<<32|uint64(b64Pairs[q2&0xfff])<<48)
		o += 8
	}
	if rest := samples[i:]; len(rest) > 0 {
		putPCM16(buf[:], rest)
		enc.Encode(out[o:], buf[:2*len(rest)])
	}
	return dst[:start+total]
}

// WAV format codes.
const (
	formatPCM        = 1
	formatFloat      = 3
	formatExtensible = 0xFFFE
)

// ErrNotWAV is returned (wrapped) by DecodeWAV for input that is not a RIFF/WAVE file.
var ErrNotWAV = errors.New("not a RIFF/WAVE file")

// DecodeWAV parses a RIFF/WAV file: PCM 8/16/24/32-bit, IEEE float 32/64 (format 3), and
// WAVE_FORMAT_EXTENSIBLE (0xFFFE) with those subformats, with any channel count (downmixed to
// mono by averaging). Unknown chunks (LIST, fact, …) are skipped, honouring the pad byte of
// odd-sized chunks. It returns samples in [-1,1] and the sample rate. Integer PCM is scaled by
// its largest positive value (32767 for 16-bit, symmetric with AppendWAV, so a round trip is
// within half a quantisation step); the most negative code clips to -1. A data chunk whose
// declared size is 0xFFFFFFFF (as streaming writers leave it) runs to the end of input.
func DecodeWAV(b []byte) (samples []float64, rate int, err error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("decode wav: %w (missing RIFF/WAVE header)", ErrNotWAV)
	}
	var (
		haveFmt             bool
		format, channels    int
		bits                int
		data                []byte
		haveData            bool
		pos                 = 12
		fmtRate, blockAlign int
	)
	for pos+8 <= len(b) && !(haveFmt && haveData) {
		id := string(b[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(b[pos+4 : pos+8]))
		body := pos + 8
		rest := int64(len(b) - body)
		switch id {
		case "fmt ":
			if size < 16 || size > rest {
				return nil, 0, fmt.Errorf("decode wav: fmt chunk at byte %d: size %d, %d bytes left: truncated or malformed", pos, size, rest)
			}
			c := b[body : body+int(size)]
			format = int(binary.LittleEndian.Uint16(c[0:2]))
			channels = int(binary.LittleEndian.Uint16(c[2:4]))
			fmtRate = int(binary.LittleEndian.Uint32(c[4:8]))
			blockAlign = int(binary.LittleEndian.Uint16(c[12:14]))
			bits = int(binary.LittleEndian.Uint16(c[14:16]))
			if format == formatExtensible {
				if size < 40 {
					return nil, 0, fmt.Errorf("decode wav: WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes, want at least 40", size)
				}
				// The sub-format GUID starts with the format code. Samples are decoded by their
				// container size (wBitsPerSample); valid bits are left-justified within it.
				format = int(binary.LittleEndian.Uint16(c[24:26]))
			}
			haveFmt = true
		case "data":
			if size > rest {
				if size != 0xFFFFFFFF {
					return nil, 0, fmt.Errorf("decode wav: data chunk declares %d bytes but only %d remain: truncated file", size, rest)
				}
				size = rest
			}
			data = b[body : body+int(size)]
			haveData = true
		default:
			if size > rest {
				return nil, 0, fmt.Errorf("decode wav: chunk %q at byte %d declares %d bytes but only %d remain: truncated file", id, pos, size, rest)
			}
		}
		next := int64(body) + size + size&1
		if next > int64(len(b)) {
			break
		}
		pos = int(next)
	}
	if !haveFmt {
		return nil, 0, errors.New("decode wav: no fmt chunk: truncated or not a WAV file")
	}
	if !haveData {
		return nil, 0, errors.New("decode wav: no data chunk: truncated file")
	}
	if channels <= 0 {
		return nil, 0, fmt.Errorf("decode wav: %d channels", channels)
	}
	if fmtRate <= 0 {
		return nil, 0, fmt.Errorf("decode wav: sample rate %d", fmtRate)
	}
	var width int // bytes per sample
	switch {
	case format == formatPCM && (bits == 8 || bits == 16 || bits == 24 || bits == 32):
		width = bits / 8
	case format == formatFloat && (bits == 32 || bits == 64):
		width = bits / 8
	default:
		return nil, 0, fmt.Errorf("decode wav: unsupported encoding (format %#x, %d bits): want PCM 8/16/24/32-bit or IEEE float 32/64-bit", format, bits)
	}
	frame := width * channels
	if blockAlign > frame {
		frame = blockAlign // padded containers
	}
	n := len(data) / frame
	samples = make([]float64, n)
	if format == formatPCM && width == 2 && channels == 1 && frame == 2 {
		// The common case, without a call per sample.
		data = data[:2*n]
		for i := range samples {
			samples[i] = max(float64(int16(uint16(data[2*i])|uint16(data[2*i+1])<<8))/32767, -1)
		}
		return samples, fmtRate, nil
	}
	decode := sampleDecoder(format, width)
	inv := 1 / float64(channels)
	for i := range n {
		f := data[i*frame:]
		if channels == 1 {
			samples[i] = decode(f)
			continue
		}
		var sum float64
		for c := range channels {
			sum += decode(f[c*width:])
		}
		samples[i] = sum * inv
	}
	return samples, fmtRate, nil
}

// sampleDecoder returns the function that converts one encoded sample to a float in [-1,1].
func sampleDecoder(format, width int) func([]byte) float64 {
	if format == formatFloat {
		if width == 4 {
			return func(p []byte) float64 { return clip(float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))) }
		}
		return func(p []byte) float64 { return clip(math.Float64frombits(binary.LittleEndian.Uint64(p))) }
	}
	switch width {
	case 1:
		return func(p []byte) float64 { return max((float64(p[0])-128)/127, -1) }
	case 2:
		return func(p []byte) float64 { return max(float64(int16(binary.LittleEndian.Uint16(p)))/32767, -1) }
	case 3:
		return func(p []byte) float64 {
			v := int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8
			return max(float64(v)/8388607, -1)
		}
	default:
		return func(p []byte) float64 { return max(float64(int32(binary.LittleEndian.Uint32(p)))/2147483647, -1) }
	}
}

// clip bounds x to [-1,1]; NaN becomes 0.
func clip(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x < -1:
		return -1
	case x != x:
		return 0
	}
	return x
}

// Cap cuts samples to at most seconds*rate samples (seconds <= 0: unchanged).
func Cap(samples []float64, rate int, seconds float64) []float64 {
	if seconds <= 0 || rate <= 0 {
		return samples
	}
	limit := math.Floor(seconds*float64(rate) + 1e-9)
	if limit < float64(len(samples)) {
		return samples[:int(limit)]
	}
	return samples
}
