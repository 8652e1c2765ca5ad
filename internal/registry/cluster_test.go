package registry

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const okClusters = `default: alpha
clusters:
  alpha:
    host: alpha-login
    work_dir: /shared/me/bs
    gpu:
      partition: gpu
      gres: "gpu:a100:{n}"
      time: "12:00:00"
    cpu:
      partition: cpu
  beta.local:
    local: true
    work_dir: /scratch/bs
`

func TestParseClusters(t *testing.T) {
	c, err := ParseClusters([]byte(okClusters), "clusters.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Names(), ","); got != "alpha,beta.local" {
		t.Errorf("names %s", got)
	}
	a, err := c.Lookup("alpha")
	if err != nil {
		t.Fatal(err)
	}
	// Defaults.
	if a.Name != "alpha" || a.Transport != TransportNative || a.Poll.Initial != 30*time.Second || a.Poll.Max != 180*time.Second {
		t.Errorf("defaults not applied: %+v", a)
	}
	if a.LauncherEnvsDir() != "/shared/me/bs/envs" {
		t.Errorf("launcher envs %s", a.LauncherEnvsDir())
	}
	b, _ := c.Lookup("beta.local")
	if !b.Local || b.Transport != "" {
		t.Errorf("local profile %+v", b)
	}
	// The default, and the only profile when there is no default.
	if d, err := c.Lookup(""); err != nil || d.Name != "alpha" {
		t.Errorf("Lookup(\"\") = %v, %v", d.Name, err)
	}
	if d, err := c.Select("", "beta.local"); err != nil || d.Name != "beta.local" {
		t.Errorf("Select = %v, %v", d.Name, err)
	}
	if d, err := c.Select("alpha", "beta.local"); err != nil || d.Name != "alpha" {
		t.Errorf("Select flag first = %v, %v", d.Name, err)
	}
	one, _ := ParseClusters([]byte("clusters:\n  solo: {host: h, work_dir: /w}\n"), "x")
	if d, err := one.Lookup(""); err != nil || d.Name != "solo" {
		t.Errorf("single profile: %v, %v", d.Name, err)
	}
	two, _ := ParseClusters([]byte("clusters:\n  a: {host: h, work_dir: /w}\n  b: {host: h, work_dir: /w}\n"), "x")
	if _, err := two.Lookup(""); err == nil || !strings.Contains(err.Error(), "give --cluster (one of a, b)") {
		t.Errorf("no default of two: %v", err)
	}
	// Poll: only max given below the default initial.
	p, err := ParseClusters([]byte("clusters:\n  a: {host: h, work_dir: /w, poll: {max: 10s}}\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if pa, _ := p.Lookup("a"); pa.Poll.Initial != 10*time.Second || pa.Poll.Max != 10*time.Second {
		t.Errorf("poll %+v", pa.Poll)
	}
}

func TestClusterLookupSuggests(t *testing.T) {
	c, err := ParseClusters([]byte(okClusters), "clusters.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup("alpah")
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) || nf.Kind != KindCluster || len(nf.Suggestions) == 0 || nf.Suggestions[0] != "alpha" {
		t.Fatalf("Lookup(alpah) = %v", err)
	}
	if !strings.Contains(err.Error(), `unknown cluster "alpah"; did you mean alpha?`) {
		t.Errorf("message %q", err)
	}
	_, err = c.Lookup("zzzzzzzz")
	if err == nil || !strings.Contains(err.Error(), "clusters.yaml defines alpha, beta.local") {
		t.Errorf("far miss: %v", err)
	}
}

func TestGRES(t *testing.T) {
	tests := []struct {
		tmpl string
		gpus int
		want string
	}{
		{"", 1, "gpu:1"},
		{"", 0, ""},
		{"gpu:{n}", 2, "gpu:2"},
		{"gpu:a100:{n}", 4, "gpu:a100:4"},
		{"gpu:a100:{n}", -1, ""},
	}
	for _, tt := range tests {
		c := Cluster{GPU: ClusterGPU{GRES: tt.tmpl}}
		if got := c.GRES(tt.gpus); got != tt.want {
			t.Errorf("GRES(%q, %d) = %q, want %q", tt.tmpl, tt.gpus, got, tt.want)
		}
	}
}

func TestClustersProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, "file:line: …"
	}{
		{"unknown key with suggestion", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    wrok_dir: /x\n",
			[]string{`c.yaml:5: unknown key "wrok_dir"; did you mean work_dir?`}},
		{"unknown nested key", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    gpu:\n      partiton: gpu\n",
			[]string{`c.yaml:6: unknown key "partiton"; did you mean partition?`}},
		{"unknown top-level key", "clusters: {a: {host: h, work_dir: /w}}\ndefualt: a\n",
			[]string{`c.yaml:2: unknown key "defualt"; did you mean default?`}},
		{"gres without {n}", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    gpu: {gres: \"gpu:a100:2\"}\n",
			[]string{"c.yaml:5: cluster a: gpu.gres \"gpu:a100:2\": a template with {n}"}},
		{"work_dir relative and missing", "clusters:\n  a:\n    host: h\n    work_dir: shared/bs\n  b:\n    host: h\n",
			[]string{"c.yaml:4: cluster a: work_dir \"shared/bs\": must be an absolute path", "c.yaml:5: cluster b: work_dir: missing"}},
		{"bad time and memory", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    cpu:\n      time: noon\n      memory: lots\n",
			[]string{`c.yaml:6: cluster a: cpu.time "noon"`, `c.yaml:7: cluster a: cpu.memory "lots"`}},
		{"bad name", "clusters:\n  \"my cluster\":\n    host: h\n    work_dir: /w\n",
			[]string{"c.yaml:2: cluster my cluster: name: use letters"}},
		{"no host, not local", "clusters:\n  a:\n    work_dir: /w\n",
			[]string{"cluster a: host: missing"}},
		{"local with host", "clusters:\n  a:\n    local: true\n    host: h\n    work_dir: /w\n",
			[]string{"c.yaml:4: cluster a: local: true runs on this machine"}},
		{"bad transport and port", "clusters:\n  a:\n    host: h\n    transport: putty\n    port: 70000\n    work_dir: /w\n",
			[]string{`c.yaml:4: cluster a: transport "putty"`, "c.yaml:5: cluster a: port 70000"}},
		{"secret in env", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    env:\n      HF_TOKEN: hf_x\n      OK_VAR: 1\n",
			[]string{"c.yaml:6: cluster a: env: HF_TOKEN looks like a secret"}},
		{"extra not an option", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    gpu:\n      extra: [\"mail-type=FAIL\"]\n",
			[]string{`c.yaml:6: cluster a: gpu.extra: "mail-type=FAIL" is not an sbatch option`}},
		{"poll backwards and bad duration", "clusters:\n  a:\n    host: h\n    work_dir: /w\n    poll: {initial: 60s, max: 30s}\n  b:\n    host: h\n    work_dir: /w\n    poll: {initial: soon}\n",
			[]string{"c.yaml:5: cluster a: poll.max 30s is shorter", "c.yaml:9: cannot unmarshal"}},
		{"default unknown", "default: alpah\nclusters:\n  alpha: {host: h, work_dir: /w}\n",
			[]string{`c.yaml:1: default: no profile is called "alpah"; did you mean alpha?`}},
		{"duplicate name", "clusters:\n  a: {host: h, work_dir: /w}\n  a: {host: g, work_dir: /w}\n",
			[]string{"c.yaml:3:", "already defined"}},
		{"empty", "", []string{"c.yaml: empty file"}},
		{"no profiles", "clusters: {}\n", []string{"c.yaml:1: clusters: define at least one profile"}},
		{"a list", "- a\n", []string{"c.yaml:1: expected a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseClusters([]byte(tt.yaml), "c.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("%T is not a *LoadError: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "clusters: ") {
				t.Errorf("message does not start with clusters: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestExampleClusters(t *testing.T) {
	c, err := ParseClusters(ExampleClusters(), "registry/clusters.example.yaml")
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	a, err := c.Lookup("")
	if err != nil {
		t.Fatal(err)
	}
	if a.GRES(2) != "gpu:a100:2" || a.WorkDir == "" || a.GPU.Partition == "" || a.CPU.Partition == "" || len(a.Setup) == 0 || len(a.Env) == 0 {
		t.Errorf("the example's main profile leaves fields out: %+v", a)
	}
	// Every field of a profile appears in the example, so that it documents them all.
	text := string(ExampleClusters())
	for _, typ := range []string{"registry.Cluster", "registry.ClusterGPU", "registry.ClusterCPU", "registry.ClusterPoll", "registry.Clusters"} {
		for _, k := range knownKeys[typ] {
			if !strings.Contains(text, k+":") {
				t.Errorf("the example does not show %s (%s)", k, typ)
			}
		}
	}
	// The example sits beside the registry directories and must not disturb loading.
	if _, err := Default(); err != nil {
		t.Fatal(err)
	}
	dir := writeTree(t, map[string]string{"clusters.example.yaml": text, "clusters.yaml": "junk: ["})
	if _, err := Load(dir); err != nil {
		t.Errorf("a user registry holding clusters files: %v", err)
	}
}

func TestLoadClustersFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadClusters(filepath.Join(dir, "clusters.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "docs/clusters.md") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "clusters.yaml")
	if err := os.WriteFile(path, []byte(okClusters), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadClusters(path)
	if err != nil || c.Path != path {
		t.Fatalf("LoadClusters: %v", err)
	}
	if err := os.WriteFile(path, []byte(okClusters+"    colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClusters(path); err == nil || !strings.Contains(err.Error(), path+":15: unknown key \"colour\"") {
		t.Errorf("problem without file:line: %v", err)
	}
}

func TestDefaultClustersPath(t *testing.T) {
	t.Setenv(EnvClusters, "/etc/bs/clusters.yaml")
	if p, err := DefaultClustersPath(); err != nil || p != "/etc/bs/clusters.yaml" {
		t.Errorf("with %s: %s, %v", EnvClusters, p, err)
	}
	t.Setenv(EnvClusters, "")
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if p, _ := DefaultClustersPath(); p != filepath.Join("/xdg", "beans-slurm", "clusters.yaml") {
		t.Errorf("with XDG_CONFIG_HOME: %s", p)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	t.Setenv("HOME", "/home/me")
	if p, _ := DefaultClustersPath(); p != filepath.Join("/home/me", ".config", "beans-slurm", "clusters.yaml") {
		t.Errorf("fallback: %s", p)
	}
}
