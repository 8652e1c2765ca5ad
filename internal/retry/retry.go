// Package retry holds the waiting rules shared by every HTTP client of beans-slurm (the Hub,
// launchers, upstream APIs): a context-bounded sleep, the Retry-After header, and exponential
// backoff with jitter.
package retry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first; it returns the context's
// cause in the second case. d ≤ 0 returns at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// After parses a Retry-After header value: delay-seconds or an HTTP date. ok is false for an
// empty or unreadable value.
func After(v string) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t)), true
	}
	return 0, false
}

// Backoff is the wait before retry number attempt (0 for the first retry): base doubled per
// attempt up to limit, with full jitter in its upper half so that clients do not retry in step.
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := min(base<<min(attempt, 20), limit)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
