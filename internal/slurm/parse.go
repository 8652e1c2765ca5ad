package slurm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// Job is one job, or one array task, as sacct or squeue reports it.
type Job struct {
	ID         string        // as printed: "1234", "1234_0", or "1234_[1-3]" for pending tasks not yet split off
	RawID      string        // sacct's JobIDRaw (an array task's own number); "" from squeue
	ArrayJobID string        // "1234" for an array task, "" otherwise
	ArrayTask  string        // "0", or "[1-3]" for a pending range; "" when not an array task
	Name       string        // job name
	State      State         // first word of RawState
	RawState   string        // as printed: "CANCELLED by 1001"
	ExitCode   string        // "0:0" (code:signal); "" from squeue
	Reason     string        // "None", "Resources", "Dependency", "NonZeroExitCode"…
	Nodes      string        // node list, "" or "None assigned" before the job runs
	Elapsed    time.Duration // time run so far
}

// BaseID is the job id without an array task: "1234" for "1234_0" and for "1234".
func (j Job) BaseID() string {
	if j.ArrayJobID != "" {
		return j.ArrayJobID
	}
	return j.ID
}

// baseID is BaseID, for the sweep code of this package.
func (j Job) baseID() string { return j.BaseID() }

// Output formats; the job name is the only free-text column, and sits where a "|" inside it
// can be recognised (see splitFields).
const (
	sacctFields  = "JobID,JobIDRaw,JobName,State,ExitCode,Reason,NodeList,Elapsed"
	sacctCount   = 8
	sacctName    = 2
	squeueFormat = "%i|%j|%T|%r|%N|%M"
	squeueCount  = 6
	squeueName   = 1
)

// SacctCommand is the sacct call that reports the jobs with these ids (an array job id reports
// all its tasks), one line per job or task, parsed by ParseSacct. --starttime widens sacct's
// window: without it, a query by id only sees jobs since midnight on some versions.
func SacctCommand(ids []string) string {
	return "sacct -X -P -n -o " + sacctFields + " --starttime now-2days -j " + idList(ids)
}

// SqueueCommand is the squeue call that reports the jobs with these ids, finished ones
// included while slurmctld still remembers them (MinJobAge, 300 s by default); parsed by
// ParseSqueue. squeue exits 1 ("Invalid job id specified") when it knows none of them.
func SqueueCommand(ids []string) string {
	return "squeue -h -t all -o '" + squeueFormat + "' -j " + idList(ids)
}

// FindCommand lists the current user's jobs still in the queue (queued, running, completing)
// that carry one of these job names; parsed by ParseSqueue. Find and ProbeCluster then drop the
// completing ones.
func FindCommand(names []string) string {
	return `squeue -h -u "${USER:-$(id -un)}" -n ` + idList(names) + " -o '" + squeueFormat + "'"
}

// idList joins ids (or names) with commas, quoted for the shell.
func idList(ids []string) string {
	if len(ids) == 0 {
		return "''"
	}
	return remote.Quote(strings.Join(ids, ","))
}

