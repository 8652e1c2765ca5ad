package remote

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// openSSHClient returns a system-ssh Transport to an in-process server.
func openSSHClient(t *testing.T) (Transport, *testClient) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client installed")
	}
	c := newTestClient(t)
	cm, err := os.MkdirTemp("", "cm") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cm) })
	tr := NewOpenSSH("tester@127.0.0.1", []string{
		"-F", "none", "-p", strconv.Itoa(c.Server.Port), "-i", c.KeyFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + c.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "ControlPath=" + cm + "/%C", "-o", "ControlPersist=no",
	})
	t.Cleanup(func() { tr.Close() })
	return tr, c
}

func TestOpenSSHRun(t *testing.T) {
	tr, c := openSSHClient(t)
	if !strings.Contains(tr.String(), "tester@127.0.0.1") {
		t.Errorf("String() = %q", tr.String())
	}
	testTransportRun(t, tr, c.Server.Home)
}

func TestOpenSSHFiles(t *testing.T) {
	tr, c := openSSHClient(t)
	testTransportFiles(t, tr, c.Server.Home, "files")
}

func TestOpenSSHMirror(t *testing.T) {
	tr, c := openSSHClient(t)
	files := map[string]string{"a": "a", "dir/b c": strings.Repeat("b", 100_000), "tab\tname": "t"}
	makeTree(t, filepath.Join(c.Server.Home, "run"), files)
	dst := t.TempDir()
	ctx := context.Background()
	stats, err := Mirror(ctx, tr, "run", dst, MirrorOptions{})
	if err != nil || stats.Copied != 3 {
		t.Fatalf("Mirror: %+v, %v", stats, err)
	}
	checkTree(t, dst, files)
	st, err := os.Stat(filepath.Join(dst, "a"))
	if err != nil || !st.ModTime().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("mtime %v %v", st.ModTime(), err)
	}
	stats, err = Mirror(ctx, tr, "run", dst, MirrorOptions{})
	if err != nil || stats.Skipped != 3 {
		t.Fatalf("second Mirror: %+v, %v", stats, err)
	}
}

func TestOpenSSHUnknownHost(t *testing.T) {
	tr, c := openSSHClient(t)
	_ = tr
	writeFile(t, c.KnownHosts, "")
	bad := NewOpenSSH("tester@127.0.0.1", []string{"-F", "none", "-p", strconv.Itoa(c.Server.Port), "-i", c.KeyFile,
		"-o", "UserKnownHostsFile=" + c.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no"})
	_, err := bad.Run(context.Background(), "true", nil)
	if !IsConnectionError(err) || !strings.Contains(err.Error(), "Host key verification failed") {
		t.Fatalf("Run: %v", err)
	}
}

func TestParseFind(t *testing.T) {
	files, err := parseFind([]byte("12\t1700000000.5000000000\t644\tf\ta/b c\x000\t1.0\t755\td\tdir\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "a/b c" || files[0].Size != 12 || files[0].Mode != 0o644 ||
		!files[0].ModTime.Equal(time.Unix(1700000000, 500000000)) || !files[1].Mode.IsDir() {
		t.Fatalf("parseFind = %+v", files)
	}
	if _, err := parseFind([]byte("garbage\x00")); err == nil {
		t.Fatal("no error for garbage")
	}
}
