package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
)

// NewOpenSSH returns a Transport that runs the system `ssh` for every operation, for sites
// whose setup only OpenSSH follows (Match blocks, ProxyCommand, GSSAPI, certificates, a
// ControlMaster required by two-factor login). host is anything `ssh` accepts as destination;
// extraArgs go before the defaults, so they override them (ssh takes the first value of an
// option): -o BatchMode=yes -o ControlMaster=auto -o ControlPath=~/.ssh/beans-slurm-%C
// -o ControlPersist=10m. File operations are shell commands (mkdir, cat, mv, tail, find with
// GNU -printf) with every path quoted. Exit status 255 is ssh's own failure and is reported as
// a *ConnectionError.
//
// Limitation: when a Run's context ends, the local ssh process (group) is killed, but ssh has
// no way to signal the remote command, and sshd does not signal a session without a terminal
// when its client goes away: the remote command may run on until it finishes or writes to
// its closed output. Use Dial's transport when that matters.
func NewOpenSSH(host string, extraArgs []string) Transport {
	return &openSSH{host: host, extra: slices.Clone(extraArgs)}
}

type openSSH struct {
	host  string
	extra []string
}

func (o *openSSH) String() string { return "ssh " + o.host + " (system ssh)" }
func (o *openSSH) Close() error   { return nil }

func (o *openSSH) args(command string) []string {
	args := append(slices.Clone(o.extra),
		"-o", "BatchMode=yes",
		"-o", "ControlMaster=auto",
		"-o", "ControlPath=~/.ssh/beans-slurm-%C",
		"-o", "ControlPersist=10m",
		"--", o.host, command)
	return args
}

// command prepares the ssh process. Its stderr goes to a temporary file, not a pipe: a
// ControlPersist master forked by ssh may keep inherited descriptors open for minutes.
func (o *openSSH) command(ctx context.Context, command string) (*exec.Cmd, *os.File, error) {
	// ssh needs the ControlPath's directory.
	_ = os.MkdirAll(expandTilde("~/.ssh"), 0o700)
	cmd := exec.CommandContext(ctx, "ssh", o.args(command)...)
	killGroupOnCancel(cmd)
	errf, err := os.CreateTemp("", "beans-slurm-ssh-stderr-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(errf.Name())
	cmd.Stderr = errf
	return cmd, errf, nil
}

func readAll(f *os.File) []byte {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	return b
}

func (o *openSSH) Run(ctx context.Context, command string, stdin io.Reader) (*Result, error) {
	var stdout bytes.Buffer
	res, err := o.run(ctx, command, stdin, &stdout)
	if res != nil {
		res.Stdout = stdout.Bytes()
	}
	return res, err
}

// Stream implements Streamer.
func (o *openSSH) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	return o.run(ctx, command, stdin, stdout)
}

func (o *openSSH) run(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd, errf, err := o.command(ctx, command)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	// A failed write closes the pipe (os/exec does), which ssh does not notice while the
	// remote command sends nothing: kill it (its end of the channel then closes).
	out := &outWriter{w: stdout, onFail: func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}}
	cmd.Stdout = out
	if stdin != nil {
		cmd.Stdin = stdin
	}
	err = cmd.Run()
	res := &Result{Stderr: readAll(errf)}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s on %s: %w", firstWord(command), o, ctx.Err())
	}
	if werr := out.failed(); werr != nil {
		return res, fmt.Errorf("%s on %s: writing its output: %w", firstWord(command), o, werr)
	}
	if err != nil {
		code, ok := exitCode(err)
		if !ok {
			return res, fmt.Errorf("%s: %w", o, err)
		}
		res.ExitCode = code
	}
	if res.ExitCode == 255 {
		return res, &ConnectionError{Where: o.String(), Op: "run", Err: errors.New(strings.TrimSpace(lastLines(string(res.Stderr), 5)))}
	}
	return res, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// remotePath quotes p for the remote shell, mapping "~/x" to "x" (the shell starts in the
// login directory).
func remotePath(p string) string { return Quote(sftpPath(p)) }

// exitNotExist is the exit code the file commands use for a missing path.
const exitNotExist = 44

func (o *openSSH) check(op, p string, res *Result, err error, command string) error {
	if err != nil {
		return err
	}
	switch res.ExitCode {
	case 0:
		return nil
	case exitNotExist:
		return &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist}
	}
	return &ExitError{Command: command, Result: res, Where: o.String()}
}