// ParseSacct reads the output of SacctCommand. Blank lines are skipped; a line with too few
// fields, or an elapsed time that is not one, is an error naming the line.
func ParseSacct(out []byte) ([]Job, error) {
	var jobs []Job
	for n, line := range lines(out) {
		if line == "" {
			continue
		}
		f, err := splitFields(line, sacctCount, sacctName)
		if err != nil {
			return nil, fmt.Errorf("sacct line %d %q: %w", n+1, clip(line), err)
		}
		j := Job{
			ID: f[0], RawID: f[1], Name: f[2], RawState: f[3], State: ParseState(f[3]),
			ExitCode: f[4], Reason: f[5], Nodes: f[6],
		}
		j.ArrayJobID, j.ArrayTask = splitArrayID(j.ID)
		if j.Elapsed, err = ParseElapsed(f[7]); err != nil {
			return nil, fmt.Errorf("sacct line %d %q: %w", n+1, clip(line), err)
		}
		if j.ID == "" {
			return nil, fmt.Errorf("sacct line %d %q: no job id", n+1, clip(line))
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// notEnding drops jobs that are completing: they will not run again, so they are neither
// adopted by a resubmission nor counted as a live serving job.
func notEnding(jobs []Job) []Job {
	out := jobs[:0]
	for _, j := range jobs {
		if j.State != StateCompleting {
			out = append(out, j)
		}
	}
	return out
}

// ParseSqueue reads the output of SqueueCommand or FindCommand.
func ParseSqueue(out []byte) ([]Job, error) {
	var jobs []Job
	for n, line := range lines(out) {
		if line == "" {
			continue
		}
		f, err := splitFields(line, squeueCount, squeueName)
		if err != nil {
			return nil, fmt.Errorf("squeue line %d %q: %w", n+1, clip(line), err)
		}
		j := Job{ID: f[0], Name: f[1], RawState: f[2], State: ParseState(f[2]), Reason: f[3], Nodes: f[4]}
		j.ArrayJobID, j.ArrayTask = splitArrayID(j.ID)
		if j.Elapsed, err = ParseElapsed(f[5]); err != nil {
			return nil, fmt.Errorf("squeue line %d %q: %w", n+1, clip(line), err)
		}
		if j.ID == "" {
			return nil, fmt.Errorf("squeue line %d %q: no job id", n+1, clip(line))
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func lines(out []byte) []string {
	s := strings.ReplaceAll(string(out), "\r\n", "\n")
	return strings.Split(s, "\n")
}

// splitFields splits a "|"-separated line into want fields. A job name may itself hold "|":
// extra fields are given back to the name column.
func splitFields(line string, want, nameCol int) ([]string, error) {
	f := strings.Split(line, "|")
	if len(f) < want {
		return nil, fmt.Errorf("%d fields, want %d", len(f), want)
	}
	if extra := len(f) - want; extra > 0 {
		name := strings.Join(f[nameCol:nameCol+extra+1], "|")
		f = append(append(f[:nameCol:nameCol], name), f[nameCol+extra+1:]...)
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f, nil
}

// splitArrayID splits "1234_0" into "1234", "0" and "1234_[1-3%2]" into "1234", "[1-3%2]".
// Heterogeneous job components ("1234+0") and plain ids are not array tasks.
func splitArrayID(id string) (job, task string) {
	base, t, ok := strings.Cut(id, "_")
	if !ok || base == "" || t == "" || !isDigits(base) {
		return "", ""
	}
	return base, t
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseElapsed reads SLURM's durations: "D-HH:MM:SS", "HH:MM:SS", "MM:SS", "MM:SS.mmm" (and
// with any of the leading parts missing, as squeue's %M prints them: "0:05", "1:02:03",
// "2-01:02:03"). The empty string and the placeholders "INVALID", "N/A", "UNLIMITED" and
// "NOT_SET" give zero.
func ParseElapsed(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch strings.ToUpper(s) {
	case "", "INVALID", "N/A", "UNLIMITED", "NOT_SET", "INFINITE":
		return 0, nil
	}
	bad := func() (time.Duration, error) { return 0, fmt.Errorf("elapsed time %q is not D-HH:MM:SS", clip(s)) }
	var days int64
	if d, rest, ok := strings.Cut(s, "-"); ok {
		if !isDigits(d) || len(d) > 4 {
			return bad()
		}
		days, _ = strconv.ParseInt(d, 10, 64)
		s = rest
	}
	var frac time.Duration
	if whole, f, ok := strings.Cut(s, "."); ok {
		if !isDigits(f) || len(f) > 9 {
			return bad()
		}
		n, _ := strconv.ParseInt(f, 10, 64)
		for i := len(f); i < 9; i++ {
			n *= 10
		}
		frac = time.Duration(n)
		s = whole
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return bad()
	}
	var secs int64
	for _, p := range parts {
		if !isDigits(p) || len(p) > 6 {
			return bad()
		}
		n, _ := strconv.ParseInt(p, 10, 64)
		secs = secs*60 + n
	}
	if len(parts) == 1 && days > 0 {
		// "D-HH": hours only.
		secs *= 3600
	} else if len(parts) == 2 && days > 0 {
		// "D-HH:MM".
		secs *= 60
	}
	return time.Duration(days)*24*time.Hour + time.Duration(secs)*time.Second + frac, nil
}

// IsAccountingDisabled reports whether sacct failed because the cluster keeps no accounting
// database ("Slurm accounting storage is disabled"): then only squeue knows the jobs.
func IsAccountingDisabled(stderr []byte, exitCode int) bool {
	return exitCode != 0 && bytes.Contains(bytes.ToLower(stderr), []byte("accounting storage is disabled"))
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
