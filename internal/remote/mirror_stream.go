package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// tarCommand writes a tar archive of the files named on standard input (NUL-separated, taken
// literally: --null also turns off -C and quoting in the list), relative to dir, to standard
// output: -h stores symbolic links to files as the files (Walk lists them so), and
// --no-recursion keeps a name that became a directory from bringing its whole tree. GNU tar
// is also told --hard-dereference, so that a file reached twice (a hard link, or a symbolic
// link to a file also listed) comes twice in full rather than as a link entry; other tars'
// link entries are left to the one-by-one copy.
func tarCommand(dir string) string {
	args := "-c -f - -h --no-recursion --null -C " + findArg(dir) + " -T -"
	return "if tar --version 2>/dev/null | grep -q 'GNU tar'; then exec tar --hard-dereference " + args + "; else exec tar " + args + "; fi"
}

// streamFile is a file received from the stream, waiting to be finished.
type streamFile struct {
	j       mirrorJob
	f       *os.File
	n       int64
	suspect bool // ends with a NUL byte: maybe tar's padding of a file that shrank
}

// stream copies jobs (files without a .part to continue) through one `tar -c` on the remote
// side, unpacked through m.root, and returns the jobs it did not finish, for mirrorOne. A
// tar entry that was not asked for, a file shorter than listed and local errors end the
// whole Mirror (m.finish); a stream that cannot start or breaks only leaves its files to the
// one-by-one path. Entries are written to their .part (a broken stream leaves only that),
// then fsynced, given their mode and time and renamed by finishers in parallel.
//
// tar pads a file that shrinks while it is read with NUL bytes (and exits 1): a file whose
// data ends with a NUL byte is renamed into place only when tar exited 0, and copied again
// one by one otherwise.
func (m *mirrorRun) stream(s Streamer, jobs []mirrorJob, finishers int) (left []mirrorJob) {
	want := make(map[string]mirrorJob, len(jobs))
	var list bytes.Buffer
	for _, j := range jobs {
		want[j.fi.Path] = j
		list.WriteString(j.fi.Path)
		list.WriteByte(0)
	}
	var (
		mu      sync.Mutex
		done    = make(map[string]bool, len(jobs))
		pending []streamFile
	)
	defer func() {
		for _, j := range jobs {
			if !done[j.fi.Path] {
				left = append(left, j)
			}
		}
	}()

	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type end struct {
		res *Result
		err error
	}
	ended := make(chan end, 1)
	go func() {
		res, err := s.Stream(ctx, tarCommand(m.remoteRoot), &list, pw)
		if err == nil && res.ExitCode != 0 {
			err = &ExitError{Command: "tar", Result: res, Where: m.t.String()}
		}
		pw.CloseWithError(err) // nil: EOF
		ended <- end{res, err}
	}()

	fin := make(chan streamFile, finishers)
	var fwg sync.WaitGroup
	for range finishers {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for sf := range fin {
				err := finishStreamed(m.root, sf, !sf.suspect)
				if err != nil {
					m.finish(sf.j, mirrorResult{}, fmt.Errorf("mirror %s: %v", sf.j.fi.Path, err))
					continue
				}
				mu.Lock()
				if sf.suspect {
					pending = append(pending, sf)
				} else {
					done[sf.j.fi.Path] = true
				}
				mu.Unlock()
				if !sf.suspect {
					m.finish(sf.j, mirrorResult{copied: true, streamed: true, bytes: sf.n}, nil)
				}
			}
		}()
	}

	// fatal ends the whole Mirror; broken only this stream.
	var fatal, broken error
	seen := make(map[string]bool, len(jobs))
	tr := tar.NewReader(pr)
	for fatal == nil && broken == nil {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			broken = err
			break
		}
		j, ok := want[hdr.Name]
		if !ok || seen[hdr.Name] {
			fatal = fmt.Errorf("mirror %s: refusing tar entry %q: not one of the files asked for (or sent twice)", m.remoteRoot, hdr.Name)
			break
		}
		seen[hdr.Name] = true
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != '\x00' {
			continue // a hard link to an earlier entry, a file that became something else: one by one
		}
		if hdr.Size < j.fi.Size {
			fatal = fmt.Errorf("mirror %s: got %d bytes, the remote listing says %d (was the file truncated during the copy?)", j.fi.Path, hdr.Size, j.fi.Size)
			break
		}
		f, err := createPart(m.root, j)
		if err != nil {
			fatal = fmt.Errorf("mirror %s: %v", j.fi.Path, err)
			break
		}
		w := &lastByteWriter{w: f}
		n, err := io.CopyBuffer(w, tr, make([]byte, 256<<10))
		if err != nil {
			f.Close() // the .part stays: the one-by-one copy continues it
			if w.err != nil {
				fatal = fmt.Errorf("mirror %s: %v", j.fi.Path, w.err)
			} else {
				broken = err
			}
			break
		}
		fin <- streamFile{j: j, f: f, n: n, suspect: n > 0 && w.last == 0}
	}
	if fatal != nil || broken != nil {
		cancel()
		pr.CloseWithError(errors.Join(fatal, broken))
	} else {
		io.Copy(io.Discard, pr) // the archive's end padding
	}
	e := <-ended
	close(fin)
	fwg.Wait()
	if fatal != nil {
		m.finish(mirrorJob{}, mirrorResult{}, fatal)
		return nil
	}
	for _, sf := range pending {
		if e.err == nil && broken == nil {
			if err := m.root.Rename(filepath.FromSlash(sf.j.part), filepath.FromSlash(sf.j.fi.Path)); err != nil {
				m.finish(sf.j, mirrorResult{}, fmt.Errorf("mirror %s: %v", sf.j.fi.Path, err))
				continue
			}
			done[sf.j.fi.Path] = true
			m.finish(sf.j, mirrorResult{copied: true, streamed: true, bytes: sf.n}, nil)
		} else {
			m.root.Remove(filepath.FromSlash(sf.j.part))
		}
	}
	return
}

// createPart creates (truncating) the job's .part file and its directory.
func createPart(root *os.Root, j mirrorJob) (*os.File, error) {
	part := filepath.FromSlash(j.part)
	if dir := filepath.Dir(part); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	if st, err := root.Lstat(part); err == nil && !st.Mode().IsRegular() {
		if err := root.Remove(part); err != nil {
			return nil, err
		}
	}
	return root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
}

// finishStreamed fsyncs and closes a received .part, checks it and gives it the listed mode
// and time, and renames it into place when rename is true.
func finishStreamed(root *os.Root, sf streamFile, rename bool) error {
	if err := sf.f.Sync(); err != nil {
		sf.f.Close()
		return err
	}
	if err := sf.f.Close(); err != nil {
		return err
	}
	part := filepath.FromSlash(sf.j.part)
	if err := settlePart(root, sf.j.fi, part); err != nil {
		return err
	}
	if !rename {
		return nil
	}
	return root.Rename(part, filepath.FromSlash(sf.j.fi.Path))
}

// lastByteWriter remembers the last byte written and the first write error. It has no
// ReadFrom, so that io.CopyBuffer uses its buffer.
type lastByteWriter struct {
	w    io.Writer
	last byte
	err  error
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.last = p[n-1]
	}
	if err != nil && l.err == nil {
		l.err = err
	}
	return n, err
}
