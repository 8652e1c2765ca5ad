package slurm

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/remote"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func goldenScripts() map[string]Script {
	return map[string]Script{
		"serve-gpu": {
			Role: "serve", JobName: "beans-s1-naturelm-serve", Comment: "beans-slurm sweep=s1",
			WorkDir: "/scratch/beans/sweeps/s1", LogDir: "/scratch/beans/sweeps/s1/logs",
			Resources: Resources{Partition: "gpu", Account: "bioacoustics", QoS: "normal", Time: "0-04:00:00",
				Memory: "64G", CPUs: 8, GRES: "gpu:a100:1", Exclude: "gpu[01-03],gpu07", Constraint: "a100&ib",
				Extra: []string{"--reservation=beans", "--nice=10"}},
			Signal: "B:TERM@120",
			Setup:  []string{"module load cuda/12.1", "source /opt/conda/etc/profile.d/conda.sh && conda activate naturelm"},
			Env:    []EnvVar{{Name: "HF_HOME", Value: "/scratch/hf cache"}, {Name: "NO_PROXY", Value: "*"}, {Name: "QUOTE", Value: `it's "x"`}},
			Binary: "/scratch/beans/bin/beans-slurm-abc123",
			Args:   []string{"serve", "--model", "naturelm", "--handoff", "/scratch/beans/sweeps/s1/handoff/naturelm", "--note", "it's $HOME"},
		},
		"infer-single": {
			Role: "infer", JobName: "beans-s1-naturelm-infer", Comment: "beans-slurm sweep=s1",
			WorkDir: "/scratch/beans/sweeps/s1", LogDir: "/scratch/beans/sweeps/s1/logs",
			Resources: Resources{Partition: "cpu", Time: "120", Memory: "8000", CPUs: 2},
			Binary:    "/scratch/beans/bin/beans-slurm-abc123",
			Args:      []string{"run", "--suite", "beans_zero_core", "--output-dir", "/scratch/beans/sweeps/s1/results/naturelm"},
		},
		"infer-array": {
			Role: "infer", JobName: "beans-s1-naturelm-infer", Comment: "beans-slurm-sweep=s1",
			WorkDir: "/scratch/beans/sweeps/s1", LogDir: "/scratch/beans/sweeps/s1/logs",
			Resources: Resources{Partition: "cpu", Time: "1-00", Memory: "4G", CPUs: 4},
			ArraySize: 4,
			Setup:     []string{"module load gcc"},
			Env:       []EnvVar{{Name: "OMP_NUM_THREADS", Value: "4"}},
			Binary:    "/scratch/beans/bin/beans-slurm-abc123",
			Args:      []string{"run", "--shards", "4", "--progress-file", "/scratch/beans/sweeps/s1/progress/naturelm/shard-{shard}.json"},
		},
	}
}

// bashSyntax checks a script with bash -n.
func bashSyntax(t testing.TB, script []byte) {
	t.Helper()
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v: %s\n%s", err, out, script)
	}
}

func TestRenderGolden(t *testing.T) {
	for name, s := range goldenScripts() {
		t.Run(name, func(t *testing.T) {
			got, err := Render(s)
			if err != nil {
				t.Fatal(err)
			}
			bashSyntax(t, got)
			file := filepath.Join("testdata", "golden", name+".sh")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/slurm -run TestRenderGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendering (review, then -update):\n%s", file, got)
			}
		})
	}
}

