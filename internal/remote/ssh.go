package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"
)

// SSHConfig says how to reach a cluster over SSH. Host is resolved through the ssh_config file
// (HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile, IdentitiesOnly,
// ConnectTimeout); fields set here override the file.
type SSHConfig struct {
	// Host is an ssh_config alias or a host name; "[user@]host[:port]" is accepted too.
	Host string
	User string
	Port int
	// IdentityFiles are private keys to offer after the agent's keys. Default: the config's
	// IdentityFile lines, else ~/.ssh/id_ed25519, id_ecdsa and id_rsa when present.
	IdentityFiles []string
	// KnownHostsFiles verify host keys. Default: the config's UserKnownHostsFile, else
	// ~/.ssh/known_hosts and ~/.ssh/known_hosts2.
	KnownHostsFiles []string
	// ProxyJump is a comma-separated list of [user@]host[:port] hops, each resolved through
	// the config file (IdentityFiles and KnownHostsFiles above apply to them too); "none"
	// disables the config's ProxyJump.
	ProxyJump string
	// ConfigFile is the ssh_config file; default ~/.ssh/config; "none" reads no file.
	ConfigFile string
	// ConnectTimeout bounds the TCP connection and SSH handshake of each hop (default: the
	// config's ConnectTimeout, else 30s).
	ConnectTimeout time.Duration
	// KeepaliveInterval is the time between keepalive@openssh.com requests (default 15s;
	// negative disables). After KeepaliveMax (default 3) intervals without an answer the
	// connection is closed, so that calls blocked on it return a connection error.
	KeepaliveInterval time.Duration
	KeepaliveMax      int
	// Prompt answers keyboard-interactive questions (passwords, one-time codes) and asks the
	// passphrases of encrypted keys. Nil: no keyboard-interactive or password authentication,
	// and encrypted keys not in the agent are skipped with a warning. See TerminalPrompt.
	Prompt PromptFunc
	// Logf receives warnings (skipped keys, unsupported config). Nil discards them.
	Logf func(format string, args ...any)
}

// PromptFunc asks the user one question. instruction is text from the server to show first
// (may be empty); echo false means the answer is secret and must not be echoed.
type PromptFunc func(instruction, question string, echo bool) (string, error)

