// Package predict is the predictions_v1 client: it checks launchers before any data is
// read, sends batches of at most the launchers' batch limit with several batches in flight,
// matches answers by sample_id and turns every contract violation into the failure of the
// affected items. Every request is bounded by a timeout.
//
// A client may serve one model from several launchers (several GPUs): they must announce
// the same model identity, batches go to the least busy one, and one that keeps failing is
// taken out for a cool-down while the others carry on. Requests in flight adapt to how the
// launchers answer, and failures are retried with backoff before an item is given up.
// docs/reliability.md describes the rules.
package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Defaults.
const (
	DefaultInFlight = 8
	DefaultTimeout  = 10 * time.Minute
	DefaultLinger   = 50 * time.Millisecond
	// DefaultAttempts is how many POSTs an item gets before it is given up.
	DefaultAttempts = 5
	// DefaultBackoff is the first wait before a retry; it doubles per attempt up to
	// MaxBackoff, and the wait drawn is in the upper half of that ceiling (jitter).
	DefaultBackoff = 500 * time.Millisecond
	MaxBackoff     = 30 * time.Second
	// DefaultCooldown is how long a launcher taken out stays out before it is probed; it
	// doubles each time the probe fails, up to MaxCooldown.
	DefaultCooldown = 2 * time.Second
	MaxCooldown     = 60 * time.Second
	// DefaultOutage is how long items wait while every launcher is out before they fail.
	DefaultOutage = 10 * time.Minute
	// TakeOutAfter is how many failures in a row (no connection, dropped connection,
	// timeout, HTTP 5xx) take a launcher out.
	TakeOutAfter = 3
	// maxRetryAfter caps a launcher's Retry-After.
	maxRetryAfter = 2 * time.Minute
	maxBodyBytes  = 256 << 20
)

// OperationalFields are the /info fields that describe how a launcher runs, not which model
// it serves: launchers of one client may differ in them. Every other field (name, model,
// model_revision, any other extra) is the model's identity and must be the same.
var OperationalFields = []string{
	"max_batch_size", "supports_batching", "audio_payload_types", "schema_versions",
	"latency_ms", "slots", "fail_every", "faults",
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// InFlight is how many batches each launcher starts with in flight (0 =
	// DefaultInFlight). More batches in flight than the launcher works on at once keep it
	// from waiting for the client between batches. The number then adapts (MaxInFlight).
	InFlight int
	// MaxInFlight caps the batches in flight per launcher as it grows (0 = 4 × InFlight;
	// set it to InFlight to never grow). It never falls below 1.
	MaxInFlight int
	// BatchSize caps the items per POST below the launchers' limit (0 = the smallest /info
	// limit).
	BatchSize int
	// Timeout bounds each HTTP request, including reading the answer (0 = DefaultTimeout).
	Timeout time.Duration
	// Linger is how long a partial batch waits for more items before it is sent anyway
	// (0 = DefaultLinger).
	Linger time.Duration
	// Attempts is how many POSTs an item gets, over all launchers, before it is given up
	// with a per-item error (0 = DefaultAttempts). An HTTP 413 split does not count.
	Attempts int
	// Backoff is the first wait before a retry (0 = DefaultBackoff).
	Backoff time.Duration
	// Cooldown is the first cool-down of a launcher taken out (0 = DefaultCooldown).
	Cooldown time.Duration
	// Outage is how long items wait while every launcher is out before they fail (0 =
	// DefaultOutage).
	Outage time.Duration
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// HTTPClient replaces the default client (which never uses an HTTP proxy: site proxies
	// break connections to compute nodes).
	HTTPClient *http.Client
	// Log receives a line when a launcher is taken out, comes back or is retired (nil =
	// discard).
	Log *log.Logger
}

// UnavailableError says that a launcher cannot be used: it is down, not ready, or does not
// speak predictions_v1. It is reported before any data is read.
type UnavailableError struct {
	URL    string
	Reason string
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("launcher at %s cannot be used: %s", e.URL, e.Reason)
}

// MismatchError says that launchers given to one client serve different models.
type MismatchError struct {
	URL, Other string
	// Differences name each field that differs, with both values.
	Differences []string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("launcher at %s does not serve the model of %s: %s (every --predict-url of one run must serve the same model)",
		e.Other, e.URL, strings.Join(e.Differences, "; "))
}

// Client talks to one or more launchers of one model.
type Client struct {
	eps       []*endpoint
	identity  map[string]string
	info      contract.Info
	infoRaw   json.RawMessage
	http      *http.Client
	opts      Options
	batchSize atomic.Int64

	mu           sync.Mutex // guards the endpoints' state and allDownSince
	allDownSince time.Time
	wake         chan struct{} // a probe ended
}

// NewHTTPClient returns the client used by default: no proxy, keep-alive connections for
// n requests in flight.
func NewHTTPClient(n int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        n * 2,
		MaxIdleConnsPerHost: n * 2,
		IdleConnTimeout:     90 * time.Second,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      64 << 10,
	}
	return &http.Client{Transport: tr}
}

