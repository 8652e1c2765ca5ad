package predict

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Adaptive batches in flight (per launcher), an AIMD rule:
//
//   - A launcher starts at Options.InFlight.
//   - A batch answered 200 without contract violations is clean. Its latency is compared
//     with the launcher's baseline, an EWMA (weight 0.1) of clean latencies: it is rising
//     when it exceeds twice the baseline and the baseline by more than risingMargin.
//   - A clean batch that is not rising, sent while the launcher had all its slots in use,
//     counts towards growth; after as many such batches as the current limit the limit
//     grows by one, up to Options.MaxInFlight.
//   - HTTP 429, HTTP 408, a timeout or a rising latency halves the limit (never below 1).
//     Answers to requests sent before the last cut cannot cut again, so one burst of
//     429s halves once.
const risingMargin = 100 * time.Millisecond

// endpoint is one launcher and what the client knows of it. Its fields past infoRaw are
// guarded by Client.mu.
type endpoint struct {
	url, health, infoURL string
	info                 contract.Info
	infoRaw              json.RawMessage

	inFlight, peak     int
	limit, cap, peakLm int
	good               int // clean, saturated answers since the limit last changed
	ewma               time.Duration
	lastCut            time.Time

	fails     int           // failures in a row
	down      bool          // taken out
	retired   string        // why it is out for good (another model after a restart)
	until     time.Time     // end of the cool-down
	cooldown  time.Duration // the next cool-down
	probing   bool
	paused    time.Time // Retry-After: no request before this
	lastErr   string
	requests  int
	failures  int
	takenOuts int
}

// EndpointStats describe one launcher of a client (Client.Stats).
type EndpointStats struct {
	URL string
	// InFlight is how many requests are in flight now; Limit how many may be (adaptive),
	// Cap the most it may grow to.
	InFlight, Limit, Cap int
	// PeakInFlight and PeakLimit are the most requests in flight at once, and the highest
	// limit, so far.
	PeakInFlight, PeakLimit int
	// Requests counts POSTs sent, Failures those that failed as a whole (no answer, HTTP
	// error, timeout).
	Requests, Failures int
	// Out says the launcher is taken out (cooling down, or retired); TakenOut counts how
	// many times it was.
	Out      bool
	TakenOut int
	// LastError is the last whole-request failure.
	LastError string
}

// Stats describe every launcher of the client, in the order given.
func (c *Client) Stats() []EndpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]EndpointStats, len(c.eps))
	for i, e := range c.eps {
		out[i] = EndpointStats{URL: e.url, InFlight: e.inFlight, Limit: e.limit, Cap: e.cap,
			PeakInFlight: e.peak, PeakLimit: max(e.peakLm, e.limit), Requests: e.requests, Failures: e.failures,
			Out: e.down || e.retired != "", TakenOut: e.takenOuts, LastError: e.lastErr}
	}
	return out
}

func (e *endpoint) usable(now time.Time) bool {
	return !e.down && e.retired == "" && !now.Before(e.paused) && e.inFlight < e.limit
}

// pick reserves a slot on the launcher with the fewest requests in flight (then the most
// room), preferring another launcher than avoid (where the batch just failed). nil: none
// has room.
func (c *Client) pick(avoid *endpoint, now time.Time) *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best, fallback *endpoint
	better := func(a, b *endpoint) bool {
		if b == nil {
			return true
		}
		if a.inFlight != b.inFlight {
			return a.inFlight < b.inFlight
		}
		return a.limit-a.inFlight > b.limit-b.inFlight
	}
	for _, e := range c.eps {
		if !e.usable(now) {
			continue
		}
		if e == avoid {
			fallback = e
			continue
		}
		if better(e, best) {
			best = e
		}
	}
	if best == nil {
		best = fallback
	}
	if best != nil {
		best.inFlight++
		best.requests++
		best.peak = max(best.peak, best.inFlight)
	}
	return best
}

// hasRoom says whether some launcher could take a batch now.
func (c *Client) hasRoom(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.eps {
		if e.usable(now) {
			return true
		}
	}
	return false
}

// cut halves the limit, once per burst (see the rule above). Called with c.mu held.
func (e *endpoint) cut(sent, now time.Time) {
	if sent.Before(e.lastCut) {
		return
	}
	e.limit = max(1, e.limit/2)
	e.good = 0
	e.lastCut = now
}

// answered records a 200 answer. Called without c.mu.
func (c *Client) answered(e *endpoint, sent time.Time, lat time.Duration, clean bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	saturated := e.inFlight >= e.limit
	e.inFlight--
	e.fails = 0
	e.cooldown = c.opts.Cooldown
	if e.down && e.retired == "" {
		e.down = false
		c.allDownSince = time.Time{}
	}
	if !clean {
		return
	}
	rising := e.ewma > 0 && lat > 2*e.ewma && lat-e.ewma > risingMargin
	if e.ewma == 0 {
		e.ewma = lat
	} else {
		e.ewma = (9*e.ewma + lat) / 10
	}
	now := time.Now()
	switch {
	case rising:
		e.cut(sent, now)
	case saturated && !sent.Before(e.lastCut):
		e.good++
		if e.good >= e.limit && e.limit < e.cap {
			e.limit++
			e.peakLm = max(e.peakLm, e.limit)
			e.good = 0
		}
	}
}

