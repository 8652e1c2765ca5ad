// Package remote runs commands and moves files on the machine where SLURM lives: the local
// machine (a login node) or a cluster reached over SSH. One interface, Transport, and three
// implementations:
//
//   - NewLocal: this machine. Commands run with `bash -c` in $HOME, in their own process group
//     (killed when the context ends); files through package os. Relative and "~/" paths are
//     relative to $HOME, as in an SSH login.
//
//   - Dial: the built-in SSH client (golang.org/x/crypto/ssh and github.com/pkg/sftp). It reads
//     ~/.ssh/config (Host patterns, HostName, User, Port, IdentityFile, ProxyJump, Include,
//     UserKnownHostsFile, IdentitiesOnly, ConnectTimeout; not Match), verifies host keys
//     strictly against known_hosts (an unknown or changed key is a *HostKeyError, never
//     accepted silently), authenticates with ssh-agent, key files and keyboard-interactive
//     (two-factor prompts through SSHConfig.Prompt), and jumps through ProxyJump hosts. One
//     connection per Transport: every Run is a session on it and file operations share one
//     SFTP session, so a two-factor login is answered once. Keepalives detect a dead
//     connection; its errors satisfy IsConnectionError.
//
//   - NewOpenSSH: the system `ssh` command with a shared ControlMaster, for sites whose setup
//     only OpenSSH follows (Match blocks, ProxyCommand, GSSAPI, host certificates). File
//     operations are quoted shell commands.
//
// Relative remote paths, and paths starting with "~/", are relative to the login directory.
// Mirror copies a remote tree to a local directory incrementally and safely (in one tar stream
// when the transport is a Streamer); Counting wraps a Transport to count its calls, for tests
// and benchmarks.
package remote

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"
)

// Transport is a connection to the machine that runs SLURM's commands. Every method is bounded
// by its context; paths are the remote machine's, absolute or relative to the login directory.
// A Transport is safe for concurrent use.
type Transport interface {
	// Run runs command with the remote login shell (bash -c on the local transport), feeding it
	// stdin when stdin is not nil. A command that ran and exited non-zero is not an error: its
	// code is in Result.ExitCode. The error is for a command that could not be run or was cut
	// off (connection lost, context done).
	Run(ctx context.Context, command string, stdin io.Reader) (*Result, error)
	// WriteFile writes r to path atomically (a temporary name in the same directory, then a
	// rename), creating the parent directories, with the given permission bits.
	WriteFile(ctx context.Context, path string, r io.Reader, perm fs.FileMode) error
	// Open opens path for reading from offset.
	Open(ctx context.Context, path string, offset int64) (io.ReadCloser, error)
	// Stat describes path. A missing path gives an error matching fs.ErrNotExist.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Walk lists every regular file below root, with paths relative to root in slash form.
	// A missing root gives an error matching fs.ErrNotExist.
	Walk(ctx context.Context, root string) ([]FileInfo, error)
	// MkdirAll creates path and its parents.
	MkdirAll(ctx context.Context, path string, perm fs.FileMode) error
	// Remove removes a file or an empty directory; a missing path is not an error.
	Remove(ctx context.Context, path string) error
	// String names the other end for messages ("local", "ssh beansuser@host:22").
	String() string
	// Close releases the connection.
	Close() error
}

// Streamer is implemented by the transports that can stream a command's standard output
// (all three of this package, and Counter when the transport it wraps can). Mirror uses it to
// copy many files in one transfer.
type Streamer interface {
	// Stream is Run with the command's standard output written to stdout as it comes
	// (Result.Stdout stays empty). Exit codes and errors are as for Run; an error writing to
	// stdout stops the command and is returned.
	Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error)
}

// FileInfo describes one remote file.
type FileInfo struct {
	Path    string // relative to the walked root (Walk) or as given (Stat)
	Size    int64
	ModTime time.Time
	Mode    fs.FileMode
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Output runs command and returns its standard output, or an error that carries the command's
// exit code and the end of its standard error when it exited non-zero.
func Output(ctx context.Context, t Transport, command string) ([]byte, error) {
	res, err := t.Run(ctx, command, nil)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return res.Stdout, &ExitError{Command: command, Result: res, Where: t.String()}
	}
	return res.Stdout, nil
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Command string
	Where   string
	*Result
}

// outWriter passes a command's output to w and remembers the first write error, so that a
// transport can stop the command and report that error rather than the command's death.
type outWriter struct {
	w      io.Writer
	mu     sync.Mutex
	err    error
	onFail func()
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		o.mu.Lock()
		first := o.err == nil
		if first {
			o.err = err
		}
		o.mu.Unlock()
		if first && o.onFail != nil {
			o.onFail()
		}
	}
	return n, err
}

func (o *outWriter) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(string(e.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(e.Stdout))
	}
	if len(msg) > 500 {
		msg = "…" + msg[len(msg)-500:]
	}
	name := e.Command
	if i := strings.IndexAny(name, " \n"); i > 0 {
		name = name[:i]
	}
	return fmt.Sprintf("%s on %s exited %d: %s", name, e.Where, e.ExitCode, msg)
}

// Quote quotes s for a POSIX shell: a single-quoted word, safe for any content.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every word and joins them with spaces into one command line.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
