package slurm

import (
	"context"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// JobAlive returns a check, for use inside a job, of whether job id is still queued or running,
// asked of SLURM on this node. When SLURM cannot answer, the job counts as alive: a wait is
// never cut short on a guess. A job missing from SLURM's answer counts as ended only when it is
// missing twice in a row (accounting lags the queue by a moment).
func JobAlive(id string) func(ctx context.Context) (bool, error) {
	c := &Client{T: remote.NewLocal()}
	missing := 0
	return func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		jobs, _, err := c.Query(ctx, []string{id})
		if err != nil {
			return true, err
		}
		for _, j := range jobs {
			if j.ID == id {
				missing = 0
				return !j.State.Done(), nil
			}
		}
		missing++
		return missing < 2, nil
	}
}

// JobsLive returns a check of whether any job with one of names is queued or running for this
// user, asked of SLURM on this node; on error it reports true.
func JobsLive(names ...string) func(ctx context.Context) (bool, error) {
	c := &Client{T: remote.NewLocal()}
	return func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		jobs, err := c.Find(ctx, names)
		if err != nil {
			return true, err
		}
		for _, j := range jobs {
			if !j.State.Done() {
				return true, nil
			}
		}
		return false, nil
	}
}