// TerminalPrompt returns a PromptFunc that asks on the controlling terminal (/dev/tty), with
// echo off for secret answers, or nil when there is no terminal.
func TerminalPrompt() PromptFunc {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	if !term.IsTerminal(int(tty.Fd())) {
		tty.Close()
		return nil
	}
	var mu sync.Mutex
	r := bufio.NewReader(tty)
	return func(instruction, question string, echo bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if instruction != "" {
			fmt.Fprintln(tty, instruction)
		}
		fmt.Fprint(tty, question)
		if !echo {
			b, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			return string(b), err
		}
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}

// ReadWriterPrompt returns a PromptFunc that writes each question to rw and reads one line
// as the answer (for scripts and tests; answers are never hidden).
func ReadWriterPrompt(rw io.ReadWriter) PromptFunc {
	var mu sync.Mutex
	r := bufio.NewReader(rw)
	return func(instruction, question string, echo bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if instruction != "" {
			fmt.Fprintln(rw, instruction)
		}
		fmt.Fprint(rw, question)
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}

// ConnectionError is a failure of the connection itself (cannot connect, connection lost, no
// answer to keepalives), as opposed to a command or file error. Retrying after reconnecting
// may help.
type ConnectionError struct {
	Where string // "ssh user@host:port"
	Op    string // "dial", "run", "stat", …
	Err   error
}

func (e *ConnectionError) Error() string {
	if e.Op == "dial" {
		return fmt.Sprintf("cannot connect to %s: %v", e.Where, e.Err)
	}
	return fmt.Sprintf("connection to %s lost (%s): %v", e.Where, e.Op, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// IsConnectionError reports whether err comes from a connection that failed or was lost
// (rather than from a command, a file or authentication).
func IsConnectionError(err error) bool {
	var ce *ConnectionError
	return errors.As(err, &ce)
}

// looksLikeConnectionLoss recognizes the errors that the ssh and sftp packages give when the
// connection underneath goes away.
func looksLikeConnectionLoss(err error) bool {
	var opErr *net.OpError
	var missing *ssh.ExitMissingError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &opErr) || errors.As(err, &missing)
}

// endpoint is one host to connect to, fully resolved.
type endpoint struct {
	Alias          string
	HostName       string
	User           string
	Port           int
	IdentityFiles  []string
	ExplicitIDs    bool // identity files were asked for (warn when missing)
	IdentitiesOnly bool
	KnownHosts     []string
	ConnectTimeout time.Duration
}

func (e endpoint) addr() string { return net.JoinHostPort(e.HostName, strconv.Itoa(e.Port)) }

// resolveEndpoint applies the config file and the overrides to one host.
func resolveEndpoint(r *sshConfigReader, h hop, cfg SSHConfig, main bool) (endpoint, hostConfig, error) {
	hc, err := r.lookup(h.Host)
	if err != nil {
		return endpoint{}, hc, err
	}
	ep := endpoint{Alias: h.Host, HostName: h.Host, User: h.User, Port: h.Port}
	if hc.HostName != "" {
		ep.HostName = expandTokens(hc.HostName, h.Host, h.Host, 0, "")
	}
	if ep.User == "" && main {
		ep.User = cfg.User
	}
	if ep.User == "" {
		ep.User = hc.User
	}
	if ep.User == "" {
		ep.User = localUserName()
	}
	if ep.Port == 0 && main {
		ep.Port = cfg.Port
	}
	if ep.Port == 0 {
		ep.Port = hc.Port
	}
	if ep.Port == 0 {
		ep.Port = 22
	}
	ids := hc.IdentityFiles
	if len(cfg.IdentityFiles) > 0 {
		ids = cfg.IdentityFiles
	}
	if len(ids) > 0 {
		ep.ExplicitIDs = true
		for _, f := range ids {
			ep.IdentityFiles = append(ep.IdentityFiles, expandTokens(f, ep.Alias, ep.HostName, ep.Port, ep.User))
		}
	} else {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			ep.IdentityFiles = append(ep.IdentityFiles, expandTilde("~/.ssh/"+n))
		}
	}
	if hc.IdentitiesOnly != nil {
		ep.IdentitiesOnly = *hc.IdentitiesOnly
	}
	switch {
	case len(cfg.KnownHostsFiles) > 0:
		ep.KnownHosts = cfg.KnownHostsFiles
	case len(hc.UserKnownHostsFiles) > 0:
		for _, f := range hc.UserKnownHostsFiles {
			if strings.EqualFold(f, "none") || f == "/dev/null" {
				continue
			}
			ep.KnownHosts = append(ep.KnownHosts, expandTokens(f, ep.Alias, ep.HostName, ep.Port, ep.User))
		}
	default:
		ep.KnownHosts = []string{expandTilde("~/.ssh/known_hosts"), expandTilde("~/.ssh/known_hosts2")}
	}
	ep.ConnectTimeout = cfg.ConnectTimeout
	if ep.ConnectTimeout == 0 {
		ep.ConnectTimeout = hc.ConnectTimeout
	}
	if ep.ConnectTimeout == 0 {
		ep.ConnectTimeout = 30 * time.Second
	}
	return ep, hc, nil
}

// Dial connects to cfg.Host (through its ProxyJump hops), verifying every host key against
// known_hosts, and authenticates with the agent's keys, the identity files and then
// keyboard-interactive. The Transport multiplexes every command as a session on the one
// connection and does file operations over one shared SFTP session.
func Dial(ctx context.Context, cfg SSHConfig) (Transport, error) {
	if cfg.Host == "" {
		return nil, errors.New("ssh: no host")
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cfgPath := cfg.ConfigFile
	switch {
	case cfgPath == "":
		cfgPath = expandTilde("~/.ssh/config")
	case strings.EqualFold(cfgPath, "none"):
		cfgPath = ""
	default:
		cfgPath = expandTilde(cfgPath)
	}
	reader := &sshConfigReader{path: cfgPath, logf: logf}
	target, err := parseHop(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("ssh: host %q: %v", cfg.Host, err)
	}
	ep, hc, err := resolveEndpoint(reader, target, cfg, true)
	if err != nil {
		return nil, err
	}
	jump := cfg.ProxyJump
	if jump == "" {
		jump = hc.ProxyJump
	}
	hops, err := splitProxyJump(jump)
	if err != nil {
		return nil, err
	}
	var chain []endpoint
	for _, h := range hops {
		// Explicit key and known_hosts files apply to the hops too; user and port do not.
		hcfg := SSHConfig{ConnectTimeout: cfg.ConnectTimeout, IdentityFiles: cfg.IdentityFiles, KnownHostsFiles: cfg.KnownHostsFiles}
		hep, _, err := resolveEndpoint(reader, h, hcfg, false)
		if err != nil {
			return nil, err
		}
		chain = append(chain, hep)
	}
	chain = append(chain, ep)

	d := &dialer{prompt: cfg.Prompt, logf: logf, fileSigners: map[string][]ssh.Signer{}}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			logf("ssh: cannot reach the agent at SSH_AUTH_SOCK=%s: %v", sock, err)
		} else {
			d.agentConn = conn
			d.agent = agent.NewClient(conn)
		}
	}
	where := "ssh " + ep.User + "@" + ep.addr()
	var clients []*ssh.Client
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
		if d.agentConn != nil {
			d.agentConn.Close()
		}
	}
	for i, e := range chain {
		var prev *ssh.Client
		if i > 0 {
			prev = clients[i-1]
		}
		c, err := d.connect(ctx, prev, e)
		if err != nil {
			closeAll()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ssh %s@%s: %w", e.User, e.addr(), ctx.Err())
			}
			return nil, err
		}
		clients = append(clients, c)
	}
	t := &sshTransport{
		name:      where,
		client:    clients[len(clients)-1],
		hops:      clients[:len(clients)-1],
		agentConn: d.agentConn,
		done:      make(chan struct{}),
		closing:   make(chan struct{}),
	}
	go t.watch()
	interval, max := cfg.KeepaliveInterval, cfg.KeepaliveMax
	if interval == 0 {
		interval = 15 * time.Second
	}
	if max <= 0 {
		max = 3
	}
	if interval > 0 {
		go t.keepalive(interval, max)
	}
	return t, nil
}