// Connect checks the launcher's /health and /info and returns a client for it. It returns
// an *UnavailableError when the launcher is down, not ready, or lacks predictions_v1.
func Connect(ctx context.Context, predictURL string, opts Options) (*Client, error) {
	return ConnectAll(ctx, []string{predictURL}, opts)
}

// ConnectAll checks every launcher's /health and /info and returns a client that spreads
// batches over them. Every launcher must answer and serve the same model: the /info fields
// other than OperationalFields must be equal (*MismatchError names those that differ). The
// client's Info is the first launcher's, with the smallest max_batch_size and the payload
// types that all accept.
func ConnectAll(ctx context.Context, predictURLs []string, opts Options) (*Client, error) {
	if len(predictURLs) == 0 {
		return nil, fmt.Errorf("no predict URL given")
	}
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultInFlight
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 4 * opts.InFlight
	}
	opts.MaxInFlight = max(opts.MaxInFlight, opts.InFlight)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.Cooldown <= 0 {
		opts.Cooldown = DefaultCooldown
	}
	if opts.Outage <= 0 {
		opts.Outage = DefaultOutage
	}
	if opts.Log == nil {
		opts.Log = log.New(io.Discard)
	}
	c := &Client{opts: opts, http: opts.HTTPClient, wake: make(chan struct{}, 1)}
	if c.http == nil {
		c.http = NewHTTPClient(opts.MaxInFlight * len(predictURLs))
	}
	seen := map[string]bool{}
	for _, u := range predictURLs {
		ep, err := c.connect(ctx, u)
		if err != nil {
			return nil, err
		}
		if seen[ep.url] {
			return nil, fmt.Errorf("predict URL %s is given twice", ep.url)
		}
		seen[ep.url] = true
		id := identityOf(ep.infoRaw)
		if len(c.eps) == 0 {
			c.identity = id
			c.info = ep.info
			c.infoRaw = ep.infoRaw
		} else {
			if diffs := diffIdentity(c.identity, id); len(diffs) > 0 {
				return nil, &MismatchError{URL: c.eps[0].url, Other: ep.url, Differences: diffs}
			}
			c.info.MaxBatchSize = min(c.info.BatchLimit(), ep.info.BatchLimit())
			c.info.AudioPayloadTypes = slices.DeleteFunc(slices.Clone(c.info.AudioPayloadTypes), func(p string) bool { return !ep.info.Accepts(p) })
		}
		c.eps = append(c.eps, ep)
	}
	limit := c.info.BatchLimit()
	for _, ep := range c.eps {
		limit = min(limit, ep.info.BatchLimit())
	}
	if opts.BatchSize > 0 && opts.BatchSize < limit {
		limit = opts.BatchSize
	}
	c.batchSize.Store(int64(limit))
	return c, nil
}

// connect checks one launcher.
func (c *Client) connect(ctx context.Context, predictURL string) (*endpoint, error) {
	ep, err := contract.ParsePredictURL(predictURL)
	if err != nil {
		return nil, err
	}
	predictURL, health, infoURL := ep.Predict, ep.Health, ep.Info
	code, body, err := c.get(ctx, health, 30*time.Second)
	if err != nil {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s failed: %v (is the launcher running?)", health, err)}
	}
	if code != http.StatusOK {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s answered HTTP %d %s (not ready yet?)", health, code, contract.Excerpt(body))}
	}
	code, body, err = c.get(ctx, infoURL, 30*time.Second)
	if err != nil {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s failed: %v", infoURL, err)}
	}
	if code != http.StatusOK {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s answered HTTP %d %s", infoURL, code, contract.Excerpt(body))}
	}
	info, err := contract.ParseInfo(body)
	if err != nil {
		return nil, &UnavailableError{URL: predictURL, Reason: err.Error()}
	}
	if !info.Speaks(contract.PredictionsV1) {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("/info lists schema_versions %q, which lacks %q", info.SchemaVersions, contract.PredictionsV1)}
	}
	return &endpoint{
		url: predictURL, health: health, infoURL: infoURL,
		info: info, infoRaw: append(json.RawMessage(nil), bytes.TrimSpace(body)...),
		limit: c.opts.InFlight, peakLm: c.opts.InFlight, cap: c.opts.MaxInFlight, cooldown: c.opts.Cooldown,
	}, nil
}

// get fetches a small document (/health, /info).
func (c *Client) get(ctx context.Context, u string, timeout time.Duration) (int, []byte, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// identityOf is the model identity of an /info body: every field but OperationalFields, as
// compact JSON.
func identityOf(raw json.RawMessage) map[string]string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if slices.Contains(OperationalFields, k) {
			continue
		}
		var b bytes.Buffer
		if json.Compact(&b, v) != nil {
			b.Reset()
			b.Write(v)
		}
		out[k] = b.String()
	}
	return out
}

