package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, header, value string
		ok                  bool
		want                time.Duration
	}{
		{"none", "", "", false, 0},
		{"seconds", "Retry-After", "7", true, 7 * time.Second},
		{"zero", "Retry-After", " 0 ", true, 0},
		{"fraction", "Retry-After", "1.5", true, 1500 * time.Millisecond},
		{"negative", "Retry-After", "-1", false, 0},
		{"absurd", "Retry-After", "1e9", false, 0},
		{"words", "Retry-After", "soon", false, 0},
		{"date ahead", "Retry-After", now.Add(time.Hour).Format(http.TimeFormat), true, time.Hour},
		{"date past", "Retry-After", now.Add(-time.Hour).Format(http.TimeFormat), true, 0},
		{"ms", "Retry-After-Ms", "250", true, 250 * time.Millisecond},
	} {
		h := http.Header{}
		if tt.header != "" {
			h.Set(tt.header, tt.value)
		}
		got, ok := After(h, now)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: After = %v %t, want %v %t", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	// retry-after-ms wins over Retry-After.
	h := http.Header{"Retry-After": {"9"}, "Retry-After-Ms": {"10"}}
	if d, _ := After(h, now); d != 10*time.Millisecond {
		t.Errorf("both headers: %v", d)
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		want := min(100*time.Millisecond<<min(attempt, 20), 5*time.Second)
		for i := 0; i < 20; i++ {
			if d := Backoff(attempt, 100*time.Millisecond, 5*time.Second); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	if d := Backoff(3, 0, time.Second); d != 0 {
		t.Errorf("zero base: %v", d)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("stop")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := Sleep(ctx, time.Hour); !errors.Is(err, cause) {
		t.Errorf("cancelled: %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, cause) {
		t.Errorf("cancelled, no wait: %v", err)
	}
}