type dialer struct {
	prompt      PromptFunc
	logf        func(string, ...any)
	agent       agent.ExtendedAgent
	agentConn   net.Conn
	fileSigners map[string][]ssh.Signer // loaded identity files, by path (nil: skipped)
}

// connect dials e directly (prev nil) or through prev, and does the SSH handshake.
func (d *dialer) connect(ctx context.Context, prev *ssh.Client, e endpoint) (*ssh.Client, error) {
	where := "ssh " + e.User + "@" + e.addr()
	hkcb, err := hostKeyCallback(e.KnownHosts)
	if err != nil {
		return nil, err
	}
	conf := &ssh.ClientConfig{
		User:              e.User,
		Auth:              d.authMethods(e),
		HostKeyCallback:   hkcb,
		HostKeyAlgorithms: hostKeyAlgorithms(knownHostKeyTypes(e.KnownHosts, e.addr())),
		ClientVersion:     "SSH-2.0-beans-slurm",
	}
	hctx, cancel := context.WithTimeout(ctx, e.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	if prev == nil {
		var nd net.Dialer
		conn, err = nd.DialContext(hctx, "tcp", e.addr())
	} else {
		conn, err = dialContext(hctx, prev, e.addr())
	}
	if err != nil {
		return nil, &ConnectionError{Where: where, Op: "dial", Err: err}
	}
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, e.addr(), conf)
	if !stop() {
		if cc != nil {
			cc.Close()
		}
		conn.Close()
		if ctx.Err() == nil {
			return nil, &ConnectionError{Where: where, Op: "dial", Err: fmt.Errorf("no SSH handshake within %v", e.ConnectTimeout)}
		}
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		var hke *HostKeyError
		if errors.As(err, &hke) {
			return nil, hke
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			tried := append([]string{"the agent's keys"}, e.IdentityFiles...)
			if d.prompt != nil {
				tried = append(tried, "keyboard-interactive", "password")
			}
			return nil, fmt.Errorf("%s: authentication failed (tried %s): %w", where, strings.Join(tried, ", "), err)
		}
		if looksLikeConnectionLoss(err) {
			return nil, &ConnectionError{Where: where, Op: "dial", Err: err}
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// dialContext opens a direct-tcpip channel through c, abandoning it when ctx ends.
func dialContext(ctx context.Context, c *ssh.Client, addr string) (net.Conn, error) {
	conn, err := withCtx(ctx, func() (net.Conn, error) { return c.Dial("tcp", addr) }, func(c net.Conn) { c.Close() })
	return conn, err
}

// withCtx runs f and waits for it or for ctx. When ctx ends first, f's result is released
// with cleanup once it arrives.
func withCtx[T any](ctx context.Context, f func() (T, error), cleanup func(T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			r := <-ch
			if r.err == nil && cleanup != nil {
				cleanup(r.v)
			}
		}()
		return zero, ctx.Err()
	}
}

func (d *dialer) authMethods(e endpoint) []ssh.AuthMethod {
	methods := []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return d.signers(e), nil })}
	if d.prompt != nil {
		methods = append(methods,
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				header := strings.TrimSpace(strings.TrimSpace(name) + "\n" + strings.TrimSpace(instruction))
				answers := make([]string, len(questions))
				for i, q := range questions {
					a, err := d.prompt(header, q, echos[i])
					if err != nil {
						return nil, err
					}
					answers[i], header = a, ""
				}
				return answers, nil
			}),
			ssh.PasswordCallback(func() (string, error) {
				return d.prompt("", fmt.Sprintf("%s@%s's password: ", e.User, e.HostName), false)
			}))
	}
	return methods
}

