package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dialOK(t *testing.T, cfg SSHConfig) Transport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func echo(t *testing.T, tr Transport) {
	t.Helper()
	out, err := Output(context.Background(), tr, "echo ok")
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("echo ok = %q, %v", out, err)
	}
}

func TestSSHRun(t *testing.T) {
	c := newTestClient(t)
	tr := dialOK(t, c.Config())
	if want := "ssh tester@127.0.0.1:" + strconv.Itoa(c.Server.Port); tr.String() != want {
		t.Errorf("String() = %q, want %q", tr.String(), want)
	}
	testTransportRun(t, tr, c.Server.Home)
}

func TestSSHFiles(t *testing.T) {
	c := newTestClient(t)
	tr := dialOK(t, c.Config())
	testTransportFiles(t, tr, c.Server.Home, "files")
}

func TestSSHConcurrentSessions(t *testing.T) {
	c := newTestClient(t)
	tr := dialOK(t, c.Config())
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			out, err := Output(ctx, tr, fmt.Sprintf("echo %d", i))
			if err == nil && string(out) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("got %q", out)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			errs <- tr.WriteFile(ctx, fmt.Sprintf("c/%d", i), strings.NewReader("x"), 0o644)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestDialHostKeys(t *testing.T) {
	other := newSigner(t)
	tests := []struct {
		name    string
		keys    func() []ssh.Signer // server host keys (first one is "its" key)
		known   func(s *testServer) string
		wantErr string // "" ok, "unknown", "changed"
	}{
		{"known", nil, func(s *testServer) string { return s.KnownHostsLine() }, ""},
		{"hashed entry", nil, func(s *testServer) string {
			return knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(s.Addr))}, s.HostKeys[0].PublicKey())
		}, ""},
		{"entry among others, with comments and markers", nil, func(s *testServer) string {
			return "# comment\n" +
				knownhosts.Line([]string{"elsewhere.example"}, other.PublicKey()) + "\n" +
				"@revoked * " + string(ssh.MarshalAuthorizedKey(newSigner(t).PublicKey())) +
				s.KnownHostsLine() + "\n"
		}, ""},
		{"server prefers a type known_hosts lacks (golang/go#29286)",
			func() []ssh.Signer { return []ssh.Signer{newSigner(t), newECDSASigner(t)} },
			func(s *testServer) string { return s.KnownHostsLine() }, ""},
		{"unknown", nil, func(s *testServer) string { return "" }, "unknown"},
		{"unknown: only another host known", nil, func(s *testServer) string {
			return knownhosts.Line([]string{"[127.0.0.1]:1"}, s.HostKeys[0].PublicKey())
		}, "unknown"},
		{"changed", nil, func(s *testServer) string {
			return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, other.PublicKey())
		}, "changed"},
		{"changed: hashed", nil, func(s *testServer) string {
			return knownhosts.Line([]string{knownhosts.HashHostname(knownhosts.Normalize(s.Addr))}, other.PublicKey())
		}, "changed"},
		{"known key of another type only", nil, func(s *testServer) string {
			return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, newECDSASigner(t).PublicKey())
		}, "changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []serverOption
			if tt.keys != nil {
				opts = append(opts, withHostKeys(tt.keys()...))
			}
			c := newTestClient(t, opts...)
			writeFile(t, c.KnownHosts, tt.known(c.Server))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr, err := Dial(ctx, c.Config())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer tr.Close()
				echo(t, tr)
				return
			}
			if err == nil {
				tr.Close()
				t.Fatal("Dial succeeded")
			}
			var he *HostKeyError
			if !errors.As(err, &he) {
				t.Fatalf("error %T %v, want *HostKeyError", err, err)
			}
			if IsConnectionError(err) {
				t.Errorf("a host key error is not a connection error")
			}
			key := c.Server.HostKeys[0].PublicKey()
			if he.Fingerprint != ssh.FingerprintSHA256(key) || he.KeyType != key.Type() {
				t.Errorf("error names %s %s, want %s %s", he.KeyType, he.Fingerprint, key.Type(), ssh.FingerprintSHA256(key))
			}
			msg := err.Error()
			if !strings.Contains(msg, he.Fingerprint) {
				t.Errorf("message lacks the fingerprint: %s", msg)
			}
			switch tt.wantErr {
			case "unknown":
				want := fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> %s", c.Server.Port, c.KnownHosts)
				if !he.Unknown || !strings.Contains(msg, want) {
					t.Errorf("want an unknown-host error saying %q, got %v", want, msg)
				}
			case "changed":
				if he.Unknown || !strings.Contains(msg, c.KnownHosts+":1") || !strings.Contains(msg, "attack") {
					t.Errorf("want a refused changed key naming %s:1 and an attack, got %v", c.KnownHosts, msg)
				}
			}
		})
	}
}

