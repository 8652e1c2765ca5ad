package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Info is a launcher's GET /info document. Fields beyond the contract's are kept in Extra:
// they are part of the model's identity and are preserved in every result.
type Info struct {
	Name              string   `json:"name"`
	Model             string   `json:"model"`
	ModelRevision     string   `json:"model_revision"`
	AudioPayloadTypes []string `json:"audio_payload_types"`
	MaxBatchSize      int      `json:"max_batch_size"`
	SupportsBatching  bool     `json:"supports_batching"`
	SchemaVersions    []string `json:"schema_versions"`
	// Extra holds every other field of the document, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

var infoFields = []string{"name", "model", "model_revision", "audio_payload_types", "max_batch_size", "supports_batching", "schema_versions"}

// MarshalJSON writes the contract fields and Extra side by side.
func (in Info) MarshalJSON() ([]byte, error) {
	type plain Info
	base, err := json.Marshal(plain(in))
	if err != nil {
		return nil, err
	}
	if len(in.Extra) == 0 {
		return base, nil
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range in.Extra {
		if _, clash := m[k]; !clash {
			m[k] = v
		}
	}
	return json.Marshal(m) // map keys are written sorted: stable output
}

// ParseInfo decodes and checks a /info body. The error lists every problem found, so a
// launcher author fixes them in one go.
func ParseInfo(body []byte) (Info, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		return Info{}, fmt.Errorf("/info is not a JSON object: %s", shorten(err.Error()))
	}
	var problems []string
	var in Info
	get := func(key string, dst any, what string) {
		raw, ok := fields[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (%s)", key, what))
			return
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			problems = append(problems, fmt.Sprintf("%q is not %s", key, what))
		}
	}
	get("name", &in.Name, "a string")
	get("model", &in.Model, "a string")
	get("model_revision", &in.ModelRevision, "a string")
	get("audio_payload_types", &in.AudioPayloadTypes, "a list of strings")
	get("max_batch_size", &in.MaxBatchSize, "an integer ≥ 1")
	get("supports_batching", &in.SupportsBatching, "a boolean")
	get("schema_versions", &in.SchemaVersions, "a list of strings")
	if _, ok := fields["max_batch_size"]; ok && in.MaxBatchSize < 1 {
		problems = append(problems, fmt.Sprintf("\"max_batch_size\" is %d, want an integer ≥ 1", in.MaxBatchSize))
	}
	for _, p := range in.AudioPayloadTypes {
		switch p {
		case PayloadBase64WAV, PayloadFilePath, PayloadFileURL:
		default:
			problems = append(problems, fmt.Sprintf("\"audio_payload_types\" has unknown type %q", p))
		}
	}
	for k, v := range fields {
		if !slices.Contains(infoFields, k) {
			if in.Extra == nil {
				in.Extra = map[string]json.RawMessage{}
			}
			in.Extra[k] = v
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return in, errors.New("/info does not follow predictions_v1: " + strings.Join(problems, "; "))
	}
	return in, nil
}

// Speaks reports whether the launcher declares the given schema version.
func (in Info) Speaks(schema string) bool { return slices.Contains(in.SchemaVersions, schema) }

// Accepts reports whether the launcher accepts the given audio payload type.
func (in Info) Accepts(payload string) bool { return slices.Contains(in.AudioPayloadTypes, payload) }

// BatchLimit is the most items a client may put in one POST: 1 when the launcher does not
// batch, else max_batch_size.
func (in Info) BatchLimit() int {
	if !in.SupportsBatching || in.MaxBatchSize < 1 {
		return 1
	}
	return in.MaxBatchSize
}