// signers lists the agent's keys (only those of the identity files when IdentitiesOnly),
// then the identity files' keys that the agent does not hold.
func (d *dialer) signers(e endpoint) []ssh.Signer {
	var files []ssh.Signer
	for _, f := range e.IdentityFiles {
		files = append(files, d.loadIdentity(f, e.ExplicitIDs)...)
	}
	var out []ssh.Signer
	seen := map[string]bool{}
	if d.agent != nil {
		as, err := d.agent.Signers()
		if err != nil {
			d.logf("ssh: agent: %v", err)
		}
		// The identity files' public keys: of the loaded keys, and of FILE.pub (or FILE
		// itself being a public key) when the private key is only in the agent.
		fileKeys := map[string]bool{}
		for _, s := range files {
			fileKeys[string(s.PublicKey().Marshal())] = true
		}
		for _, f := range e.IdentityFiles {
			for _, name := range []string{f + ".pub", f} {
				if b, err := os.ReadFile(name); err == nil {
					if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
						fileKeys[string(pk.Marshal())] = true
					}
				}
			}
		}
		for _, s := range as {
			k := string(s.PublicKey().Marshal())
			if e.IdentitiesOnly && !fileKeys[k] {
				continue
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, s)
			}
		}
	}
	for _, s := range files {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// loadIdentity reads one private key file (once per Dial). An encrypted key gives a signer
// that asks for the passphrase only when the server accepts its public key.
func (d *dialer) loadIdentity(file string, explicit bool) []ssh.Signer {
	if s, ok := d.fileSigners[file]; ok {
		return s
	}
	d.fileSigners[file] = nil
	data, err := os.ReadFile(file)
	if err != nil {
		_, pubErr := os.Stat(file + ".pub") // a public key alone names a key held by the agent
		if (explicit && pubErr != nil) || !errors.Is(err, fs.ErrNotExist) {
			d.logf("ssh: identity file %s: %v", file, err)
		}
		return nil
	}
	s, err := ssh.ParsePrivateKey(data)
	if err == nil {
		d.fileSigners[file] = []ssh.Signer{s}
		return d.fileSigners[file]
	}
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		d.logf("ssh: identity file %s: %v", file, err)
		return nil
	}
	if d.prompt == nil {
		d.logf("ssh: skipping encrypted key %s: no terminal to ask its passphrase (add it to ssh-agent with ssh-add)", file)
		return nil
	}
	pub := pm.PublicKey
	if pub == nil {
		if b, err := os.ReadFile(file + ".pub"); err == nil {
			pub, _, _, _, _ = ssh.ParseAuthorizedKey(b)
		}
	}
	ls := &lazySigner{file: file, data: data, prompt: d.prompt, logf: d.logf, pub: pub}
	if pub == nil { // must decrypt now to learn the public key
		if err := ls.load(); err != nil {
			d.logf("ssh: skipping %s: %v", file, err)
			return nil
		}
		pub = ls.inner.PublicKey()
		ls.pub = pub
	}
	d.fileSigners[file] = []ssh.Signer{ls}
	return d.fileSigners[file]
}

