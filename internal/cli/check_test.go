package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

// checkDoc is the check_launcher_v1 document, decoded strictly.
type checkDoc struct {
	SchemaVersion string          `json:"schema_version"`
	URL           string          `json:"url"`
	OK            bool            `json:"ok"`
	Reachable     bool            `json:"reachable"`
	Passed        int             `json:"passed"`
	Failed        int             `json:"failed"`
	NotRun        int             `json:"not_run"`
	Info          json.RawMessage `json:"info"`
	Checks        []struct {
		Name   string `json:"name"`
		Result string `json:"result"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

func (d checkDoc) result(name string) string {
	for _, c := range d.Checks {
		if c.Name == name {
			return c.Result
		}
	}
	return "absent"
}

func decodeCheckDoc(t *testing.T, out string) checkDoc {
	t.Helper()
	var d checkDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("--json output is not a check_launcher_v1 document: %v\n%s", err, out)
	}
	if d.SchemaVersion != launcher.ReportSchemaVersion || len(d.Checks) != len(launcher.CheckNames) {
		t.Errorf("schema_version %q, %d checks", d.SchemaVersion, len(d.Checks))
	}
	return d
}

func TestCheckLauncherCommandJSONAndExitCodes(t *testing.T) {
	m, err := launcher.NewDummy(launcher.DummyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	good := serve(t, dummyHandler(t, launcher.DummyOptions{}))
	noV1 := serve(t, launcher.NewHandler(schemaless{m}, launcher.ServerOptions{}))
	withToken := serve(t, launcher.NewHandler(m, launcher.ServerOptions{Token: "s3cret"}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/predict"
	closed.Close()

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openTokenFile := filepath.Join(dir, "open-token")
	if err := os.WriteFile(openTokenFile, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openTokenFile, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("conformant", func(t *testing.T) {
		r := runCLI(t, "check-launcher", good, "--json")
		if r.code != ExitOK {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
		}
		d := decodeCheckDoc(t, r.out)
		if !d.OK || !d.Reachable || d.Failed != 0 || d.URL != good || d.result(launcher.CheckToken) != "not_run" || d.result(launcher.CheckLongClip) != "pass" {
			t.Errorf("report %+v", d)
		}
		var info contract.Info
		if err := json.Unmarshal(d.Info, &info); err != nil || info.Name != launcher.DummyName {
			t.Errorf("info %s: %v", d.Info, err)
		}
	})
	t.Run("table", func(t *testing.T) {
		r := runCLI(t, "check-launcher", good)
		if r.code != ExitOK || !strings.Contains(r.out, "CHECK") || !strings.Contains(r.out, "NOT RUN") || strings.Contains(r.out, "FAIL") {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
		}
	})
	t.Run("failing check", func(t *testing.T) {
		r := runCLI(t, "check-launcher", noV1, "--json")
		if r.code != ExitFail {
			t.Fatalf("exit %d, want %d\n%s%s", r.code, ExitFail, r.out, r.err)
		}
		d := decodeCheckDoc(t, r.out)
		if d.OK || !d.Reachable || d.Failed != 1 || d.result(launcher.CheckInfoSchema) != "fail" {
			t.Errorf("report %+v", d)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		r := runCLI(t, "check-launcher", closedURL, "--json")
		if r.code != ExitConfig {
			t.Fatalf("exit %d, want %d\n%s%s", r.code, ExitConfig, r.out, r.err)
		}
		d := decodeCheckDoc(t, r.out)
		if d.OK || d.Reachable || d.result(launcher.CheckHealth) != "fail" || d.result(launcher.CheckBatch) != "not_run" {
			t.Errorf("report %+v", d)
		}
		if !strings.Contains(r.err, "unreachable") {
			t.Errorf("stderr %q", r.err)
		}
		if r := runCLI(t, "check-launcher", closedURL); r.code != ExitConfig || !strings.Contains(r.out, "NOT RUN") {
			t.Errorf("table: exit %d\n%s", r.code, r.out)
		}
	})
	t.Run("unusable URL", func(t *testing.T) {
		if r := runCLI(t, "check-launcher", "http://127.0.0.1:1/v1/chat"); r.code != ExitConfig {
			t.Errorf("exit %d, want %d\n%s%s", r.code, ExitConfig, r.out, r.err)
		}
	})
	t.Run("token", func(t *testing.T) {
		r := runCLI(t, "check-launcher", withToken, "--token-file", tokenFile, "--json")
		if r.code != ExitOK {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
		}
		if d := decodeCheckDoc(t, r.out); d.result(launcher.CheckToken) != "pass" || d.NotRun != 0 {
			t.Errorf("report %+v", d)
		}
		// The token check fails against a launcher that ignores the token.
		r = runCLI(t, "check-launcher", good, "--token-file", tokenFile, "--json")
		if d := decodeCheckDoc(t, r.out); r.code != ExitFail || d.result(launcher.CheckToken) != "fail" {
			t.Errorf("exit %d, report %+v", r.code, d)
		}
		// Without the token, the launcher is reachable but refuses /info.
		r = runCLI(t, "check-launcher", withToken)
		if r.code != ExitFail || !strings.Contains(r.out, "--token-file") {
			t.Errorf("no token: exit %d\n%s", r.code, r.out)
		}
		// A token file others can read is a usage error.
		r = runCLI(t, "check-launcher", withToken, "--token-file", openTokenFile)
		if r.code != ExitConfig || !strings.Contains(r.err, "readable by others") {
			t.Errorf("open token file: exit %d\n%s", r.code, r.err)
		}
	})
}

// schemaless serves a model whose /info lacks predictions_v1.
type schemaless struct{ launcher.Model }

func (s schemaless) Info() contract.Info {
	in := s.Model.Info()
	in.SchemaVersions = []string{"predictions_v0"}
	return in
}
