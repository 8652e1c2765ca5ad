package slurm

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// lossy runs every command but loses the answer of the submission: the connection drops
// after sbatch has run, as when a laptop's Wi-Fi goes during `submit`.
type lossy struct{ remote.Transport }

func (l lossy) Run(ctx context.Context, cmd string, stdin io.Reader) (*remote.Result, error) {
	res, err := l.Transport.Run(ctx, cmd, stdin)
	if err == nil && cmd == "bash -s" {
		return nil, &remote.ConnectionError{Where: "test", Op: "read the answer", Err: io.ErrUnexpectedEOF}
	}
	return res, err
}

func TestClusterSubmitCutOffNoDuplicates(t *testing.T) {
	c, _ := clusterClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "fake-beans-slurm")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nsleep 120\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "cut" + time.Now().Format("150405.000000")[7:], Suite: "demo",
		Models: []ModelSpec{{ID: "m1", Preset: "dummy_local_8000"}, {ID: "m2", Preset: "dummy_local_8000"}}}
	prof := Profile{Name: "test", WorkDir: dir, GPU: Resources{Partition: "gpu", Time: "00:05:00"},
		CPU: Resources{Partition: "cpu", Time: "00:05:00"}}
	m, files, err := Plan(spec, prof, bin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := Upload(ctx, c.T, m, files, SubmitOptions{Token: "t0ken"}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Cancel(context.Background(), liveIDs(t, c, m.JobNames())) }()

	// The answer is lost: nothing is known of the jobs.
	_, err = Submit(ctx, &Client{T: lossy{c.T}}, m, SubmitOptions{})
	if err == nil {
		t.Fatal("a lost answer was not reported")
	}
	if ids := m.JobIDs(""); len(ids) != 0 {
		t.Fatalf("job ids %v recorded from a lost answer", ids)
	}
	// The retry looks the jobs up by name first, adopts them and submits nothing.
	live, err := c.Find(ctx, m.JobNames())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Submit(ctx, c, m, SubmitOptions{Live: live})
	if err != nil || len(got) != 0 {
		t.Fatalf("retry submitted %+v (%v)", got, err)
	}
	if ids := m.JobIDs(""); len(ids) != 4 {
		t.Fatalf("adopted ids %v, want the 4 live jobs", ids)
	}
	if n := len(liveIDs(t, c, m.JobNames())); n != 4 {
		t.Errorf("%d live jobs, want 4 (no duplicate)", n)
	}
	// Resuming with every job live changes nothing either.
	live, _ = c.Find(ctx, m.JobNames())
	if got, err := Submit(ctx, c, m, SubmitOptions{Live: live, Resume: true}); err != nil || len(got) != 0 {
		t.Errorf("resume with live jobs submitted %+v (%v)", got, err)
	}
}

func liveIDs(t *testing.T, c *Client, names []string) []string {
	t.Helper()
	jobs, err := c.Find(context.Background(), names)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}