// lazySigner is an encrypted key whose passphrase is asked on first use.
type lazySigner struct {
	file   string
	data   []byte
	prompt PromptFunc
	logf   func(string, ...any)
	pub    ssh.PublicKey
	mu     sync.Mutex
	inner  ssh.Signer
	err    error
}

func (l *lazySigner) load() error {
	if l.inner != nil || l.err != nil {
		return l.err
	}
	for try := 0; try < 3; try++ {
		pass, err := l.prompt("", fmt.Sprintf("Enter passphrase for key '%s': ", l.file), false)
		if err != nil {
			l.err = err
			return err
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(l.data, []byte(pass))
		if err == nil {
			l.inner = s
			return nil
		}
		l.err = err
		l.logf("ssh: %s: %v", l.file, err)
	}
	return l.err
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.load(); err != nil {
		return nil, err
	}
	return l.inner.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.load(); err != nil {
		return nil, err
	}
	if as, ok := l.inner.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return l.inner.Sign(rand, data)
}

// sshTransport is a Transport over one *ssh.Client.
type sshTransport struct {
	name      string
	client    *ssh.Client
	hops      []*ssh.Client // jump hosts, in dial order
	agentConn net.Conn

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the connection has ended
	mu        sync.Mutex
	deadErr   error // why the connection ended (set before done is closed)

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

func (t *sshTransport) String() string { return t.name }

// watch waits for the connection to end, then releases the hops.
func (t *sshTransport) watch() {
	err := t.client.Wait()
	t.mu.Lock()
	if t.deadErr == nil {
		if err == nil {
			err = errors.New("connection closed")
		}
		t.deadErr = err
	}
	t.mu.Unlock()
	close(t.done)
	for i := len(t.hops) - 1; i >= 0; i-- {
		t.hops[i].Close()
	}
	if t.agentConn != nil {
		t.agentConn.Close()
	}
}

func (t *sshTransport) kill(reason error) {
	t.mu.Lock()
	if t.deadErr == nil {
		t.deadErr = reason
	}
	t.mu.Unlock()
	t.client.Close()
}

// dead says why the connection ended or is ending (nil while it lives).
func (t *sshTransport) dead() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadErr
}

// keepalive sends keepalive@openssh.com requests; after max intervals without an answer it
// closes the connection.
func (t *sshTransport) keepalive(interval time.Duration, max int) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-t.done:
			return
		case err := <-replies:
			pending, missed = false, 0
			if err != nil {
				return // the connection is going away; watch records why
			}
		case <-ticker.C:
			if pending {
				missed++
				if missed >= max {
					t.kill(fmt.Errorf("no answer to keepalive for %v", time.Duration(missed)*interval))
					return
				}
				continue
			}
			pending = true
			go func() {
				_, _, err := t.client.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

func (t *sshTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.closing)
		t.mu.Lock()
		if t.deadErr == nil {
			t.deadErr = net.ErrClosed
		}
		t.mu.Unlock()
		t.sftpMu.Lock()
		if t.sftp != nil {
			t.sftp.Close()
			t.sftp = nil
		}
		t.sftpMu.Unlock()
		err = t.client.Close()
		<-t.done
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// fail classifies an error of operation op: errors of a dead connection, or that look like
// one, become *ConnectionError; context errors stay as they are.
func (t *sshTransport) fail(op, p string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s on %s: %w", op, p, t.name, err)
	}
	if de := t.dead(); de != nil || looksLikeConnectionLoss(err) {
		if de != nil && !errors.Is(de, net.ErrClosed) && !errors.Is(err, de) {
			err = fmt.Errorf("%w (%v)", err, de)
		}
		return &ConnectionError{Where: t.name, Op: op, Err: err}
	}
	return err
}

func (t *sshTransport) Run(ctx context.Context, command string, stdin io.Reader) (*Result, error) {
	var stdout bytes.Buffer
	res, err := t.run(ctx, command, stdin, &stdout)
	if res != nil {
		res.Stdout = stdout.Bytes()
	}
	return res, err
}

// Stream implements Streamer.
func (t *sshTransport) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	return t.run(ctx, command, stdin, stdout)
}

