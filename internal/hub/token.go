package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFromEnv finds the Hub token the way huggingface_hub does, plus the place the seed's
// users keep it. In order:
//
//  1. the environment variable HF_TOKEN (then the older HUGGING_FACE_HUB_TOKEN);
//  2. the file named by HF_TOKEN_PATH;
//  3. $HF_HOME/token;
//  4. ~/.cache/huggingface/token ($XDG_CACHE_HOME/huggingface/token when that is set);
//  5. ~/.config/huggingface/hf_token.
//
// Missing files are skipped; empty ones too. It returns the token ("" when none was found),
// where it came from (the variable's name or the file's path), and a warning when the file
// is readable by its group or others, or when HF_TOKEN_PATH names a missing file. err is
// set only when a token file exists but cannot be read.
func TokenFromEnv() (token, source, warning string, err error) {
	for _, name := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v, name, "", nil
		}
	}
	var warnings []string
	var candidates []string
	if p := os.Getenv("HF_TOKEN_PATH"); p != "" {
		p = expandHome(p)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			warnings = append(warnings, fmt.Sprintf("HF_TOKEN_PATH names %s, which does not exist; looking for a token elsewhere", p))
		}
		candidates = append(candidates, p)
	}
	if h := os.Getenv("HF_HOME"); h != "" {
		candidates = append(candidates, filepath.Join(expandHome(h), "token"))
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		candidates = append(candidates, filepath.Join(x, "huggingface", "token"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates,
			filepath.Join(home, ".cache", "huggingface", "token"),
			filepath.Join(home, ".config", "huggingface", "hf_token"))
	}
	seen := map[string]bool{}
	for _, p := range candidates {
		if seen[p] {
			continue
		}
		seen[p] = true
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil && st.IsDir() {
			err = errors.New("is a directory")
		}
		var data []byte
		if err == nil {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return "", "", strings.Join(warnings, "; "), fmt.Errorf("read the Hugging Face token file %s: %v: fix its permissions or remove it, or set HF_TOKEN", p, err)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			continue
		}
		if perm := st.Mode().Perm(); perm&0o044 != 0 {
			warnings = append(warnings, fmt.Sprintf("the Hugging Face token file %s is readable by other users (mode %04o): run `chmod 600 %s`", p, perm, p))
		}
		return tok, p, strings.Join(warnings, "; "), nil
	}
	return "", "", strings.Join(warnings, "; "), nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