// The infer script refuses a first argument that is not a job id, and passes one that is.
func TestRenderInferChecksServeJob(t *testing.T) {
	dir := t.TempDir()
	s := Script{Role: "infer", JobName: "t", Binary: "/bin/echo", Args: []string{"run", "a b"}}
	b, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "infer.sh")
	if err := os.WriteFile(file, b, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", file, "42").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), "run a b --serve-job 42\n") || !strings.Contains(string(out), "beans-slurm infer: job ?") {
		t.Errorf("output %q", out)
	}
	for _, arg := range []string{"", "4x", "$(id)"} {
		cmd := exec.Command("bash", file, arg)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "must be the serving job's id") {
			t.Errorf("argument %q: %v %s", arg, err, out)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	base := goldenScripts()["serve-gpu"]
	tests := []struct {
		field  string
		modify func(*Script)
	}{
		{"role", func(s *Script) { s.Role = "judge" }},
		{"job name", func(s *Script) { s.JobName = "" }},
		{"job name", func(s *Script) { s.JobName = "a b" }},
		{"job name", func(s *Script) { s.JobName = "x$(rm -rf /)" }},
		{"comment", func(s *Script) { s.Comment = `say "hi"` }},
		{"comment", func(s *Script) { s.Comment = "a\nb" }},
		{"work directory", func(s *Script) { s.WorkDir = "relative/dir" }},
		{"work directory", func(s *Script) { s.WorkDir = "/with space" }},
		{"log directory", func(s *Script) { s.LogDir = "/logs;rm" }},
		{"partition", func(s *Script) { s.Partition = "gpu cpu" }},
		{"account", func(s *Script) { s.Account = "a,b" }},
		{"qos", func(s *Script) { s.QoS = "q'" }},
		{"time", func(s *Script) { s.Time = "4h" }},
		{"time", func(s *Script) { s.Time = "1-2-3" }},
		{"memory", func(s *Script) { s.Memory = "16 GB" }},
		{"exclude", func(s *Script) { s.Exclude = "n1 n2" }},
		{"constraint", func(s *Script) { s.Constraint = "a100 && ib" }},
		{"gres", func(s *Script) { s.GRES = "gpu:1 --x" }},
		{"gres", func(s *Script) { s.GRES = "gpu::1" }},
		{"signal", func(s *Script) { s.Signal = "TERM now" }},
		{"extra option", func(s *Script) { s.Extra = []string{"-p gpu"} }},
		{"extra option", func(s *Script) { s.Extra = []string{"--x=$(id)"} }},
		{"extra option", func(s *Script) { s.Extra = []string{""} }},
		{"setup line", func(s *Script) { s.Setup = []string{"ok", "a\nb"} }},
		{"environment variable name", func(s *Script) { s.Env = []EnvVar{{Name: "lower", Value: "x"}} }},
		{"environment variable name", func(s *Script) { s.Env = []EnvVar{{Name: "A=B", Value: "x"}} }},
		{"environment variable HF_HOME", func(s *Script) { s.Env = []EnvVar{{Name: "HF_HOME", Value: "a\x00b"}} }},
		{"binary", func(s *Script) { s.Binary = "" }},
		{"argument 2", func(s *Script) { s.Args = []string{"ok", "a\rb"} }},
		{"cpus", func(s *Script) { s.CPUs = -1 }},
		{"array size", func(s *Script) { s.ArraySize = 2 }}, // serve
		{"array size", func(s *Script) { s.Role, s.ArraySize = "infer", -3 }},
	}
	for _, tt := range tests {
		s := base
		tt.modify(&s)
		_, err := Render(s)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: error %v, want a FieldError for %q", tt.field, err, tt.field)
		}
	}
	// Accepted variants.
	for _, modify := range []func(*Script){
		func(s *Script) { s.Time = "30" },
		func(s *Script) { s.Time = "30:00" },
		func(s *Script) { s.Time = "2-12" },
		func(s *Script) { s.Time = "2-12:30" },
		func(s *Script) { s.Time = "UNLIMITED" },
		func(s *Script) { s.Memory = "1024" },
		func(s *Script) { s.Memory = "500M" },
		func(s *Script) { s.GRES = "gpu:1,shard:2" },
		func(s *Script) { s.Partition = "gpu,gpu-long" },
		func(s *Script) { s.Signal = "USR1@60" },
		func(s *Script) { s.Extra = []string{"--exclusive"} },
		func(s *Script) { s.Comment, s.WorkDir, s.LogDir, s.Resources = "", "", "", Resources{} },
	} {
		s := base
		modify(&s)
		b, err := Render(s)
		if err != nil {
			t.Errorf("%+v: %v", s.Resources, err)
			continue
		}
		bashSyntax(t, b)
	}
}

// hostile values that a fuzz run starts from.
var hostile = []string{
	"$(rm -rf /)", "`rm -rf /`", `'; rm -rf / #`, `"`, "a\nrm -rf /", ";", "&&", "|", "\\", "${IFS}",
	"\r", "\x00", "--x", "-", " ", "", "%j", "{after}", "ünïcode", "a'b\"c",
}

func FuzzRender(f *testing.F) {
	for i, h := range hostile {
		f.Add(h, hostile[(i+1)%len(hostile)], h, h, i%3)
	}
	f.Add("beans-s-m-serve", "serve", "gpu:1", "/w/logs", 0)
	f.Fuzz(func(t *testing.T, name, arg, gres, dir string, pick int) {
		s := Script{
			Role: []string{"serve", "infer", "infer"}[uint(pick)%3], JobName: name, Comment: name,
			WorkDir: dir, LogDir: dir,
			Resources: Resources{Partition: name, Account: name, QoS: name, Time: gres, Memory: gres, Exclude: name,
				Constraint: gres, GRES: gres, Extra: []string{"--" + name}},
			Signal: gres,
			Env:    []EnvVar{{Name: "X", Value: arg}},
			Binary: "/bin/" + arg,
			Args:   []string{arg, name, gres, dir},
		}
		if uint(pick)%3 == 2 {
			s.ArraySize = 3
		}
		b, err := Render(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FieldError: %v", err)
			}
			return
		}
		bashSyntax(t, b)
		text := string(b)
		if strings.ContainsAny(text, "\r\x00") {
			t.Fatalf("carriage return or NUL in the script:\n%s", text)
		}
		// Every argument appears exactly quoted, on the exec line.
		exec := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "exec ") {
				exec = l
			}
		}
		want := "exec " + remote.Join(append([]string{s.Binary}, s.Args...)...)
		if !strings.HasPrefix(exec, want) {
			t.Fatalf("exec line %q, want it to start with %q", exec, want)
		}
		if !strings.Contains(text, "\nexport X="+remote.Quote(arg)+"\n") {
			t.Fatalf("environment value not quoted:\n%s", text)
		}
		// #SBATCH lines hold only checked values: no quote, no $, no backtick (the comment
		// is the one double-quoted value).
		for _, l := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(l, "#SBATCH "); ok {
				if strings.HasPrefix(v, "--comment=") {
					v = strings.Trim(strings.TrimPrefix(v, "--comment="), `"`)
				}
				if strings.ContainsAny(v, "'\"$`;\\ ") {
					t.Fatalf("unsafe #SBATCH line %q", l)
				}
			}
		}
	})
}