func (t *sshTransport) run(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if de := t.dead(); de != nil {
		return nil, &ConnectionError{Where: t.name, Op: "run", Err: de}
	}
	sess, err := withCtx(ctx, t.client.NewSession, func(s *ssh.Session) { s.Close() })
	if err != nil {
		return nil, t.fail("run", firstWord(command), err)
	}
	var stderr bytes.Buffer
	// When a write fails the session stops reading the channel, and the command would block
	// on a full window: kill it and close the channel.
	out := &outWriter{w: stdout, onFail: func() {
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
	}}
	sess.Stdout, sess.Stderr = out, &stderr
	if stdin != nil {
		sess.Stdin = stdin
	}
	if err := sess.Start(command); err != nil {
		sess.Close()
		return nil, t.fail("run", firstWord(command), err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()
	select {
	case err = <-waitc:
	case <-ctx.Done():
		// Ask the server to kill the command, then close the channel. The remote process
		// may outlive this when the server ignores signal requests (OpenSSH honours them).
		// The session's copy goroutines end with the channel (or, for a stdin reader
		// that blocks, when it returns).
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		return nil, fmt.Errorf("%s on %s: %w", firstWord(command), t.name, ctx.Err())
	}
	sess.Close()
	res := &Result{Stderr: stderr.Bytes()}
	if werr := out.failed(); werr != nil {
		return res, fmt.Errorf("%s on %s: writing its output: %w", firstWord(command), t.name, werr)
	}
	if err == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		if sig := ee.Signal(); sig != "" && res.ExitCode == 0 {
			res.ExitCode = 128 + signalNumber(sig)
		}
		return res, nil
	}
	return res, t.fail("run", firstWord(command), err)
}

func signalNumber(name string) int {
	switch ssh.Signal(name) {
	case ssh.SIGHUP:
		return 1
	case ssh.SIGINT:
		return 2
	case ssh.SIGQUIT:
		return 3
	case ssh.SIGABRT:
		return 6
	case ssh.SIGKILL:
		return 9
	case ssh.SIGSEGV:
		return 11
	case ssh.SIGPIPE:
		return 13
	case ssh.SIGALRM:
		return 14
	case ssh.SIGTERM:
		return 15
	}
	return 127
}

// sftpClient returns the shared SFTP client, starting it on first use (and again after it
// failed while the connection lives).
func (t *sshTransport) sftpClient(ctx context.Context) (*sftp.Client, error) {
	t.sftpMu.Lock()
	defer t.sftpMu.Unlock()
	if t.sftp != nil {
		return t.sftp, nil
	}
	if de := t.dead(); de != nil {
		return nil, &ConnectionError{Where: t.name, Op: "sftp", Err: de}
	}
	c, err := withCtx(ctx, func() (*sftp.Client, error) { return sftp.NewClient(t.client) }, func(c *sftp.Client) { c.Close() })
	if err != nil {
		return nil, t.fail("sftp", "", fmt.Errorf("starting the sftp subsystem: %w", err))
	}
	t.sftp = c
	go func() {
		c.Wait()
		t.sftpMu.Lock()
		if t.sftp == c {
			t.sftp = nil
		}
		t.sftpMu.Unlock()
	}()
	return c, nil
}

// sftpPath maps "~" and "~/x" to paths relative to the login directory, where the SFTP server
// starts.
func sftpPath(p string) string {
	p = loginRelative(p)
	if p == "" {
		return "."
	}
	return p
}

// pathErr normalizes an sftp error into an *fs.PathError matching fs.ErrNotExist and
// fs.ErrPermission where it should.
func (t *sshTransport) pathErr(op, p string, err error) error {
	if err == nil {
		return nil
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		switch se.FxCode() {
		case sftp.ErrSSHFxNoSuchFile:
			return &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist}
		case sftp.ErrSSHFxPermissionDenied:
			return &fs.PathError{Op: op, Path: p, Err: fs.ErrPermission}
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return &fs.PathError{Op: op, Path: p, Err: pe.Err}
		}
		return &fs.PathError{Op: op, Path: p, Err: err}
	}
	return t.fail(op, p, err)
}

