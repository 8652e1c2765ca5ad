package launcher

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/retry"
)

// Identity and defaults of the openai-proxy launcher.
const (
	OpenAIProxyName = "beans-slurm-openai-proxy"
	// DefaultOpenAIConcurrency is how many upstream requests are in flight at most, over all
	// batches, when OpenAIProxyOptions.Concurrency is 0.
	DefaultOpenAIConcurrency = 8
	// DefaultOpenAIBatch is max_batch_size when OpenAIProxyOptions.MaxBatchSize is 0.
	DefaultOpenAIBatch = 8
	// DefaultOpenAITimeout bounds one upstream request when OpenAIProxyOptions.Timeout is 0.
	DefaultOpenAITimeout = 120 * time.Second
	// DefaultOpenAIAttempts is how many times an item is sent at most when
	// OpenAIProxyOptions.Attempts is 0.
	DefaultOpenAIAttempts = 4
	// UnknownRevision is model_revision when neither the options nor the upstream name one.
	UnknownRevision = "unknown"
)

// Names of the request field that carries generation_config.max_tokens upstream.
const (
	MaxTokensField           = "max_tokens"
	MaxCompletionTokensField = "max_completion_tokens"
)

// Limits of the proxy's upstream traffic.
const (
	defaultBackoffBase  = time.Second
	defaultBackoffMax   = 30 * time.Second
	defaultMaxRetryWait = 2 * time.Minute
	maxUpstreamBody     = 32 << 20
	modelsTimeout       = 30 * time.Second
)

// OpenAIProxyOptions configure NewOpenAIProxy.
type OpenAIProxyOptions struct {
	// Upstream is the OpenAI-compatible API's base URL, the one that /chat/completions and
	// /models are relative to: https://api.openai.com/v1,
	// https://generativelanguage.googleapis.com/v1beta/openai, http://127.0.0.1:8001/v1.
	Upstream string
	// Model is the upstream model name (gpt-4o-audio-preview, gemini-2.5-flash, the name a
	// vLLM server serves); it is /info's model.
	Model string
	// APIKey is sent as "Authorization: Bearer <key>" ("" sends no Authorization header).
	APIKey string
	// KeySource says where the key came from ("$OPENAI_API_KEY", a file path), for the error
	// of an item the upstream refused with 401/403. Never the key.
	KeySource string
	// Concurrency bounds the upstream requests in flight over all batches (0 = 8).
	Concurrency int
	// MaxBatchSize is /info's max_batch_size (0 = 8).
	MaxBatchSize int
	// Timeout bounds one upstream request, answer included (0 = 120 s).
	Timeout time.Duration
	// Attempts bounds how often one item is sent on connection errors, timeouts, 429 and 5xx
	// (0 = 4; 1 = no retries).
	Attempts int
	// AudioCapSeconds cuts every clip to this length before upload (0 = no cap of its own);
	// a request item's generation_config.max_length_seconds cuts further.
	AudioCapSeconds float64
	// TextOnly refuses items with audio (per item) and sends plain text: for text judges.
	// /info still lists base64_wav (clients and the conformance checker want a payload type)
	// and says text_only: true among its extras.
	TextOnly bool
	// ModelRevision pins /info's model_revision; "" means what the upstream's /models says.
	ModelRevision string
	// MaxTokensField is the request field for generation_config.max_tokens: MaxTokensField
	// (default; OpenAI, Gemini, vLLM) or MaxCompletionTokensField (OpenAI's newer name).
	MaxTokensField string
	// BackoffBase and BackoffMax shape the exponential backoff between attempts (0 = 1 s and
	// 30 s); the wait before attempt n+1 is drawn from [d/2, d] with d = base·2^(n-1) ≤ max.
	BackoffBase, BackoffMax time.Duration
	// MaxRetryWait caps the wait that an upstream's Retry-After asks for (0 = 2 min).
	MaxRetryWait time.Duration
	// Client sends the upstream requests; nil means a client of its own (proxy from the
	// environment, as many idle connections as Concurrency).
	Client *http.Client
	// Logger receives retries and upstream problems; nil discards them. Keys never reach it.
	Logger *log.Logger
}