func (o *openSSH) WriteFile(ctx context.Context, name string, r io.Reader, perm fs.FileMode) error {
	p := sftpPath(name)
	dir, base := path.Dir(p), path.Base(p)
	tmp := path.Join(dir, "."+base+".tmp-"+randomSuffix())
	// The temporary file is private (umask 077) while it is written; the mode is set last.
	command := fmt.Sprintf("mkdir -p %s && { (umask 077; : > %s) && cat > %s && chmod %04o %s && mv -f %s %s || { rm -f %s; exit 1; }; }",
		Quote(dir), Quote(tmp), Quote(tmp), perm.Perm(), Quote(tmp), Quote(tmp), Quote(p), Quote(tmp))
	res, err := o.Run(ctx, command, r)
	return o.check("write", name, res, err, "write "+name)
}

// Open streams the file with `tail -c +OFFSET+1`; a marker byte tells whether it exists.
func (o *openSSH) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := remotePath(name)
	command := fmt.Sprintf("if [ -f %s ] && [ -r %s ]; then printf K; exec tail -c +%d %s; else printf E; fi", p, p, offset+1, p)
	cmd, errf, err := o.command(ctx, command)
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		errf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		errf.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(out, 64*1024)
	rc := &sshReader{o: o, cmd: cmd, errf: errf, r: br, name: name}
	mark, err := br.ReadByte()
	if err != nil || mark != 'K' {
		werr := rc.wait()
		rc.errf.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && mark == 'E' {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("open %s on %s: unexpected answer", name, o)
	}
	return rc, nil
}

type sshReader struct {
	o      *openSSH
	cmd    *exec.Cmd
	errf   *os.File
	r      *bufio.Reader
	name   string
	waited bool
	werr   error
}

func (s *sshReader) wait() error {
	if s.waited {
		return s.werr
	}
	s.waited = true
	err := s.cmd.Wait()
	if err != nil {
		code, ok := exitCode(err)
		stderr := strings.TrimSpace(lastLines(string(readAll(s.errf)), 5))
		switch {
		case ok && code == 255:
			s.werr = &ConnectionError{Where: s.o.String(), Op: "read", Err: errors.New(stderr)}
		case ok:
			s.werr = fmt.Errorf("read %s on %s: exit %d: %s", s.name, s.o, code, stderr)
		default:
			s.werr = err
		}
	}
	return s.werr
}

func (s *sshReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		if werr := s.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (s *sshReader) Close() error {
	if !s.waited {
		if s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		}
		s.wait()
	}
	return s.errf.Close()
}

func (o *openSSH) Stat(ctx context.Context, name string) (FileInfo, error) {
	p := remotePath(name)
	command := fmt.Sprintf("[ -e %s ] || exit %d; find -L %s -maxdepth 0 -printf '%s'", p, exitNotExist, p, findFormat)
	res, err := o.Run(ctx, command, nil)
	if err := o.check("stat", name, res, err, "stat "+name); err != nil {
		return FileInfo{}, err
	}
	files, err := parseFind(res.Stdout)
	if err != nil || len(files) != 1 {
		return FileInfo{}, fmt.Errorf("stat %s on %s: unexpected answer %q", name, o, res.Stdout)
	}
	files[0].Path = name
	return files[0], nil
}

// Walk lists regular files and symbolic links to regular files with one remote find command
// (see findWalk); it needs GNU find.
func (o *openSSH) Walk(ctx context.Context, root string) ([]FileInfo, error) {
	return findWalk(ctx, o.Run, o.String(), root)
}

func (o *openSSH) MkdirAll(ctx context.Context, name string, perm fs.FileMode) error {
	p := remotePath(name)
	command := fmt.Sprintf("[ -d %s ] || { mkdir -p %s && chmod %04o %s; }", p, p, perm.Perm(), p)
	res, err := o.Run(ctx, command, nil)
	return o.check("mkdir", name, res, err, "mkdir "+name)
}

func (o *openSSH) Remove(ctx context.Context, name string) error {
	p := remotePath(name)
	command := fmt.Sprintf("if [ -d %s ] && [ ! -L %s ]; then rmdir %s; else rm -f %s; fi", p, p, p, p)
	res, err := o.Run(ctx, command, nil)
	return o.check("remove", name, res, err, "rm "+name)
}
