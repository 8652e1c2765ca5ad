package remote

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server: exec requests run with bash -c in Home, the "sftp"
// subsystem is served by sftp.NewServer, keepalives are answered, and optionally
// direct-tcpip channels (for ProxyJump) and keyboard-interactive authentication.
type testServer struct {
	t        testing.TB
	Addr     string
	Port     int
	Home     string
	HostKeys []ssh.Signer

	config *ssh.ServerConfig
	ln     net.Listener

	mu         sync.Mutex
	authorized [][]byte
	conns      []net.Conn
	// Silent: after authentication, stop answering anything (a dead peer).
	Silent bool
	// AllowTCP: accept direct-tcpip channels.
	AllowTCP bool
	// Execs counts exec requests.
	Execs int
	wg    sync.WaitGroup
}

type serverOption func(*testServer)

// withHostKeys replaces the server's host keys.
func withHostKeys(keys ...ssh.Signer) serverOption {
	return func(s *testServer) { s.HostKeys = keys }
}

// withKeyboardInteractive makes the server ask questions and accept only the given answers.
func withKeyboardInteractive(questions []string, echos []bool, answers []string) serverOption {
	return func(s *testServer) {
		s.config.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			got, err := client("beans", "Two factors, please.", questions, echos)
			if err != nil {
				return nil, err
			}
			if fmt.Sprint(got) != fmt.Sprint(answers) {
				return nil, fmt.Errorf("wrong answers %q", got)
			}
			return nil, nil
		}
	}
}

func withTCPForwarding() serverOption { return func(s *testServer) { s.AllowTCP = true } }

func newTestServer(t testing.TB, opts ...serverOption) *testServer {
	t.Helper()
	s := &testServer{t: t, Home: t.TempDir()}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, k := range s.authorized {
				if string(k) == string(key.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
	}
	for _, o := range opts {
		o(s)
	}
	if len(s.HostKeys) == 0 {
		s.HostKeys = []ssh.Signer{newSigner(t)}
	}
	for _, k := range s.HostKeys {
		s.config.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testServer) Authorize(key ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized = append(s.authorized, key.Marshal())
}

// KnownHostsLine is the known_hosts line for this server's first host key.
func (s *testServer) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKeys[0].PublicKey())
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *testServer) handle(nc net.Conn) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config)
	if err != nil {
		return
	}
	defer sc.Close()
	s.mu.Lock()
	silent := s.Silent
	s.mu.Unlock()
	if silent {
		// Read nothing more: keepalives and channel opens stay unanswered.
		sc.Wait()
		return
	}
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(false, nil) // as OpenSSH answers keepalive@openssh.com
			}
		}
	}()
	var wg sync.WaitGroup
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.session(ch, creqs)
			}()
		case "direct-tcpip":
			if !s.AllowTCP {
				nch.Reject(ssh.Prohibited, "no forwarding")
				continue
			}
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
				nch.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			dst, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nch.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nch.Accept()
			if err != nil {
				dst.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			wg.Add(1)
			go func() {
				defer wg.Done()
				done := make(chan struct{}, 2)
				go func() { io.Copy(dst, ch); dst.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(ch, dst); ch.CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
				ch.Close()
				dst.Close()
			}()
		default:
			nch.Reject(ssh.UnknownChannelType, "unknown channel type")
		}
	}
	wg.Wait()
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var (
		mu   sync.Mutex
		proc *os.Process
	)
	finished := make(chan struct{})
	started := false
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case <-finished:
			return
		}
		if !ok {
			return
		}
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			s.mu.Lock()
			s.Execs++
			s.mu.Unlock()
			cmd := exec.Command("bash", "-c", p.Command)
			cmd.Dir = s.Home
			cmd.Env = append(os.Environ(), "HOME="+s.Home)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			stdin, err := cmd.StdinPipe()
			if err != nil {
				req.Reply(false, nil)
				continue
			}
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				continue
			}
			mu.Lock()
			proc = cmd.Process
			mu.Unlock()
			req.Reply(true, nil)
			go func() { io.Copy(stdin, ch); stdin.Close() }()
			go func() {
				err := cmd.Wait()
				code := 0
				if err != nil {
					code, _ = exitCode(err)
				}
				ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
				close(finished)
			}()
		case "subsystem":
			var p struct{ Name string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			started = true
			req.Reply(true, nil)
			srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.Home))
			if err != nil {
				return
			}
			go func() {
				srv.Serve()
				close(finished)
			}()
		case "signal":
			mu.Lock()
			if proc != nil {
				syscall.Kill(-proc.Pid, syscall.SIGKILL)
			}
			mu.Unlock()
		default:
			if req.WantReply {
				req.Reply(req.Type == "env", nil)
			}
		}
	}
}

// newSigner makes an ed25519 key.
func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newECDSASigner(t testing.TB) ssh.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newKeyFile writes a fresh ed25519 private key (encrypted when passphrase is not empty)
// and returns its path and public key.
func newKeyFile(t testing.TB, dir, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "id_*")
	if err != nil {
		t.Fatal(err)
	}
	if err := pem.Encode(f, block); err != nil {
		t.Fatal(err)
	}
	f.Close()
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return f.Name(), spub
}

// isolate points HOME at an empty directory and forgets the agent, so that tests see none of
// the user's keys, config or known hosts.
func isolate(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	return home
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testClient is a server with an authorized key file and a known_hosts that trusts it.
type testClient struct {
	Server     *testServer
	KeyFile    string
	KnownHosts string
}

func newTestClient(t *testing.T, opts ...serverOption) *testClient {
	t.Helper()
	isolate(t)
	s := newTestServer(t, opts...)
	dir := t.TempDir()
	key, pub := newKeyFile(t, dir, "")
	s.Authorize(pub)
	kh := writeFile(t, filepath.Join(dir, "known_hosts"), s.KnownHostsLine()+"\n")
	return &testClient{Server: s, KeyFile: key, KnownHosts: kh}
}

func (c *testClient) Config() SSHConfig {
	return SSHConfig{
		Host:            "127.0.0.1",
		Port:            c.Server.Port,
		User:            "tester",
		IdentityFiles:   []string{c.KeyFile},
		KnownHostsFiles: []string{c.KnownHosts},
		ConfigFile:      "none",
	}
}

// ExecCount is the number of exec requests so far.
func (s *testServer) ExecCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Execs
}