// NewOpenAIProxy is NewOpenAIProxyContext with a background context.
func NewOpenAIProxy(opts OpenAIProxyOptions) (Model, error) {
	return NewOpenAIProxyContext(context.Background(), opts)
}

// NewOpenAIProxyContext returns a launcher model that forwards every request item to an
// OpenAI-compatible POST {upstream}/chat/completions: the i-th audio placeholder of the
// prompt becomes an input_audio content part carrying audio_inputs[i] as WAV (capped), and
// the answer's choices[0].message.content becomes the prediction. Items of a batch are sent
// concurrently, at most Concurrency at once over all batches; connection errors, timeouts,
// 429 and 5xx are retried with backoff (honouring Retry-After) up to Attempts; every other
// failure is the item's error, never its neighbours'.
//
// Unless ModelRevision is set, it asks GET {upstream}/models once (bounded by ctx and 30 s)
// for the model's revision; a failure there is logged and tolerated.
func NewOpenAIProxyContext(ctx context.Context, opts OpenAIProxyOptions) (Model, error) {
	u, err := parseUpstream(opts.Upstream)
	if err != nil {
		return nil, fmt.Errorf("openai-proxy: %w", err)
	}
	opts.Model = strings.TrimSpace(opts.Model)
	switch {
	case opts.Model == "":
		return nil, errors.New("openai-proxy: no model: name the upstream model (gpt-4o-audio-preview, gemini-2.5-flash, the name vLLM serves)")
	case opts.Concurrency < 0:
		return nil, fmt.Errorf("openai-proxy: concurrency %d is negative", opts.Concurrency)
	case opts.MaxBatchSize < 0:
		return nil, fmt.Errorf("openai-proxy: max batch size %d is negative", opts.MaxBatchSize)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("openai-proxy: timeout %s is negative", opts.Timeout)
	case opts.Attempts < 0:
		return nil, fmt.Errorf("openai-proxy: attempts %d is negative (1 = no retries)", opts.Attempts)
	case opts.AudioCapSeconds < 0:
		return nil, fmt.Errorf("openai-proxy: audio cap %g s is negative (0 = none)", opts.AudioCapSeconds)
	case opts.BackoffBase < 0 || opts.BackoffMax < 0 || opts.MaxRetryWait < 0:
		return nil, errors.New("openai-proxy: negative backoff or retry wait")
	case strings.ContainsAny(opts.APIKey, " \t\r\n"):
		return nil, errors.New("openai-proxy: the API key contains white space")
	}
	switch opts.MaxTokensField {
	case "":
		opts.MaxTokensField = MaxTokensField
	case MaxTokensField, MaxCompletionTokensField:
	default:
		return nil, fmt.Errorf("openai-proxy: max tokens field %q is not %s or %s", opts.MaxTokensField, MaxTokensField, MaxCompletionTokensField)
	}
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultOpenAIConcurrency)
	opts.MaxBatchSize = cmp.Or(opts.MaxBatchSize, DefaultOpenAIBatch)
	opts.Timeout = cmp.Or(opts.Timeout, DefaultOpenAITimeout)
	opts.Attempts = cmp.Or(opts.Attempts, DefaultOpenAIAttempts)
	opts.BackoffBase = cmp.Or(opts.BackoffBase, defaultBackoffBase)
	opts.BackoffMax = max(cmp.Or(opts.BackoffMax, defaultBackoffMax), opts.BackoffBase)
	opts.MaxRetryWait = cmp.Or(opts.MaxRetryWait, defaultMaxRetryWait)

	base := strings.TrimRight(u.String(), "/")
	p := &openAIProxy{
		opts:      opts,
		chatURL:   base + "/chat/completions",
		modelsURL: base + "/models",
		host:      u.Host,
		sem:       make(chan struct{}, opts.Concurrency),
		logger:    opts.Logger,
		client:    opts.Client,
		wait:      retry.Sleep,
		jitter:    retry.Jitter,
	}
	if p.logger == nil {
		p.logger = log.New(io.Discard)
	}
	if p.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.Concurrency
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		p.client = &http.Client{Transport: tr}
	}

	revision, ownedBy := opts.ModelRevision, ""
	if revision == "" {
		revision, ownedBy = p.upstreamRevision(ctx)
	}
	p.info = contract.Info{
		Name:              OpenAIProxyName,
		Model:             opts.Model,
		ModelRevision:     revision,
		AudioPayloadTypes: []string{contract.PayloadBase64WAV},
		MaxBatchSize:      opts.MaxBatchSize,
		SupportsBatching:  true,
		SchemaVersions:    []string{contract.PredictionsV1},
		Extra:             map[string]json.RawMessage{},
	}
	extra := map[string]any{
		"upstream_host":     p.host,
		"audio_cap_seconds": opts.AudioCapSeconds,
		"text_only":         opts.TextOnly,
	}
	if ownedBy != "" {
		extra["upstream_owned_by"] = ownedBy
	}
	for k, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("openai-proxy: encode /info field %s: %w", k, err)
		}
		p.info.Extra[k] = b
	}
	return p, nil
}

