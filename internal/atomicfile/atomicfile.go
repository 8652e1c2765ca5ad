// Package atomicfile writes files that appear at their path whole or not at all: the data
// goes to a temporary file in the same directory, which is synced and renamed into place.
// Renames are atomic on local filesystems and on NFS, Lustre and GPFS, so a reader on
// another node never sees half a file.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Mode is the permission of committed files: readable by the group and others, as results
// on a cluster's shared filesystem are read by other jobs and users.
const Mode = 0o644

// File is a file being written; it appears at its path only on Commit.
type File struct {
	*os.File
	path string
	done bool
}

// Create starts writing path. The temporary file is named after it with a leading dot, so
// that globs of data files skip it.
func Create(path string) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(Mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: tmp, path: path}, nil
}

// Commit syncs the data and renames the file into place.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.File.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.File.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Abort discards the file; it is a no-op after Commit, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// Write writes data to path atomically.
func Write(path string, data []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.File.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}
