package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// fakeVLLM is a stand-in for `vllm serve MODEL --host H --port P …`: an OpenAI-compatible
// server (GET /health, GET /v1/models, POST /v1/chat/completions) that checks the audio part.
const fakeVLLM = `#!/usr/bin/env python3
import base64, json, sys, http.server
args = sys.argv[1:]
assert args[0] == "serve", args
model, port = args[1], int(args[args.index("--port") + 1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {})
        elif self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": model, "object": "model", "root": model + "@fake-rev"}]})
        else:
            self.reply(404, {"error": {"message": "no " + self.path}})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = body["messages"][-1]["content"]
        audio = [p for p in parts if isinstance(p, dict) and p.get("type") == "input_audio"]
        wav = base64.b64decode(audio[0]["input_audio"]["data"]) if audio else b""
        ok = body["model"] == model and len(audio) == 1 and wav[:4] == b"RIFF"
        answer = "fake-vllm heard %d bytes" % len(wav) if ok else "bad request"
        self.reply(200, {"id": "c", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
`

// The serving job's worker outside SLURM: `serve` of a vllm preset starts vLLM (here a
// stand-in) on a loopback port, the openai-proxy in front of it with the sweep's token,
// publishes the URL; an inference worker waits for it, runs, leaves its done marker; the
// serving job then withdraws its URL, says why it ended, and stops both processes.
func TestServeVLLMPresetHandoff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 runs the vLLM stand-in: %v", err)
	}
	bin := clusterBinary(t)
	envs := t.TempDir()
	vllm := filepath.Join(envs, "vllm", "bin", "vllm")
	if err := os.MkdirAll(filepath.Dir(vllm), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vllm, []byte(fakeVLLM), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("sweep-secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	handoff := filepath.Join(dir, "handoff")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--model", "qwen3_omni", "--handoff", handoff, "--job-id", "4242",
		"--token-file", token, "--expect", "1", "--launcher-envs", envs, "--bind", "127.0.0.1", "--host", "127.0.0.1", "--poll", "200ms")
	var serveLog strings.Builder
	serve.Stderr = &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve.Wait() }()

	out := filepath.Join(dir, "results")
	r := runCLI(t, "run", "--task", "demo_species", "--limit", "3", "--output-dir", out, "--data-dir", demoDataDir,
		"--handoff", handoff, "--serve-job", "4242", "--token-file", token, "--url-timeout", "90s")
	if r.code != 0 {
		t.Fatalf("inference worker: %d\n%s\n%s\nserve log:\n%s", r.code, r.out, r.err, serveLog.String())
	}
	s := readSummary(t, filepath.Join(out, "demo_species", eval.SummaryFile))
	if s.N != 3 || s.Failed != 0 {
		t.Errorf("n=%d failed=%d", s.N, s.Failed)
	}
	preds, _ := os.ReadFile(filepath.Join(out, "demo_species", eval.PredictionsFile))
	if !strings.Contains(string(preds), "fake-vllm heard") {
		t.Errorf("the answers did not come through vLLM's stand-in:\n%s", preds)
	}
	task, _ := os.ReadFile(filepath.Join(out, "demo_species", eval.TaskFile))
	if !strings.Contains(string(task), "Qwen/Qwen3-Omni-30B-A3B-Instruct@fake-rev") {
		t.Errorf("the model's identity (revision from vLLM's /v1/models) is not recorded:\n%s", task)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, serveLog.String())
		}
	case <-ctx.Done():
		t.Fatalf("serve did not end after its only worker finished\n%s", serveLog.String())
	}
	h := slurm.Handoff{Dir: handoff, ServeJob: "4242"}
	if _, err := os.Stat(h.URLFile()); !os.IsNotExist(err) {
		t.Errorf("the URL file is still there: %v", err)
	}
	exit, _ := os.ReadFile(h.ExitFile())
	if !strings.Contains(string(exit), "all 1 inference workers finished") {
		t.Errorf("exit file: %q", exit)
	}
	if strings.Contains(serveLog.String(), "sweep-secret-token") || strings.Contains(r.err, "sweep-secret-token") {
		t.Error("the token reached a log")
	}
}
