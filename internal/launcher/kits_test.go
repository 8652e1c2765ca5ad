package launcher

// Tests of the Python serving kits under launchers/: each kit is started in stub mode with the
// python3 on the PATH and must pass the conformance suite, require its bearer token, confine
// file_path payloads to --allow-dir, stop on SIGTERM, and never import torch in stub mode.
// A machine without python3 fails these tests unless BEANS_SLURM_NO_PYTHON=1 says so.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/launchers"
)

// testKits are the kits every build ships.
var testKits = []string{"naturelm-v1.0", "naturelm-v1.1", "af-next", "hf_transformers"}

// kitStartTimeout bounds the wait for a kit's first stdout line and for its /health.
const kitStartTimeout = 30 * time.Second

// kitStopTimeout bounds the wait for a kit to exit after SIGTERM.
const kitStopTimeout = 10 * time.Second

func kitsRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "launchers"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_common", "predictions_server.py")); err != nil {
		t.Fatalf("launcher kits not found: %v", err)
	}
	return dir
}

// kitNeedPython returns python3 from the PATH. Its absence fails the test: the kits are part of
// the product. BEANS_SLURM_NO_PYTHON=1 turns that into a skip, explicitly.
func kitNeedPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("BEANS_SLURM_NO_PYTHON") == "1" {
			t.Skip("python3 not on the PATH and BEANS_SLURM_NO_PYTHON=1: the Python kits are not tested")
		}
		t.Fatalf("python3 is needed to test the launcher kits (set BEANS_SLURM_NO_PYTHON=1 to skip them explicitly): %v", err)
	}
	return p
}

// kitStubVarName is the variable that puts a kit in stub mode: NATURELM_V1_1_STUB for naturelm-v1.1.
func kitStubVarName(kit string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '.':
			return '_'
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, kit) + "_STUB"
}

// kitEnv is this process's environment without anything that would change a kit's behaviour,
// plus stub mode for kit and no byte-code files in the source tree.
func kitEnv(kit string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "BEANS_SLURM_TOKEN_FILE" || strings.HasSuffix(k, "_STUB") || k == "PYTHONPATH" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, kitStubVarName(kit)+"=1", "PYTHONDONTWRITEBYTECODE=1")
	return append(env, extra...)
}

// kitLogBuffer is a bytes.Buffer safe for concurrent use.
type kitLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *kitLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *kitLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// kitFirstLine captures the first line written to it and sends it once on ch.
type kitFirstLine struct {
	mu   sync.Mutex
	line []byte
	sent bool
	ch   chan string
}

func (f *kitFirstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return len(p), nil
	}
	f.line = append(f.line, p...)
	if i := bytes.IndexByte(f.line, '\n'); i >= 0 {
		f.sent = true
		f.ch <- strings.TrimSpace(string(f.line[:i]))
	}
	return len(p), nil
}

type kitProc struct {
	cmd    *exec.Cmd
	url    string // predict URL from the first stdout line
	base   string // http://host:port
	stderr *kitLogBuffer
	done   chan struct{}
}

func (p *kitProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kitStartProcess starts a kit and returns once it printed its URL, or fails the test. It does
// not wait for /health.
func kitStartProcess(t *testing.T, python, kit string, env []string, args ...string) (*kitProc, error) {
	t.Helper()
	argv := append([]string{filepath.Join(kitsRoot(t), kit, "serve.py"), "--port", "0", "--host", "127.0.0.1"}, args...)
	cmd := exec.Command(python, argv...)
	cmd.Dir = t.TempDir() // any working directory must do
	cmd.Env = env
	fl := &kitFirstLine{ch: make(chan string, 1)}
	p := &kitProc{cmd: cmd, stderr: &kitLogBuffer{}, done: make(chan struct{})}
	cmd.Stdout = fl
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", kit, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-fl.ch:
	case <-p.done:
		return p, fmt.Errorf("%s exited before printing its URL (%s): %s", kit, cmd.ProcessState, p.stderr)
	case <-time.After(kitStartTimeout):
		return p, fmt.Errorf("%s printed no URL within %s: %s", kit, kitStartTimeout, p.stderr)
	}
	ep, err := contract.ParsePredictURL(p.url)
	if err != nil || !strings.HasPrefix(p.url, "http://127.0.0.1:") || !strings.HasSuffix(p.url, "/predict") {
		return p, fmt.Errorf("%s's first stdout line %q is not http://127.0.0.1:PORT/predict (%v)", kit, p.url, err)
	}
	p.base = strings.TrimSuffix(ep.Predict, "/predict")
	return p, nil
}