func TestKnownHostKeyTypes(t *testing.T) {
	dir := t.TempDir()
	ed := newSigner(t).PublicKey()
	ec := newECDSASigner(t).PublicKey()
	line := func(hosts string, k ssh.PublicKey) string {
		return hosts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	f1 := writeFile(t, filepath.Join(dir, "kh1"), strings.Join([]string{
		"# comment",
		line("alpha,beta", ed),
		line("[gamma]:2222", ec),
		line(knownhosts.HashHostname("delta"), ec),
		line("*.example,!bad.example", ed),
		"@cert-authority *.example " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ec))),
		"garbage",
	}, "\n"))
	f2 := writeFile(t, filepath.Join(dir, "kh2"), line("alpha", ec)+"\n")
	tests := []struct {
		host string
		want []string
	}{
		{"alpha:22", []string{ed.Type(), ec.Type()}},
		{"beta:22", []string{ed.Type()}},
		{"gamma:2222", []string{ec.Type()}},
		{"gamma:22", nil},
		{"delta:22", []string{ec.Type()}},
		{"delta:23", nil},
		{"good.example:22", []string{ed.Type()}},
		{"bad.example:22", nil},
		{"zeta:22", nil},
	}
	for _, tt := range tests {
		got := knownHostKeyTypes([]string{f1, f2, filepath.Join(dir, "missing")}, tt.host)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("knownHostKeyTypes(%s) = %v, want %v", tt.host, got, tt.want)
		}
	}
	algos := hostKeyAlgorithms([]string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA})
	if algos[0] != ssh.KeyAlgoED25519 || algos[1] != ssh.KeyAlgoRSASHA512 || algos[2] != ssh.KeyAlgoRSASHA256 {
		t.Errorf("hostKeyAlgorithms = %v", algos)
	}
	for _, a := range algos {
		if strings.Contains(a, "cert") {
			t.Errorf("certificate algorithm %s offered", a)
		}
	}
}

// startAgent serves an in-process ssh-agent holding key on a unix socket and points
// SSH_AUTH_SOCK at it.
func startAgent(t *testing.T, keys ...any) {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "agent") // short path: unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				agent.ServeAgent(kr, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait(); os.RemoveAll(dir) })
	t.Setenv("SSH_AUTH_SOCK", sock)
}