// parseUpstream checks the upstream base URL: http(s), a host, no credentials, no query.
func parseUpstream(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no upstream: give the OpenAI-compatible API's base URL (https://api.openai.com/v1, https://generativelanguage.googleapis.com/v1beta/openai, http://127.0.0.1:8001/v1)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("upstream is not a URL: %v", redactURLError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("upstream %s: want an http:// or https:// base URL", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("upstream %s has no host", u.Redacted())
	case u.User != nil:
		return nil, errors.New("upstream URL carries credentials: give the key with --api-key-env or --key-file instead")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("upstream %s://%s%s has a query or fragment: give the base URL alone (keys go in --api-key-env or --key-file)", u.Scheme, u.Host, u.Path)
	}
	u.Path = strings.TrimSuffix(u.Path, "/chat/completions")
	return u, nil
}

func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return "malformed"
}

type openAIProxy struct {
	opts      OpenAIProxyOptions
	info      contract.Info
	chatURL   string
	modelsURL string
	host      string
	client    *http.Client
	sem       chan struct{} // upstream requests in flight, over all batches
	logger    *log.Logger

	// wait sleeps between attempts; tests replace it to record waits without sleeping.
	wait func(ctx context.Context, d time.Duration) error
	// jitter draws the actual backoff from its ceiling d.
	jitter func(d time.Duration) time.Duration

	servedMu sync.Mutex
	served   string // model field of the last upstream answer, for the log
}

func (p *openAIProxy) Info() contract.Info {
	in := p.info
	in.AudioPayloadTypes = append([]string{}, p.info.AudioPayloadTypes...)
	in.Extra = make(map[string]json.RawMessage, len(p.info.Extra))
	for k, v := range p.info.Extra {
		in.Extra[k] = v
	}
	return in
}

// Predict sends the items concurrently (bounded by the shared semaphore) and answers each on
// its own.
func (p *openAIProxy) Predict(ctx context.Context, items []contract.RequestItem) []contract.ResponseItem {
	out := make([]contract.ResponseItem, len(items))
	var wg sync.WaitGroup
	for i := range items {
		wg.Go(func() { out[i] = p.predictItem(ctx, &items[i]) })
	}
	wg.Wait()
	return out
}

func (p *openAIProxy) predictItem(ctx context.Context, it *contract.RequestItem) contract.ResponseItem {
	start := time.Now()
	body, err := p.chatBody(it)
	if err != nil {
		return failedItem(it.SampleID, p.redact(err.Error()))
	}
	ans, err := p.complete(ctx, body)
	if err != nil {
		p.logger.Debug("item failed", "sample_id", it.SampleID, "err", p.redact(err.Error()))
		return failedItem(it.SampleID, p.redact(err.Error()))
	}
	p.noteServed(ans.model)
	latency := time.Since(start).Seconds()
	return contract.ResponseItem{
		SampleID:     it.SampleID,
		Predictions:  []string{ans.text},
		FinishReason: ans.finishReason,
		Usage:        ans.usage,
		LatencySec:   &latency,
	}
}