// kitStart starts a kit in stub mode and waits until /health answers 200.
func kitStart(t *testing.T, python, kit string, extraEnv []string, args ...string) *kitProc {
	t.Helper()
	p, err := kitStartProcess(t, python, kit, kitEnv(kit, extraEnv...), args...)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(kitStartTimeout)
	for {
		status, _ := kitDo(t, http.MethodGet, p.base+"/health", "", nil)
		if status == http.StatusOK {
			return p
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("%s: /health did not answer 200 within %s (last HTTP %d): %s", kit, kitStartTimeout, status, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var kitClient = &http.Client{Timeout: 60 * time.Second}

// kitDo sends one request; status 0 means no answer.
func kitDo(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := kitClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func kitRequest(t *testing.T, items ...contract.RequestItem) []byte {
	t.Helper()
	b, err := json.Marshal(contract.Request{SchemaVersion: contract.PredictionsV1, Requests: items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kitItem(id, question string, in ...contract.AudioInput) contract.RequestItem {
	content := question
	for range in {
		content = contract.AudioPlaceholder + " " + content
	}
	return contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: content}},
		AudioInputs:      append([]contract.AudioInput{}, in...),
		GenerationConfig: contract.GenerationConfig{"max_tokens": 16, "temperature": 0.0},
	}
}

// kitPredict posts items and returns each one's outcome by sample_id.
func kitPredict(t *testing.T, p *kitProc, token string, items ...contract.RequestItem) map[string]contract.Outcome {
	t.Helper()
	status, body := kitDo(t, http.MethodPost, p.url, token, kitRequest(t, items...))
	if status != http.StatusOK {
		t.Fatalf("POST /predict: HTTP %d, want 200: %s", status, body)
	}
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].SampleID
	}
	out := map[string]contract.Outcome{}
	for _, o := range contract.MatchResponse(body, ids) {
		out[o.SampleID] = o
	}
	return out
}

func kitInfo(t *testing.T, p *kitProc, token string) map[string]any {
	t.Helper()
	status, body := kitDo(t, http.MethodGet, p.base+"/info", token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /info: HTTP %d: %s", status, body)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("GET /info: %v: %s", err, body)
	}
	return info
}

// kitStop sends SIGTERM and requires a clean exit within kitStopTimeout.
func kitStop(t *testing.T, p *kitProc) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(kitStopTimeout):
		t.Fatalf("still running %s after SIGTERM: %s", kitStopTimeout, p.stderr)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0: %s", code, p.stderr)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

func TestKitFiles(t *testing.T) {
	root := kitsRoot(t)
	python := kitNeedPython(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to check the kits' setup.sh: %v", err)
	}
	for _, kit := range testKits {
		for _, f := range []string{"serve.py", "requirements.txt", "setup.sh", "README.md"} {
			if _, err := os.Stat(filepath.Join(root, kit, f)); err != nil {
				t.Errorf("kit %s: %v", kit, err)
			}
		}
		setup := filepath.Join(root, kit, "setup.sh")
		if out, err := exec.Command(bash, "-n", setup).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", setup, err, out)
		}
		req, err := os.ReadFile(filepath.Join(root, kit, "requirements.txt"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(req), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "--") {
				continue
			}
			pinned := strings.Contains(line, "==") || (strings.Contains(line, "@ git+") && strings.Count(line, "@") >= 2)
			if !pinned {
				t.Errorf("kit %s: requirement %q is not pinned (== version, or a git URL at a commit)", kit, line)
			}
		}
	}
	common := filepath.Join(root, "_common", "setup_env.sh")
	if out, err := exec.Command(bash, "-n", common).CombinedOutput(); err != nil {
		t.Errorf("bash -n %s: %v\n%s", common, err, out)
	}
	// Every Python file compiles; byte code goes to a temporary directory, not the tree.
	var pyFiles []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".py") {
			pyFiles = append(pyFiles, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pyFiles) < len(testKits)+1 {
		t.Fatalf("found only %d Python files under %s", len(pyFiles), root)
	}
	cmd := exec.Command(python, append([]string{"-m", "py_compile"}, pyFiles...)...)
	cmd.Env = append(kitEnv("none"), "PYTHONPYCACHEPREFIX="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("python3 -m py_compile: %v\n%s", err, out)
	}
}

func TestKitEmbedded(t *testing.T) {
	files := []string{"README.md", "_common/predictions_server.py", "_common/naturelm.py", "_common/transformers_model.py", "_common/setup_env.sh"}
	for _, kit := range testKits {
		for _, f := range []string{"serve.py", "requirements.txt", "setup.sh", "README.md"} {
			files = append(files, kit+"/"+f)
		}
	}
	for _, f := range files {
		if _, err := fs.Stat(launchers.FS, f); err != nil {
			t.Errorf("the binary does not carry %s: %v", f, err)
		}
	}
	_ = fs.WalkDir(launchers.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(p, "__pycache__") || strings.HasSuffix(p, ".pyc")) {
			t.Errorf("the binary carries byte code %s", p)
		}
		return nil
	})
}

