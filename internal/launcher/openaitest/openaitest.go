// Package openaitest is an in-process stand-in for the OpenAI chat-completions API, for
// testing clients such as the openai-proxy launcher without a network or a key.
//
// It serves POST /v1/chat/completions and GET /v1/models on loopback and holds every request
// to the public API's rules: a Bearer key, a JSON body with model and messages, content parts
// of type text or input_audio ({data, format}, audio only in user messages), where data is
// base64 of a valid WAV file, and no parameters the API does not know. Violations are
// answered as the API does (HTTP 400 with an OpenAI error body) and recorded. Answers are
// deterministic (a digest of the text and the decoded audio, or a scripted function); faults
// are scripted: statuses with Retry-After, error bodies, malformed bodies, slow answers,
// held answers. Counters of requests and of the largest number in flight serve assertions.
package openaitest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
)

// DefaultModel is the model the server lists when Options.Models is empty.
const DefaultModel = "gpt-4o-audio-preview"

// DefaultCreated is the creation time of the listed models when Options.Models is empty.
const DefaultCreated int64 = 1727460443

// ModelEntry is one entry of GET /v1/models.
type ModelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	Root    string `json:"root,omitempty"`
}

// Options configure New.
type Options struct {
	// Key is the API key the server requires as "Authorization: Bearer <key>"; "" accepts
	// requests without one (a local vLLM).
	Key string
	// Models is what GET /v1/models lists (default: DefaultModel, created DefaultCreated,
	// owned by "system").
	Models []ModelEntry
	// ModelsStatus, when not 0, is the status GET /v1/models answers with (an error body).
	ModelsStatus int
	// Answer makes the completion's content; nil means Digest.
	Answer func(r *Request) string
	// ContentParts answers the content as a list of text parts instead of a string.
	ContentParts bool
	// Delay is added to every chat completion (the request's context cuts it short).
	Delay time.Duration
	// Snapshot is the model field of answers (default: the requested model + "-2024-12-17").
	Snapshot string
}

// Request is a chat-completions request as the server understood it.
type Request struct {
	Model               string
	Messages            []Message
	MaxTokens           *int
	MaxCompletionTokens *int
	Temperature         *float64
	// Body is the raw JSON body.
	Body []byte
}

// Message is one chat message; Parts is nil when the content was a plain string (then Text
// holds it).
type Message struct {
	Role  string
	Text  string // the string content, or the text parts joined
	Parts []Part
}

// Part is one content part.
type Part struct {
	Type  string // "text" or "input_audio"
	Text  string
	Audio *Audio
}

// Audio is a decoded input_audio part.
type Audio struct {
	Format     string
	SampleRate int
	Samples    []float64
}

// Seconds is the clip's duration.
func (a *Audio) Seconds() float64 { return float64(len(a.Samples)) / float64(a.SampleRate) }

// Text joins the text of every message of r.
func (r *Request) Text() string {
	var sb strings.Builder
	for _, m := range r.Messages {
		sb.WriteString(m.Text)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Audio lists the audio parts of r in order.
func (r *Request) Audio() []*Audio {
	var out []*Audio
	for _, m := range r.Messages {
		for _, p := range m.Parts {
			if p.Audio != nil {
				out = append(out, p.Audio)
			}
		}
	}
	return out
}

// Digest is the default answer: "openaitest:" and 12 hex digits of a SHA-256 over the model,
// every message's role and text and every clip's rate and samples (as 16-bit PCM).
func Digest(r *Request) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(r.Model)
	for _, m := range r.Messages {
		field(m.Role)
		for _, p := range m.Parts {
			if p.Audio != nil {
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(p.Audio.SampleRate))
				h.Write(b[:])
				pcm := make([]byte, 2*len(p.Audio.Samples))
				for i, s := range p.Audio.Samples {
					binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(math.Round(s*32767))))
				}
				h.Write(pcm)
				continue
			}
			field(p.Text)
		}
		if m.Parts == nil {
			field(m.Text)
		}
	}
	return "openaitest:" + hex.EncodeToString(h.Sum(nil)[:6])
}

