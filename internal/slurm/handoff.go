package slurm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
)

// The handoff directory is where a serving job and its inference jobs meet, on the shared
// filesystem. Every file name carries the serving job's id, so a file left by an earlier
// serving job is never read:
//
//	serve-<job>.url         the launcher's predict URL, written atomically once /health answers
//	serve-<job>.exit        why the serving job ended (written as it exits; the .url is removed)
//	infer-<job>-<shard>.done an inference worker of that serving job has finished (ok or failed)
const (
	urlSuffix  = ".url"
	exitSuffix = ".exit"
	doneSuffix = ".done"
)

// Handoff names the files of one serving job in a handoff directory.
type Handoff struct {
	Dir      string
	ServeJob string
}

// URLFile is where the serving job publishes its predict URL.
func (h Handoff) URLFile() string { return filepath.Join(h.Dir, "serve-"+h.ServeJob+urlSuffix) }

// ExitFile is where the serving job says why it ended.
func (h Handoff) ExitFile() string { return filepath.Join(h.Dir, "serve-"+h.ServeJob+exitSuffix) }

// DoneFile is the marker an inference worker (shard) leaves when it has finished.
func (h Handoff) DoneFile(shard int) string {
	return filepath.Join(h.Dir, fmt.Sprintf("infer-%s-%d%s", h.ServeJob, shard, doneSuffix))
}

// PublishURL writes the predict URL atomically (temporary name, fsync, rename) and removes an
// exit file of the same job left by an earlier attempt.
func (h Handoff) PublishURL(predictURL string) error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return fmt.Errorf("create handoff directory: %w", err)
	}
	_ = os.Remove(h.ExitFile())
	return atomicfile.Write(h.URLFile(), []byte(predictURL+"\n"))
}

// Withdraw removes the URL file and records why the serving job ends.
func (h Handoff) Withdraw(reason string) error {
	err := os.Remove(h.URLFile())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.Write(h.ExitFile(), []byte(strings.TrimSpace(reason)+"\n"))
}

// MarkDone records that an inference shard of this serving job has finished.
func (h Handoff) MarkDone(shard int, status string) error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(h.DoneFile(shard), []byte(strings.TrimSpace(status)+"\n"))
}

// DoneShards lists the shards that have left a done marker for this serving job.
func (h Handoff) DoneShards() ([]int, error) {
	ents, err := os.ReadDir(h.Dir)
	if err != nil {
		return nil, err
	}
	prefix := "infer-" + h.ServeJob + "-"
	var shards []int
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		name, ok = strings.CutSuffix(name, doneSuffix)
		if !ok {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name {
			shards = append(shards, n)
		}
	}
	sort.Ints(shards)
	return shards, nil
}

// ServeEndedError says that the serving job ended without publishing a URL, or withdrew it.
type ServeEndedError struct {
	Job    string
	Reason string
}

func (e *ServeEndedError) Error() string {
	return fmt.Sprintf("serving job %s ended without a launcher: %s", e.Job, e.Reason)
}

// WaitOptions bound WaitURL.
type WaitOptions struct {
	// Timeout bounds the whole wait (0 = one hour).
	Timeout time.Duration
	// Poll is how often the directory is read (0 = 2 s; shared filesystems cache attributes
	// for a few seconds anyway).
	Poll time.Duration
	// Alive, when set, is asked every AliveEvery whether the serving job still exists; false
	// ends the wait at once with a *ServeEndedError.
	Alive      func(ctx context.Context) (bool, error)
	AliveEvery time.Duration
}

// WaitURL waits until the serving job publishes its URL and returns it. It gives up at once
// when the serving job has written its exit file or no longer exists, and after the timeout.
func (h Handoff) WaitURL(ctx context.Context, o WaitOptions) (string, error) {
	if o.Timeout <= 0 {
		o.Timeout = time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.AliveEvery <= 0 {
		o.AliveEvery = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	lastAlive := time.Now()
	for {
		if b, err := os.ReadFile(h.URLFile()); err == nil {
			u := strings.TrimSpace(string(b))
			if _, perr := url.Parse(u); perr != nil || !strings.HasPrefix(u, "http") {
				return "", fmt.Errorf("%s holds %q, not a predict URL", h.URLFile(), u)
			}
			return u, nil
		}
		if b, err := os.ReadFile(h.ExitFile()); err == nil {
			return "", &ServeEndedError{Job: h.ServeJob, Reason: strings.TrimSpace(string(b))}
		}
		if o.Alive != nil && time.Since(lastAlive) >= o.AliveEvery {
			lastAlive = time.Now()
			alive, err := o.Alive(ctx)
			if err == nil && !alive {
				// The job may have written its files just before it ended: look once more.
				if b, err := os.ReadFile(h.URLFile()); err == nil {
					return strings.TrimSpace(string(b)), nil
				}
				return "", &ServeEndedError{Job: h.ServeJob, Reason: "the job is no longer in the queue and wrote no URL (see its log)"}
			}
		}
		t := time.NewTimer(o.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", fmt.Errorf("no predict URL from serving job %s in %s after %s (is it still pending? see `beans-slurm status`)", h.ServeJob, h.URLFile(), o.Timeout)
			}
			return "", ctx.Err()
		case <-t.C:
		}
	}
}
