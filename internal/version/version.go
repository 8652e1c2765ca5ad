// Package version tells which build of beans-slurm is running.
package version

import (
	"runtime/debug"
	"sync"
)

// Version is set at build time with -ldflags "-X github.com/beans-slurm/beans-slurm/internal/version.Version=v1.2.3".
var Version = "dev"

var (
	once     sync.Once
	revision = "unknown"
	modified bool
)

// Revision is the git revision the binary was built from ("unknown" when the build carried
// no VCS information, as with `go run`), with "+dirty" when the tree had local changes.
func Revision() string {
	once.Do(func() {
		info, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	})
	if modified {
		return revision + "+dirty"
	}
	return revision
}

// String is "VERSION (REVISION)".
func String() string { return Version + " (" + Revision() + ")" }