// released gives back a slot without judging the launcher (HTTP 413, a client-side error).
func (c *Client) released(e *endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.inFlight--
}

// throttled records HTTP 429 or 408: the limit is halved and, with a Retry-After, the
// launcher gets no request until then.
func (c *Client) throttled(e *endpoint, sent time.Time, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.inFlight--
	now := time.Now()
	e.cut(sent, now)
	if wait > 0 {
		if t := now.Add(wait); t.After(e.paused) {
			e.paused = t
		}
	}
}

// failed records a whole-request failure: no connection, a dropped one, a timeout or HTTP
// 5xx. TakeOutAfter of them in a row take the launcher out for a cool-down.
func (c *Client) failed(e *endpoint, sent time.Time, reason string, timeout bool, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.inFlight--
	e.fails++
	e.failures++
	e.lastErr = reason
	now := time.Now()
	if timeout {
		e.cut(sent, now)
	}
	if wait > 0 {
		if t := now.Add(wait); t.After(e.paused) {
			e.paused = t
		}
	}
	if e.fails >= TakeOutAfter && !e.down {
		c.takeOut(e, now)
	}
}

// takeOut starts a cool-down. Called with c.mu held.
func (c *Client) takeOut(e *endpoint, now time.Time) {
	e.down = true
	e.takenOuts++
	c.opts.Log.Warn("launcher taken out: no batch goes to it until it answers /health again", "url", e.url,
		"failures_in_a_row", e.fails, "last_error", clip(e.lastErr), "probe_in", e.cooldown)
	e.until = now.Add(e.cooldown)
	e.cooldown = min(2*e.cooldown, MaxCooldown)
	if c.allDownSince.IsZero() && c.allDownLocked() {
		c.allDownSince = now
	}
}

func (c *Client) allDownLocked() bool {
	for _, e := range c.eps {
		if !e.down && e.retired == "" {
			return false
		}
	}
	return true
}

// probeDue starts a /health probe of every launcher whose cool-down is over.
func (c *Client) probeDue(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.eps {
		if e.down && e.retired == "" && !e.probing && !now.Before(e.until) {
			e.probing = true
			go c.probe(e)
		}
	}
}

// probe asks a launcher taken out for /health, and for /info to check that it still serves
// the same model. A launcher back with another model is retired for good.
func (c *Client) probe(e *endpoint) {
	timeout := min(c.opts.Timeout, 10*time.Second)
	ctx := context.Background()
	code, body, err := c.get(ctx, e.health, timeout)
	reason := ""
	retire := ""
	switch {
	case err != nil:
		reason = fmt.Sprintf("GET %s: %v", e.health, err)
	case code != http.StatusOK:
		reason = fmt.Sprintf("GET %s answered HTTP %d %s", e.health, code, contract.Excerpt(body))
	default:
		code, body, err = c.get(ctx, e.infoURL, timeout)
		switch {
		case err != nil:
			reason = fmt.Sprintf("GET %s: %v", e.infoURL, err)
		case code != http.StatusOK:
			reason = fmt.Sprintf("GET %s answered HTTP %d", e.infoURL, code)
		default:
			if diffs := diffIdentity(c.identity, identityOf(body)); len(diffs) > 0 {
				retire = "came back serving another model: " + strings.Join(diffs, "; ")
			}
		}
	}
	c.mu.Lock()
	e.probing = false
	now := time.Now()
	switch {
	case retire != "":
		e.retired, e.lastErr = retire, retire
		c.opts.Log.Error("launcher retired for the rest of the run", "url", e.url, "why", retire)
	case reason != "":
		e.lastErr = reason
		e.until = now.Add(e.cooldown)
		e.cooldown = min(2*e.cooldown, MaxCooldown)
	default:
		c.opts.Log.Info("launcher back: it answers /health again", "url", e.url)
		e.down = false
		e.fails = 0
		e.paused = time.Time{}
		c.allDownSince = time.Time{}
	}
	if c.allDownSince.IsZero() && c.allDownLocked() {
		c.allDownSince = now
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// outage says whether every launcher has been out for longer than Options.Outage, and why.
func (c *Client) outage(now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.allDownSince.IsZero() || !c.allDownLocked() || now.Sub(c.allDownSince) < c.opts.Outage {
		return "", false
	}
	var why []string
	for _, e := range c.eps {
		why = append(why, e.url+": "+e.lastErr)
	}
	return fmt.Sprintf("every launcher has been out for %s (%s)", now.Sub(c.allDownSince).Round(time.Second), strings.Join(why, "; ")), true
}

// nextEvent is when the launchers' state next changes by itself: a cool-down or a
// Retry-After ends, or an outage runs out (zero: nothing pending).
func (c *Client) nextEvent(now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	at := func(x time.Time) {
		if x.After(now) && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	for _, e := range c.eps {
		if e.down && e.retired == "" && !e.probing {
			at(e.until)
		}
		at(e.paused)
	}
	if !c.allDownSince.IsZero() {
		at(c.allDownSince.Add(c.opts.Outage))
	}
	return t
}
