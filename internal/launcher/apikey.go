package launcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables that name API keys, and the value of --api-key-env that means "no
// key" (a local vLLM upstream).
const (
	OpenAIKeyEnv = "OPENAI_API_KEY"
	GeminiKeyEnv = "GEMINI_API_KEY"
	NoAPIKey     = "none"
)

// DefaultKeyFile is the key file read when the environment variable envName is unset and no
// file is given: ~/.config/openai/cfg for OPENAI_API_KEY, ~/.config/gemini/cfg for
// GEMINI_API_KEY (the BEANS-Next locations), "" for any other name.
func DefaultKeyFile(envName string) string {
	var dir string
	switch envName {
	case OpenAIKeyEnv:
		dir = "openai"
	case GeminiKeyEnv:
		dir = "gemini"
	default:
		return ""
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".config", dir, "cfg")
}

// LoadAPIKey finds the API key of an upstream. envName is the environment variable that
// holds it ("" means OPENAI_API_KEY; "none" means no key is needed, and "" is returned).
//
// An explicit file wins; otherwise the variable, when set and not blank; otherwise
// DefaultKeyFile(envName). A key file holds either the key alone on a line (AIza…, sk-…) or
// shell-style assignments such as `OPENAI_API_KEY=sk-…`, `export OPENAI_API_KEY="sk-…"`;
// an assignment to envName wins over a bare line; blank lines and # comments are skipped.
// warn (may be nil) is told when the file is readable by group or others.
//
// The key never appears in the returned error.
func LoadAPIKey(envName, file string, warn func(string)) (string, error) {
	if envName == "" {
		envName = OpenAIKeyEnv
	}
	if envName == NoAPIKey {
		if file != "" {
			return "", fmt.Errorf("--api-key-env %s says no key is needed, but a key file (%s) is given: drop one of them", NoAPIKey, file)
		}
		return "", nil
	}
	if file == "" {
		if v := strings.TrimSpace(os.Getenv(envName)); v != "" {
			if strings.ContainsAny(v, " \t\r\n") {
				return "", fmt.Errorf("$%s contains white space: it does not look like one API key", envName)
			}
			return v, nil
		}
		file = DefaultKeyFile(envName)
		if file == "" {
			return "", fmt.Errorf("no API key: $%s is unset and there is no default key file for it; set it, give --key-file, or --api-key-env %s for an upstream without keys (a local vLLM)", envName, NoAPIKey)
		}
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no API key: $%s is unset and %s does not exist; set the variable, or store the key: mkdir -p %s && chmod 700 %s, then write %s=… into %s and chmod 600 it (or --api-key-env %s for an upstream without keys)",
				envName, file, filepath.Dir(file), filepath.Dir(file), envName, file, NoAPIKey)
		}
	}
	return readKeyFile(envName, file, warn)
}

func readKeyFile(envName, file string, warn func(string)) (string, error) {
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("API key file: %w", err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("API key file %s is a directory", file)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("API key file %s is readable by group or others (mode %v): chmod 600 %s", file, perm, file))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("API key file: %w", err)
	}
	var bare, named string
	var names []string
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimSpace(rest)
		}
		name, value, isAssign := strings.Cut(line, "=")
		if isAssign && !validEnvName(strings.TrimSpace(name)) {
			isAssign = false // a key that happens to contain "="
		}
		if !isAssign {
			v := unquote(line)
			if strings.ContainsAny(v, " \t") {
				return "", fmt.Errorf("API key file %s line %d: neither NAME=value nor a key alone (it contains white space)", file, n+1)
			}
			if bare == "" {
				bare = v
			}
			continue
		}
		name = strings.TrimSpace(name)
		names = append(names, name)
		if name != envName || named != "" {
			continue
		}
		v := unquote(strings.TrimSpace(value))
		if v == "" || strings.ContainsAny(v, " \t") {
			return "", fmt.Errorf("API key file %s line %d: %s is empty or contains white space", file, n+1, name)
		}
		named = v
	}
	switch {
	case named != "":
		return named, nil
	case bare != "":
		return bare, nil
	case len(names) > 0:
		return "", fmt.Errorf("API key file %s assigns %s but not %s (and holds no key alone on a line)", file, strings.Join(names, ", "), envName)
	default:
		return "", fmt.Errorf("API key file %s holds no key", file)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