func TestDialAuth(t *testing.T) {
	type answer struct {
		q    string
		echo bool
	}
	tests := []struct {
		name string
		// setup changes the client config; it returns the questions expected to be asked.
		setup   func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer
		opts    []serverOption
		wantErr string
		wantLog string
	}{
		{name: "key file", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer { return nil }},
		{name: "default key file in ~/.ssh", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			home, _ := os.UserHomeDir()
			writeFile(t, filepath.Join(home, ".ssh/id_ed25519"), string(mustRead(t, c.KeyFile)))
			cfg.IdentityFiles = nil
			return nil
		}},
		{name: "agent", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			raw, err := ssh.ParseRawPrivateKey(mustRead(t, c.KeyFile))
			if err != nil {
				t.Fatal(err)
			}
			startAgent(t, raw)
			cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "absent")}
			return nil
		}, wantLog: "absent"},
		{name: "agent with other keys first, then the file", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			raw, _ := ssh.ParseRawPrivateKey(mustRead(t, newKeyFileOnly(t)))
			startAgent(t, raw)
			return nil
		}},
		{name: "encrypted key with a prompt", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			f, pub := newKeyFile(t, t.TempDir(), "s3cret")
			c.Server.Authorize(pub)
			cfg.IdentityFiles = []string{f}
			cfg.Prompt = func(instr, q string, echo bool) (string, error) {
				*asked = append(*asked, answer{q, echo})
				return "s3cret", nil
			}
			return []answer{{"Enter passphrase for key '" + f + "': ", false}}
		}},
		{name: "encrypted key not accepted by the server is not unlocked", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			f, _ := newKeyFile(t, t.TempDir(), "s3cret")
			cfg.IdentityFiles = []string{f, c.KeyFile}
			cfg.Prompt = func(instr, q string, echo bool) (string, error) {
				*asked = append(*asked, answer{q, echo})
				return "s3cret", nil
			}
			return nil
		}},
		{name: "encrypted key without a prompt is skipped", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			f, pub := newKeyFile(t, t.TempDir(), "s3cret")
			c.Server.Authorize(pub)
			cfg.IdentityFiles = []string{f}
			return nil
		}, wantErr: "authentication failed", wantLog: "skipping encrypted key"},
		{name: "keyboard-interactive", opts: []serverOption{withKeyboardInteractive(
			[]string{"Password: ", "Code: "}, []bool{false, true}, []string{"pw", "123456"})},
			setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
				cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "absent")}
				answers := map[string]string{"Password: ": "pw", "Code: ": "123456"}
				cfg.Prompt = func(instr, q string, echo bool) (string, error) {
					if len(*asked) == 0 && !strings.Contains(instr, "Two factors") {
						t.Errorf("instruction %q", instr)
					}
					*asked = append(*asked, answer{q, echo})
					return answers[q], nil
				}
				return []answer{{"Password: ", false}, {"Code: ", true}}
			}},
		{name: "keyboard-interactive through ReadWriterPrompt", opts: []serverOption{withKeyboardInteractive(
			[]string{"Password: ", "Code: "}, []bool{false, true}, []string{"pw", "123456"})},
			setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
				cfg.IdentityFiles = nil
				var out strings.Builder
				cfg.Prompt = ReadWriterPrompt(struct {
					*strings.Reader
					*strings.Builder
				}{strings.NewReader("pw\n123456\n"), &out})
				t.Cleanup(func() {
					if !strings.Contains(out.String(), "Password: Code: ") {
						t.Errorf("prompt wrote %q", out.String())
					}
				})
				return nil
			}},
		{name: "keyboard-interactive, wrong answer", opts: []serverOption{withKeyboardInteractive(
			[]string{"Code: "}, []bool{true}, []string{"123456"})},
			setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
				cfg.IdentityFiles = nil
				cfg.Prompt = func(instr, q string, echo bool) (string, error) { return "000000", nil }
				return nil
			}, wantErr: "authentication failed"},
		{name: "no key", setup: func(t *testing.T, c *testClient, cfg *SSHConfig, asked *[]answer) []answer {
			cfg.IdentityFiles = nil
			return nil
		}, wantErr: "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.opts...)
			cfg := c.Config()
			var logs []string
			var mu sync.Mutex
			cfg.Logf = func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() }
			var asked []answer
			want := tt.setup(t, c, &cfg, &asked)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr, err := Dial(ctx, cfg)
			if tt.wantErr != "" {
				if err == nil {
					tr.Close()
					t.Fatalf("Dial succeeded, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Dial: %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				echo(t, tr)
				tr.Close()
			}
			if fmt.Sprint(asked) != fmt.Sprint(want) {
				t.Errorf("asked %v, want %v", asked, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantLog != "" && !strings.Contains(strings.Join(logs, "\n"), tt.wantLog) {
				t.Errorf("logs %q lack %q", logs, tt.wantLog)
			}
		})
	}
}

// newKeyFileOnly makes a key nobody authorized.
func newKeyFileOnly(t *testing.T) string {
	f, _ := newKeyFile(t, t.TempDir(), "")
	return f
}

