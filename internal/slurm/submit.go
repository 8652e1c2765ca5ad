package slurm

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

// Probe is what one remote command learns before a submission: the cluster's CPU
// architecture, the binaries already uploaded, and the sweep's jobs still queued or running.
type Probe struct {
	Arch     string   // uname -m: x86_64, aarch64
	Binaries []string // file names in <work_dir>/bin
	Live     []Job    // live jobs with the sweep's job names
	Writable bool     // the work directory is writable
}

const (
	markBin  = "#beans-slurm:bin"
	markLive = "#beans-slurm:live"
	markEnd  = "#beans-slurm:end"
)

// ProbeCluster asks, in one remote command, for the architecture, the uploaded binaries,
// whether the work directory is writable, and which of names are live jobs.
func ProbeCluster(ctx context.Context, t remote.Transport, workDir string, names []string) (*Probe, error) {
	bin := path.Join(workDir, "bin")
	var sb strings.Builder
	fmt.Fprintf(&sb, "uname -m\n")
	fmt.Fprintf(&sb, "mkdir -p %s && test -w %s && echo writable || echo not-writable\n", remote.Quote(bin), remote.Quote(workDir))
	fmt.Fprintf(&sb, "echo %s\nls -1 %s 2>/dev/null || true\n", remote.Quote(markBin), remote.Quote(bin))
	fmt.Fprintf(&sb, "echo %s\n", remote.Quote(markLive))
	if len(names) > 0 {
		fmt.Fprintf(&sb, "%s || echo '#beans-slurm:error squeue failed'\n", FindCommand(names))
	}
	fmt.Fprintf(&sb, "echo %s\n", remote.Quote(markEnd))
	res, err := t.Run(ctx, sb.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", t, err)
	}
	out := string(res.Stdout)
	if !strings.Contains(out, markEnd) {
		return nil, fmt.Errorf("probe %s: unexpected answer (exit %d): %s %s", t, res.ExitCode, strings.TrimSpace(out), strings.TrimSpace(string(res.Stderr)))
	}
	head, rest, _ := strings.Cut(out, markBin+"\n")
	bins, live, _ := strings.Cut(rest, markLive+"\n")
	live, _, _ = strings.Cut(live, markEnd)
	lines := strings.Split(strings.TrimSpace(head), "\n")
	p := &Probe{}
	if len(lines) >= 1 {
		p.Arch = strings.TrimSpace(lines[0])
	}
	if len(lines) >= 2 {
		p.Writable = strings.TrimSpace(lines[1]) == "writable"
	}
	if !p.Writable {
		return p, fmt.Errorf("the work directory %s on %s is not writable (or cannot be created): check the profile's work_dir", workDir, t)
	}
	for _, l := range strings.Split(bins, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			p.Binaries = append(p.Binaries, l)
		}
	}
	if strings.Contains(live, "#beans-slurm:error") {
		return p, fmt.Errorf("squeue failed on %s: %s", t, strings.TrimSpace(string(res.Stderr)))
	}
	jobs, err := ParseSqueue([]byte(live))
	if err != nil {
		return p, err
	}
	p.Live = notEnding(jobs)
	return p, nil
}

// HasBinary reports whether name was already uploaded.
func (p *Probe) HasBinary(name string) bool {
	for _, b := range p.Binaries {
		if b == name {
			return true
		}
	}
	return false
}

