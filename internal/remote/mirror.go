package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MirrorOptions tune Mirror.
type MirrorOptions struct {
	// Filter keeps the files it returns true for (rel is the slash path below the remote root).
	// Nil keeps every file.
	Filter func(rel string, fi FileInfo) bool
	// Workers is the number of files copied at once (default 4).
	Workers int
	// Progress, when set, is called after each file, never concurrently.
	Progress func(MirrorProgress)
}

// MirrorProgress reports one finished file.
type MirrorProgress struct {
	Path   string // relative slash path
	Size   int64
	Copied bool  // false: already up to date, skipped
	Bytes  int64 // bytes transferred for this file
	Done   int   // files finished so far, this one included
	Total  int   // files to consider
}

// MirrorStats sums up a Mirror.
type MirrorStats struct {
	Files   int   // remote files considered (after Filter)
	Copied  int   // files transferred (in whole or in part)
	Resumed int   // of which continued from a .part file
	Skipped int   // files already up to date
	Bytes   int64 // bytes transferred
}

// Mirror copies the regular files below remoteRoot into localRoot, incrementally: a local
// file with the remote size and modification time is skipped; other files are downloaded to
// NAME.part beside the destination (continuing an existing .part from its size), checked
// against the remote size, given the remote modification time and permission bits, then
// renamed into place. Interrupted copies leave their .part for the next run.
//
// Remote names are untrusted: a name that is absolute, has an empty, "." or ".." component,
// a backslash or a NUL is refused (before anything is copied), and local files are reached
// through os.Root, so that no local symbolic link leads outside localRoot. On the first
// error the other copies stop and Mirror returns it with the statistics so far.
func Mirror(ctx context.Context, t Transport, remoteRoot, localRoot string, opts MirrorOptions) (MirrorStats, error) {
	var stats MirrorStats
	all, err := t.Walk(ctx, remoteRoot)
	if err != nil {
		return stats, fmt.Errorf("mirror %s: %w", remoteRoot, err)
	}
	var files []FileInfo
	names := map[string]bool{}
	for _, fi := range all {
		if err := checkMirrorName(fi.Path); err != nil {
			return stats, fmt.Errorf("mirror %s: refusing remote file %q: %v", remoteRoot, fi.Path, err)
		}
		names[fi.Path] = true
		if opts.Filter == nil || opts.Filter(fi.Path, fi) {
			files = append(files, fi)
		}
	}
	stats.Files = len(files)
	if err := os.MkdirAll(localRoot, 0o755); err != nil {
		return stats, fmt.Errorf("mirror: %w", err)
	}
	root, err := os.OpenRoot(localRoot)
	if err != nil {
		return stats, fmt.Errorf("mirror: %w", err)
	}
	defer root.Close()

	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	jobs := make(chan FileInfo)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fi := range jobs {
				// The .part name must not be a remote file of its own: then do not resume.
				part := fi.Path + ".part"
				if names[part] {
					part = fi.Path + ".part-" + randomSuffix()
				}
				res, err := mirrorOne(ctx, t, root, path.Join(remoteRoot, fi.Path), fi, part)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				done++
				if res.copied {
					stats.Copied++
					stats.Bytes += res.bytes
					if res.resumed {
						stats.Resumed++
					}
				} else {
					stats.Skipped++
				}
				if opts.Progress != nil {
					opts.Progress(MirrorProgress{Path: fi.Path, Size: fi.Size, Copied: res.copied, Bytes: res.bytes, Done: done, Total: len(files)})
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, fi := range files {
		select {
		case jobs <- fi:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return stats, firstErr
}

// checkMirrorName says why a remote relative name is unsafe to create locally.
func checkMirrorName(rel string) error {
	switch {
	case rel == "":
		return errors.New("empty name")
	case strings.IndexByte(rel, 0) >= 0:
		return errors.New("NUL byte in the name")
	case strings.Contains(rel, `\`):
		return errors.New("backslash in the name")
	case strings.HasPrefix(rel, "/"):
		return errors.New("absolute path")
	}
	for _, c := range strings.Split(rel, "/") {
		switch c {
		case "..":
			return errors.New("'..' component would leave the destination")
		case "", ".":
			return errors.New("empty or '.' component")
		}
	}
	return nil
}

type mirrorResult struct {
	copied, resumed bool
	bytes           int64
}

func mirrorOne(ctx context.Context, t Transport, root *os.Root, remote string, fi FileInfo, partRel string) (mirrorResult, error) {
	var res mirrorResult
	local := filepath.FromSlash(fi.Path)
	part := filepath.FromSlash(partRel)
	fail := func(format string, args ...any) (mirrorResult, error) {
		return res, fmt.Errorf("mirror %s: %s", fi.Path, fmt.Sprintf(format, args...))
	}
	if st, err := root.Lstat(local); err == nil && st.Mode().IsRegular() && st.Size() == fi.Size && st.ModTime().Equal(fi.ModTime) {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if dir := filepath.Dir(local); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fail("%v", err)
		}
	}
	var offset int64
	if st, err := root.Lstat(part); err == nil {
		if !st.Mode().IsRegular() || st.Size() > fi.Size {
			if err := root.Remove(part); err != nil {
				return fail("%v", err)
			}
		} else {
			offset = st.Size()
			res.resumed = offset > 0
		}
	}
	f, err := root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fail("%v", err)
	}
	res.copied = true
	if offset < fi.Size {
		rc, err := t.Open(ctx, remote, offset)
		if err != nil {
			f.Close()
			return fail("%v", err)
		}
		n, err := io.Copy(f, rc)
		rc.Close()
		res.bytes = n
		if err != nil {
			f.Close() // the .part stays for the next run
			return fail("copying from %s: %v", remote, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fail("%v", err)
	}
	if err := f.Close(); err != nil {
		return fail("%v", err)
	}
	st, err := root.Lstat(part)
	if err != nil {
		return fail("%v", err)
	}
	// A file that grew since the listing (a log, a predictions file being appended to) is
	// kept as the later snapshot; its listed modification time makes the next run copy it
	// again. A file that came out shorter than listed is not trusted.
	if st.Size() < fi.Size {
		root.Remove(part)
		return fail("got %d bytes, the remote listing says %d (was the file truncated during the copy?)", st.Size(), fi.Size)
	}
	perm := fi.Mode.Perm()
	if perm == 0 {
		perm = 0o644
	}
	if err := root.Chmod(part, perm); err != nil {
		return fail("%v", err)
	}
	mtime := fi.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	if err := root.Chtimes(part, mtime, mtime); err != nil {
		return fail("%v", err)
	}
	if err := root.Rename(part, local); err != nil {
		return fail("%v", err)
	}
	return res, nil
}
