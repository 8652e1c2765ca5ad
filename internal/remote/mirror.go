package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
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
	// Workers is the number of files copied at once one by one, and of files being
	// finished (fsync, rename) at once behind a stream (default 4).
	Workers int
	// Streams is the number of tar streams (SSH sessions) the files to copy from scratch are
	// split into. Default: one per 16 MB to copy, at most 4 (one stream is bounded by the
	// SSH channel window: about 35 MB/s at 50 ms RTT; see docs/performance.md). Negative: no
	// stream, every file one by one.
	Streams int
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
	Files    int   // remote files considered (after Filter)
	Copied   int   // files transferred (in whole or in part)
	Resumed  int   // of which continued from a .part file
	Streamed int   // of which came in a tar stream
	Skipped  int   // files already up to date
	Bytes    int64 // bytes transferred (file contents)
}

// Mirror copies the regular files below remoteRoot into localRoot, incrementally: a local
// file with the remote size and modification time is skipped; other files are downloaded to
// NAME.part beside the destination, checked against the remote size, given the remote
// modification time and permission bits, then renamed into place. Interrupted copies leave
// their .part for the next run.
//
// When the transport is a Streamer, the files to copy from scratch come in one remote
// `tar -c -h` of their names (one round trip for all of them, as rsync does); a file with a
// .part to continue is read from its size with Open. When tar cannot run or its stream
// breaks, the files it did not deliver are copied one by one (continuing the .part of the
// file it was writing): nothing is copied twice and nothing is lost.
//
// Remote names are untrusted: a name that is absolute, has an empty, "." or ".." component,
// a backslash or a NUL is refused (before anything is copied), a tar entry that is not one
// of the names asked for is refused, and local files are reached through os.Root, so that no
// local symbolic link leads outside localRoot. A file shorter than listed is an error; one
// longer (it grew since the listing) is kept, and its listed modification time makes the
// next run copy it again. On the first error the other copies stop and Mirror returns it
// with the statistics so far.
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
	m := &mirrorRun{ctx: ctx, cancel: cancel, t: t, root: root, remoteRoot: remoteRoot, progress: opts.Progress, total: len(files), stats: &stats}

	// The plan: files up to date are done; a file with a .part to continue is copied on its
	// own; the others go to the tar stream when the transport has one.
	streamer, canStream := t.(Streamer)
	if opts.Streams < 0 {
		canStream = false
	}
	var single, fresh []mirrorJob
	for _, fi := range files {
		// The .part name must not be a remote file of its own: then do not resume.
		j := mirrorJob{fi: fi, part: fi.Path + ".part"}
		if names[j.part] {
			j.part = fi.Path + ".part-" + randomSuffix()
		}
		switch {
		case upToDate(root, fi):
			m.finish(j, mirrorResult{}, nil)
		case canStream && !resumable(root, j):
			fresh = append(fresh, j)
		default:
			single = append(single, j)
		}
	}

	jobs := make(chan mirrorJob)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				res, err := mirrorOne(ctx, t, root, path.Join(remoteRoot, j.fi.Path), j.fi, j.part)
				m.finish(j, res, err)
			}
		}()
	}
	var (
		swg       sync.WaitGroup
		leftMu    sync.Mutex
		leftovers []mirrorJob
	)
	nStreams := opts.Streams
	if nStreams == 0 {
		var size int64
		for _, j := range fresh {
			size += j.fi.Size
		}
		nStreams = int(min(max(size/streamBytes, 1), maxStreams))
	}
	for _, group := range splitJobs(fresh, nStreams) {
		swg.Add(1)
		go func() {
			defer swg.Done()
			left := m.stream(streamer, group, workers)
			leftMu.Lock()
			leftovers = append(leftovers, left...)
			leftMu.Unlock()
		}()
	}
	feed := func(js []mirrorJob) {
		for _, j := range js {
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}
	feed(single)
	swg.Wait()
	slices.SortFunc(leftovers, func(a, b mirrorJob) int { return strings.Compare(a.fi.Path, b.fi.Path) })
	feed(leftovers)
	close(jobs)
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.firstErr == nil && ctx.Err() != nil {
		m.firstErr = ctx.Err()
	}
	return stats, m.firstErr
}

