package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"
)

// Counter is a Transport that counts the calls made through it, for tests and benchmarks.
// It is a Streamer too (a Stream counts as a Run, its output as bytes read); over a transport
// that is not one, Stream fails with an error matching errors.ErrUnsupported, counting nothing.
// It is safe for concurrent use.
type Counter struct {
	t                                                  Transport
	runs, writes, opens, stats, walks, mkdirs, removes atomic.Int64
	bytesRead, bytesWritten                            atomic.Int64
}

// Counts is a snapshot of a Counter.
type Counts struct {
	Runs, Writes, Opens, Stats, Walks, Mkdirs, Removes int64
	BytesRead                                          int64 // read from the readers Open returned, and streamed by Stream
	BytesWritten                                       int64 // consumed by WriteFile
}

// Counting wraps t.
func Counting(t Transport) *Counter { return &Counter{t: t} }

// Counts returns the counts so far.
func (c *Counter) Counts() Counts {
	return Counts{
		Runs: c.runs.Load(), Writes: c.writes.Load(), Opens: c.opens.Load(), Stats: c.stats.Load(),
		Walks: c.walks.Load(), Mkdirs: c.mkdirs.Load(), Removes: c.removes.Load(),
		BytesRead: c.bytesRead.Load(), BytesWritten: c.bytesWritten.Load(),
	}
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	for _, v := range []*atomic.Int64{&c.runs, &c.writes, &c.opens, &c.stats, &c.walks, &c.mkdirs, &c.removes, &c.bytesRead, &c.bytesWritten} {
		v.Store(0)
	}
}

func (c *Counter) Run(ctx context.Context, command string, stdin io.Reader) (*Result, error) {
	c.runs.Add(1)
	return c.t.Run(ctx, command, stdin)
}

// Stream implements Streamer when the wrapped transport does.
func (c *Counter) Stream(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) (*Result, error) {
	s, ok := c.t.(Streamer)
	if !ok {
		return nil, fmt.Errorf("stream on %s: %w", c.t, errors.ErrUnsupported)
	}
	c.runs.Add(1)
	return s.Stream(ctx, command, stdin, countingWriter{stdout, &c.bytesRead})
}

func (c *Counter) WriteFile(ctx context.Context, path string, r io.Reader, perm fs.FileMode) error {
	c.writes.Add(1)
	return c.t.WriteFile(ctx, path, countingReader{r, &c.bytesWritten}, perm)
}

func (c *Counter) Open(ctx context.Context, path string, offset int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	rc, err := c.t.Open(ctx, path, offset)
	if err != nil {
		return nil, err
	}
	return &countingReadCloser{rc: rc, n: &c.bytesRead}, nil
}

func (c *Counter) Stat(ctx context.Context, path string) (FileInfo, error) {
	c.stats.Add(1)
	return c.t.Stat(ctx, path)
}

func (c *Counter) Walk(ctx context.Context, root string) ([]FileInfo, error) {
	c.walks.Add(1)
	return c.t.Walk(ctx, root)
}

func (c *Counter) MkdirAll(ctx context.Context, path string, perm fs.FileMode) error {
	c.mkdirs.Add(1)
	return c.t.MkdirAll(ctx, path, perm)
}

func (c *Counter) Remove(ctx context.Context, path string) error {
	c.removes.Add(1)
	return c.t.Remove(ctx, path)
}

func (c *Counter) String() string { return c.t.String() }
func (c *Counter) Close() error   { return c.t.Close() }

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countingReadCloser keeps the wrapped reader's WriteTo (SFTP pipelines reads through it).
type countingReadCloser struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReadCloser) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.rc.(io.WriterTo); ok {
		return wt.WriteTo(countingWriter{w, c.n})
	}
	return io.Copy(countingWriter{w, c.n}, struct{ io.Reader }{c.rc})
}

func (c *countingReadCloser) Close() error { return c.rc.Close() }
