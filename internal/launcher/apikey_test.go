package launcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAPIKey(t *testing.T) {
	const secret = "sk-proj-SECRETfromfile42"
	tests := []struct {
		name     string
		envName  string
		env      map[string]string
		files    map[string]string // path relative to HOME → content
		mode     os.FileMode
		keyFile  string // relative to HOME
		want     string
		wantErr  []string
		wantWarn bool
	}{
		{name: "env wins over the default file", envName: OpenAIKeyEnv, env: map[string]string{OpenAIKeyEnv: " sk-from-env \n"},
			files: map[string]string{".config/openai/cfg": "OPENAI_API_KEY=" + secret + "\n"}, want: "sk-from-env"},
		{name: "empty name means OPENAI_API_KEY", envName: "", env: map[string]string{OpenAIKeyEnv: "sk-from-env"}, want: "sk-from-env"},
		{name: "openai cfg with export and quotes", envName: OpenAIKeyEnv,
			files: map[string]string{".config/openai/cfg": "export OPENAI_API_KEY=\"" + secret + "\"\n"}, want: secret},
		{name: "openai cfg with the key alone", envName: OpenAIKeyEnv,
			files: map[string]string{".config/openai/cfg": secret + "\n"}, want: secret},
		{name: "named assignment wins over a bare line, comments skipped", envName: OpenAIKeyEnv,
			files: map[string]string{".config/openai/cfg": "# my keys\nsk-old-bare\nORG_ID=org-1\n\nOPENAI_API_KEY='" + secret + "'\n"}, want: secret},
		{name: "gemini cfg with the key alone", envName: GeminiKeyEnv,
			files: map[string]string{".config/gemini/cfg": "AIzaSyGEMINIsecret_42\n"}, want: "AIzaSyGEMINIsecret_42"},
		{name: "gemini cfg as an assignment", envName: GeminiKeyEnv,
			files: map[string]string{".config/gemini/cfg": "GEMINI_API_KEY=AIzaSyGEMINIsecret_42\n"}, want: "AIzaSyGEMINIsecret_42"},
		{name: "readable by others warns", envName: OpenAIKeyEnv, mode: 0o644,
			files: map[string]string{".config/openai/cfg": "OPENAI_API_KEY=" + secret + "\n"}, want: secret, wantWarn: true},
		{name: "explicit key file wins over the env", envName: OpenAIKeyEnv, env: map[string]string{OpenAIKeyEnv: "sk-from-env"},
			files: map[string]string{"keys/openai.key": secret + "\n"}, keyFile: "keys/openai.key", want: secret},
		{name: "custom variable from a key file", envName: "VLLM_KEY",
			files: map[string]string{"k": "VLLM_KEY=" + secret + "\n"}, keyFile: "k", want: secret},
		{name: "file assigns another name", envName: GeminiKeyEnv,
			files:   map[string]string{".config/gemini/cfg": "OPENAI_API_KEY=" + secret + "\n"},
			wantErr: []string{"assigns OPENAI_API_KEY but not GEMINI_API_KEY", ".config/gemini/cfg"}},
		{name: "no env and no default file", envName: OpenAIKeyEnv,
			wantErr: []string{"$OPENAI_API_KEY is unset", filepath.Join(".config", "openai", "cfg"), "chmod 600", "--api-key-env none"}},
		{name: "custom variable unset has no default file", envName: "MY_KEY", wantErr: []string{"$MY_KEY is unset", "--key-file"}},
		{name: "empty file", envName: OpenAIKeyEnv, files: map[string]string{".config/openai/cfg": "\n# nothing\n"}, wantErr: []string{"holds no key"}},
		{name: "white space in a key", envName: OpenAIKeyEnv, files: map[string]string{".config/openai/cfg": "OPENAI_API_KEY=sk-a " + secret + "\n"},
			wantErr: []string{"line 1", "white space"}},
		{name: "none needs no key", envName: NoAPIKey, env: map[string]string{OpenAIKeyEnv: "sk-from-env"}, want: ""},
		{name: "none with a key file", envName: NoAPIKey, files: map[string]string{"k": secret}, keyFile: "k", wantErr: []string{"--api-key-env none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv(OpenAIKeyEnv, "")
			t.Setenv(GeminiKeyEnv, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			mode := tt.mode
			if mode == 0 {
				mode = 0o600
			}
			for rel, content := range tt.files {
				p := filepath.Join(home, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil { // umask
					t.Fatal(err)
				}
			}
			keyFile := ""
			if tt.keyFile != "" {
				keyFile = filepath.Join(home, tt.keyFile)
			}
			var warnings []string
			got, err := LoadAPIKey(tt.envName, keyFile, func(s string) { warnings = append(warnings, s) })
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; key %q", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error reveals the key: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
			if tt.wantWarn != (len(warnings) > 0) {
				t.Errorf("warnings %q, want a warning: %t", warnings, tt.wantWarn)
			}
			for _, w := range warnings {
				if !strings.Contains(w, "chmod 600") || strings.Contains(w, "SECRET") {
					t.Errorf("warning %q: want advice and no key", w)
				}
			}
		})
	}
}

func TestDefaultKeyFile(t *testing.T) {
	t.Setenv("HOME", "/home/jdoe")
	for name, want := range map[string]string{
		OpenAIKeyEnv: "/home/jdoe/.config/openai/cfg",
		GeminiKeyEnv: "/home/jdoe/.config/gemini/cfg",
		"OTHER_KEY":  "",
	} {
		if got := DefaultKeyFile(name); got != want {
			t.Errorf("DefaultKeyFile(%s) = %q, want %q", name, got, want)
		}
	}
}
