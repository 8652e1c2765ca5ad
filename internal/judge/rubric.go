package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/retry"
)

// rubricClient posts judge_scores_v1 batches.
type rubricClient struct {
	url      string
	token    string
	info     json.RawMessage
	batch    int
	inFlight int
	attempts int
	backoff  time.Duration
	timeout  time.Duration
	http     *http.Client

	mu sync.Mutex // guards batch, lowered on HTTP 413
}

type rubricResult struct {
	contract.JudgeOutcome
	attempts int
}

func newRubricClient(opts Options, info json.RawMessage) *rubricClient {
	c := &rubricClient{url: opts.URL, token: opts.Token, info: info, batch: opts.RubricBatch, inFlight: opts.RubricInFlight,
		attempts: opts.Predict.Attempts, backoff: opts.Predict.Backoff, timeout: opts.Predict.Timeout, http: opts.HTTPClient}
	if c.batch <= 0 {
		c.batch = 16
		if n := infoBatchLimit(info); n > 0 {
			c.batch = n
		}
	}
	if c.inFlight <= 0 {
		c.inFlight = 4
	}
	if c.attempts <= 0 {
		c.attempts = 5
	}
	if c.backoff <= 0 {
		c.backoff = 500 * time.Millisecond
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Minute
	}
	return c
}

// infoBatchLimit is the batch limit a judge service's /info states (0 = none): 1 when
// supports_batching is false, else max_batch_size. A judge_scores_v1 service's /info need
// not carry the other fields of a predictions_v1 launcher's, so it is not checked as one.
func infoBatchLimit(info json.RawMessage) int {
	var in struct {
		MaxBatchSize     int   `json:"max_batch_size"`
		SupportsBatching *bool `json:"supports_batching"`
	}
	if len(info) == 0 || json.Unmarshal(info, &in) != nil {
		return 0
	}
	if in.SupportsBatching != nil && !*in.SupportsBatching {
		return 1
	}
	return max(in.MaxBatchSize, 0)
}

// lowerBatch lowers the batch size for the batches not yet sent.
func (c *rubricClient) lowerBatch(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n >= 1 && n < c.batch {
		c.batch = n
	}
}

func (c *rubricClient) batchSize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batch
}

// identity is the service's /info, or its URL when it has none.
func (c *rubricClient) identity() json.RawMessage {
	if len(c.info) > 0 {
		return c.info
	}
	b, _ := json.Marshal(map[string]string{"url": c.url, "schema": contract.JudgeScoresV1})
	return b
}

// score sends the items in batches, several in flight, and returns one result per item. HTTP
// 413 halves the batch (and the size of the batches after it). A batch that fails without an answer (no connection, a timeout, HTTP 408, 429 or 5xx) is
// retried with backoff (Retry-After honoured); after the last attempt, or on any other
// status, its items fail with the reason. Items the judge answered wrongly (missing, out of
// range) fail alone. Only ctx ending is an error.
func (c *rubricClient) score(ctx context.Context, items []contract.JudgeItem) ([]rubricResult, error) {
	out := make([]rubricResult, 0, len(items))
	var mu sync.Mutex
	sem := make(chan struct{}, c.inFlight)
	var wg sync.WaitGroup
	for start := 0; start < len(items); {
		n := c.batchSize()
		b := items[start:min(start+n, len(items))]
		start += len(b)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, context.Cause(ctx)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res := c.post(ctx, b)
			mu.Lock()
			out = append(out, res...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	return out, nil
}

// post sends one batch until it is answered or its attempts are spent.
func (c *rubricClient) post(ctx context.Context, items []contract.JudgeItem) []rubricResult {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.SampleID
	}
	body, err := json.Marshal(contract.JudgeRequest{SchemaVersion: contract.JudgeScoresV1, Items: items})
	fail := func(reason string, attempts int) []rubricResult {
		out := make([]rubricResult, len(ids))
		for i, id := range ids {
			out[i] = rubricResult{JudgeOutcome: contract.JudgeOutcome{SampleID: id, Err: reason}, attempts: attempts}
		}
		return out
	}
	if err != nil {
		return fail("encode the judge request: "+err.Error(), 0)
	}
	var last string
	for attempt := 1; attempt <= c.attempts; attempt++ {
		code, respBody, wait, err := c.do(ctx, body)
		switch {
		case ctx.Err() != nil:
			return fail("cancelled: "+context.Cause(ctx).Error(), attempt)
		case err != nil:
			last = "judge request failed: " + err.Error()
		case code == http.StatusOK:
			got := contract.MatchJudgeResponse(respBody, ids)
			out := make([]rubricResult, len(got))
			for i, g := range got {
				out[i] = rubricResult{JudgeOutcome: g, attempts: attempt}
			}
			return out
		case code == http.StatusRequestEntityTooLarge && len(items) > 1:
			// Too many items for the service: halve the batch (and the batches after it).
			half := len(items) / 2
			c.lowerBatch(half)
			return append(c.post(ctx, items[:half]), c.post(ctx, items[half:])...)
		case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
			last = fmt.Sprintf("judge answered HTTP %d %s", code, contract.Excerpt(respBody))
		default:
			return fail(fmt.Sprintf("judge answered HTTP %d %s", code, contract.Excerpt(respBody)), attempt)
		}
		if attempt == c.attempts {
			break
		}
		if wait <= 0 {
			wait = retry.Backoff(attempt-1, c.backoff, 30*time.Second)
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return fail("cancelled: "+err.Error(), attempt)
		}
	}
	return fail(last+fmt.Sprintf(" (after %d attempts)", c.attempts), c.attempts)
}

func (c *rubricClient) do(ctx context.Context, body []byte) (int, []byte, time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, 0, err
	}
	wait, _ := retry.After(resp.Header, time.Now())
	wait = min(wait, 2*time.Minute)
	return resp.StatusCode, b, wait, nil
}
