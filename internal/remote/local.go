package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// NewLocal returns the Transport for the machine this program runs on (a login node with
// SLURM's commands). Commands run with `bash -c` in the home directory, in their own process
// group, which is killed when the context is done. Relative paths and paths starting with "~/"
// are relative to $HOME, as they would be in an SSH login; absolute paths are used as they are.
func NewLocal() Transport { return localTransport{} }

type localTransport struct{}

func (localTransport) String() string { return "local" }
func (localTransport) Close() error   { return nil }

// localPath resolves p like an SSH login would: relative to the home directory.
func localPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("relative path %q: %w", p, err)
	}
	return filepath.Join(home, loginRelative(p)), nil
}

// loginRelative turns "~" and "~/x" into paths relative to the login directory ("." and "x");
// other paths are returned unchanged.
func loginRelative(p string) string {
	switch {
	case p == "~":
		return "."
	case strings.HasPrefix(p, "~/"):
		r := strings.TrimLeft(p[2:], "/")
		if r == "" {
			return "."
		}
		return r
	}
	return p
}

func (l localTransport) Run(ctx context.Context, command string, stdin io.Reader) (*Result, error) {
	var stdout bytes.Buffer
	res, err := l.run(ctx, command, stdin, &stdout)
	if res != nil {
		res.Stdout = stdout.Bytes()
	}
	return res, err
}

// Stream implements Streamer.
func (l localTransport) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	return l.run(ctx, command, stdin, stdout)
}

func (localTransport) run(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	if home, err := os.UserHomeDir(); err == nil {
		cmd.Dir = home
	}
	var stderr bytes.Buffer
	// A failed write closes the pipe (os/exec does): the command gets EPIPE or SIGPIPE.
	out := &outWriter{w: stdout}
	cmd.Stdout, cmd.Stderr = out, &stderr
	if stdin != nil {
		cmd.Stdin = stdin
	}
	killGroupOnCancel(cmd)
	err := cmd.Run()
	res := &Result{Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("local: %s: %w", firstWord(command), ctx.Err())
	}
	if werr := out.failed(); werr != nil {
		return res, fmt.Errorf("local: %s: writing its output: %w", firstWord(command), werr)
	}
	if err != nil {
		code, ok := exitCode(err)
		if !ok {
			return res, fmt.Errorf("local: %s: %w", firstWord(command), err)
		}
		res.ExitCode = code
	}
	return res, nil
}

// killGroupOnCancel puts cmd in its own process group and makes context cancellation kill the
// whole group (a shell's children too). WaitDelay bounds the wait for pipes held open by
// processes that escaped the group.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
}

// exitCode extracts a command's exit code; a death by signal N gives 128+N as a shell would.
func exitCode(err error) (int, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return ee.ExitCode(), true
}

func firstWord(command string) string {
	command = strings.TrimSpace(command)
	if i := strings.IndexAny(command, " \t\n"); i > 0 {
		return command[:i]
	}
	return command
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (localTransport) WriteFile(ctx context.Context, path string, r io.Reader, perm fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := localPath(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm.Perm()); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (localTransport) Open(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := localPath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if offset != 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func (localTransport) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	p, err := localPath(path)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Path: path, Size: fi.Size(), ModTime: fi.ModTime(), Mode: fi.Mode()}, nil
}

// Walk lists regular files and symbolic links to regular files; it does not descend into
// symbolic links to directories.
func (localTransport) Walk(ctx context.Context, root string) ([]FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := localPath(root)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "walk", Path: root, Err: syscall.ENOTDIR}
	}
	var out []FileInfo
	err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		var info fs.FileInfo
		if d.Type()&fs.ModeSymlink != 0 {
			info, err = os.Stat(name)
			if err != nil { // dangling link
				return nil
			}
		} else {
			info, err = d.Info()
			if err != nil {
				return err
			}
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(p, name)
		if err != nil {
			return err
		}
		out = append(out, FileInfo{Path: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime(), Mode: info.Mode()})
		return nil
	})
	return out, err
}

func (localTransport) MkdirAll(ctx context.Context, path string, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := localPath(path)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, perm)
}

func (localTransport) Remove(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := localPath(path)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