// noteServed logs the model that the upstream says answered, once per change: a snapshot
// behind an alias (gpt-4o-audio-preview → gpt-4o-audio-preview-2024-12-17).
func (p *openAIProxy) noteServed(m string) {
	if m == "" {
		return
	}
	p.servedMu.Lock()
	changed := m != p.served
	p.served = m
	p.servedMu.Unlock()
	if changed {
		p.logger.Info("upstream answers as", "model", m, "model_revision", p.info.ModelRevision)
	}
}

// Upstream request body.
type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int          `json:"max_completion_tokens,omitempty"`
	Temperature         *float64      `json:"temperature,omitempty"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a string, or []contentPart when the message carries audio.
	Content any `json:"content"`
}

type contentPart struct {
	Type       string      `json:"type"`
	Text       *string     `json:"text,omitempty"`
	InputAudio *inputAudio `json:"input_audio,omitempty"`
}

type inputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// chatBody renders one request item as an upstream chat request.
func (p *openAIProxy) chatBody(it *contract.RequestItem) ([]byte, error) {
	if p.opts.TextOnly && len(it.AudioInputs) > 0 {
		return nil, fmt.Errorf("this launcher is text-only (--text-only) and takes no audio; the item has %d audio input(s)", len(it.AudioInputs))
	}
	capSec := p.opts.AudioCapSeconds
	if v, ok := number(it.GenerationConfig["max_length_seconds"]); ok && v > 0 && (capSec <= 0 || v < capSec) {
		capSec = v
	}
	req := chatRequest{Model: p.opts.Model, Messages: make([]chatMessage, 0, len(it.Messages))}
	next := 0 // index of the audio input that the next placeholder stands for
	for _, m := range it.Messages {
		if !strings.Contains(m.Content, contract.AudioPlaceholder) {
			req.Messages = append(req.Messages, chatMessage{Role: m.Role, Content: m.Content})
			continue
		}
		var parts []contentPart
		for k, text := range strings.Split(m.Content, contract.AudioPlaceholder) {
			if k > 0 {
				if next >= len(it.AudioInputs) {
					return nil, fmt.Errorf("prompt has more audio placeholders than audio inputs (%d)", len(it.AudioInputs))
				}
				data, err := uploadWAV(next, &it.AudioInputs[next], capSec)
				if err != nil {
					return nil, err
				}
				parts = append(parts, contentPart{Type: "input_audio", InputAudio: &inputAudio{Data: data, Format: "wav"}})
				next++
			}
			if text != "" {
				parts = append(parts, contentPart{Type: "text", Text: &text})
			}
		}
		req.Messages = append(req.Messages, chatMessage{Role: m.Role, Content: parts})
	}
	if next != len(it.AudioInputs) {
		return nil, fmt.Errorf("prompt has %d audio placeholder(s) but %d audio input(s)", next, len(it.AudioInputs))
	}
	if v, ok := number(it.GenerationConfig["max_tokens"]); ok && v >= 1 {
		n := int(v)
		if p.opts.MaxTokensField == MaxCompletionTokensField {
			req.MaxCompletionTokens = &n
		} else {
			req.MaxTokens = &n
		}
	}
	if v, ok := number(it.GenerationConfig["temperature"]); ok && v >= 0 {
		req.Temperature = &v
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the upstream request: %w", err)
	}
	return b, nil
}

// uploadWAV decodes a base64_wav payload, cuts it to capSec (0 = no cap) and re-encodes it as
// 16-bit PCM WAV in base64.
func uploadWAV(i int, a *contract.AudioInput, capSec float64) (string, error) {
	if err := checkPayload(i, a); err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(a.Data)
	if err != nil {
		return "", fmt.Errorf("audio_inputs[%d]: not valid base64", i)
	}
	samples, rate, err := audio.DecodeWAV(raw)
	if err != nil {
		return "", fmt.Errorf("audio_inputs[%d]: %w", i, err)
	}
	samples = audio.Cap(samples, rate, capSec)
	if len(samples) == 0 {
		return "", fmt.Errorf("audio_inputs[%d]: the clip holds no samples", i)
	}
	return string(audio.AppendBase64WAV(nil, samples, rate)), nil
}

// number reads a JSON number of a generation_config.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// chatAnswer is what an item keeps of a chat completion.
type chatAnswer struct {
	text         string
	finishReason string
	usage        json.RawMessage
	model        string
}

// attemptResult is the outcome of one upstream request.
type attemptResult struct {
	answer     chatAnswer
	err        error
	retry      bool          // worth another attempt
	retryAfter time.Duration // the upstream's Retry-After (0 = none)
}

// complete sends body until it is answered, a failure is final, or the attempts run out.
func (p *openAIProxy) complete(ctx context.Context, body []byte) (chatAnswer, error) {
	for attempt := 1; ; attempt++ {
		res := p.attempt(ctx, body)
		if res.err == nil {
			return res.answer, nil
		}
		if ctx.Err() != nil {
			return chatAnswer{}, fmt.Errorf("cancelled: %v (attempt %d)", context.Cause(ctx), attempt)
		}
		if !res.retry {
			return chatAnswer{}, res.err
		}
		if attempt >= p.opts.Attempts {
			if attempt == 1 {
				return chatAnswer{}, res.err
			}
			return chatAnswer{}, fmt.Errorf("%w (gave up after %d attempts)", res.err, attempt)
		}
		wait := p.backoff(attempt)
		if res.retryAfter > 0 {
			wait = min(res.retryAfter, p.opts.MaxRetryWait)
		}
		p.logger.Warn("retrying upstream request", "attempt", attempt, "of", p.opts.Attempts, "wait", wait.Round(time.Millisecond), "reason", p.redact(res.err.Error()))
		if err := p.wait(ctx, wait); err != nil {
			return chatAnswer{}, fmt.Errorf("cancelled while waiting to retry after: %v", res.err)
		}
	}
}

// backoff is the jittered wait before attempt+1.
func (p *openAIProxy) backoff(attempt int) time.Duration {
	return p.jitter(retry.Ceiling(attempt-1, p.opts.BackoffBase, p.opts.BackoffMax))
}

// attempt sends one upstream request, holding a slot of the semaphore while it runs.
func (p *openAIProxy) attempt(ctx context.Context, body []byte) attemptResult {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return attemptResult{err: fmt.Errorf("cancelled while waiting for an upstream slot: %v", context.Cause(ctx))}
	}
	defer func() { <-p.sem }()

	actx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, p.chatURL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("build the upstream request: %v", redactURLError(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", OpenAIProxyName)
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return p.transportFailure(ctx, actx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody+1))
	if err != nil {
		return p.transportFailure(ctx, actx, err)
	}
	if len(b) > maxUpstreamBody {
		return attemptResult{err: fmt.Errorf("upstream HTTP %d answer exceeds %d MiB", resp.StatusCode, maxUpstreamBody>>20)}
	}
	return p.classify(resp, b)
}

// transportFailure turns a failed exchange into a retryable result, or a final one when the
// client gave up.
func (p *openAIProxy) transportFailure(ctx, actx context.Context, err error) attemptResult {
	if ctx.Err() != nil {
		return attemptResult{err: fmt.Errorf("cancelled: %v", context.Cause(ctx))}
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return attemptResult{err: fmt.Errorf("upstream %s did not answer within %s (--timeout)", p.host, p.opts.Timeout), retry: true}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL
	}
	return attemptResult{err: fmt.Errorf("upstream %s unreachable: %v", p.host, err), retry: true}
}

// classify maps an upstream answer to a result.
func (p *openAIProxy) classify(resp *http.Response, body []byte) attemptResult {
	status := resp.StatusCode
	if status == http.StatusOK {
		ans, err := parseChatCompletion(body)
		if err != nil {
			return attemptResult{err: fmt.Errorf("upstream answer is not a usable chat completion: %v", err)}
		}
		return attemptResult{answer: ans}
	}
	msg := upstreamMessage(body)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if p.opts.APIKey == "" {
			return attemptResult{err: fmt.Errorf("upstream refused the request without an API key (HTTP %d: %s): give the key with --api-key-env or --key-file", status, msg)}
		}
		return attemptResult{err: fmt.Errorf("upstream refused the API key (HTTP %d: %s): check the API key%s and that it may use model %s", status, msg, p.keySourceNote(), p.opts.Model)}
	case status == http.StatusNotFound:
		return attemptResult{err: fmt.Errorf("upstream HTTP 404 (%s): check the model name %q and the upstream base URL (…/v1)", msg, p.opts.Model)}
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return attemptResult{err: fmt.Errorf("upstream HTTP %d: %s", status, msg), retry: true, retryAfter: retryAfter(resp.Header)}
	default:
		return attemptResult{err: fmt.Errorf("upstream rejected the request (HTTP %d: %s)", status, msg)}
	}
}

func (p *openAIProxy) keySourceNote() string {
	if p.opts.KeySource == "" {
		return ""
	}
	return " (from " + p.opts.KeySource + ")"
}

// retryAfter is how long the upstream asks to wait (0 = it does not say).
func retryAfter(h http.Header) time.Duration {
	d, _ := retry.After(h, time.Now())
	return d
}

// upstreamMessage extracts the error message of an upstream error body: OpenAI's
// {"error": {"message", "type", "code"}}, Gemini's list of those, vLLM's {"message", "type"},
// {"error": "text"}; otherwise an excerpt of the body.
func upstreamMessage(body []byte) string {
	type detail struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Status  string `json:"status"`
		Code    any    `json:"code"`
	}
	type envelope struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
	}
	format := func(d detail) string {
		kind := cmp.Or(d.Type, d.Status)
		if code, ok := d.Code.(string); ok && code != "" && code != kind {
			kind = strings.TrimPrefix(kind+", "+code, ", ")
		}
		if kind == "" {
			return d.Message
		}
		return d.Message + " (" + kind + ")"
	}
	fromEnvelope := func(e envelope) string {
		if len(e.Error) > 0 {
			var d detail
			if json.Unmarshal(e.Error, &d) == nil && d.Message != "" {
				return format(d)
			}
			var s string
			if json.Unmarshal(e.Error, &s) == nil && s != "" {
				return s
			}
		}
		if e.Message != "" {
			return format(detail{Message: e.Message, Type: e.Type})
		}
		return ""
	}
	trimmed := bytes.TrimSpace(body)
	var msg string
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []envelope
		if json.Unmarshal(trimmed, &list) == nil && len(list) > 0 {
			msg = fromEnvelope(list[0])
		}
	} else {
		var e envelope
		if json.Unmarshal(trimmed, &e) == nil {
			msg = fromEnvelope(e)
		}
	}
	if msg == "" {
		return contract.Excerpt(body)
	}
	return contract.Excerpt([]byte(msg))
}

// parseChatCompletion reads choices[0] of a chat completion: the message content (a string,
// or a list of text parts), finish_reason, usage and the answering model.
func parseChatCompletion(body []byte) (chatAnswer, error) {
	var c struct {
		Model   string `json:"model"`
		Choices []struct {
			Message *struct {
				Content json.RawMessage `json:"content"`
				Refusal *string         `json:"refusal"`
			} `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			PromptTokens     *int `json:"prompt_tokens"`
			CompletionTokens *int `json:"completion_tokens"`
			TotalTokens      *int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return chatAnswer{}, fmt.Errorf("%s (%s)", shortErr(err), contract.Excerpt(body))
	}
	if len(c.Choices) == 0 {
		return chatAnswer{}, fmt.Errorf("no choices (%s)", contract.Excerpt(body))
	}
	ch := c.Choices[0]
	ans := chatAnswer{model: c.Model}
	if ch.FinishReason != nil {
		ans.finishReason = *ch.FinishReason
	}
	if ch.Message == nil {
		return chatAnswer{}, fmt.Errorf("choices[0] has no message (%s)", contract.Excerpt(body))
	}
	content := bytes.TrimSpace(ch.Message.Content)
	switch {
	case len(content) == 0 || string(content) == "null":
		if ch.Message.Refusal != nil && *ch.Message.Refusal != "" {
			return chatAnswer{}, fmt.Errorf("the model refused: %s", contract.Excerpt([]byte(*ch.Message.Refusal)))
		}
		return chatAnswer{}, fmt.Errorf("choices[0].message has no content (finish_reason %q)", ans.finishReason)
	case content[0] == '"':
		if err := json.Unmarshal(content, &ans.text); err != nil {
			return chatAnswer{}, fmt.Errorf("choices[0].message.content: %s", shortErr(err))
		}
	case content[0] == '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(content, &parts); err != nil {
			return chatAnswer{}, fmt.Errorf("choices[0].message.content is neither a string nor a list of parts: %s", shortErr(err))
		}
		var sb strings.Builder
		texts := 0
		for _, pt := range parts {
			if pt.Type == "text" && pt.Text != nil {
				sb.WriteString(*pt.Text)
				texts++
			}
		}
		if texts == 0 {
			return chatAnswer{}, errors.New("choices[0].message.content holds no text part")
		}
		ans.text = sb.String()
	default:
		return chatAnswer{}, fmt.Errorf("choices[0].message.content is neither a string nor a list of parts (%s)", contract.Excerpt(content))
	}
	if u := c.Usage; u != nil {
		usage := map[string]int{}
		if u.PromptTokens != nil {
			usage["prompt_tokens"] = *u.PromptTokens
		}
		if u.CompletionTokens != nil {
			usage["completion_tokens"] = *u.CompletionTokens
		}
		if u.TotalTokens != nil {
			usage["total_tokens"] = *u.TotalTokens
		}
		if len(usage) > 0 {
			ans.usage, _ = json.Marshal(usage)
		}
	}
	return ans, nil
}

