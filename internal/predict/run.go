package predict

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/retry"
)

// job is a batch waiting to be sent, or sent again.
type job struct {
	items     []Item
	attempt   int       // POSTs made so far
	notBefore time.Time // backoff
	avoid     *endpoint // where it last failed
}

// sent is the outcome of one POST of a job.
type sent struct {
	job   *job
	ep    *endpoint
	start time.Time
	lat   time.Duration
	reply
}

// Run sends the items read from in, in batches, over the client's launchers, until in is
// closed and every item has its result. emit receives the results of one batch at a time and
// is never called concurrently; an error from emit stops the run and is returned. Failed
// items are results with Err set, never a Run error: Run fails only when ctx ends or emit
// fails.
//
// An item is retried, with exponential backoff and jitter (or the launcher's Retry-After),
// when its POST fails without an answer (no connection, a dropped connection, a timeout),
// answers HTTP 408, 429 or 5xx, or answers 200 without a usable answer for it (a launcher
// error, a missing or duplicated id, a body that is not predictions_v1). It gets at most
// Options.Attempts POSTs, over all launchers; then its last failure is its result. An answer
// is only ever attributed to the sample_id it names, once. HTTP 413 splits the batch and
// lowers the batch size; any other status fails the batch's items at once.
func (c *Client) Run(ctx context.Context, in <-chan Item, emit func([]Result) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	batches := make(chan []Item)
	go func() {
		defer close(batches)
		c.batch(ctx, in, batches)
	}()

	done := make(chan *sent)
	var queue []*job
	active := 0
	inputOpen := true
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	finish := func(rs []Result, items []Item) {
		for _, it := range items {
			if it.Release != nil {
				it.Release()
			}
		}
		if len(rs) == 0 || ctx.Err() != nil {
			return
		}
		if err := emit(rs); err != nil {
			cancel(err)
		}
	}
	giveUp := func(j *job, reason string) {
		rs := make([]Result, len(j.items))
		for i, it := range j.items {
			rs[i] = Result{Outcome: contract.Outcome{SampleID: it.ID, Err: reason}, Attempts: j.attempt}
		}
		finish(rs, j.items)
	}

	for {
		if ctx.Err() != nil {
			for active > 0 { // the POSTs end with ctx
				c.released((<-done).ep)
				active--
			}
			return context.Cause(ctx)
		}
		if !inputOpen && len(queue) == 0 && active == 0 {
			return nil
		}
		now := time.Now()
		if reason, out := c.outage(now); out {
			for _, j := range queue {
				giveUp(j, reason)
			}
			queue = queue[:0]
		}
		c.probeDue(now)
		// Send what is due, oldest first.
		sort.SliceStable(queue, func(a, b int) bool { return queue[a].notBefore.Before(queue[b].notBefore) })
		waiting := false // a due job found no launcher with room
		rest := queue[:0]
		for _, j := range queue {
			if j.notBefore.After(now) || waiting {
				rest = append(rest, j)
				waiting = waiting || !j.notBefore.After(now)
				continue
			}
			ep := c.pick(j.avoid, now)
			if ep == nil {
				rest = append(rest, j)
				waiting = true
				continue
			}
			j.attempt++
			active++
			go c.send(ctx, ep, j, done)
		}
		queue = rest

		var newBatch <-chan []Item
		if inputOpen && !waiting && c.hasRoom(now) {
			newBatch = batches
		}
		wakeAt := c.nextEvent(now)
		for _, j := range queue {
			if j.notBefore.After(now) && (wakeAt.IsZero() || j.notBefore.Before(wakeAt)) {
				wakeAt = j.notBefore
			}
		}
		if !wakeAt.IsZero() {
			timer.Reset(max(wakeAt.Sub(now), time.Millisecond))
		}
		select {
		case b, ok := <-newBatch:
			if !ok {
				inputOpen = false
			} else if reason, out := c.outage(time.Now()); out {
				giveUp(&job{items: b}, reason)
			} else {
				queue = append(queue, &job{items: b})
			}
		case s := <-done:
			active--
			if ctx.Err() == nil {
				queue = append(queue, c.settle(s, finish, giveUp)...)
			} else {
				c.released(s.ep)
			}
		case <-c.wake:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
	}
}

func (c *Client) send(ctx context.Context, ep *endpoint, j *job, done chan<- *sent) {
	start := time.Now()
	r := c.post(ctx, ep.url, j.items)
	done <- &sent{job: j, ep: ep, start: start, lat: time.Since(start), reply: r}
}

// settle turns one POST's outcome into results and the jobs to send again.
func (c *Client) settle(s *sent, finish func([]Result, []Item), giveUp func(*job, string)) []*job {
	j, ep := s.job, s.ep
	wait, hasWait := retry.After(s.hdr, time.Now())
	wait = min(wait, maxRetryAfter)
	if !hasWait {
		wait = 0
	}
	// again sends items once more after a backoff, or gives them up.
	again := func(items []Item, reason string) []*job {
		if len(items) == 0 {
			return nil
		}
		if j.attempt >= c.opts.Attempts {
			if j.attempt > 1 {
				reason = fmt.Sprintf("%s (gave up after %d attempts)", reason, j.attempt)
			}
			giveUp(&job{items: items, attempt: j.attempt}, reason)
			return nil
		}
		d := wait
		if !hasWait {
			d = retry.Backoff(j.attempt-1, c.opts.Backoff, MaxBackoff)
		}
		return []*job{{items: items, attempt: j.attempt, notBefore: time.Now().Add(d), avoid: ep}}
	}
	switch {
	case s.err != nil:
		c.failed(ep, s.start, s.err.Error(), s.timeout, 0)
		return again(j.items, s.err.Error())
	case s.code == http.StatusOK:
		ids := make([]string, len(j.items))
		byID := make(map[string]Item, len(j.items))
		for i, it := range j.items {
			ids[i] = it.ID
			byID[it.ID] = it
		}
		var ok []Result
		var okItems, retryItems []Item
		failedOutcomes := map[string]contract.Outcome{}
		clean := true
		for _, o := range contract.MatchResponse(s.body, ids) {
			it := byID[o.SampleID]
			if o.Err == "" {
				ok = append(ok, Result{Outcome: o, Latency: s.lat, Attempts: j.attempt})
				okItems = append(okItems, it)
				continue
			}
			if !strings.HasPrefix(o.Err, "launcher error: ") {
				clean = false // a contract violation, not the model's per-item error
			}
			retryItems = append(retryItems, it)
			failedOutcomes[o.SampleID] = o
		}
		c.answered(ep, s.start, s.lat, clean)
		finish(ok, okItems)
		if len(retryItems) == 0 {
			return nil
		}
		if j.attempt >= c.opts.Attempts {
			// Each item keeps its own reason, and the answer item that came with it.
			rs := make([]Result, len(retryItems))
			for i, it := range retryItems {
				o := failedOutcomes[it.ID]
				o.Prediction = ""
				if j.attempt > 1 {
					o.Err = fmt.Sprintf("%s (gave up after %d attempts)", o.Err, j.attempt)
				}
				rs[i] = Result{Outcome: o, Latency: s.lat, Attempts: j.attempt}
			}
			finish(rs, retryItems)
			return nil
		}
		return again(retryItems, "")
	case s.code == http.StatusRequestEntityTooLarge && len(j.items) > 1:
		c.released(ep)
		c.lowerBatchSize(len(j.items), s.body)
		n := c.BatchSize()
		if n >= len(j.items) {
			n = len(j.items) / 2
		}
		var out []*job
		for i := 0; i < len(j.items); i += n {
			// A split is not an attempt.
			out = append(out, &job{items: j.items[i:min(i+n, len(j.items))], attempt: j.attempt - 1})
		}
		return out
	}
	reason := fmt.Sprintf("HTTP %d from %s: %s", s.code, ep.url, contract.Excerpt(s.body))
	switch {
	case s.code == http.StatusTooManyRequests || s.code == http.StatusRequestTimeout:
		c.throttled(ep, s.start, wait)
		return again(j.items, reason)
	case s.code >= 500:
		c.failed(ep, s.start, reason, false, wait)
		return again(j.items, reason)
	}
	c.released(ep)
	giveUp(j, reason)
	return nil
}