func diffIdentity(a, b map[string]string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case oka && okb && va != vb:
			diffs = append(diffs, fmt.Sprintf("%s: %s vs %s", k, clip(va), clip(vb)))
		case oka && !okb:
			diffs = append(diffs, fmt.Sprintf("%s: %s vs absent", k, clip(va)))
		case !oka && okb:
			diffs = append(diffs, fmt.Sprintf("%s: absent vs %s", k, clip(vb)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "…"
	}
	return s
}

// Info is the launchers' /info document as checked by Connect (see ConnectAll).
func (c *Client) Info() contract.Info { return c.info }

// InfoRaw is the first launcher's /info body as it arrived.
func (c *Client) InfoRaw() json.RawMessage { return c.infoRaw }

// URLs are the launchers' predict URLs, in the order given.
func (c *Client) URLs() []string {
	out := make([]string, len(c.eps))
	for i, ep := range c.eps {
		out[i] = ep.url
	}
	return out
}

// BatchSize is the current number of items per POST.
func (c *Client) BatchSize() int { return int(c.batchSize.Load()) }

// InFlight is how many batches may be in flight now, over all launchers (the sum of their
// adaptive limits).
func (c *Client) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ep := range c.eps {
		n += ep.limit
	}
	return n
}

func (c *Client) authorize(req *http.Request) {
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
}

// Item is one request item, already encoded as JSON (contract.AppendRequestItem).
type Item struct {
	ID   string
	JSON []byte
	// Release, when set, is called once the client no longer needs JSON (after the POST
	// that carried it), so that the caller can reuse the buffer.
	Release func()
}

// Result is the outcome of one item.
type Result struct {
	contract.Outcome
	// Latency is the wall time of the HTTP exchange that answered the item.
	Latency time.Duration
	// Attempts is how many POSTs the item took.
	Attempts int
}

// batch groups items into batches of the current batch size. A partial batch is sent when
// the input closes or after Linger without a new item.
func (c *Client) batch(ctx context.Context, in <-chan Item, out chan<- []Item) {
	var cur []Item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() bool {
		if len(cur) == 0 {
			return true
		}
		select {
		case out <- cur:
			cur = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		if len(cur) == 0 {
			select {
			case it, ok := <-in:
				if !ok {
					return
				}
				cur = append(cur, it)
				timer.Reset(c.opts.Linger)
			case <-ctx.Done():
				return
			}
		} else {
			select {
			case it, ok := <-in:
				if !ok {
					flush()
					return
				}
				cur = append(cur, it)
				timer.Reset(c.opts.Linger)
			case <-timer.C:
				if !flush() {
					return
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		if len(cur) >= c.BatchSize() {
			timer.Stop()
			if !flush() {
				return
			}
		}
	}
}

// lowerBatchSize reacts to HTTP 413: it takes the limit the launcher states, else halves.
func (c *Client) lowerBatchSize(sent int, body []byte) {
	var stated struct {
		MaxBatchSize int `json:"max_batch_size"`
	}
	n := sent / 2
	if json.Unmarshal(body, &stated) == nil && stated.MaxBatchSize >= 1 && stated.MaxBatchSize < sent {
		n = stated.MaxBatchSize
	}
	for {
		cur := c.batchSize.Load()
		if int64(n) >= cur || c.batchSize.CompareAndSwap(cur, int64(max(n, 1))) {
			return
		}
	}
}

// reply is the outcome of one POST.
type reply struct {
	code    int
	body    []byte
	hdr     http.Header
	err     error
	timeout bool // no answer within Options.Timeout
}

func (c *Client) post(ctx context.Context, predictURL string, items []Item) reply {
	parts := make([][]byte, 0, 2*len(items)+1)
	parts = append(parts, []byte(`{"schema_version":"predictions_v1","requests":[`))
	size := len(parts[0]) + 2
	for i, it := range items {
		if i > 0 {
			parts = append(parts, []byte{','})
			size++
		}
		parts = append(parts, it.JSON)
		size += len(it.JSON)
	}
	parts = append(parts, []byte(`]}`))
	bufs := net.Buffers(parts)

	rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, predictURL, &bufs)
	if err != nil {
		return reply{err: err}
	}
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", "application/json")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		if rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return reply{err: fmt.Errorf("POST %s: no answer within %s", predictURL, c.opts.Timeout), timeout: true}
		}
		return reply{err: fmt.Errorf("POST %s: %w", predictURL, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		r := reply{hdr: resp.Header, err: fmt.Errorf("POST %s: reading the answer: %w", predictURL, err)}
		if rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			r.err, r.timeout = fmt.Errorf("POST %s: no complete answer within %s", predictURL, c.opts.Timeout), true
		}
		return r
	}
	return reply{code: resp.StatusCode, body: body, hdr: resp.Header}
}