func TestProxyJump(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	key, pub := newKeyFile(t, dir, "")
	j1 := newTestServer(t, withTCPForwarding())
	j2 := newTestServer(t, withTCPForwarding())
	target := newTestServer(t)
	var kh []string
	for _, s := range []*testServer{j1, j2, target} {
		s.Authorize(pub)
		kh = append(kh, s.KnownHostsLine())
	}
	khFile := writeFile(t, filepath.Join(dir, "known_hosts"), strings.Join(kh, "\n")+"\n")
	conf := writeFile(t, filepath.Join(dir, "config"), fmt.Sprintf(`
Host target
  HostName 127.0.0.1
  Port %d
  ProxyJump j1,someone@j2
Host j1
  HostName 127.0.0.1
  Port %d
Host j2
  HostName 127.0.0.1
  Port %d
Host *
  User tester
  IdentityFile %s
  UserKnownHostsFile %s
`, target.Port, j1.Port, j2.Port, key, khFile))

	t.Run("through the config", func(t *testing.T) {
		tr := dialOK(t, SSHConfig{Host: "target", ConfigFile: conf})
		echo(t, tr)
		testTransportFiles(t, tr, target.Home, "via-jumps")
		if target.Execs == 0 || j1.Execs != 0 || j2.Execs != 0 {
			t.Errorf("execs: target %d, j1 %d, j2 %d", target.Execs, j1.Execs, j2.Execs)
		}
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := tr.Run(context.Background(), "true", nil); !IsConnectionError(err) {
			t.Errorf("Run after Close: %v, want a connection error", err)
		}
	})
	t.Run("explicit ProxyJump", func(t *testing.T) {
		tr := dialOK(t, SSHConfig{
			Host: "127.0.0.1", Port: target.Port, User: "tester", ConfigFile: "none",
			ProxyJump:       fmt.Sprintf("tester@127.0.0.1:%d,127.0.0.1:%d", j1.Port, j2.Port),
			IdentityFiles:   []string{key},
			KnownHostsFiles: []string{khFile},
		})
		echo(t, tr)
	})
	t.Run("a hop with an unknown host key is refused", func(t *testing.T) {
		partial := writeFile(t, filepath.Join(dir, "kh-partial"), kh[0]+"\n"+kh[2]+"\n")
		_, err := Dial(context.Background(), SSHConfig{
			Host: "127.0.0.1", Port: target.Port, User: "tester", ConfigFile: "none",
			ProxyJump:       fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", j1.Port, j2.Port),
			IdentityFiles:   []string{key},
			KnownHostsFiles: []string{partial},
		})
		var he *HostKeyError
		if !errors.As(err, &he) || !he.Unknown || he.Host != j2.Addr {
			t.Fatalf("Dial: %v, want an unknown host key for %s", err, j2.Addr)
		}
	})
	t.Run("a jump host that refuses forwarding", func(t *testing.T) {
		_, err := Dial(context.Background(), SSHConfig{
			Host: "127.0.0.1", Port: target.Port, User: "tester", ConfigFile: "none",
			ProxyJump:       fmt.Sprintf("127.0.0.1:%d", target.Port),
			IdentityFiles:   []string{key},
			KnownHostsFiles: []string{khFile},
		})
		if err == nil || !strings.Contains(err.Error(), "forwarding") {
			t.Fatalf("Dial: %v", err)
		}
	})
}

