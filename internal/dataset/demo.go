package dataset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"

	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// DemoShard is the file name of the demo benchmark's single Parquet shard, named like the
// Hub's shards.
const DemoShard = "test-00000-of-00001.parquet"

// demoDone is the marker file EnsureDemo writes last; its presence means the generation
// under the directory is complete.
const demoDone = ".complete"

// demoRowGroupRows is the row group size of the demo shard.
const demoRowGroupRows = 16

// EnsureDemo makes sure the demo benchmark exists under dir/<demo.Version>/ and returns that
// directory. It generates the Parquet shard unless a completion marker, written last, says
// an earlier generation finished; an interrupted generation is thus redone. Several
// processes may run it at once: each writes its own temporary files and renames them.
func EnsureDemo(ctx context.Context, dir string) (root string, err error) {
	root = filepath.Join(dir, demo.Version)
	marker := filepath.Join(root, demoDone)
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == demo.Version {
		if _, err := os.Stat(filepath.Join(root, DemoShard)); err == nil {
			return root, nil
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("demo data in %s: %w", root, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("demo data: create %s: %w (choose a writable --data-dir)", root, err)
	}
	rows := func(yield func(demo.Row) error) error {
		return demo.Rows(func(r demo.Row) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return yield(r)
		})
	}
	if err := WriteParquet(filepath.Join(root, DemoShard), rows, demoRowGroupRows); err != nil {
		return "", fmt.Errorf("generate demo data in %s: %w", root, err)
	}
	if err := atomicfile.Write(marker, []byte(demo.Version+"\n")); err != nil {
		return "", fmt.Errorf("generate demo data in %s: %w", root, err)
	}
	return root, nil
}
