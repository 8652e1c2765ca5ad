package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// Client runs SLURM's commands (sbatch, sacct, squeue, scancel) through a transport. Each
// method is one remote command, bounded by its context.
type Client struct {
	T remote.Transport
}

// Marker lines in the output of QueryScript.
const (
	markSqueue = "#beans-slurm:squeue"
	markError  = "#beans-slurm:error "
)

var jobIDRE = regexp.MustCompile(`^[0-9]+(_([0-9]+|\[[0-9,%-]+\]))?$`)

// CheckJobID reports whether id is a job id as SLURM prints it: "1234", "1234_5" or
// "1234_[1-3]".
func CheckJobID(id string) error {
	if !jobIDRE.MatchString(id) {
		return fmt.Errorf("%q is not a SLURM job id", clip(id))
	}
	return nil
}

func checkJobIDs(ids []string) error {
	for _, id := range ids {
		if err := CheckJobID(id); err != nil {
			return err
		}
	}
	return nil
}

// QueryScript is a POSIX shell snippet that reports the jobs with these ids: it runs sacct and,
// only when sacct says accounting is disabled, squeue instead, after a marker line. It
// changes nothing in the shell that runs it (it runs in a subshell, whatever `set -e` says), so
// a caller can make it part of a larger remote script; ParseQueryOutput reads what it prints.
// An squeue that knows none of the ids (they ended more than MinJobAge ago) reports nothing;
// any other failure prints an error marker line.
func QueryScript(ids []string) string {
	return `(set +e
{ e=$(` + SacctCommand(ids) + ` 2>&1 1>&3 3>&-); rc=$?; } 3>&1
if [ "$rc" -eq 0 ]; then
  [ -z "$e" ] || printf '%s\n' "$e" >&2
else
  case $e in
  *'accounting storage is disabled'*)
    echo '` + markSqueue + `'
    { e=$(` + SqueueCommand(ids) + ` 2>&1 1>&3 3>&-); rc=$?; } 3>&1
    if [ "$rc" -ne 0 ]; then
      case $e in
      *'Invalid job id specified'*) ;;
      *) printf '` + markError + `squeue exited %s: %s\n' "$rc" "$(printf '%s' "$e" | tr '\n\t\r' '   ')" ;;
      esac
    fi ;;
  *) printf '` + markError + `sacct exited %s: %s\n' "$rc" "$(printf '%s' "$e" | tr '\n\t\r' '   ')" ;;
  esac
fi)`
}

// ParseQueryOutput reads what QueryScript printed: the jobs, and whether they came from sacct
// (accounting true) or from squeue.
func ParseQueryOutput(out []byte) (jobs []Job, accounting bool, err error) {
	var sacctOut, squeueOut []byte
	inSqueue := false
	for _, line := range bytes.SplitAfter(out, []byte("\n")) {
		t := bytes.TrimSpace(line)
		switch {
		case string(t) == markSqueue:
			inSqueue = true
			continue
		case bytes.HasPrefix(t, []byte(markError)):
			return nil, !inSqueue, errors.New(string(bytes.TrimPrefix(t, []byte(markError))))
		}
		if inSqueue {
			squeueOut = append(squeueOut, line...)
		} else {
			sacctOut = append(sacctOut, line...)
		}
	}
	if inSqueue {
		if len(bytes.TrimSpace(sacctOut)) > 0 {
			return nil, false, fmt.Errorf("unexpected output before the squeue fallback: %q", clip(string(sacctOut)))
		}
		jobs, err = ParseSqueue(squeueOut)
		return jobs, false, err
	}
	jobs, err = ParseSacct(sacctOut)
	return jobs, true, err
}

// Query reports the jobs with these ids (an array job's id reports each of its tasks) in one
// remote command. accounting is false when the cluster has no accounting database and the
// states come from squeue, which forgets finished jobs after MinJobAge (300 s by default).
// A job missing from the answer is not known (yet, or any more): sacct can lag a fresh
// submission by a moment. No ids, no command.
func (c *Client) Query(ctx context.Context, ids []string) (jobs []Job, accounting bool, err error) {
	if len(ids) == 0 {
		return nil, true, nil
	}
	if err := checkJobIDs(ids); err != nil {
		return nil, false, err
	}
	res, err := c.T.Run(ctx, QueryScript(ids), nil)
	if err != nil {
		return nil, false, fmt.Errorf("query jobs on %s: %w", c.T, err)
	}
	jobs, accounting, err = ParseQueryOutput(res.Stdout)
	if err != nil {
		return nil, accounting, fmt.Errorf("query jobs on %s: %w", c.T, err)
	}
	return jobs, accounting, nil
}

// Find lists the current user's live jobs (queued, running or completing) named by one of
// names, in one squeue call. Names may not hold commas.
func (c *Client) Find(ctx context.Context, names []string) ([]Job, error) {
	if len(names) == 0 {
		return nil, nil
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, ",\n\r\x00") {
			return nil, fmt.Errorf("find jobs: %q is not a job name", clip(n))
		}
	}
	out, err := remote.Output(ctx, c.T, FindCommand(names))
	if err != nil {
		return nil, fmt.Errorf("find jobs by name: %w", err)
	}
	jobs, err := ParseSqueue(out)
	if err != nil {
		return nil, fmt.Errorf("find jobs on %s: %w", c.T, err)
	}
	return notEnding(jobs), nil
}

// Cancel cancels these jobs (array job ids cancel every task) with one scancel call. Jobs that
// SLURM no longer knows or that have already ended are not an error.
func (c *Client) Cancel(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := checkJobIDs(ids); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	cmd := "scancel " + remote.Join(ids...)
	res, err := c.T.Run(ctx, cmd, nil)
	if err != nil {
		return fmt.Errorf("cancel jobs on %s: %w", c.T, err)
	}
	if res.ExitCode == 0 {
		return nil
	}
	for _, line := range strings.Split(string(res.Stderr), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !cancelTolerated(line) {
			return fmt.Errorf("cancel jobs %s: %w", strings.Join(ids, ","), &remote.ExitError{Command: cmd, Where: c.T.String(), Result: res})
		}
	}
	return nil
}

// cancelTolerated: scancel's complaints about jobs that are gone or already over.
func cancelTolerated(line string) bool {
	l := strings.ToLower(line)
	for _, s := range []string{"invalid job id specified", "already completing or completed", "job has already finished", "already complete"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
