package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// A preset of each kind renders a serving job script (golden file) that bash -n accepts.
func TestServeScriptOfEveryPreset(t *testing.T) {
	reg, err := registry.Load()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := registry.ParseClusters(registry.ExampleClusters(), "clusters.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cl.Lookup("")
	if err != nil {
		c, err = cl.Lookup(cl.Names()[0])
		if err != nil {
			t.Fatal(err)
		}
	}
	spec := slurm.Spec{Name: "golden", Suite: "beans_zero_core", Shards: 2, Version: "test"}
	for _, m := range reg.Models() {
		spec.Models = append(spec.Models, slurm.ModelSpec{ID: m.ID, Preset: m.ID, GPUs: m.GPUs, Time: m.Time, Memory: m.Memory})
	}
	man, files, err := slurm.Plan(spec, profile(c), c.WorkDir+"/bin/beans-slurm-0123456789abcdef", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Models) != len(reg.Models()) {
		t.Fatalf("%d models planned", len(man.Models))
	}
	for _, f := range files {
		name := filepath.Base(f.Path)
		if !strings.HasSuffix(name, "-serve.sh") {
			continue
		}
		if out, err := exec.Command("bash", "-n", "-c", string(f.Data)).CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v %s", name, err, out)
		}
		golden := filepath.Join("testdata", "golden", name)
		if *updateGolden {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test ./internal/cli -run TestServeScriptOfEveryPreset -update writes it)", err)
		}
		if !bytes.Equal(want, f.Data) {
			t.Errorf("%s differs from %s (rerun with -update and review the diff):\n%s", name, golden, f.Data)
		}
	}
}