// Fault scripts a failure of chat completions.
type Fault struct {
	// Match limits the fault to requests whose text contains it ("" = every request).
	Match string
	// Times is how many requests it applies to (0 = all of them, forever).
	Times int
	// Status is answered with an error body (0 = answer normally, after Delay and Hold).
	Status int
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Body replaces the OpenAI error body of Status.
	Body string
	// Malformed answers HTTP 200 with a body that is not a chat completion.
	Malformed bool
	// Delay holds the answer this long (the request's context cuts it short).
	Delay time.Duration
	// Hold, when set, holds the answer until it is closed (or the request is cancelled).
	Hold <-chan struct{}

	used int
}

// Server is the fake API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL clients use, ending in /v1.
	URL string

	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	faults     []*Fault
	received   []*Request
	violations []string

	chats, models     atomic.Int64
	inflight, maxSeen atomic.Int64
}

// New starts a server on loopback; Close stops it.
func New(opts Options) *Server {
	if len(opts.Models) == 0 {
		opts.Models = []ModelEntry{{ID: DefaultModel, Object: "model", Created: DefaultCreated, OwnedBy: "system"}}
	}
	s := &Server{opts: opts}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	return s
}

// Close stops the server; held requests are released by their cancellation.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Inject adds a fault; faults are tried in the order added, the first that applies wins.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ChatRequests is how many chat-completion requests arrived (valid or not).
func (s *Server) ChatRequests() int { return int(s.chats.Load()) }

// ModelRequests is how many GET /v1/models requests arrived.
func (s *Server) ModelRequests() int { return int(s.models.Load()) }

// InFlight is how many chat completions are being answered now.
func (s *Server) InFlight() int { return int(s.inflight.Load()) }

// MaxInFlight is the largest number of chat completions answered at once so far.
func (s *Server) MaxInFlight() int { return int(s.maxSeen.Load()) }

// Received lists the valid chat requests in order of arrival (faulted ones included).
func (s *Server) Received() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Violations lists why requests were refused as malformed (HTTP 400 from the validation).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Invalid method for URL (%s /v1/chat/completions)", r.Method), "invalid_request_error", "")
			return
		}
		s.chat(w, r)
	case "/v1/models":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Invalid method for URL (%s /v1/models)", r.Method), "invalid_request_error", "")
			return
		}
		s.models.Add(1)
		if !s.authorized(w, r) {
			return
		}
		if st := s.opts.ModelsStatus; st != 0 {
			writeError(w, st, "The server had an error while processing your request.", "server_error", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": s.opts.Models})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "")
	}
}

// authorized answers 401 as the API does unless the request carries the key.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Key == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		writeError(w, http.StatusUnauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", "invalid_request_error", "")
		return false
	}
	if got != s.opts.Key {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided: "+mask(got)+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
		return false
	}
	return true
}