func shortErr(err error) string { return contract.Excerpt([]byte(err.Error())) }

// upstreamRevision asks GET {upstream}/models for the model's entry: its revision and owner.
func (p *openAIProxy) upstreamRevision(ctx context.Context) (revision, ownedBy string) {
	ctx, cancel := context.WithTimeout(ctx, min(p.opts.Timeout, modelsTimeout))
	defer cancel()
	fail := func(format string, args ...any) (string, string) {
		p.logger.Warn("could not read the upstream's model list; model_revision is "+UnknownRevision+" (pin one with --model-revision)", "err", p.redact(fmt.Sprintf(format, args...)))
		return UnknownRevision, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.modelsURL, nil)
	if err != nil {
		return fail("build request: %s", redactURLError(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", OpenAIProxyName)
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("GET /models on %s: %v", p.host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil {
		return fail("GET /models on %s: %v", p.host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("GET /models on %s: HTTP %d: %s", p.host, resp.StatusCode, upstreamMessage(b))
	}
	revision, ownedBy, found := modelRevision(b, p.opts.Model)
	if !found {
		p.logger.Warn("the upstream's model list does not name the model; model_revision is "+UnknownRevision+" (pin one with --model-revision)", "model", p.opts.Model)
	}
	return revision, ownedBy
}

// modelRevision finds model in a /models listing and derives a revision from its entry:
// vLLM's root (the weights it loaded) when it differs from the served name, else the entry's
// creation time (not for vLLM, which stamps entries with the time of the request), else
// UnknownRevision.
func modelRevision(body []byte, model string) (revision, ownedBy string, found bool) {
	var list struct {
		Data []struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
			OwnedBy string `json:"owned_by"`
			Root    string `json:"root"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &list) != nil {
		return UnknownRevision, "", false
	}
	for _, e := range list.Data {
		if e.ID != model && strings.TrimPrefix(e.ID, "models/") != model {
			continue
		}
		switch {
		case e.Root != "" && e.Root != e.ID:
			return e.Root, e.OwnedBy, true
		case e.Created > 0 && e.OwnedBy != "vllm":
			return "created:" + time.Unix(e.Created, 0).UTC().Format(time.RFC3339), e.OwnedBy, true
		default:
			return UnknownRevision, e.OwnedBy, true
		}
	}
	return UnknownRevision, "", false
}

// keyLike matches what API keys look like (OpenAI sk-…, Google AIza…), masked or not, so
// that an upstream message quoting a key never passes through.
var keyLike = regexp.MustCompile(`\b(sk-[A-Za-z0-9_\-*.]{3,}|AIza[A-Za-z0-9_\-*.]{3,})`)

// redact removes the API key, and anything that looks like one, from s.
func (p *openAIProxy) redact(s string) string {
	if k := p.opts.APIKey; k != "" && strings.Contains(s, k) {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	return keyLike.ReplaceAllString(s, "[redacted]")
}
