// Package cli holds beans-slurm's commands: flags become an options struct, which is handed
// to the packages that do the work. No business logic lives here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/charmbracelet/log"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/beans-slurm/beans-slurm/internal/predict"
	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFail   = 1
	ExitConfig = 2
)

// IO is where a command reads and writes. Tests inject buffers.
type IO struct {
	In       io.Reader
	Out      io.Writer // results and tables
	Err      io.Writer // logs and progress
	Terminal bool      // Err is a terminal: progress is redrawn in place
}

// StdIO is the process's standard streams.
func StdIO() IO {
	return IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Terminal: term.IsTerminal(int(os.Stderr.Fd()))}
}

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// configError marks an error as a usage or configuration error (exit 2).
func configError(err error) error { return &exitError{code: ExitConfig, err: err} }

// failure is an error that has already been reported (exit 1, nothing more printed).
var errReported = errors.New("reported")

// globals are the flags every command shares.
type globals struct {
	registryDirs []string
	logLevel     string
	cpuProfile   string
	stopProfile  func()
}

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, ios IO) int {
	root, g := newRoot(ios)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.Err)
	err := root.ExecuteContext(ctx)
	if g.stopProfile != nil {
		g.stopProfile()
	}
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code := ExitFail
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = ExitConfig
	}
	var ue *predict.UnavailableError
	if errors.As(err, &ue) {
		code = ExitConfig
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintf(ios.Err, "beans-slurm: %v\n", err)
	}
	if ctx.Err() != nil {
		return 130
	}
	return code
}

func isUsageError(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRoot(ios IO) (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:   "beans-slurm",
		Short: "Evaluate audio language models on BEANS-Zero, locally or on SLURM clusters",
		Long: `beans-slurm evaluates audio language models on bioacoustics benchmarks (BEANS-Zero).
Models are reached over HTTP through the predictions_v1 contract; the same binary runs
benchmarks, serves the built-in launchers and checks launchers for conformance.

Start with:  beans-slurm demo`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("beans-slurm {{.Version}}\n")
	root.PersistentFlags().StringArrayVar(&g.registryDirs, "registry", nil, "extra registry `DIR` (tasks/, suites/, prompts/, models/) over the embedded one; repeatable; also $BEANS_SLURM_REGISTRY (colon-separated)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` (for performance work)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return configError(fmt.Errorf("--cpuprofile: %w", err))
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return configError(fmt.Errorf("--cpuprofile: %w", err))
		}
		g.stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return configError(fmt.Errorf("%w\nsee `%s --help`", err, c.CommandPath()))
	})
	root.AddCommand(
		newDemoCmd(ios, g),
		newRunCmd(ios, g),
		newScoreCmd(ios, g),
		newLauncherCmd(ios, g),
		newCheckLauncherCmd(ios, g),
		newListCmd(ios, g),
		newDescribeCmd(ios, g),
		newDataCmd(ios, g),
		newVocabCmd(ios, g),
		newSetupSPICECmd(ios, g),
		newServeCmd(ios, g),
		newSubmitCmd(ios, g),
		newStatusCmd(ios, g),
		newFetchCmd(ios, g),
		newLogsCmd(ios, g),
		newCancelCmd(ios, g),
		newJudgeCmd(ios, g),
		newCompareCmd(ios, g),
		newSweepsCmd(ios, g),
		newClusterCmd(ios, g),
	)
	return root, g
}

// logger returns the logger for a command, on stderr.
func (g *globals) logger(ios IO) *log.Logger {
	l := log.NewWithOptions(ios.Err, log.Options{ReportTimestamp: !ios.Terminal})
	if lvl, err := log.ParseLevel(g.logLevel); err == nil {
		l.SetLevel(lvl)
	}
	return l
}

// registry loads the embedded registry and the user's directories.
func (g *globals) registry() (*registry.Registry, error) {
	dirs := append([]string(nil), g.registryDirs...)
	if env := os.Getenv("BEANS_SLURM_REGISTRY"); env != "" {
		for _, d := range filepath.SplitList(env) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	r, err := registry.Load(dirs...)
	if err != nil {
		return nil, configError(err)
	}
	return r, nil
}