// File operations use SFTP, whose calls take no context. Each call checks ctx before it
// starts; single requests (stat, mkdir, open, rename, remove) are waited for in a goroutine
// and abandoned when ctx ends (the request may still complete); copies check ctx between
// chunks; directory listings use ReadDirContext. A connection that stops answering is ended
// by the keepalive, which makes every blocked call return.

func (t *sshTransport) WriteFile(ctx context.Context, name string, r io.Reader, perm fs.FileMode) (err error) {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return err
	}
	p := sftpPath(name)
	dir, base := path.Dir(p), path.Base(p)
	if dir != "." && dir != "/" {
		if _, err := withCtx(ctx, func() (struct{}, error) { return struct{}{}, c.MkdirAll(dir) }, nil); err != nil {
			return t.pathErr("mkdir", dir, err)
		}
	}
	tmp := path.Join(dir, "."+base+".tmp-"+randomSuffix())
	f, err := withCtx(ctx, func() (*sftp.File, error) {
		return c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_TRUNC)
	}, func(f *sftp.File) { f.Close(); c.Remove(tmp) })
	if err != nil {
		return t.pathErr("create", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			go c.Remove(tmp) // best effort, even when ctx is done
		}
	}()
	if err = f.Chmod(perm.Perm()); err != nil { // before writing: secrets never sit world-readable
		return t.pathErr("chmod", tmp, err)
	}
	if _, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("write %s on %s: %w", name, t.name, ctx.Err())
		}
		return t.pathErr("write", name, err)
	}
	if _, ok := c.HasExtension("fsync@openssh.com"); ok {
		if err = f.Sync(); err != nil {
			return t.pathErr("fsync", tmp, err)
		}
	}
	if err = f.Close(); err != nil {
		return t.pathErr("close", tmp, err)
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	_, err = withCtx(ctx, func() (struct{}, error) {
		if _, ok := c.HasExtension("posix-rename@openssh.com"); ok {
			return struct{}{}, c.PosixRename(tmp, p)
		}
		if err := c.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			var se *sftp.StatusError
			if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxNoSuchFile {
				return struct{}{}, err
			}
		}
		return struct{}{}, c.Rename(tmp, p)
	}, nil)
	if err != nil {
		return t.pathErr("rename", name, err)
	}
	return nil
}

func (t *sshTransport) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return nil, err
	}
	p := sftpPath(name)
	f, err := withCtx(ctx, func() (*sftp.File, error) { return c.Open(p) }, func(f *sftp.File) { f.Close() })
	if err != nil {
		return nil, t.pathErr("open", name, err)
	}
	if offset != 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, t.pathErr("seek", name, err)
		}
	}
	return &sftpReader{t: t, ctx: ctx, f: f, name: name}, nil
}

// sftpReader reads an SFTP file; WriteTo pipelines the reads (much faster than Read).
type sftpReader struct {
	t    *sshTransport
	ctx  context.Context
	f    *sftp.File
	name string
}

func (r *sftpReader) err(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if e := r.ctx.Err(); e != nil {
		return fmt.Errorf("read %s on %s: %w", r.name, r.t.name, e)
	}
	return r.t.pathErr("read", r.name, err)
}