// TestKitStubImportsNoTorch loads each kit's serve.py as a module in stub mode, builds, loads
// and queries its model, and checks that no heavy package was imported.
func TestKitStubImportsNoTorch(t *testing.T) {
	python := kitNeedPython(t)
	root := kitsRoot(t)
	const script = `
import base64, importlib.util, json, sys
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("kit_serve", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ps = sys.modules["predictions_server"]
args = mod.KIT.parse([])
assert args.stub, "stub mode not enabled by the environment"
model = mod.KIT.create_model(args)
model.load()
wav = ps.encode_wav([0.1] * 1600, 16000)
raw = {"sample_id": "x", "messages": [{"role": "user", "content": ps.AUDIO_PLACEHOLDER + " hi"}],
       "audio_inputs": [{"payload_type": "base64_wav", "data": base64.b64encode(wav).decode(), "sample_rate": 16000}],
       "generation_config": {}}
item = ps.decode_item(raw, paths=ps.PathPolicy([]), payloads=["base64_wav"], max_file_bytes=1 << 20)
n = len(item.audio[0].samples())
ans = model.predict([item])[0]
heavy = sorted(m for m in ("torch", "torchaudio", "transformers", "numpy", "NatureLM", "huggingface_hub",
                           "gcsfs", "google.cloud", "librosa", "soundfile") if m in sys.modules)
print(json.dumps({"heavy": heavy, "answer": ans.text, "samples": n, "info": model.info()}))
`
	for _, kit := range testKits {
		t.Run(kit, func(t *testing.T) {
			cmd := exec.Command(python, "-c", script, filepath.Join(root, kit, "serve.py"))
			cmd.Dir = t.TempDir()
			cmd.Env = kitEnv(kit)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			var got struct {
				Heavy   []string       `json:"heavy"`
				Answer  string         `json:"answer"`
				Samples int            `json:"samples"`
				Info    map[string]any `json:"info"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(got.Heavy) > 0 {
				t.Errorf("stub mode imported %v", got.Heavy)
			}
			if !strings.HasPrefix(got.Answer, "stub:"+kit+":") || len(got.Answer) != len("stub:"+kit+":")+16 {
				t.Errorf("stub answer %q, want stub:%s:<16 hex>", got.Answer, kit)
			}
			if got.Samples != 1600 {
				t.Errorf("decoded %d samples, want 1600", got.Samples)
			}
			if m, _ := got.Info["model"].(string); !strings.HasPrefix(m, "stub:") {
				t.Errorf("stub info model %q, want stub:…", m)
			}
		})
	}
}

// TestKitServe runs every kit in stub mode through the conformance suite and the checks of
// the token, file_path confinement and SIGTERM.
func TestKitServe(t *testing.T) {
	python := kitNeedPython(t)
	for _, kit := range testKits {
		t.Run(kit, func(t *testing.T) {
			t.Run("conformance", func(t *testing.T) { testKitConformance(t, python, kit) })
			t.Run("token", func(t *testing.T) { testKitToken(t, python, kit) })
			t.Run("file_path", func(t *testing.T) { testKitFilePath(t, python, kit) })
		})
	}
}

func testKitConformance(t *testing.T, python, kit string) {
	p := kitStart(t, python, kit, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep := CheckLauncher(ctx, kitClient, p.url, 60*time.Second)
	if !rep.OK() {
		var b strings.Builder
		WriteReport(&b, rep)
		t.Fatalf("%s does not conform:\n%s\nlauncher log:\n%s", kit, b.String(), p.stderr)
	}
	for _, name := range []string{CheckHealth, CheckInfo, CheckInfoSchema, CheckAudioPayload, CheckBatch, CheckOrder,
		CheckPartial, CheckBatchLimit, CheckDuplicateIDs, CheckSchemaVersion, CheckUnknownGenKeys, CheckLongClip,
		CheckNonASCII, CheckTimeout} {
		if c, ok := rep.Check(name); ok && c.Outcome() != Pass {
			t.Errorf("check %q: %s: %s", name, c.Outcome(), c.Detail)
		}
	}
	info := kitInfo(t, p, "")
	if m, _ := info["model"].(string); !strings.HasPrefix(m, "stub:") {
		t.Errorf("/info model %q in stub mode, want stub:…", m)
	}
	if info["kit"] != kit || info["stub"] != true {
		t.Errorf("/info kit %v stub %v, want %s true", info["kit"], info["stub"], kit)
	}
	if types, _ := info["audio_payload_types"].([]any); len(types) != 1 || types[0] != contract.PayloadBase64WAV {
		t.Errorf("/info audio_payload_types %v without --allow-dir, want [base64_wav]", info["audio_payload_types"])
	}
	// Without --allow-dir a file_path is refused per item; its neighbour is served.
	wav := audio.AppendWAVFloat32(nil, toneClip(16000, 0.1, 440), 16000)
	got := kitPredict(t, p, "",
		kitItem("fp", "File?", contract.AudioInput{PayloadType: contract.PayloadFilePath, Data: "/etc/hostname", SampleRate: 16000}),
		kitItem("ok", "Base64?", contract.AudioInput{PayloadType: contract.PayloadBase64WAV, Data: base64.StdEncoding.EncodeToString(wav), SampleRate: 16000}))
	if o := got["fp"]; !strings.Contains(o.Err, "--allow-dir") {
		t.Errorf("file_path without --allow-dir: error %q, want one naming --allow-dir", o.Err)
	}
	if o := got["ok"]; o.Err != "" {
		t.Errorf("float32 WAV beside a refused item: %s", o.Err)
	}
	// A body over --max-body-bytes is refused as a whole.
	small := kitStart(t, python, kit, nil, "--max-body-bytes", "1000")
	big := kitRequest(t, kitItem("big", "Big?", contract.AudioInput{PayloadType: contract.PayloadBase64WAV, Data: base64.StdEncoding.EncodeToString(wav), SampleRate: 16000}))
	if status, body := kitDo(t, http.MethodPost, small.url, "", big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("body of %d bytes over a 1000-byte limit: HTTP %d, want 413: %s", len(big), status, body)
	}
	kitStop(t, small)
	kitStop(t, p)
}

func testKitToken(t *testing.T, python, kit string) {
	dir := t.TempDir()
	const token = "kit-test-token-3f9a1c"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := kitStart(t, python, kit, nil, "--token-file", tokenFile)
	for _, c := range []struct {
		what, method, url, token string
		body                     []byte
		want                     int
	}{
		{"GET /health without a token", http.MethodGet, p.base + "/health", "", nil, http.StatusOK},
		{"GET /info without a token", http.MethodGet, p.base + "/info", "", nil, http.StatusUnauthorized},
		{"GET /info with a wrong token", http.MethodGet, p.base + "/info", "wrong", nil, http.StatusUnauthorized},
		{"GET /info with the token", http.MethodGet, p.base + "/info", token, nil, http.StatusOK},
		{"POST /predict without a token", http.MethodPost, p.url, "", kitRequest(t, kitItem("t0", "Token?")), http.StatusUnauthorized},
		{"POST /predict with a wrong token", http.MethodPost, p.url, token + "x", kitRequest(t, kitItem("t1", "Token?")), http.StatusUnauthorized},
		{"POST /predict with the token", http.MethodPost, p.url, token, kitRequest(t, kitItem("t2", "Token?")), http.StatusOK},
	} {
		if status, body := kitDo(t, c.method, c.url, c.token, c.body); status != c.want {
			t.Errorf("%s: HTTP %d, want %d: %s", c.what, status, c.want, body)
		}
	}
	// The refusal without a token must not poison the kept-alive connection.
	if o := kitPredict(t, p, token, kitItem("t3", "Again?"))["t3"]; o.Err != "" {
		t.Errorf("predict with the token after refusals: %s", o.Err)
	}
	// BEANS_SLURM_TOKEN_FILE does what --token-file does.
	q := kitStart(t, python, kit, []string{"BEANS_SLURM_TOKEN_FILE=" + tokenFile})
	if status, _ := kitDo(t, http.MethodGet, q.base+"/info", "", nil); status != http.StatusUnauthorized {
		t.Errorf("with BEANS_SLURM_TOKEN_FILE, GET /info without a token: HTTP %d, want 401", status)
	}
	kitStop(t, q)
	kitStop(t, p)

	// A token file others can read is refused at start.
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := kitStartProcess(t, python, kit, kitEnv(kit), "--token-file", loose)
	if err == nil {
		t.Fatalf("started with a 0644 token file (URL %s)", r.url)
	}
	select {
	case <-r.done:
	case <-time.After(kitStopTimeout):
		t.Fatal("did not exit")
	}
	if r.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(r.stderr.String(), "chmod 600") {
		t.Errorf("0644 token file: exit %d, stderr %q; want a failure asking for chmod 600", r.cmd.ProcessState.ExitCode(), r.stderr)
	}
}

func testKitFilePath(t *testing.T, python, kit string) {
	allowed := t.TempDir()
	outside := t.TempDir() // a sibling of allowed: t.TempDir makes both below one parent
	if filepath.Dir(allowed) != filepath.Dir(outside) {
		t.Fatalf("temporary directories %s and %s are not siblings", allowed, outside)
	}
	wav := audio.AppendWAVFloat32(nil, toneClip(22050, 0.2, 660), 22050)
	inside := filepath.Join(allowed, "in.wav")
	out := filepath.Join(outside, "out.wav")
	for _, f := range []string{inside, out} {
		if err := os.WriteFile(f, wav, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(allowed, "link.wav")
	if err := os.Symlink(out, link); err != nil {
		t.Fatal(err)
	}
	linkDir := filepath.Join(allowed, "linkdir")
	if err := os.Symlink(outside, linkDir); err != nil {
		t.Fatal(err)
	}
	notWAV := filepath.Join(allowed, "notwav.wav")
	if err := os.WriteFile(notWAV, []byte("this is not a RIFF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	dotdot := allowed + "/../" + filepath.Base(outside) + "/out.wav"

	p := kitStart(t, python, kit, nil, "--allow-dir", allowed, "--max-batch-size", "16")
	info := kitInfo(t, p, "")
	if types, _ := info["audio_payload_types"].([]any); len(types) != 2 || types[1] != contract.PayloadFilePath {
		t.Errorf("/info audio_payload_types %v with --allow-dir, want [base64_wav file_path]", info["audio_payload_types"])
	}
	fp := func(path string) contract.AudioInput {
		return contract.AudioInput{PayloadType: contract.PayloadFilePath, Data: path, SampleRate: 22050}
	}
	const question = "What is the common name of the focal species?"
	b64 := contract.AudioInput{PayloadType: contract.PayloadBase64WAV, Data: base64.StdEncoding.EncodeToString(wav), SampleRate: 22050}
	got := kitPredict(t, p, "",
		kitItem("inside", question, fp(inside)),
		kitItem("base64", question, b64),
		kitItem("outside", question, fp(out)),
		kitItem("symlink-out", question, fp(link)),
		kitItem("symlink-dir", question, fp(filepath.Join(linkDir, "out.wav"))),
		kitItem("dotdot", question, fp(dotdot)),
		kitItem("relative", question, fp("in.wav")),
		kitItem("missing", question, fp(filepath.Join(allowed, "missing.wav"))),
		kitItem("dir", question, fp(allowed)),
		kitItem("not-wav-file", question, fp(notWAV)),
		kitItem("not-wav-b64", question, contract.AudioInput{PayloadType: contract.PayloadBase64WAV, Data: base64.StdEncoding.EncodeToString([]byte("hello, world")), SampleRate: 16000}),
		kitItem("not-base64", question, contract.AudioInput{PayloadType: contract.PayloadBase64WAV, Data: "%%%not base64%%%", SampleRate: 16000}),
		kitItem("file-url", question, contract.AudioInput{PayloadType: contract.PayloadFileURL, Data: "https://example.org/a.wav", SampleRate: 16000}),
	)
	if o := got["inside"]; o.Err != "" {
		t.Errorf("file_path inside --allow-dir failed: %s", o.Err)
	}
	// The stub hashes the WAV bytes and the text: the same file by path or by value gives the
	// same answer, and it is the documented one.
	sum := sha256.Sum256(append(append([]byte{}, wav...), []byte(contract.AudioPlaceholder+" "+question)...))
	want := "stub:" + kit + ":" + hex.EncodeToString(sum[:])[:16]
	if o := got["base64"]; o.Err != "" || o.Prediction != want {
		t.Errorf("base64 item: prediction %q error %q, want prediction %s", o.Prediction, o.Err, want)
	}
	if got["inside"].Prediction != want {
		t.Errorf("file_path item answered %q, the same bytes as base64_wav %q", got["inside"].Prediction, want)
	}
	for id, wantErr := range map[string]string{
		"outside": "outside the allowed", "symlink-out": "outside the allowed", "symlink-dir": "outside the allowed",
		"dotdot": "..", "relative": "not absolute", "missing": "audio_inputs[0]", "dir": "not a regular file",
		"not-wav-file": "RIFF", "not-wav-b64": "RIFF", "not-base64": "base64", "file-url": "not accepted",
	} {
		o := got[id]
		if o.Err == "" || o.Prediction != "" {
			t.Errorf("%s: answered %q, want a per-item error", id, o.Prediction)
			continue
		}
		if !strings.Contains(o.Err, wantErr) {
			t.Errorf("%s: error %q does not mention %q", id, o.Err, wantErr)
		}
		if strings.Contains(o.Err, "answered this sample_id more than once") || strings.Contains(o.Err, "no response item") {
			t.Errorf("%s: %s", id, o.Err)
		}
	}
	kitStop(t, p)
}
