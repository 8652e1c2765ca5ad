// Package contract holds the wire contracts that beans-slurm speaks: predictions_v1 (model
// launchers), judge_scores_v1 (rubric judges) and the launcher's /info document. It validates
// both directions: a client checks responses, a launcher checks requests. Violations are
// reported per item wherever the contract allows it, so one bad item never fails its
// neighbours.
package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Schema version strings.
const (
	PredictionsV1 = "predictions_v1"
	JudgeScoresV1 = "judge_scores_v1"
)

// AudioPlaceholder stands for one audio input in a rendered prompt; the i-th placeholder
// stands for AudioInputs[i].
const AudioPlaceholder = "<Audio><AudioHere></Audio>"

// Audio payload types.
const (
	PayloadBase64WAV = "base64_wav"
	PayloadFilePath  = "file_path"
	PayloadFileURL   = "file_url"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// AudioInput is one audio clip of a request item.
type AudioInput struct {
	PayloadType string `json:"payload_type"`
	Data        string `json:"data"`
	SampleRate  int    `json:"sample_rate"`
}

// GenerationConfig is the request item's generation settings. Known keys are max_tokens,
// temperature and max_length_seconds; launchers accept and ignore keys they do not know,
// so it is kept as a free JSON object.
type GenerationConfig map[string]any

// RequestItem is one sample sent to a launcher.
type RequestItem struct {
	SampleID         string           `json:"sample_id"`
	Messages         []Message        `json:"messages"`
	AudioInputs      []AudioInput     `json:"audio_inputs"`
	GenerationConfig GenerationConfig `json:"generation_config"`
}

// Request is the body of POST /predict.
type Request struct {
	SchemaVersion string        `json:"schema_version"`
	Requests      []RequestItem `json:"requests"`
}

// ResponseItem is one answer of a launcher. Error is a pointer so that null and "" can be
// told apart from a missing field when decoding strictly; both mean success.
type ResponseItem struct {
	SampleID     string          `json:"sample_id"`
	Predictions  []string        `json:"predictions"`
	Error        *string         `json:"error"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Usage        json.RawMessage `json:"usage,omitempty"`
	LatencySec   *float64        `json:"latency_sec,omitempty"`
}

// Failed reports whether the item carries a non-blank error.
func (r ResponseItem) Failed() bool { return r.Error != nil && strings.TrimSpace(*r.Error) != "" }

// Response is the body of a POST /predict answer.
type Response struct {
	SchemaVersion string         `json:"schema_version"`
	Responses     []ResponseItem `json:"responses"`
}

// PlaceholderCount counts audio placeholders over all messages of an item.
func (it *RequestItem) PlaceholderCount() int {
	n := 0
	for _, m := range it.Messages {
		n += strings.Count(m.Content, AudioPlaceholder)
	}
	return n
}

// ValidateItem checks one request item as a launcher must: it returns a non-nil error
// describing why the item is malformed (an item-level failure, answered with HTTP 200).
// Audio payloads are not decoded here; that is the launcher's business.
func ValidateItem(it *RequestItem) error {
	switch {
	case it.SampleID == "":
		return errors.New("sample_id is empty")
	case len(it.Messages) == 0:
		return errors.New("messages is empty")
	case it.GenerationConfig == nil:
		return errors.New("generation_config is missing (send {} for defaults)")
	}
	for i, m := range it.Messages {
		if m.Role == "" {
			return fmt.Errorf("messages[%d].role is empty", i)
		}
	}
	if n := it.PlaceholderCount(); n != len(it.AudioInputs) {
		return fmt.Errorf("prompt has %d audio placeholder(s) %s but %d audio input(s)", n, AudioPlaceholder, len(it.AudioInputs))
	}
	for i, a := range it.AudioInputs {
		switch a.PayloadType {
		case PayloadBase64WAV, PayloadFilePath, PayloadFileURL:
		default:
			return fmt.Errorf("audio_inputs[%d].payload_type %q is not one of %s, %s, %s", i, a.PayloadType, PayloadBase64WAV, PayloadFilePath, PayloadFileURL)
		}
		if a.Data == "" {
			return fmt.Errorf("audio_inputs[%d].data is empty", i)
		}
		if a.SampleRate <= 0 {
			return fmt.Errorf("audio_inputs[%d].sample_rate %d is not a positive integer", i, a.SampleRate)
		}
	}
	return nil
}

// BatchError is a batch-level violation of a request (a launcher answers HTTP 400).
type BatchError struct{ Reason string }

func (e *BatchError) Error() string { return e.Reason }

// DecodeRequest decodes and checks a POST /predict body as a launcher does. A batch-level
// violation (not JSON, wrong schema_version, no requests, duplicate ids) is a *BatchError.
// Item-level problems are left to ValidateItem so that neighbours are still served.
func DecodeRequest(body []byte) (*Request, error) {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &BatchError{Reason: "request body is not a predictions_v1 JSON object: " + err.Error()}
	}
	if req.SchemaVersion != PredictionsV1 {
		return nil, &BatchError{Reason: fmt.Sprintf("schema_version is %q, want %q", req.SchemaVersion, PredictionsV1)}
	}
	if len(req.Requests) == 0 {
		return nil, &BatchError{Reason: "requests is empty"}
	}
	seen := make(map[string]bool, len(req.Requests))
	for _, it := range req.Requests {
		if it.SampleID != "" && seen[it.SampleID] {
			return nil, &BatchError{Reason: fmt.Sprintf("duplicate sample_id %q in one batch", it.SampleID)}
		}
		seen[it.SampleID] = true
	}
	return &req, nil
}

// Outcome is the client's verdict on one sent item after matching a response.
type Outcome struct {
	SampleID string
	// Item is the launcher's whole answer item as it arrived (nil when none arrived).
	Item json.RawMessage
	// Prediction is predictions[0] on success.
	Prediction string
	// Err is non-empty when the item failed: a launcher error or a contract violation.
	Err string
}

// responseItemFields are the keys a response item may carry.
var responseItemFields = map[string]bool{
	"sample_id": true, "predictions": true, "error": true,
	"finish_reason": true, "usage": true, "latency_sec": true,
}

// MatchResponse parses a POST /predict answer body (HTTP 200) against the ids that were
// sent and returns one Outcome per sent id, in the order of sent. Every violation of the
// contract becomes the failure of the affected items, never a crash and never a prediction:
// a body that is not the schema fails every item; an unknown id is ignored (and reported on
// the items left unanswered); an id answered twice, a missing id, an item with unknown or
// missing fields, or a success without predictions fails that item.
func MatchResponse(body []byte, sent []string) []Outcome {
	out := make([]Outcome, len(sent))
	index := make(map[string]int, len(sent))
	for i, id := range sent {
		out[i].SampleID = id
		index[id] = i
	}
	failAll := func(reason string) []Outcome {
		for i := range out {
			out[i].Err = reason
		}
		return out
	}
	var envelope struct {
		SchemaVersion *string           `json:"schema_version"`
		Responses     []json.RawMessage `json:"responses"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&envelope); err != nil {
		return failAll("response is not a predictions_v1 object: " + shorten(err.Error()))
	}
	if envelope.SchemaVersion == nil || *envelope.SchemaVersion != PredictionsV1 {
		got := "missing"
		if envelope.SchemaVersion != nil {
			got = fmt.Sprintf("%q", *envelope.SchemaVersion)
		}
		return failAll(fmt.Sprintf("response schema_version is %s, want %q", got, PredictionsV1))
	}
	if envelope.Responses == nil {
		return failAll("response has no responses array")
	}
	answered := make([]int, len(sent))
	var strays []string
	for k, raw := range envelope.Responses {
		item, id, err := decodeResponseItem(raw)
		if id == "" {
			// Without an id the item cannot be attributed; it is reported on whatever is left
			// unanswered.
			strays = append(strays, fmt.Sprintf("responses[%d] has no sample_id", k))
			continue
		}
		i, ok := index[id]
		if !ok {
			strays = append(strays, fmt.Sprintf("responses[%d] answers sample_id %q that was not sent", k, shorten(id)))
			continue
		}
		answered[i]++
		if answered[i] > 1 {
			out[i].Err = "launcher answered this sample_id more than once"
			out[i].Prediction = ""
			continue
		}
		out[i].Item = append(json.RawMessage(nil), raw...)
		switch {
		case err != nil:
			out[i].Err = "malformed response item: " + err.Error()
		case item.Failed():
			out[i].Err = "launcher error: " + strings.TrimSpace(*item.Error)
		case len(item.Predictions) == 0:
			out[i].Err = "response item has no error and no predictions"
		default:
			out[i].Prediction = item.Predictions[0]
		}
	}
	for i := range out {
		if answered[i] == 0 {
			msg := "launcher sent no response item for this sample_id"
			if len(strays) > 0 {
				msg += " (" + strings.Join(strays, "; ") + ")"
			}
			out[i].Err = msg
		}
	}
	return out
}

