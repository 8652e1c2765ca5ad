package cli

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the command-line scripts in testdata/script: each is a txtar file of
// beans-slurm invocations and what they must print. The demo benchmark is generated once
// for all of them, in $DEMO_DATA.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("DEMO_DATA", demoDataDir)
			return nil
		},
	})
}

// testingM sets up what the package's tests share around m.Run.
type testingM struct{ m *testing.M }

func (t testingM) Run() int {
	dir, err := os.MkdirTemp("", "beans-cli-test-")
	if err != nil {
		panic(err)
	}
	demoDataDir = dir
	defer os.RemoveAll(dir)
	// Runs of these tests ask their launchers (they count failures, kill runs mid-way…): the
	// answer cache is off unless a test turns it on with its own --cache-dir.
	os.Setenv("BEANS_SLURM_NO_ANSWER_CACHE", "1")
	return t.m.Run()
}

func TestMain(m *testing.M) {
	testscript.Main(testingM{m}, map[string]func(){
		"beans-slurm": func() { os.Exit(Main(context.Background(), os.Args[1:], StdIO())) },
	})
}
