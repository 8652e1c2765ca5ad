package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// File is a file on the Hub read with HTTP range requests. It implements io.ReaderAt and is
// safe for concurrent use.
//
// ReadAt uses the context given to Open (io.ReaderAt has no context argument); use
// ReadAtContext to bound a read by another context.
type File struct {
	c          *Client
	t          target
	ctx        context.Context
	resolveURL string

	size   int64
	etag   string
	commit string

	mu       sync.Mutex
	location *url.URL // where bytes are read: the signed URL, or the resolve URL itself

	bytesRead atomic.Int64
	requests  atomic.Int64
	warnOnce  sync.Once
}

// Open prepares reading {endpoint}/{type}/{repo}/resolve/{revision}/{path}. It sends one
// HEAD request, which checks access and existence, learns the size, commit and etag, and
// the signed URL that large files redirect to (later reads go there directly). size is the
// size the caller expects (from List), or -1 when unknown; a different size on the Hub is
// an error wrapping ErrIntegrity. Pass a commit sha as revision (see Resolve) so that every
// read sees the same version.
func (c *Client) Open(ctx context.Context, repoType, repo, revision, path string, size int64) (*File, error) {
	t, err := c.target(repoType, repo, revision, path)
	if err != nil {
		return nil, err
	}
	if t.path == "" {
		return nil, fmt.Errorf("open %s: no file path given", t)
	}
	f := &File{c: c, t: t, ctx: ctx, resolveURL: c.resolveURL(t), size: -1}
	if err := f.resolve(ctx); err != nil {
		return nil, err
	}
	switch {
	case f.size < 0 && size < 0:
		return nil, fmt.Errorf("open %s: the Hub sent no size (X-Linked-Size or Content-Length) and none was given (%w)", t, ErrBadAnswer)
	case f.size < 0:
		f.size = size
	case size >= 0 && f.size != size:
		return nil, fmt.Errorf("open %s: the Hub says the file has %d bytes, the listing %d: the repository changed; pin --revision to a commit sha (%w)", t, f.size, size, ErrIntegrity)
	}
	return f, nil
}

// resolve sends the HEAD request and records where the bytes are.
func (f *File) resolve(ctx context.Context) error {
	resp, err := f.c.call(ctx, request{op: "open", t: f.t, method: http.MethodHead, url: f.resolveURL,
		header: http.Header{"Accept-Encoding": {"identity"}}, auth: true, stopCross: true, counter: &f.requests})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var loc *url.URL
	switch resp.StatusCode {
	case http.StatusOK:
		loc = resp.Request.URL
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		loc, err = resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.Header.Get("Location") == "" {
			return fmt.Errorf("open %s: redirect without a usable Location (%w)", f.t, ErrBadAnswer)
		}
	default:
		return f.c.statusError("open", f.t, resp)
	}
	h := resp.Header
	size := int64(-1)
	for _, v := range []string{h.Get("X-Linked-Size"), h.Get("Content-Length")} {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			size = n
			break
		}
	}
	if resp.StatusCode != http.StatusOK && h.Get("X-Linked-Size") == "" {
		size = -1 // a redirect's Content-Length is that of the redirect
	}
	etag := h.Get("X-Linked-Etag")
	if etag == "" {
		etag = h.Get("ETag")
	}
	commit := h.Get("X-Repo-Commit")

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.commit != "" && commit != "" && commit != f.commit {
		return fmt.Errorf("open %s: the revision moved from commit %s to %s while reading: pin --revision to a commit sha (%w)", f.t, f.commit, commit, ErrIntegrity)
	}
	if f.size >= 0 && size >= 0 && size != f.size {
		return fmt.Errorf("open %s: the file changed size on the Hub while reading (%d, now %d): pin --revision to a commit sha (%w)", f.t, f.size, size, ErrIntegrity)
	}
	if commit != "" {
		f.commit = commit
	}
	if f.etag == "" {
		f.etag = normalizeETag(etag)
	}
	if f.size < 0 {
		f.size = size
	}
	f.location = loc
	return nil
}

func normalizeETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// Size is the file's size in bytes.
func (f *File) Size() int64 { return f.size }

// ETag is the file's etag without quotes: the sha256 of an LFS file's content (the Hub's
// X-Linked-Etag), the git blob id of the others.
func (f *File) ETag() string { return f.etag }

// Commit is the commit sha the Hub resolved the revision to (X-Repo-Commit), if it said.
func (f *File) Commit() string { return f.commit }

