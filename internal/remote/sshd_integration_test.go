package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run against the real OpenSSH server of the test cluster (scripts/test-cluster.sh)
// when BEANS_SLURM_TEST_CLUSTER=1, and must then pass: a server that does not answer fails
// them. Otherwise they are skipped.

type clusterSSH struct {
	Host       string
	Port       int
	User       string
	Key        string
	KnownHosts string
	Home       string
}

func clusterEnv(t testing.TB) *clusterSSH {
	t.Helper()
	if os.Getenv("BEANS_SLURM_TEST_CLUSTER") != "1" {
		return nil
	}
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			t.Fatalf("BEANS_SLURM_TEST_CLUSTER=1 but %s is not set (use `scripts/test-cluster.sh env`)", k)
		}
		return v
	}
	addr := get("BEANS_SLURM_TEST_SSH_ADDR")
	host, port := splitHostPortDefault(addr)
	return &clusterSSH{
		Host: host, Port: port,
		User:       get("BEANS_SLURM_TEST_SSH_USER"),
		Key:        get("BEANS_SLURM_TEST_SSH_KEY"),
		KnownHosts: get("BEANS_SLURM_TEST_KNOWN_HOSTS"),
		Home:       get("BEANS_SLURM_TEST_HOME"),
	}
}

func (c *clusterSSH) config() SSHConfig {
	return SSHConfig{
		Host: c.Host, Port: c.Port, User: c.User,
		IdentityFiles:   []string{c.Key},
		KnownHostsFiles: []string{c.KnownHosts},
		ConfigFile:      "none",
		ConnectTimeout:  20 * time.Second,
	}
}

func needCluster(t *testing.T) *clusterSSH {
	t.Helper()
	env := clusterEnv(t)
	if env == nil {
		t.Skip("set BEANS_SLURM_TEST_CLUSTER=1 (scripts/test-cluster.sh env) to test against the real sshd")
	}
	return env
}

func TestSSHDIntegration(t *testing.T) {
	env := needCluster(t)
	t.Setenv("SSH_AUTH_SOCK", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tr, err := Dial(ctx, env.config())
	if err != nil {
		t.Fatalf("Dial %s:%d: %v", env.Host, env.Port, err)
	}
	defer tr.Close()

	t.Run("SLURM_CONF is set", func(t *testing.T) {
		out, err := Output(ctx, tr, "echo $SLURM_CONF")
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Fatalf("echo $SLURM_CONF = %q, %v", out, err)
		}
	})
	t.Run("sinfo", func(t *testing.T) {
		out, err := Output(ctx, tr, "sinfo -h")
		if err != nil || len(strings.TrimSpace(string(out))) == 0 {
			t.Fatalf("sinfo -h = %q, %v", out, err)
		}
	})
	t.Run("run", func(t *testing.T) {
		testTransportRunRemote(t, tr)
	})
	t.Run("files", func(t *testing.T) {
		testTransportFiles(t, tr, env.Home, "beans-remote-test-"+randomSuffix())
	})
	t.Run("mirror round trip", func(t *testing.T) {
		dir := "beans-remote-mirror-" + randomSuffix()
		t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+Quote(dir), nil) })
		files := map[string]string{"a.txt": "a", "logs/b.out": strings.Repeat("b", 300_000), "c/d/e": ""}
		for p, c := range files {
			if err := tr.WriteFile(ctx, path.Join(dir, p), strings.NewReader(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dst := t.TempDir()
		stats, err := Mirror(ctx, tr, "~/"+dir, dst, MirrorOptions{})
		if err != nil || stats.Copied != 3 {
			t.Fatalf("Mirror: %+v, %v", stats, err)
		}
		checkTree(t, dst, files)
		stats, err = Mirror(ctx, tr, dir, dst, MirrorOptions{})
		if err != nil || stats.Copied != 0 || stats.Skipped != 3 {
			t.Fatalf("second Mirror: %+v, %v", stats, err)
		}
	})
	t.Run("mirror tar stream", func(t *testing.T) {
		dir := "beans-remote-stream-" + randomSuffix()
		t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+Quote(dir), nil) })
		testMirrorStreamTree(t, tr, dir)
	})
	t.Run("mirror grow and shrink", func(t *testing.T) {
		dir := "beans-remote-gs-" + randomSuffix()
		t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+Quote(dir), nil) })
		testMirrorStreamGrowShrink(t, tr, dir)
	})
	t.Run("walk: one find command, same listing as SFTP", func(t *testing.T) {
		dir := "beans-remote-walk-" + randomSuffix()
		t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+Quote(dir), nil) })
		makeStreamTree(t, tr, dir)
		st := tr.(*sshTransport)
		found, err := st.Walk(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		viaSFTP, err := st.sftpWalk(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := fmt.Sprint(sortedInfos(found)), fmt.Sprint(sortedInfos(viaSFTP)); a != b {
			t.Fatalf("find walk:\n%s\nSFTP walk:\n%s", a, b)
		}
	})
	t.Run("unknown host key refused", func(t *testing.T) {
		cfg := env.config()
		cfg.KnownHostsFiles = []string{writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), "")}
		_, err := Dial(ctx, cfg)
		var he *HostKeyError
		if !errors.As(err, &he) || !he.Unknown || !strings.HasPrefix(he.Fingerprint, "SHA256:") {
			t.Fatalf("Dial with an empty known_hosts: %v", err)
		}
		if !strings.Contains(err.Error(), "ssh-keyscan -p "+strconv.Itoa(env.Port)+" "+env.Host) {
			t.Errorf("message: %v", err)
		}
	})
}