// mask shows a key as the API does: its start and end, stars between.
func mask(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.chats.Add(1)
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if !s.authorized(w, r) {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.violation(w, fmt.Sprintf("Content-Type %q, want application/json", ct))
		return
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, 64<<20)); err != nil {
		s.violation(w, "could not read the body: "+err.Error())
		return
	}
	req, err := parseRequest(body.Bytes())
	if err != nil {
		s.violation(w, err.Error())
		return
	}
	s.mu.Lock()
	s.received = append(s.received, req)
	f := s.fault(req)
	s.mu.Unlock()

	delay := s.opts.Delay
	var hold <-chan struct{}
	if f != nil {
		delay += f.Delay
		hold = f.Hold
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if f != nil && f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(f.Body))
			return
		}
		msg, typ, code := statusError(f.Status)
		writeError(w, f.Status, msg, typ, code)
		return
	}
	if f != nil && f.Malformed {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assi`))
		return
	}
	s.answer(w, req)
}

// fault picks the first fault that applies to req and uses it up; s.mu is held.
func (s *Server) fault(req *Request) *Fault {
	text := req.Text()
	for _, f := range s.faults {
		if f.Match != "" && !strings.Contains(text, f.Match) {
			continue
		}
		if f.Times > 0 && f.used >= f.Times {
			continue
		}
		f.used++
		c := *f
		return &c
	}
	return nil
}

func (s *Server) violation(w http.ResponseWriter, msg string) {
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	writeError(w, http.StatusBadRequest, msg, "invalid_request_error", "")
}

func (s *Server) answer(w http.ResponseWriter, req *Request) {
	answer := Digest
	if s.opts.Answer != nil {
		answer = s.opts.Answer
	}
	text := answer(req)
	var content any = text
	if s.opts.ContentParts {
		content = []map[string]string{{"type": "text", "text": text}}
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += 4 + (len(m.Text)+3)/4
	}
	for _, a := range req.Audio() {
		prompt += int(math.Ceil(a.Seconds() * 10))
	}
	completion := max(1, (len(text)+3)/4)
	snapshot := s.opts.Snapshot
	if snapshot == "" {
		snapshot = req.Model + "-2024-12-17"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":      fmt.Sprintf("chatcmpl-%d", s.chats.Load()),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   snapshot,
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil},
			"logprobs":      nil,
			"finish_reason": "stop",
		}},
		"usage":              map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
		"system_fingerprint": "fp_openaitest",
	})
}

// statusError is the API's error for a status: message, type, code.
func statusError(status int) (string, string, string) {
	switch status {
	case http.StatusTooManyRequests:
		return "Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"
	case http.StatusInternalServerError:
		return "The server had an error while processing your request. Sorry about that!", "server_error", ""
	case http.StatusServiceUnavailable:
		return "The engine is currently overloaded, please try again later.", "server_error", "service_unavailable"
	case http.StatusUnauthorized:
		return "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		return "You are not allowed to sample from this model", "invalid_request_error", "model_not_available"
	case http.StatusNotFound:
		return "The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"
	case http.StatusBadRequest:
		return "Invalid request.", "invalid_request_error", ""
	}
	return http.StatusText(status), "server_error", ""
}

// knownParams are the request parameters of the chat-completions API.
var knownParams = map[string]bool{
	"model": true, "messages": true, "max_tokens": true, "max_completion_tokens": true,
	"temperature": true, "top_p": true, "n": true, "stream": true, "stream_options": true,
	"stop": true, "seed": true, "modalities": true, "audio": true, "response_format": true,
	"user": true, "presence_penalty": true, "frequency_penalty": true, "logit_bias": true,
	"logprobs": true, "top_logprobs": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "store": true, "metadata": true, "reasoning_effort": true,
	"service_tier": true, "prediction": true,
}

var roles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true}

// parseRequest checks a chat-completions body as the API does and decodes it.
func parseRequest(body []byte) (*Request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("We could not parse the JSON body of your request. (%v)", err)
	}
	var unknown []string
	for k := range top {
		if !knownParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("Unrecognized request argument supplied: %s", strings.Join(unknown, ", "))
	}
	req := &Request{Body: slices.Clone(body)}
	if err := json.Unmarshal(top["model"], &req.Model); err != nil || req.Model == "" {
		return nil, fmt.Errorf("you must provide a model parameter")
	}
	var msgs []map[string]json.RawMessage
	if err := json.Unmarshal(top["messages"], &msgs); err != nil {
		return nil, fmt.Errorf("Invalid type for 'messages': expected an array of objects")
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("Invalid 'messages': empty array. Expected an array with minimum length 1")
	}
	for i, m := range msgs {
		msg, err := parseMessage(i, m)
		if err != nil {
			return nil, err
		}
		req.Messages = append(req.Messages, msg)
	}
	for _, k := range []string{"max_tokens", "max_completion_tokens"} {
		raw, ok := top[k]
		if !ok {
			continue
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil || n < 1 {
			return nil, fmt.Errorf("Invalid '%s': expected an integer ≥ 1, got %s", k, raw)
		}
		if k == "max_tokens" {
			req.MaxTokens = &n
		} else {
			req.MaxCompletionTokens = &n
		}
	}
	if req.MaxTokens != nil && req.MaxCompletionTokens != nil {
		return nil, fmt.Errorf("max_tokens and max_completion_tokens are mutually exclusive")
	}
	if raw, ok := top["temperature"]; ok {
		var t float64
		if err := json.Unmarshal(raw, &t); err != nil || t < 0 || t > 2 {
			return nil, fmt.Errorf("Invalid 'temperature': expected a number in [0, 2], got %s", raw)
		}
		req.Temperature = &t
	}
	return req, nil
}

func parseMessage(i int, m map[string]json.RawMessage) (Message, error) {
	var msg Message
	if err := json.Unmarshal(m["role"], &msg.Role); err != nil || !roles[msg.Role] {
		return msg, fmt.Errorf("Invalid value for 'messages[%d].role': %s", i, m["role"])
	}
	raw, ok := m["content"]
	if !ok {
		return msg, fmt.Errorf("Missing required parameter: 'messages[%d].content'", i)
	}
	if json.Unmarshal(raw, &msg.Text) == nil {
		return msg, nil
	}
	var parts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return msg, fmt.Errorf("Invalid type for 'messages[%d].content': expected a string or an array of content parts", i)
	}
	if len(parts) == 0 {
		return msg, fmt.Errorf("Invalid 'messages[%d].content': empty array", i)
	}
	msg.Parts = []Part{}
	var texts []string
	for j, p := range parts {
		var typ string
		_ = json.Unmarshal(p["type"], &typ)
		where := fmt.Sprintf("messages[%d].content[%d]", i, j)
		switch typ {
		case "text":
			var t string
			if err := json.Unmarshal(p["text"], &t); err != nil {
				return msg, fmt.Errorf("Invalid '%s.text': expected a string", where)
			}
			msg.Parts = append(msg.Parts, Part{Type: typ, Text: t})
			texts = append(texts, t)
		case "input_audio":
			if msg.Role != "user" {
				return msg, fmt.Errorf("Invalid '%s.type': input_audio is only supported in user messages, not %s", where, msg.Role)
			}
			a, err := parseAudio(where, p["input_audio"])
			if err != nil {
				return msg, err
			}
			msg.Parts = append(msg.Parts, Part{Type: typ, Audio: a})
		default:
			return msg, fmt.Errorf("Invalid value for '%s.type': %q. Supported values are: 'text', 'image_url', 'input_audio', 'file'", where, typ)
		}
	}
	msg.Text = strings.Join(texts, "")
	return msg, nil
}

func parseAudio(where string, raw json.RawMessage) (*Audio, error) {
	var ia map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ia); err != nil || ia == nil {
		return nil, fmt.Errorf("Missing required parameter: '%s.input_audio'", where)
	}
	for k := range ia {
		if k != "data" && k != "format" {
			return nil, fmt.Errorf("Unrecognized parameter '%s.input_audio.%s'", where, k)
		}
	}
	var data, format string
	if err := json.Unmarshal(ia["data"], &data); err != nil || data == "" {
		return nil, fmt.Errorf("Missing required parameter: '%s.input_audio.data'", where)
	}
	if err := json.Unmarshal(ia["format"], &format); err != nil || (format != "wav" && format != "mp3") {
		return nil, fmt.Errorf("Invalid value for '%s.input_audio.format': %s. Supported values are: 'wav' and 'mp3'", where, ia["format"])
	}
	if strings.HasPrefix(data, "data:") {
		return nil, fmt.Errorf("Invalid '%s.input_audio.data': expected base64 without a data: prefix", where)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, fmt.Errorf("Invalid '%s.input_audio.data': not valid base64", where)
	}
	if format != "wav" {
		return nil, fmt.Errorf("openaitest decodes only wav audio (got %s)", format)
	}
	samples, rate, err := audio.DecodeWAV(b)
	if err != nil {
		return nil, fmt.Errorf("Audio file might be corrupted or unsupported ('%s'): %v", where, err)
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("Audio file is empty ('%s')", where)
	}
	return &Audio{Format: format, SampleRate: rate, Samples: samples}, nil
}

func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
