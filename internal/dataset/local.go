package dataset

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Local is the dataset type OpenLocal returns; it is a Dataset like any other.
type Local = Dataset

// OpenLocal finds the Parquet files under root matching glob, a slash-separated pattern
// relative to root in which "**" as a whole path element matches any number of directories
// (e.g. "*.parquet", "**/*.parquet", "data/shard*"). Files are sorted by path and named by
// their path (root joined with the relative path). It is an error if none match. Files are
// opened when first read and stay open until Close.
func OpenLocal(ctx context.Context, root, glob string) (*Local, error) {
	if glob == "" {
		glob = "**/*.parquet"
	}
	pattern := strings.Split(path.Clean(filepath.ToSlash(glob)), "/")
	for _, p := range pattern {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("open dataset %s: bad file pattern %q: %w", root, glob, err)
		}
	}
	var files []File
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !(e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0) {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") { // temporary files of an unfinished write
			return nil
		}
		if matchPath(pattern, strings.Split(filepath.ToSlash(rel), "/")) {
			st, err := os.Stat(p) // follows symlinks
			if err != nil {
				return err
			}
			files = append(files, LocalFile(p, st.Size()))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open dataset %s: %w", root, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("open dataset: no file under %s matches %q (check --data-dir and the task's files pattern)", root, glob)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return Open(ctx, files)
}

// LocalFile describes a local file of the given size, named by its path; it is opened with
// os.Open when first needed (and closed by the Dataset's Close).
func LocalFile(name string, size int64) File {
	return File{Name: name, Size: size, Open: func(context.Context) (io.ReaderAt, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return f, nil
	}}
}

// matchPath matches path elements against pattern elements; "**" matches zero or more
// elements.
func matchPath(pattern, elems []string) bool {
	if len(pattern) == 0 {
		return len(elems) == 0
	}
	if pattern[0] == "**" {
		for i := 0; i <= len(elems); i++ {
			if matchPath(pattern[1:], elems[i:]) {
				return true
			}
		}
		return false
	}
	if len(elems) == 0 {
		return false
	}
	ok, _ := path.Match(pattern[0], elems[0])
	return ok && matchPath(pattern[1:], elems[1:])
}