func (r *sftpReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, r.err(err)
	}
	n, err := r.f.Read(p)
	return n, r.err(err)
}

func (r *sftpReader) WriteTo(w io.Writer) (int64, error) {
	n, err := r.f.WriteTo(ctxWriter{r.ctx, w})
	return n, r.err(err)
}

func (r *sftpReader) Close() error {
	err := r.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func fileInfo(p string, fi os.FileInfo) FileInfo {
	return FileInfo{Path: p, Size: fi.Size(), ModTime: fi.ModTime(), Mode: fi.Mode()}
}

func (t *sshTransport) Stat(ctx context.Context, name string) (FileInfo, error) {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return FileInfo{}, err
	}
	fi, err := withCtx(ctx, func() (os.FileInfo, error) { return c.Stat(sftpPath(name)) }, nil)
	if err != nil {
		return FileInfo{}, t.pathErr("stat", name, err)
	}
	return fileInfo(name, fi), nil
}

// Walk lists regular files and symbolic links to regular files, without descending into
// symbolic links to directories. It runs one remote find command (findWalk) and reads the
// directories over SFTP, one after another, only where that find cannot run (no GNU find).
// Modification times are whole seconds either way, as SFTP gives them (and Stat): a tree
// mirrored from either listing stays up to date for the other.
func (t *sshTransport) Walk(ctx context.Context, root string) ([]FileInfo, error) {
	files, err := findWalk(ctx, t.Run, t.name, root)
	if errors.Is(err, errFindUnusable) {
		return t.sftpWalk(ctx, root)
	}
	if err != nil {
		return nil, err
	}
	for i := range files {
		files[i].ModTime = time.Unix(files[i].ModTime.Unix(), 0)
	}
	return files, nil
}

// sftpWalk is Walk over SFTP, a few round trips per directory.
func (t *sshTransport) sftpWalk(ctx context.Context, root string) ([]FileInfo, error) {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return nil, err
	}
	rp := sftpPath(root)
	fi, err := withCtx(ctx, func() (os.FileInfo, error) { return c.Stat(rp) }, nil)
	if err != nil {
		return nil, t.pathErr("walk", root, err)
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "walk", Path: root, Err: syscall.ENOTDIR}
	}
	var out []FileInfo
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := c.ReadDirContext(ctx, path.Join(rp, rel))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return t.pathErr("readdir", path.Join(root, rel), err)
		}
		slices.SortFunc(entries, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
		for _, e := range entries {
			name := e.Name()
			if name == "." || name == ".." {
				continue
			}
			r := path.Join(rel, name)
			switch {
			case e.IsDir():
				if err := walk(r); err != nil {
					return err
				}
			case e.Mode().IsRegular():
				out = append(out, fileInfo(r, e))
			case e.Mode()&fs.ModeSymlink != 0:
				st, err := withCtx(ctx, func() (os.FileInfo, error) { return c.Stat(path.Join(rp, r)) }, nil)
				if err == nil && st.Mode().IsRegular() {
					out = append(out, fileInfo(r, st))
				} else if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return out, nil
}

// MkdirAll creates path and its parents with the server's default permissions; perm is
// applied to path itself when it was created.
func (t *sshTransport) MkdirAll(ctx context.Context, name string, perm fs.FileMode) error {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return err
	}
	p := sftpPath(name)
	_, err = withCtx(ctx, func() (struct{}, error) {
		if fi, err := c.Stat(p); err == nil && fi.IsDir() {
			return struct{}{}, nil
		}
		if err := c.MkdirAll(p); err != nil {
			return struct{}{}, err
		}
		if perm != 0 {
			return struct{}{}, c.Chmod(p, perm.Perm())
		}
		return struct{}{}, nil
	}, nil)
	return t.pathErr("mkdir", name, err)
}

func (t *sshTransport) Remove(ctx context.Context, name string) error {
	c, err := t.sftpClient(ctx)
	if err != nil {
		return err
	}
	_, err = withCtx(ctx, func() (struct{}, error) { return struct{}{}, c.Remove(sftpPath(name)) }, nil)
	err = t.pathErr("remove", name, err)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
