package retry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestAfter(t *testing.T) {
	for _, tt := range []struct {
		in   string
		ok   bool
		want time.Duration
	}{{"", false, 0}, {"7", true, 7 * time.Second}, {" 0 ", true, 0}, {"-1", false, 0}, {"soon", false, 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), true, 0}} {
		got, ok := After(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("After(%q) = %v %t, want %v %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	d, ok := After(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if !ok || d < 58*time.Minute || d > time.Hour {
		t.Errorf("an HTTP date an hour ahead: %v %t", d, ok)
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
