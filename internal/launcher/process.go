package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcessOptions say how to start a launcher as a child process and how to tell it is ready.
type ProcessOptions struct {
	// Command is the launcher's argv. "{port}" and "{bind}" in any word are replaced by the
	// chosen port and bind address, "{token_file}" by TokenFile.
	Command []string
	// Env is added to this process's environment.
	Env []string
	// Dir is the working directory ("" = this process's).
	Dir string
	// Bind is the address the launcher listens on (default 0.0.0.0, so that other nodes of a
	// cluster reach it); Host is the name other nodes use to reach it (default os.Hostname).
	Bind, Host string
	// Port is the port to listen on; 0 picks a free one (a fixed port collides with other
	// users of a shared node).
	Port int
	// TokenFile holds the bearer token the launcher requires; the health check sends it too.
	TokenFile string
	// HealthTimeout bounds the wait for GET /health to answer 200 (0 = 10 minutes).
	HealthTimeout time.Duration
	// Output receives the launcher's standard output and error (nil = discarded).
	Output io.Writer
}

// Process is a launcher running as a child process, in its own process group.
type Process struct {
	cmd        *exec.Cmd
	port       int
	predictURL string
	done       chan struct{}
	err        error
	tail       *tailBuffer
}

// StartProcess starts the launcher, waits until its /health answers 200, and returns it. When
// the launcher exits or the timeout passes first, the process group is stopped and the error
// carries the end of its output.
func StartProcess(ctx context.Context, o ProcessOptions) (*Process, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("no launcher command")
	}
	if o.Bind == "" {
		o.Bind = "0.0.0.0"
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host name for the predict URL: %w", err)
		}
		o.Host = h
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 10 * time.Minute
	}
	port := o.Port
	if port == 0 {
		p, err := freePort(o.Bind)
		if err != nil {
			return nil, err
		}
		port = p
	}
	repl := strings.NewReplacer("{port}", strconv.Itoa(port), "{bind}", o.Bind, "{token_file}", o.TokenFile)
	argv := make([]string, len(o.Command))
	for i, w := range o.Command {
		argv[i] = repl.Replace(w)
	}
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if o.Output != nil {
		out = io.MultiWriter(o.Output, tail)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start launcher %s: %w", argv[0], err)
	}
	p := &Process{cmd: cmd, port: port, done: make(chan struct{}), tail: tail,
		predictURL: "http://" + net.JoinHostPort(o.Host, strconv.Itoa(port)) + "/predict"}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	token := ""
	if o.TokenFile != "" {
		t, err := ReadToken(o.TokenFile)
		if err != nil {
			p.Stop(time.Second)
			return nil, err
		}
		token = t
	}
	health := "http://" + net.JoinHostPort(loopbackFor(o.Bind), strconv.Itoa(port)) + "/health"
	if err := p.waitHealthy(ctx, health, token, o.HealthTimeout); err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// Port is the port the launcher listens on.
func (p *Process) Port() int { return p.port }

// PredictURL is the URL other nodes use: http://HOST:PORT/predict.
func (p *Process) PredictURL() string { return p.predictURL }

// Done is closed when the launcher has exited; Err then says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the launcher's exit status once Done is closed, with the end of its output.
func (p *Process) Err() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	return fmt.Errorf("launcher exited (%v); its last output:\n%s", p.err, p.tail.String())
}

// Stop sends SIGTERM to the launcher's process group, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *Process) waitHealthy(ctx context.Context, health, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	last := "no answer yet"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = "HTTP " + strconv.Itoa(resp.StatusCode)
		} else {
			last = err.Error()
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("the launcher exited before %s answered: %w", health, p.Err())
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not answer 200 within %s (last: %s); the launcher's last output:\n%s", health, timeout, last, p.tail.String())
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ReadToken reads a bearer token file. The file must not be readable by others: a token that
// others can read protects nothing.
func ReadToken(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by others (mode %v): chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}

func freePort(bind string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", bind, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func loopbackFor(bind string) string {
	if ip := net.ParseIP(bind); ip != nil && ip.IsUnspecified() {
		if ip.To4() == nil {
			return "::1"
		}
		return "127.0.0.1"
	}
	return bind
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if extra := t.buf.Len() - t.max; extra > 0 {
		t.buf.Next(extra)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.buf.String())
}
