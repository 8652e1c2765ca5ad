package contract

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendRequestItem appends the JSON encoding of it to dst. It produces the same document as
// encoding/json would (without HTML escaping), but writes large audio payloads with a single
// scan instead of a reflective pass: a client encodes hundreds of kilobytes of base64 per
// sample, and this keeps that off the critical path.
func AppendRequestItem(dst []byte, it *RequestItem) ([]byte, error) {
	return AppendRequestItemWith(dst, it, nil)
}

// PayloadWriter appends the data of audio input i to dst, as a JSON-safe string body
// without quotes (base64 is), instead of AudioInputs[i].Data.
type PayloadWriter func(dst []byte, i int) []byte

// AppendRequestItemWith is AppendRequestItem with the audio data written by payload (when
// not nil) straight into dst: a client then never holds the base64 text of a clip twice.
func AppendRequestItemWith(dst []byte, it *RequestItem, payload PayloadWriter) ([]byte, error) {
	dst = append(dst, `{"sample_id":`...)
	dst = AppendJSONString(dst, it.SampleID)
	dst = append(dst, `,"messages":[`...)
	for i, m := range it.Messages {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"role":`...)
		dst = AppendJSONString(dst, m.Role)
		dst = append(dst, `,"content":`...)
		dst = AppendJSONString(dst, m.Content)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"audio_inputs":[`...)
	for i, a := range it.AudioInputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"payload_type":`...)
		dst = AppendJSONString(dst, a.PayloadType)
		dst = append(dst, `,"data":`...)
		if payload != nil {
			dst = append(dst, '"')
			dst = payload(dst, i)
			dst = append(dst, '"')
		} else {
			dst = AppendJSONString(dst, a.Data)
		}
		dst = append(dst, `,"sample_rate":`...)
		dst = strconv.AppendInt(dst, int64(a.SampleRate), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"generation_config":`...)
	gc := it.GenerationConfig
	if gc == nil {
		gc = GenerationConfig{}
	}
	b, err := json.Marshal(gc)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '}'), nil
}

// AppendJSONString appends s as a JSON string literal. Plain printable ASCII (all of base64)
// is copied as is; everything else is escaped as encoding/json does, without HTML escaping.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, "89"[r-'\u2028'])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
