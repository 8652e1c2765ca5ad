package slurm

import (
	"context"
	"fmt"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// Submission is one sbatch call of a SubmitAll.
type Submission struct {
	// Key names the submission in the answer and in other submissions' After (no tab or
	// newline; unique within the call).
	Key string
	// Script is the remote path of the uploaded sbatch script.
	Script string
	// After makes this job start once another starts (--dependency=after:ID): the Key of an
	// earlier submission of the same call, or a job id ("1234"), or "" for none. When the
	// earlier submission failed, this one is skipped.
	After string
	// Args are the script's arguments; the token "{after}" in an argument is replaced by the
	// job id that After resolved to.
	Args []string
	// Chdir is the job's working directory (--chdir), "" for sbatch's default.
	Chdir string
}

// AfterToken in a Submission's argument stands for the id of the job it depends on.
const AfterToken = "{after}"

// Submitted is the outcome of one Submission: its job id, or why it has none.
type Submitted struct {
	Key   string
	JobID string // "" when Err is set
	Err   error  // a *SubmitError
}

// SubmitError is a submission that did not give a job id.
type SubmitError struct {
	Key     string
	Message string // sbatch's own words, on one line
	// Skipped: not submitted because the submission it depends on failed.
	Skipped bool
	// Unknown: the answer was lost (the connection broke, the context ended); the job may
	// exist: look it up by name (Client.Find) before submitting it again.
	Unknown bool
}

func (e *SubmitError) Error() string {
	switch {
	case e.Skipped:
		return fmt.Sprintf("%s: not submitted: %s", e.Key, e.Message)
	case e.Unknown:
		return fmt.Sprintf("%s: outcome unknown: %s", e.Key, e.Message)
	}
	return fmt.Sprintf("%s: sbatch: %s", e.Key, e.Message)
}

// Permanent reports whether submitting again, unchanged, will fail again (a limit, an invalid
// partition, account or resource request).
func (e *SubmitError) Permanent() bool {
	return !e.Skipped && !e.Unknown && IsPermanentSubmitError(e.Message)
}

// Transient reports whether the failure is the controller being busy or unreachable: a retry
// later may succeed (but check by name first: the job may exist).
func (e *SubmitError) Transient() bool {
	return e.Unknown || IsTransientSubmitError(e.Message)
}

var permanentSubmit = []string{
	"qosmaxsubmitjobperuserlimit",
	"assocmaxsubmitjoblimit",
	"qosmaxsubmitjobperaccountlimit",
	"maxsubmitjob",
	"invalid partition",
	"invalid generic resource",
	"requested node configuration is not available",
	"invalid account",
	"invalid qos",
	"invalid feature specification",
	"job violates accounting/qos policy",
	"requested time limit is invalid",
	"more processors requested than permitted",
	"memory specification can not be satisfied",
	"unable to open file",
	"invalid dependency",
	"invalid job array specification",
}

var transientSubmit = []string{
	"socket timed out",
	"unable to contact slurm controller",
	"resource temporarily unavailable",
	"slurm temporarily unable to accept job",
	"communication connection failure",
	"zero bytes were transmitted or received",
	"slurmctld is not responding",
	"connection refused",
}

// IsPermanentSubmitError reports whether sbatch's message says the submission can never
// succeed as it is: submit limits (QOSMaxSubmitJobPerUserLimit, AssocMaxSubmitJobLimit),
// invalid partition, account, QoS or generic resource, a node configuration that does not
// exist.
func IsPermanentSubmitError(msg string) bool { return containsAny(msg, permanentSubmit) }

// IsTransientSubmitError reports whether sbatch's message says the controller was busy or
// unreachable ("Socket timed out", "Unable to contact slurm controller", "Resource temporarily
// unavailable"). The job may have been created anyway.
func IsTransientSubmitError(msg string) bool { return containsAny(msg, transientSubmit) }

func containsAny(msg string, subs []string) bool {
	l := strings.ToLower(msg)
	for _, s := range subs {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// submitFunc is the shell function every submission of SubmitAll calls: it runs sbatch, prints
// one answer line and leaves the job id in bs_id.
const submitFunc = `set +e
bs_submit() {
  bs_key=$1; shift
  bs_id=
  bs_out=$(sbatch --parsable "$@" </dev/null 2>&1); bs_rc=$?
  if [ "$bs_rc" -eq 0 ]; then
    while IFS= read -r bs_l; do
      bs_l=${bs_l%%;*}
      case $bs_l in ''|*[!0-9]*) ;; *) bs_id=$bs_l ;; esac
    done <<<"$bs_out"
    if [ -n "$bs_id" ]; then
      printf '%s\tok\t%s\n' "$bs_key" "$bs_id"
      return 0
    fi
    bs_msg="sbatch printed no job id: $bs_out"
  else
    bs_msg="$bs_out"
    [ -n "$bs_msg" ] || bs_msg="sbatch exited $bs_rc"
  fi
  bs_msg=${bs_msg//$'\n'/ }; bs_msg=${bs_msg//$'\t'/ }; bs_msg=${bs_msg//$'\r'/ }
  printf '%s\terr\t%s\n' "$bs_key" "$bs_msg"
  return 1
}
`

// SubmitScript is the bash script that SubmitAll runs: one sbatch call per submission, in
// order, printing "KEY<TAB>ok<TAB>JOBID", "KEY<TAB>err<TAB>MESSAGE" or "KEY<TAB>skip<TAB>REASON"
// for each.
func SubmitScript(subs []Submission) (string, error) {
	var sb strings.Builder
	sb.WriteString(submitFunc)
	index := map[string]int{}
	for i, s := range subs {
		if s.Key == "" || strings.ContainsAny(s.Key, "\t\n\r\x00") {
			return "", fmt.Errorf("submission %d: key %q is empty or holds a tab or newline", i, s.Key)
		}
		if _, dup := index[s.Key]; dup {
			return "", fmt.Errorf("submission %d: key %q used twice", i, s.Key)
		}
		if s.Script == "" || strings.ContainsAny(s.Script, "\n\r\x00") {
			return "", fmt.Errorf("submission %q: script path %q is empty or holds a newline", s.Key, s.Script)
		}
		// dep is the shell word for the id of the job this one depends on.
		dep, depVar := "", ""
		if s.After != "" {
			if j, ok := index[s.After]; ok {
				depVar = fmt.Sprintf("j%d", j)
				dep = `"$` + depVar + `"`
			} else if err := CheckJobID(s.After); err == nil {
				dep = s.After
			} else {
				return "", fmt.Errorf("submission %q: after %q is neither an earlier submission's key nor a job id", s.Key, s.After)
			}
		}
		words := []string{"bs_submit", remote.Quote(s.Key)}
		if dep != "" {
			words = append(words, remote.Quote("--dependency=after:")+dep)
		}
		if s.Chdir != "" {
			if strings.ContainsAny(s.Chdir, "\n\r\x00") {
				return "", fmt.Errorf("submission %q: chdir %q holds a newline", s.Key, s.Chdir)
			}
			words = append(words, remote.Quote("--chdir="+s.Chdir))
		}
		words = append(words, remote.Quote(s.Script))
		for _, a := range s.Args {
			if strings.ContainsRune(a, 0) {
				return "", fmt.Errorf("submission %q: argument %q holds a NUL byte", s.Key, a)
			}
			if !strings.Contains(a, AfterToken) {
				words = append(words, remote.Quote(a))
				continue
			}
			if dep == "" {
				return "", fmt.Errorf("submission %q: argument %q uses %s but After is empty", s.Key, a, AfterToken)
			}
			parts := strings.Split(a, AfterToken)
			var w strings.Builder
			for k, p := range parts {
				if k > 0 {
					w.WriteString(dep)
				}
				if p != "" {
					w.WriteString(remote.Quote(p))
				}
			}
			words = append(words, w.String())
		}
		v := fmt.Sprintf("j%d", i)
		call := strings.Join(words, " ") + " && " + v + "=$bs_id"
		if depVar != "" {
			fmt.Fprintf(&sb, "%s=\nif [ -n \"$%s\" ]; then %s; else printf '%%s\\tskip\\t%%s\\n' %s %s; fi\n",
				v, depVar, call, remote.Quote(s.Key), remote.Quote(subs[index[s.After]].Key+" was not submitted"))
		} else {
			fmt.Fprintf(&sb, "%s=\n%s\n", v, call)
		}
		index[s.Key] = i
	}
	sb.WriteString("exit 0\n")
	return sb.String(), nil
}

// SubmitAll submits the scripts in one remote command (a bash script on standard input),
// in order, wiring dependencies between them, and returns one Submitted per submission in the
// same order. The error is for a submission that could not be attempted at all (a bad key, an
// After that names nothing) or a remote command that could not run or was cut off; in the
// latter case the submissions without an answer carry an Unknown *SubmitError, since their
// jobs may exist. sbatch's refusals are in each Submitted's Err.
func (c *Client) SubmitAll(ctx context.Context, subs []Submission) ([]Submitted, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	script, err := SubmitScript(subs)
	if err != nil {
		return nil, err
	}
	res, runErr := c.T.Run(ctx, "bash -s", strings.NewReader(script))
	var stdout, stderr []byte
	exit := -1
	if res != nil {
		stdout, stderr, exit = res.Stdout, res.Stderr, res.ExitCode
	}
	answers := map[string]Submitted{}
	for _, line := range strings.Split(string(stdout), "\n") {
		f := strings.SplitN(strings.TrimRight(line, "\r"), "\t", 3)
		if len(f) != 3 {
			continue
		}
		key, status, val := f[0], f[1], strings.TrimSpace(f[2])
		switch status {
		case "ok":
			if CheckJobID(val) != nil {
				answers[key] = Submitted{Key: key, Err: &SubmitError{Key: key, Message: "sbatch printed " + clip(val) + ", not a job id"}}
			} else {
				answers[key] = Submitted{Key: key, JobID: val}
			}
		case "err":
			answers[key] = Submitted{Key: key, Err: &SubmitError{Key: key, Message: val}}
		case "skip":
			answers[key] = Submitted{Key: key, Err: &SubmitError{Key: key, Message: val, Skipped: true}}
		}
	}
	why := ""
	if runErr != nil {
		why = runErr.Error()
	} else {
		why = fmt.Sprintf("the submission script on %s exited %d: %s", c.T, exit, clip(strings.TrimSpace(string(stderr))))
	}
	out := make([]Submitted, len(subs))
	for i, s := range subs {
		a, ok := answers[s.Key]
		if !ok {
			a = Submitted{Key: s.Key, Err: &SubmitError{Key: s.Key, Message: "no answer: " + why, Unknown: true}}
		}
		out[i] = a
	}
	if runErr != nil {
		return out, fmt.Errorf("submit on %s: %w", c.T, runErr)
	}
	return out, nil
}
