package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/registry"
)

func TestKitStubVar(t *testing.T) {
	for kit, want := range map[string]string{"naturelm-v1.1": "NATURELM_V1_1_STUB", "af-next": "AF_NEXT_STUB", "hf_transformers": "HF_TRANSFORMERS_STUB"} {
		if got := kitStubVar(kit); got != want {
			t.Errorf("%s: %s, want %s", kit, got, want)
		}
	}
}

// Every preset of the registry has a serving path: the processes `serve` starts for it.
func TestLauncherStagesOfEveryPreset(t *testing.T) {
	reg, err := registry.Load()
	if err != nil {
		t.Fatal(err)
	}
	envs := t.TempDir()
	for _, env := range []string{"vllm/bin/vllm", "naturelm-v1.0/bin/python", "naturelm-v1.1/bin/python", "af-next/bin/python"} {
		p := filepath.Join(envs, env)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kits := t.TempDir()
	for _, kit := range []string{"naturelm-v1.0", "naturelm-v1.1", "af-next"} {
		if err := os.MkdirAll(filepath.Join(kits, kit), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kits, kit, "serve.py"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self, _ := os.Executable()
	for _, m := range reg.Models() {
		for _, stub := range []bool{false, true} {
			o := &serveOptions{launcherEnvs: envs, kitsDir: kits, tokenFile: "/w/token", stub: stub}
			stages, err := launcherStages(m, o)
			if err != nil {
				t.Errorf("%s (stub %t): %v", m.ID, stub, err)
				continue
			}
			front := strings.Join(stages[len(stages)-1].Command, " ")
			if !strings.Contains(front, "--token-file {token_file}") || !strings.Contains(front, "{port}") {
				t.Errorf("%s: the front launcher lacks the token or the port: %s", m.ID, front)
			}
			switch {
			case stub && m.Stub == registry.StubKit:
				if !strings.HasSuffix(stages[0].Command[1], filepath.Join(m.Kit, "serve.py")) || !slices.Contains(stages[0].Env, kitStubVar(m.Kit)+"=1") {
					t.Errorf("%s stub: %v env %v", m.ID, stages[0].Command, stages[0].Env)
				}
			case stub:
				if stages[0].Command[0] != self || !strings.Contains(front, "launcher dummy") || !strings.Contains(front, "stub:"+m.ID) {
					t.Errorf("%s stub: %s", m.ID, front)
				}
			case m.Launcher == registry.LauncherOpenAIProxy:
				for _, want := range []string{"launcher openai-proxy", "--upstream " + m.Upstream, "--model " + m.Model, "--api-key-env " + m.Env[0]} {
					if !strings.Contains(front, want) {
						t.Errorf("%s: %q lacks %q", m.ID, front, want)
					}
				}
			case m.Launcher == registry.LauncherVLLM:
				if len(stages) != 2 {
					t.Fatalf("%s: %d stages, want vLLM then the proxy", m.ID, len(stages))
				}
				backend := strings.Join(stages[0].Command, " ")
				if !strings.HasPrefix(backend, filepath.Join(envs, "vllm/bin/vllm")+" serve "+m.Model) || stages[0].Bind != "127.0.0.1" {
					t.Errorf("%s backend: %s on %s", m.ID, backend, stages[0].Bind)
				}
				if !strings.Contains(front, "--upstream http://127.0.0.1:{upstream_port}/v1") || !strings.Contains(front, "--api-key-env none") {
					t.Errorf("%s front: %s", m.ID, front)
				}
				if m.TextOnly != strings.Contains(front, "--text-only") {
					t.Errorf("%s: text_only %t but %s", m.ID, m.TextOnly, front)
				}
				if m.AudioCapSeconds > 0 && !strings.Contains(front, "--audio-cap-seconds") {
					t.Errorf("%s: the audio cap is not passed: %s", m.ID, front)
				}
			case m.Launcher == registry.LauncherPython:
				if stages[0].Command[0] != filepath.Join(envs, m.Kit, "bin/python") || stages[0].Command[1] != filepath.Join(kits, m.Kit, "serve.py") {
					t.Errorf("%s: %v", m.ID, stages[0].Command)
				}
			case m.Launcher == registry.LauncherDummy:
				if !strings.Contains(front, "launcher dummy") {
					t.Errorf("%s: %s", m.ID, front)
				}
			}
		}
	}
	// A kit whose environment is missing is a clear error, naming setup.sh.
	m, _ := reg.Model("af3")
	_, err = launcherStages(m, &serveOptions{launcherEnvs: t.TempDir(), kitsDir: kits})
	if err == nil || !strings.Contains(err.Error(), "setup.sh") {
		t.Errorf("missing environment: %v", err)
	}
}