// GOARCH maps uname -m to Go's architecture name.
func GOARCH(unameM string) (string, error) {
	switch unameM {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("the cluster's CPU architecture %q is not one beans-slurm is built for (x86_64, aarch64)", unameM)
}

// SubmitOptions control Submit.
type SubmitOptions struct {
	// Token is the sweep's bearer token; it is written (0600) only when the sweep has none yet.
	Token string
	// Extra files to place below the sweep directory (e.g. a registry snapshot), relative paths.
	Extra []File
	// Live are the sweep's jobs already queued or running (from ProbeCluster): a model whose
	// jobs are live is not submitted again.
	Live []Job
	// Resume resubmits only what failed or never ran: States are the current states of the
	// manifest's jobs.
	Resume bool
	States map[string]Job
	// Log reports what is done.
	Log func(msg any, kv ...any)
}

// Upload places the sweep's scripts, the token (only if the sweep has none) and extra files in
// the sweep directory, and creates its log, handoff and progress directories: one remote command.
func Upload(ctx context.Context, t remote.Transport, m *Manifest, files []File, o SubmitOptions) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg})
	}
	write := func(name string, data []byte, mode int64) error {
		if err := add(name, data, mode); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, f := range append(append([]File{}, files...), o.Extra...) {
		rel := f.Path
		if path.IsAbs(rel) {
			r, ok := strings.CutPrefix(rel, m.Dir+"/")
			if !ok {
				return fmt.Errorf("file %s is outside the sweep directory %s", f.Path, m.Dir)
			}
			rel = r
		}
		if err := write(rel, f.Data, int64(f.Mode.Perm())); err != nil {
			return err
		}
	}
	if o.Token != "" {
		if err := write("token.new", []byte(o.Token+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	dirs := []string{m.Dir, m.LogDir(), m.ScriptsDir()}
	for _, mm := range m.Models {
		dirs = append(dirs, m.HandoffDir(mm.Model), m.ProgressDir(mm.Model), m.ResultsDir(mm.Model))
		if mm.Judge != nil {
			dirs = append(dirs, m.JudgeHandoffDir(mm.Model))
		}
	}
	cmd := "umask 077 && mkdir -p " + remote.Join(dirs...) + " && tar -x -m --no-same-owner -f - -C " + remote.Quote(m.Dir) +
		" && cd " + remote.Quote(m.Dir) + " && if [ -e token.new ]; then if [ -s token ]; then rm -f token.new; else mv token.new token; fi; fi && chmod 600 token"
	res, err := t.Run(ctx, cmd, &buf)
	if err != nil {
		return fmt.Errorf("upload the sweep's scripts to %s: %w", t, err)
	}
	if res.ExitCode != 0 {
		return &remote.ExitError{Command: "tar", Where: t.String(), Result: res}
	}
	return nil
}

// Submit submits the sweep's jobs that are not live (and, with Resume, did not already
// succeed), in one remote command, and records the job ids in m. Each model's inference job
// depends on its serving job with after: (it starts once the serving job starts).
func Submit(ctx context.Context, c *Client, m *Manifest, o SubmitOptions) ([]Submitted, error) {
	logf := o.Log
	if logf == nil {
		logf = func(any, ...any) {}
	}
	live := map[string]Job{}
	for _, j := range o.Live {
		if !j.State.Done() {
			live[j.Name] = j
		}
	}
	now := time.Now().UTC()
	var subs []Submission
	for i := range m.Models {
		mm := &m.Models[i]
		sj, sLive := live[mm.Serve.Name]
		ij, iLive := live[mm.Infer.Name]
		if sLive && mm.Serve.ID != sj.baseID() {
			mm.Serve.ID = sj.baseID() // a job submitted by an attempt whose answer was lost
		}
		if iLive && mm.Infer.ID != ij.baseID() {
			mm.Infer.ID = ij.baseID()
		}
		switch {
		case sLive && iLive:
			logf("jobs are live; not submitted again", "model", mm.Model, "serve", mm.Serve.ID, "infer", mm.Infer.ID)
			continue
		case o.Resume && inferSucceeded(mm.Infer.ID, o.States):
			logf("inference completed; not submitted again", "model", mm.Model, "infer", mm.Infer.ID)
			continue
		case sLive:
			if mm.Infer.ID != "" {
				mm.History = append(mm.History, mm.Infer)
			}
			subs = append(subs, Submission{Key: mm.Model + "/infer", Script: mm.Infer.Script, After: sj.baseID(), Args: []string{"{after}"}, Chdir: m.Dir})
		default:
			for _, j := range []JobRef{mm.Serve, mm.Infer} {
				if j.ID != "" {
					mm.History = append(mm.History, j)
				}
			}
			subs = append(subs,
				Submission{Key: mm.Model + "/serve", Script: mm.Serve.Script, Chdir: m.Dir},
				Submission{Key: mm.Model + "/infer", Script: mm.Infer.Script, After: mm.Model + "/serve", Args: []string{"{after}"}, Chdir: m.Dir})
		}
	}
	if len(subs) == 0 {
		return nil, nil
	}
	got, err := c.SubmitAll(ctx, subs)
	for _, s := range got {
		model, role, _ := strings.Cut(s.Key, "/")
		mm, ok := m.Model(model)
		if !ok || s.JobID == "" {
			continue
		}
		if role == "serve" {
			mm.Serve.ID, mm.Serve.Submitted = s.JobID, now
		} else {
			mm.Infer.ID, mm.Infer.Submitted = s.JobID, now
		}
	}
	m.Updated = now
	return got, err
}

// inferSucceeded: every task of the inference job (array) is COMPLETED with exit 0.
func inferSucceeded(id string, states map[string]Job) bool {
	if id == "" {
		return false
	}
	seen := false
	for _, j := range states {
		if j.baseID() != id {
			continue
		}
		seen = true
		if j.State != StateCompleted {
			return false
		}
	}
	return seen
}