// The default number of streams: one per streamBytes to copy, at most maxStreams (OpenSSH
// allows 10 sessions per connection).
const (
	streamBytes = 16 << 20
	maxStreams  = 4
)

// mirrorJob is one file to bring up to date.
type mirrorJob struct {
	fi   FileInfo
	part string // slash path of its .part file
}

// mirrorRun is the state one Mirror shares between its workers and streams.
type mirrorRun struct {
	ctx        context.Context
	cancel     context.CancelFunc
	t          Transport
	root       *os.Root
	remoteRoot string
	progress   func(MirrorProgress)
	total      int

	mu       sync.Mutex
	stats    *MirrorStats
	firstErr error
	done     int
}

// finish records one file's outcome: the first error stops everything.
func (m *mirrorRun) finish(j mirrorJob, res mirrorResult, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.firstErr == nil {
			m.firstErr = err
			m.cancel()
		}
		return
	}
	m.done++
	if res.copied {
		m.stats.Copied++
		m.stats.Bytes += res.bytes
		if res.resumed {
			m.stats.Resumed++
		}
		if res.streamed {
			m.stats.Streamed++
		}
	} else {
		m.stats.Skipped++
	}
	if m.progress != nil {
		m.progress(MirrorProgress{Path: j.fi.Path, Size: j.fi.Size, Copied: res.copied, Bytes: res.bytes, Done: m.done, Total: m.total})
	}
}

// upToDate says whether the local file has the remote size and modification time.
func upToDate(root *os.Root, fi FileInfo) bool {
	st, err := root.Lstat(filepath.FromSlash(fi.Path))
	return err == nil && st.Mode().IsRegular() && st.Size() == fi.Size && st.ModTime().Equal(fi.ModTime)
}

// resumable says whether the job has a .part to continue (mirrorOne's rule: a regular file,
// not empty, no longer than the remote file).
func resumable(root *os.Root, j mirrorJob) bool {
	st, err := root.Lstat(filepath.FromSlash(j.part))
	return err == nil && st.Mode().IsRegular() && st.Size() > 0 && st.Size() <= j.fi.Size
}

// splitJobs cuts jobs (in listing order) into at most n groups of about the same number of
// bytes; n ≤ 0 means 1.
func splitJobs(jobs []mirrorJob, n int) [][]mirrorJob {
	if len(jobs) == 0 {
		return nil
	}
	if n <= 0 {
		n = 1
	}
	n = min(n, len(jobs))
	var total int64
	for _, j := range jobs {
		total += j.fi.Size + 512 // a tar header per file
	}
	var groups [][]mirrorJob
	var acc int64
	start := 0
	for i, j := range jobs {
		acc += j.fi.Size + 512
		if len(groups) < n-1 && acc*int64(n) >= total*int64(len(groups)+1) {
			groups = append(groups, jobs[start:i+1])
			start = i + 1
		}
	}
	if start < len(jobs) {
		groups = append(groups, jobs[start:])
	}
	return groups
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
	copied, resumed, streamed bool
	bytes                     int64
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
	if err := settlePart(root, fi, part); err != nil {
		return fail("%v", err)
	}
	if err := root.Rename(part, local); err != nil {
		return fail("%v", err)
	}
	return res, nil
}

// settlePart checks a finished .part against the listed size (removing it when it is shorter)
// and gives it the listed permission bits and modification time.
func settlePart(root *os.Root, fi FileInfo, part string) error {
	st, err := root.Lstat(part)
	if err != nil {
		return err
	}
	// A file that grew since the listing (a log, a predictions file being appended to) is
	// kept as the later snapshot; its listed modification time makes the next run copy it
	// again. A file that came out shorter than listed is not trusted.
	if st.Size() < fi.Size {
		root.Remove(part)
		return fmt.Errorf("got %d bytes, the remote listing says %d (was the file truncated during the copy?)", st.Size(), fi.Size)
	}
	perm := fi.Mode.Perm()
	if perm == 0 {
		perm = 0o644
	}
	if err := root.Chmod(part, perm); err != nil {
		return err
	}
	mtime := fi.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	return root.Chtimes(part, mtime, mtime)
}