// testTransportRunRemote checks Run on a machine whose login directory we cannot see
// locally under the same path assumptions.
func testTransportRunRemote(t *testing.T, tr Transport) {
	ctx := context.Background()
	res, err := tr.Run(ctx, "cat; echo err >&2; exit 5", strings.NewReader("in"))
	if err != nil || string(res.Stdout) != "in" || string(res.Stderr) != "err\n" || res.ExitCode != 5 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	var sout strings.Builder
	res, err = tr.(Streamer).Stream(ctx, "cat; echo err >&2; exit 5", strings.NewReader("in"), &sout)
	if err != nil || sout.String() != "in" || len(res.Stdout) != 0 || string(res.Stderr) != "err\n" || res.ExitCode != 5 {
		t.Fatalf("Stream = %q, %+v, %v", sout.String(), res, err)
	}
	broken := errors.New("disk full")
	if _, err := tr.(Streamer).Stream(ctx, "yes", nil, &failingWriter{n: 1 << 20, err: broken}); !errors.Is(err, broken) {
		t.Fatalf("Stream into a failing writer: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	pidFile := "beans-remote-pid-" + randomSuffix()
	defer tr.Remove(ctx, pidFile)
	go func() {
		for cctx.Err() == nil {
			if fi, err := tr.Stat(ctx, pidFile); err == nil && fi.Size > 0 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err = tr.Run(cctx, "echo $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+" && exec sleep 100", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	pid, err := Output(ctx, tr, "cat "+pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, systemSSH := tr.(*openSSH); systemSSH { // cannot signal (see NewOpenSSH)
		tr.Run(ctx, "kill -9 "+strings.TrimSpace(string(pid)), nil)
		return
	}
	// The server must kill it (signal request); wait for that, bounded by the test timeout.
	out, err := Output(ctx, tr, "while kill -0 "+strings.TrimSpace(string(pid))+" 2>/dev/null; do sleep 0.05; done; echo gone")
	if err != nil || string(out) != "gone\n" {
		t.Fatalf("remote sleep not killed: %q %v", out, err)
	}
}

func TestSSHDOpenSSHTransport(t *testing.T) {
	env := needCluster(t)
	t.Setenv("SSH_AUTH_SOCK", "")
	cm, err := os.MkdirTemp("", "cm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(cm)
	args := []string{"-p", strconv.Itoa(env.Port), "-i", env.Key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + env.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "ControlPath=" + cm + "/%C", "-o", "ControlPersist=no", "-F", "none"}
	tr := NewOpenSSH(env.User+"@"+env.Host, args)
	defer tr.Close()
	ctx := context.Background()
	out, err := Output(ctx, tr, "echo $SLURM_CONF; sinfo -h | head -1")
	if err != nil || len(strings.Fields(string(out))) < 2 {
		t.Fatalf("Output = %q, %v", out, err)
	}
	t.Run("run", func(t *testing.T) { testTransportRunRemote(t, tr) })
	t.Run("files", func(t *testing.T) {
		testTransportFiles(t, tr, env.Home, "beans-openssh-test-"+randomSuffix())
	})
	t.Run("mirror tar stream", func(t *testing.T) {
		dir := "beans-openssh-stream-" + randomSuffix()
		t.Cleanup(func() { tr.Run(context.Background(), "rm -rf "+Quote(dir), nil) })
		testMirrorStreamTree(t, tr, dir)
	})
	t.Run("unknown host key refused", func(t *testing.T) {
		empty := writeFile(t, filepath.Join(t.TempDir(), "known_hosts"), "")
		bad := NewOpenSSH(env.User+"@"+env.Host, []string{"-p", strconv.Itoa(env.Port), "-i", env.Key,
			"-o", "UserKnownHostsFile=" + empty, "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-F", "none"})
		_, err := bad.Run(ctx, "true", nil)
		if !IsConnectionError(err) || !strings.Contains(err.Error(), "Host key verification failed") {
			t.Fatalf("Run: %v", err)
		}
	})
}

func sortedInfos(fis []FileInfo) []string {
	var out []string
	for _, f := range fis {
		out = append(out, fmt.Sprintf("%q %d %d %v\n", f.Path, f.Size, f.ModTime.UnixNano(), f.Mode.Perm()))
	}
	slices.Sort(out)
	return out
}
