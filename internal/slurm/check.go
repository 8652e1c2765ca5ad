package slurm

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// Check is one line of `cluster check`.
type Check struct {
	Name    string
	OK      bool
	Warning bool // not OK, but the cluster works without it
	Detail  string
}

// CheckCluster checks, in one remote command, that SLURM's commands are there, whether
// accounting answers, that the work directory is writable, and the CPU architecture.
func CheckCluster(ctx context.Context, t remote.Transport, workDir string) ([]Check, error) {
	probe := path.Join(workDir, ".beans-slurm-check")
	script := strings.Join([]string{
		`for c in sbatch squeue sacct scancel sinfo; do printf 'cmd %s %s\n' "$c" "$(command -v $c || echo MISSING)"; done`,
		`out=$(sacct -n -X -P -o JobID --starttime now-1hours 2>&1 >/dev/null); printf 'acct %s %s\n' "$?" "$(printf %s "$out" | head -n1)"`,
		fmt.Sprintf(`if mkdir -p %s 2>/dev/null && : > %s 2>/dev/null && rm -f %s; then echo 'workdir ok'; else echo 'workdir FAIL'; fi`, remote.Quote(workDir), remote.Quote(probe), remote.Quote(probe)),
		`printf 'arch %s\n' "$(uname -m)"`,
		`printf 'partitions %s\n' "$(sinfo -h -o '%P' 2>/dev/null | tr '\n' ' ')"`,
	}, "\n")
	res, err := t.Run(ctx, script, nil)
	if err != nil {
		return nil, fmt.Errorf("run the checks on %s: %w", t, err)
	}
	var checks []Check
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "cmd":
			name, where, _ := strings.Cut(rest, " ")
			ok := where != "MISSING" && where != ""
			detail := where
			if !ok {
				detail = "not found on the PATH of a non-interactive login (add its module load to the profile's setup, or to ~/.bashrc)"
			}
			checks = append(checks, Check{Name: name, OK: ok, Warning: !ok && (name == "sacct" || name == "sinfo"), Detail: detail})
		case "acct":
			code, msg, _ := strings.Cut(rest, " ")
			if code == "0" {
				checks = append(checks, Check{Name: "accounting", OK: true, Detail: "sacct answers: status reads job states from accounting"})
			} else {
				checks = append(checks, Check{Name: "accounting", Warning: true,
					Detail: "sacct does not answer (" + strings.TrimSpace(msg) + "): status falls back to squeue, which forgets finished jobs after MinJobAge"})
			}
		case "workdir":
			if rest == "ok" {
				checks = append(checks, Check{Name: "work_dir", OK: true, Detail: workDir + " is writable"})
			} else {
				checks = append(checks, Check{Name: "work_dir", Detail: workDir + " cannot be created or written: fix the profile's work_dir (a directory of yours on the shared filesystem)"})
			}
		case "arch":
			goarch, err := GOARCH(rest)
			if err != nil {
				checks = append(checks, Check{Name: "architecture", Detail: err.Error()})
			} else {
				checks = append(checks, Check{Name: "architecture", OK: true, Detail: rest + " → submit uploads a linux/" + goarch + " binary"})
			}
		case "partitions":
			checks = append(checks, Check{Name: "partitions", OK: strings.TrimSpace(rest) != "", Warning: true, Detail: strings.TrimSpace(rest)})
		}
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("the checks printed nothing on %s (exit %d): %s", t, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return checks, nil
}