// Name is "type/repo@revision/path", for logs and errors.
func (f *File) Name() string { return f.t.typ + "/" + f.t.repo + "@" + f.t.revision + "/" + f.t.path }

// BytesRead is the number of body bytes received for this file so far, including bytes
// discarded because a server ignored a range.
func (f *File) BytesRead() int64 { return f.bytesRead.Load() }

// Requests is the number of HTTP requests sent for this file so far (redirect hops and
// retries included).
func (f *File) Requests() int64 { return f.requests.Load() }

// ReadAt reads len(p) bytes at off with one range request (more only when retrying), under
// the context given to Open. Like any io.ReaderAt, it returns io.EOF when fewer bytes
// remain in the file than len(p).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(f.ctx, p, off)
}

// ReadAtContext is ReadAt bounded by ctx.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", f.Name(), off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= f.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.size-off)
	rr := f.newRangeReader(ctx, off, off+n, false, f.c.maxSkip)
	got, err := io.ReadFull(rr, p[:n])
	rr.Close()
	if err != nil {
		return got, err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// ReadSuffix returns the last n bytes of the file (all of it when n exceeds its size) with
// one suffix range request, "Range: bytes=-n": the way to fetch a Parquet footer.
func (f *File) ReadSuffix(ctx context.Context, n int64) ([]byte, error) {
	n = min(n, f.size)
	if n <= 0 {
		return []byte{}, nil
	}
	buf := make([]byte, n)
	rr := f.newRangeReader(ctx, f.size-n, f.size, true, f.c.maxSkip)
	defer rr.Close()
	if _, err := io.ReadFull(rr, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// OpenRange streams the n bytes at off with one range request (more only when resuming
// after a connection error). Large spans are read with bounded memory this way.
func (f *File) OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n < 0 || off+n > f.size {
		return nil, fmt.Errorf("read %s: range %d+%d is outside the file's %d bytes", f.Name(), off, n, f.size)
	}
	return f.newRangeReader(ctx, off, off+n, false, f.c.maxSkip), nil
}

func (f *File) loc() *url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.location
}

func (f *File) newRangeReader(ctx context.Context, off, end int64, suffix bool, maxSkip int64) *rangeReader {
	return &rangeReader{f: f, ctx: ctx, start: off, off: off, end: end, suffix: suffix, maxSkip: maxSkip}
}

// rangeReader reads [off, end) of a File, reopening the range where it stopped after a
// connection error (a bounded number of times).
type rangeReader struct {
	f        *File
	ctx      context.Context
	start    int64
	off, end int64
	suffix   bool
	maxSkip  int64
	body     io.ReadCloser
	failures int
	err      error
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.off >= r.end {
		r.Close()
		return 0, io.EOF
	}
	if int64(len(p)) > r.end-r.off {
		p = p[:r.end-r.off]
	}
	for {
		var err error
		opening := r.body == nil
		if opening {
			r.body, err = r.f.openRange(r.ctx, r.off, r.end, r.suffix && r.off == r.start, r.maxSkip)
		}
		if err == nil {
			var n int
			n, err = r.body.Read(p)
			r.off += int64(n)
			r.f.bytesRead.Add(int64(n))
			if err == io.EOF && r.off < r.end {
				err = io.ErrUnexpectedEOF
			}
			if err != nil && err != io.EOF {
				r.body.Close()
				r.body = nil
			}
			if n > 0 || err == nil || err == io.EOF {
				if r.off >= r.end {
					r.Close()
				}
				return n, nil
			}
		}
		if !retryable(r.ctx, err) || r.failures >= r.f.c.retries {
			if r.ctx.Err() != nil {
				err = context.Cause(r.ctx)
			}
			if opening && r.ctx.Err() == nil {
				r.err = err // openRange's errors say what and where
			} else {
				r.err = fmt.Errorf("read %s bytes %d-%d: %w", r.f.Name(), r.off, r.end-1, err)
			}
			if r.failures > 0 && retryable(r.ctx, err) {
				r.err = fmt.Errorf("%w (gave up after %d attempts; %w)", r.err, r.failures+1, ErrUnavailable)
			}
			return 0, r.err
		}
		d := r.f.c.delay(r.failures, nil)
		r.failures++
		r.f.c.log.Warn("hub: resuming a read", "file", r.f.Name(), "at", r.off, "attempt", r.failures+1, "in", d, "after", err)
		if err := r.f.c.sleep(r.ctx, d); err != nil {
			r.err = fmt.Errorf("read %s: %w", r.f.Name(), err)
			return 0, r.err
		}
	}
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// openRange sends the range request for [off, end) and returns the body positioned at off,
// after checking the answer.
func (f *File) openRange(ctx context.Context, off, end int64, suffix bool, maxSkip int64) (io.ReadCloser, error) {
	rng := fmt.Sprintf("bytes=%d-%d", off, end-1)
	if suffix {
		rng = fmt.Sprintf("bytes=-%d", end-off)
	}
	op := "read " + rng + " of"
	reResolved := false
	for {
		loc := f.loc()
		resp, err := f.c.call(ctx, request{op: op, t: f.t, method: http.MethodGet, url: loc.String(),
			header: http.Header{"Range": {rng}, "Accept-Encoding": {"identity"}}, auth: true, counter: &f.requests})
		if err != nil {
			return nil, err
		}
		onHub := sameHost(resp.Request.URL, f.c.endpoint)
		if c := resp.Header.Get("X-Repo-Commit"); onHub && c != "" && f.commit != "" && c != f.commit {
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s: the revision moved from commit %s to %s while reading: pin --revision to a commit sha (%w)", op, f.t, f.commit, c, ErrIntegrity)
		}
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if err := checkContentRange(resp.Header.Get("Content-Range"), off, end, f.size); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("%s %s: %s answered %v (%w)", op, f.t, redact(resp.Request.URL), err, ErrBadAnswer)
			}
			if resp.ContentLength >= 0 && resp.ContentLength != end-off {
				resp.Body.Close()
				return nil, fmt.Errorf("%s %s: %s answered %d bytes for a range of %d (%w)", op, f.t, redact(resp.Request.URL), resp.ContentLength, end-off, ErrBadAnswer)
			}
			return resp.Body, nil
		case http.StatusOK:
			// The server ignored Range: the body is the whole file.
			if resp.ContentLength >= 0 && resp.ContentLength != f.size {
				resp.Body.Close()
				return nil, fmt.Errorf("%s %s: %s ignored the range and answered %d bytes for a file of %d (%w)", op, f.t, redact(resp.Request.URL), resp.ContentLength, f.size, ErrBadAnswer)
			}
			if off > maxSkip {
				resp.Body.Close()
				return nil, fmt.Errorf("%s %s: %s ignored the range and answered the whole file; reading %d bytes to reach the offset exceeds the limit of %d: the server or a proxy in between does not support ranges: mirror the files with `beans-slurm data fetch` and use --data-dir (%w)",
					op, f.t, redact(resp.Request.URL), off, maxSkip, ErrRangeIgnored)
			}
			f.warnOnce.Do(func() {
				f.c.log.Warn("hub: the server ignores byte ranges; reading from the start of the file", "file", f.Name(), "url", redact(resp.Request.URL))
			})
			n, err := io.CopyN(io.Discard, resp.Body, off)
			f.bytesRead.Add(n)
			if err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("skip to byte %d: %w", off, err)
			}
			return resp.Body, nil
		case http.StatusForbidden:
			if !onHub && !reResolved {
				// A signed URL that expired: ask the Hub for a fresh one, once.
				resp.Body.Close()
				reResolved = true
				f.c.log.Warn("hub: signed URL refused, resolving it again", "file", f.Name())
				if err := f.resolve(ctx); err != nil {
					return nil, err
				}
				continue
			}
		}
		return nil, f.c.statusError(op, f.t, resp)
	}
}

// checkContentRange checks "bytes a-b/size" against the range asked for.
func checkContentRange(v string, off, end, size int64) error {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return fmt.Errorf("206 with Content-Range %q, not bytes a-b/size", v)
	}
	ab, total, ok := strings.Cut(spec, "/")
	a, b, ok2 := strings.Cut(ab, "-")
	if !ok || !ok2 {
		return fmt.Errorf("206 with a malformed Content-Range %q", v)
	}
	ai, err1 := strconv.ParseInt(a, 10, 64)
	bi, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("206 with a malformed Content-Range %q", v)
	}
	if ai != off || bi != end-1 {
		return fmt.Errorf("206 with Content-Range %q for bytes %d-%d", v, off, end-1)
	}
	if total != "*" {
		t, err := strconv.ParseInt(total, 10, 64)
		if err != nil || t != size {
			return fmt.Errorf("206 with Content-Range %q for a file of %d bytes", v, size)
		}
	}
	return nil
}

var _ io.ReaderAt = (*File)(nil)