func TestKeepaliveClosesDeadConnection(t *testing.T) {
	c := newTestClient(t)
	c.Server.Silent = true
	cfg := c.Config()
	cfg.KeepaliveInterval = 20 * time.Millisecond
	cfg.KeepaliveMax = 2
	tr := dialOK(t, cfg)
	// The server answers nothing: opening a session blocks until the keepalive gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := tr.Run(ctx, "echo hi", nil)
	if err == nil || !IsConnectionError(err) {
		t.Fatalf("Run: %v, want a connection error", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Run returned only when the test's context ended: %v", err)
	}
	if !strings.Contains(err.Error(), "keepalive") {
		t.Errorf("error does not say why: %v", err)
	}
	if _, err := tr.Stat(ctx, "x"); !IsConnectionError(err) {
		t.Errorf("Stat after: %v", err)
	}
}

func TestRunContextWhileOpeningSession(t *testing.T) {
	c := newTestClient(t)
	c.Server.Silent = true
	cfg := c.Config()
	cfg.KeepaliveInterval = -1
	tr := dialOK(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Run(ctx, "echo hi", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := tr.Run(ctx2, "echo hi", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
}

func TestDialConnectionErrors(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	_, err = Dial(context.Background(), SSHConfig{Host: "127.0.0.1", Port: addr.Port, ConfigFile: "none"})
	if !IsConnectionError(err) {
		t.Errorf("refused connection: %v, want a connection error", err)
	}
	// A server that accepts and never speaks: the handshake is bounded by ConnectTimeout.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, err = Dial(context.Background(), SSHConfig{Host: ln.Addr().String(), ConfigFile: "none", ConnectTimeout: 100 * time.Millisecond})
	if !IsConnectionError(err) || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("silent server: %v, want a connection error about the handshake", err)
	}
}

func TestIdentitiesOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		only     string
		agentKey bool // the agent holds the authorized key
		fileKey  bool // the identity file is the authorized key
		ok       bool
	}{
		{"agent key used without IdentitiesOnly", "no", true, false, true},
		{"agent key not in IdentityFile refused by IdentitiesOnly", "yes", true, false, false},
		{"agent copy of the IdentityFile key used", "yes", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t)
			dir := t.TempDir()
			idFile := c.KeyFile
			if !tc.fileKey {
				idFile, _ = newKeyFile(t, dir, "")
			}
			if tc.agentKey {
				raw, err := ssh.ParseRawPrivateKey(mustRead(t, c.KeyFile))
				if err != nil {
					t.Fatal(err)
				}
				startAgent(t, raw)
			}
			if tc.fileKey { // only the agent may sign: make the file unreadable as a key
				pub, _ := ssh.ParsePrivateKey(mustRead(t, c.KeyFile))
				idFile = filepath.Join(dir, "id_pubonly")
				writeFile(t, idFile+".pub", string(ssh.MarshalAuthorizedKey(pub.PublicKey())))
			}
			conf := writeFile(t, filepath.Join(dir, "config"), fmt.Sprintf("Host srv\n HostName 127.0.0.1\n Port %d\n User tester\n IdentityFile %s\n IdentitiesOnly %s\n UserKnownHostsFile %s\n",
				c.Server.Port, idFile, tc.only, c.KnownHosts))
			tr, err := Dial(context.Background(), SSHConfig{Host: "srv", ConfigFile: conf})
			if tc.ok != (err == nil) {
				t.Fatalf("Dial: %v, want ok=%v", err, tc.ok)
			}
			if err == nil {
				echo(t, tr)
				tr.Close()
			}
		})
	}
}

func TestKeepaliveKeepsLiveConnection(t *testing.T) {
	c := newTestClient(t)
	cfg := c.Config()
	// Short intervals, with room for a loaded machine (and the race detector) to answer late.
	cfg.KeepaliveInterval = 20 * time.Millisecond
	cfg.KeepaliveMax = 10
	tr := dialOK(t, cfg)
	// The command outlasts many keepalive intervals; answered keepalives keep it alive.
	out, err := Output(context.Background(), tr, "sleep 0.6; echo done")
	if err != nil || string(out) != "done\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	echo(t, tr)
}

// Walk lists with one find command; the SFTP walk it falls back to gives the same listing,
// modification times included (whole seconds), so that a mirror made from one is up to date
// for the other.
func TestSSHWalkFindMatchesSFTP(t *testing.T) {
	c := newTestClient(t)
	tr := dialOK(t, c.Config()).(*sshTransport)
	tree := filepath.Join(c.Server.Home, "tree")
	writeFile(t, filepath.Join(tree, "a.txt"), "a")
	writeFile(t, filepath.Join(tree, "sub/deeper/c d.txt"), "ccc")
	writeFile(t, filepath.Join(tree, "new\nline"), "nl")
	os.Chmod(writeFile(t, filepath.Join(tree, "x.sh"), "#!"), 0o750)
	os.Symlink("a.txt", filepath.Join(tree, "link"))
	os.Symlink("sub", filepath.Join(tree, "dirlink"))
	ctx := context.Background()
	before := c.Server.ExecCount()
	found, err := tr.Walk(ctx, "~/tree")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ExecCount() != before+1 {
		t.Errorf("Walk ran %d commands, want 1", c.Server.ExecCount()-before)
	}
	sftp, err := tr.sftpWalk(ctx, "~/tree")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(fis []FileInfo) []string {
		var out []string
		for _, f := range fis {
			out = append(out, fmt.Sprintf("%q %d %d %v", f.Path, f.Size, f.ModTime.UnixNano(), f.Mode.Perm()))
		}
		slices.Sort(out)
		return out
	}
	if a, b := norm(found), norm(sftp); !slices.Equal(a, b) || len(a) != 5 {
		t.Fatalf("find walk:\n%s\nSFTP walk:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	for _, p := range []string{"tree/nope", "-tree"} {
		if _, err := tr.Walk(ctx, p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Walk %s: %v", p, err)
		}
	}
	if _, err := tr.Walk(ctx, "tree/a.txt"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Walk of a file: %v", err)
	}
}
