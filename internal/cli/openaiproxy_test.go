package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/launcher/openaitest"
)

// lockedBuffer is a bytes.Buffer safe for a command writing while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOpenAIProxy runs `launcher openai-proxy args…` in-process until the test ends and
// returns its predict URL (the line it prints once listening) and its log.
func startOpenAIProxy(t *testing.T, args ...string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	logs := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, append([]string{"launcher", "openai-proxy", "--port", "0"}, args...), IO{In: strings.NewReader(""), Out: outW, Err: logs})
		outW.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("openai-proxy exited %d after its context ended\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("openai-proxy did not stop within 30 s of its context ending")
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, outR)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("openai-proxy printed no predict URL; its log:\n%s", logs.String())
		}
		return strings.TrimSpace(line), logs
	case <-time.After(30 * time.Second):
		t.Fatalf("openai-proxy printed no predict URL within 30 s; its log:\n%s", logs.String())
	}
	return "", nil
}

// `launcher openai-proxy` in front of the fake OpenAI API serves a small demo run: the key
// comes from a key file, the launcher requires a bearer token, clips arrive capped, and the
// key appears nowhere: not in logs, not in the results.
func TestOpenAIProxyCommandServesARun(t *testing.T) {
	const key = "sk-cli-SECRET-4242424242abcdKEY"
	fake := openaitest.New(openaitest.Options{Key: key})
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "openai.cfg")
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(keyFile, []byte("export OPENAI_API_KEY=\""+key+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("sweep-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url, logs := startOpenAIProxy(t, "--upstream", fake.URL, "--model", openaitest.DefaultModel, "--key-file", keyFile,
		"--token-file", tokenFile, "--audio-cap-seconds", "0.5", "--concurrency", "2", "--max-batch-size", "4")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/predict") {
		t.Fatalf("printed %q, want the predict URL", url)
	}

	out := filepath.Join(dir, "run")
	r := runCLI(t, "run", "--predict-url", url, "--token-file", tokenFile, "--suite", "demo", "--limit", "3",
		"--output-dir", out, "--data-dir", demoDataDir)
	if r.code != 0 {
		t.Fatalf("run through openai-proxy exited %d\nstdout:\n%s\nstderr:\n%s\nproxy log:\n%s", r.code, r.out, r.err, logs.String())
	}
	suite := readSuite(t, out)
	if len(suite.Tasks) != 3 {
		t.Fatalf("suite has %d tasks, want 3", len(suite.Tasks))
	}
	for _, task := range suite.Tasks {
		if task.N != 3 {
			t.Errorf("%s: %d samples, want 3", task.TaskID, task.N)
		}
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("the fake API refused requests as malformed: %q", v)
	}
	recv := fake.Received()
	if len(recv) != 9 {
		t.Errorf("the fake API got %d chat requests, want 9 (3 tasks × 3 samples)", len(recv))
	}
	for _, req := range recv {
		for _, a := range req.Audio() {
			if a.Seconds() > 0.5 {
				t.Errorf("a clip of %.3f s arrived, over the 0.5 s cap", a.Seconds())
			}
		}
	}
	// The predictions are the fake API's answers.
	b, err := os.ReadFile(filepath.Join(out, "demo_species", "predictions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"openaitest:`); n < 3 {
		t.Errorf("predictions.jsonl carries %d answers of the fake API, want 3:\n%s", n, b)
	}

	// The key is nowhere.
	texts := map[string]string{"proxy log": logs.String(), "run stdout": r.out, "run stderr": r.err}
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			texts[p] = string(b)
		}
		return nil
	})
	for where, text := range texts {
		if strings.Contains(text, key) || strings.Contains(text, "SECRET-4242") {
			t.Errorf("the API key appears in %s", where)
		}
	}
}

func TestOpenAIProxyCommandConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("OPENAI_API_KEY", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no upstream", []string{"--model", "m"}, "needs --upstream"},
		{"no model", []string{"--upstream", "https://api.openai.com/v1"}, "--model"},
		{"no key", []string{"--upstream", "https://api.openai.com/v1", "--model", "m"}, "$OPENAI_API_KEY is unset"},
		{"bad upstream", []string{"--upstream", "ftp://example.org", "--model", "m", "--api-key-env", "none"}, "http:// or https://"},
		{"bad token file", []string{"--upstream", "http://127.0.0.1:1/v1", "--model", "m", "--api-key-env", "none", "--token-file", filepath.Join(dir, "nope")}, "token file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"launcher", "openai-proxy", "--port", "0"}, tt.args...)...)
			if r.code != ExitConfig || !strings.Contains(r.err, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", r.code, r.err, ExitConfig, tt.want)
			}
		})
	}
}
