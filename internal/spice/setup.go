package spice

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// MavenCentral is the repository Setup downloads from.
const MavenCentral = "https://repo1.maven.org/maven2"

// Artifact is a jar SPICE needs in <cache>/lib.
type Artifact struct {
	Name string // file name in lib/
	Path string // path under the Maven repository root
}

// Artifacts are Stanford CoreNLP 3.6.0 and its models, which SPICE 1.0's
// get_stanford_models script fetches.
var Artifacts = []Artifact{
	{"stanford-corenlp-3.6.0.jar", "edu/stanford/nlp/stanford-corenlp/3.6.0/stanford-corenlp-3.6.0.jar"},
	{"stanford-corenlp-3.6.0-models.jar", "edu/stanford/nlp/stanford-corenlp/3.6.0/stanford-corenlp-3.6.0-models.jar"},
}

// Setup downloads the Artifacts from Maven Central into cacheDir/lib.
func Setup(ctx context.Context, cacheDir string) error {
	return SetupFrom(ctx, cacheDir, MavenCentral, http.DefaultClient)
}

// SetupFrom downloads the Artifacts from a Maven repository root into
// cacheDir/lib. Each jar is checked against the SHA-1 digest the repository
// publishes beside it (<jar>.sha1) and written atomically (temporary file,
// then rename); the digest is kept as <jar>.sha1, and a jar whose file
// already matches it is not fetched again. A mismatch leaves no jar behind.
func SetupFrom(ctx context.Context, cacheDir, baseURL string, client *http.Client) error {
	if client == nil {
		client = http.DefaultClient
	}
	lib := filepath.Join(cacheDir, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		return fmt.Errorf("spice setup: %w", err)
	}
	base := strings.TrimRight(baseURL, "/")
	for _, a := range Artifacts {
		dst := filepath.Join(lib, a.Name)
		if ok, _ := verified(dst); ok {
			continue
		}
		url := base + "/" + a.Path
		sumText, err := fetchSmall(ctx, client, url+".sha1")
		if err != nil {
			return fmt.Errorf("spice setup: %s: %w", a.Name, err)
		}
		want, err := parseSHA1(sumText)
		if err != nil {
			return fmt.Errorf("spice setup: %s.sha1: %w", a.Name, err)
		}
		if err := download(ctx, client, url, dst, want); err != nil {
			return fmt.Errorf("spice setup: %s: %w", a.Name, err)
		}
		if err := os.WriteFile(dst+".sha1", []byte(want+"\n"), 0o644); err != nil {
			return fmt.Errorf("spice setup: %w", err)
		}
	}
	return nil
}

// verified reports whether path exists and matches the digest in path.sha1.
func verified(path string) (bool, error) {
	b, err := os.ReadFile(path + ".sha1")
	if err != nil {
		return false, err
	}
	want, err := parseSHA1(string(b))
	if err != nil {
		return false, err
	}
	got, err := fileSHA1(path)
	return err == nil && got == want, err
}

// parseSHA1 reads a Maven .sha1 file: 40 hex digits, optionally followed by
// a file name.
func parseSHA1(s string) (string, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f[0]) != 40 {
		return "", fmt.Errorf("not a SHA-1 digest: %q", strings.TrimSpace(s))
	}
	d := strings.ToLower(f[0])
	if _, err := hex.DecodeString(d); err != nil {
		return "", fmt.Errorf("not a SHA-1 digest: %q", f[0])
	}
	return d, nil
}

func fileSHA1(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func get(ctx context.Context, client *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

func fetchSmall(ctx context.Context, client *http.Client, url string) (string, error) {
	resp, err := get(ctx, client, url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return string(b), err
}

// download writes url to dst if its SHA-1 is want.
func download(ctx context.Context, client *http.Client, url, dst, want string) error {
	resp, err := get(ctx, client, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha1.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: got sha1 %s, want %s", errChecksum, got, want)
	}
	return os.Rename(tmp.Name(), dst)
}
