// Package launchers carries the Python serving kits in the beans-slurm binary, so that a
// serving job on a cluster needs nothing but the binary and the kit's environment: `serve`
// unpacks them into a job-private directory and starts <kit>/serve.py from there.
package launchers

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// FS holds the kits: _common (the shared predictions_v1 server and model helpers) and one
// directory per model (serve.py, requirements.txt, setup.sh, README.md). Only these files are
// listed, so that byte code or local environments next to the sources never ship.
//
//go:embed README.md _common/*.py _common/*.sh */serve.py */requirements.txt */setup.sh */README.md
var FS embed.FS

// Unpack writes every kit below dir (which must exist), keeping the layout.
func Unpack(dir string) error {
	return fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" {
			mode = 0o755
		}
		return os.WriteFile(target, b, mode)
	})
}