// decodeResponseItem decodes one item strictly. It returns the sample id whenever it can be
// read, even if the item is otherwise malformed, so that the failure lands on that item.
func decodeResponseItem(raw json.RawMessage) (ResponseItem, string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return ResponseItem{}, "", fmt.Errorf("not a JSON object: %s", shorten(err.Error()))
	}
	var id string
	if v, ok := fields["sample_id"]; ok {
		if err := json.Unmarshal(v, &id); err != nil {
			return ResponseItem{}, "", errors.New("sample_id is not a string")
		}
	}
	var unknown []string
	for k := range fields {
		if !responseItemFields[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return ResponseItem{}, id, fmt.Errorf("unknown field(s) %s", strings.Join(unknown, ", "))
	}
	for _, k := range []string{"predictions", "error"} {
		if _, ok := fields[k]; !ok {
			return ResponseItem{}, id, fmt.Errorf("missing field %q", k)
		}
	}
	var item ResponseItem
	if err := json.Unmarshal(raw, &item); err != nil {
		return ResponseItem{}, id, fmt.Errorf("wrong field type: %s", shorten(err.Error()))
	}
	return item, id, nil
}

// shorten keeps error strings that quote outside input to a readable length.
func shorten(s string) string { return Excerpt([]byte(s)) }

// Excerpt renders a body received from a launcher for an error message: whitespace
// collapsed, at most 200 bytes (cut on a character boundary), "(empty body)" when empty.
func Excerpt(b []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty body)"
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
