// Package predict is the predictions_v1 client: it checks a launcher before any data is
// read, sends batches of at most the launcher's batch limit with several batches in flight,
// matches answers by sample_id and turns every contract violation into the failure of the
// affected items. Every request is bounded by a timeout.
package predict

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/retry"
)

// Defaults.
const (
	DefaultInFlight = 8
	DefaultTimeout  = 10 * time.Minute
	DefaultLinger   = 50 * time.Millisecond
	defaultAttempts = 3
	maxBodyBytes    = 256 << 20
)

// Options tune a Client. The zero value is usable.
type Options struct {
	// InFlight is how many batches may be in flight at once (0 = DefaultInFlight). More
	// batches in flight than the launcher works on at once keep it from waiting for the
	// client between batches.
	InFlight int
	// BatchSize caps the items per POST below the launcher's limit (0 = the launcher's
	// /info limit).
	BatchSize int
	// Timeout bounds each HTTP request, including reading the answer (0 = DefaultTimeout).
	Timeout time.Duration
	// Linger is how long a partial batch waits for more items before it is sent anyway
	// (0 = DefaultLinger).
	Linger time.Duration
	// Attempts is how many times a batch is sent when the launcher cannot be reached or
	// answers 429 or 5xx (0 = 3).
	Attempts int
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// HTTPClient replaces the default client (which never uses an HTTP proxy: site proxies
	// break connections to compute nodes).
	HTTPClient *http.Client
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

// Client talks to one launcher.
type Client struct {
	predictURL string
	info       contract.Info
	infoRaw    json.RawMessage
	http       *http.Client
	opts       Options
	batchSize  atomic.Int64
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
	ep, err := contract.ParsePredictURL(predictURL)
	if err != nil {
		return nil, err
	}
	predictURL, health, infoURL := ep.Predict, ep.Health, ep.Info
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultInFlight
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.Attempts <= 0 {
		opts.Attempts = defaultAttempts
	}
	c := &Client{predictURL: predictURL, opts: opts, http: opts.HTTPClient}
	if c.http == nil {
		c.http = NewHTTPClient(opts.InFlight)
	}
	probe := func(u string) (int, []byte, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
	code, body, err := probe(health)
	if err != nil {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s failed: %v (is the launcher running?)", health, err)}
	}
	if code != http.StatusOK {
		return nil, &UnavailableError{URL: predictURL, Reason: fmt.Sprintf("GET %s answered HTTP %d %s (not ready yet?)", health, code, contract.Excerpt(body))}
	}
	code, body, err = probe(infoURL)
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
	c.info = info
	c.infoRaw = append(json.RawMessage(nil), bytes.TrimSpace(body)...)
	limit := info.BatchLimit()
	if opts.BatchSize > 0 && opts.BatchSize < limit {
		limit = opts.BatchSize
	}
	c.batchSize.Store(int64(limit))
	return c, nil
}

// Info is the launcher's /info document as checked by Connect.
func (c *Client) Info() contract.Info { return c.info }

// InfoRaw is the launcher's /info body as it arrived.
func (c *Client) InfoRaw() json.RawMessage { return c.infoRaw }

// BatchSize is the current number of items per POST.
func (c *Client) BatchSize() int { return int(c.batchSize.Load()) }

// InFlight is the number of batches kept in flight.
func (c *Client) InFlight() int { return c.opts.InFlight }

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

// Run sends the items read from in, in batches, with up to InFlight batches in flight, until
// in is closed and every answer is in. emit receives the results of one batch at a time and
// is never called concurrently; an error from emit stops the run and is returned. Failed
// items are results with Err set, never a Run error: Run fails only when ctx ends or emit
// fails.
func (c *Client) Run(ctx context.Context, in <-chan Item, emit func([]Result) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	batches := make(chan []Item)
	results := make(chan []Result, c.opts.InFlight)

	go func() {
		defer close(batches)
		c.batch(ctx, in, batches)
	}()

	var wg sync.WaitGroup
	for range c.opts.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				res := c.send(ctx, b)
				for _, it := range b {
					if it.Release != nil {
						it.Release()
					}
				}
				select {
				case results <- res:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	for res := range results {
		if ctx.Err() != nil {
			continue // drain what is in flight after a failure
		}
		if err := emit(res); err != nil {
			cancel(err)
		}
	}
	return context.Cause(ctx)
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

// send posts one batch and returns one result per item, splitting the batch if the
// launcher says it is too large and retrying transient failures.
func (c *Client) send(ctx context.Context, items []Item) []Result {
	var out []Result
	attempt := 0
	for {
		attempt++
		start := time.Now()
		code, body, hdr, err := c.post(ctx, items)
		lat := time.Since(start)
		switch {
		case err == nil && code == http.StatusOK:
			ids := make([]string, len(items))
			for i, it := range items {
				ids[i] = it.ID
			}
			for _, o := range contract.MatchResponse(body, ids) {
				out = append(out, Result{Outcome: o, Latency: lat, Attempts: attempt})
			}
			return out
		case err == nil && code == http.StatusRequestEntityTooLarge && len(items) > 1:
			c.lowerBatchSize(len(items), body)
			n := c.BatchSize()
			if n >= len(items) {
				n = len(items) / 2
			}
			for i := 0; i < len(items); i += n {
				out = append(out, c.send(ctx, items[i:min(i+n, len(items))])...)
			}
			return out
		}
		reason := ""
		again := false
		if err != nil {
			reason = err.Error()
			again = ctx.Err() == nil
		} else {
			reason = fmt.Sprintf("HTTP %d from %s: %s", code, c.predictURL, contract.Excerpt(body))
			again = code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
		}
		if again && attempt < c.opts.Attempts {
			// Exponential backoff with jitter, or the launcher's Retry-After (capped).
			wait := retry.Backoff(attempt-1, 500*time.Millisecond, 30*time.Second)
			if ra, ok := retry.After(hdr, time.Now()); ok {
				wait = min(ra, 2*time.Minute)
			}
			if retry.Sleep(ctx, wait) == nil {
				continue
			}
		}
		for _, it := range items {
			out = append(out, Result{Outcome: contract.Outcome{SampleID: it.ID, Err: reason}, Latency: lat, Attempts: attempt})
		}
		return out
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

func (c *Client) post(ctx context.Context, items []Item) (int, []byte, http.Header, error) {
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
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.predictURL, &bufs)
	if err != nil {
		return 0, nil, nil, err
	}
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", "application/json")
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		if rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return 0, nil, nil, fmt.Errorf("POST %s: no answer within %s", c.predictURL, c.opts.Timeout)
		}
		return 0, nil, nil, fmt.Errorf("POST %s: %w", c.predictURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return 0, nil, resp.Header, fmt.Errorf("POST %s: reading the answer: %w", c.predictURL, err)
	}
	return resp.StatusCode, body, resp.Header, nil
}
