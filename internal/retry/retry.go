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

// After reads how long a server asks to wait before the next attempt: OpenAI's
// retry-after-ms, else Retry-After in (possibly fractional) seconds or as an HTTP date, relative
// to now. ok is false when the answer says nothing usable.
func After(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s >= 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second)), true
		}
		return 0, false
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// Ceiling is the longest wait before retry number attempt (0 for the first retry): base
// doubled per attempt, up to limit.
func Ceiling(attempt int, base, limit time.Duration) time.Duration {
	return max(0, min(base<<min(max(attempt, 0), 20), limit))
}

// Jitter draws a wait in the upper half of ceiling, so that clients do not retry in step.
func Jitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}

// Backoff is Jitter(Ceiling(attempt, base, limit)).
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	return Jitter(Ceiling(attempt, base, limit))
}
