package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// Download copies a listed file (an Entry from List) to dst, resumably and verified:
//
//   - the bytes go to dst+".part"; a .part left by an interrupted download is continued
//     with a range request from where it stopped;
//   - the result is checked against the listing: its size, then its hash (sha256 = lfs.oid
//     for LFS files, the git blob sha1 = oid for the others);
//   - only a verified file is renamed to dst, atomically; a file that fails verification is
//     removed (when the mismatch followed a resume, the file is downloaded once more from
//     scratch before giving up);
//   - a dst that already exists and verifies is left alone, without any request.
//
// Only one process may download to the same dst at a time.
func (c *Client) Download(ctx context.Context, repoType, repo, revision string, e Entry, dst string) error {
	t, err := c.target(repoType, repo, revision, e.Path)
	if err != nil {
		return err
	}
	if e.Type != "" && e.Type != "file" {
		return fmt.Errorf("download %s: it is a %s, not a file", t, e.Type)
	}
	if err := VerifyFile(dst, e); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", t, err)
	}
	part := dst + ".part"
	for try := 0; ; try++ {
		resumed, err := c.downloadPart(ctx, t, e, part)
		if err != nil {
			if errors.Is(err, ErrIntegrity) && resumed && try == 0 {
				c.log.Warn("hub: the resumed download did not verify; downloading it again from the start", "file", t.String())
				continue
			}
			return err
		}
		if err := os.Rename(part, dst); err != nil {
			return fmt.Errorf("download %s: %w", t, err)
		}
		return nil
	}
}

// downloadPart brings part to the full, verified content. resumed tells whether it
// continued an earlier partial file.
func (c *Client) downloadPart(ctx context.Context, t target, e Entry, part string) (resumed bool, err error) {
	size := e.FileSize()
	fh, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", t, err)
	}
	defer func() {
		if fh != nil {
			fh.Close()
		}
	}()
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("download %s: %w", t, err)
	}
	have := st.Size()
	if have > size {
		if err := fh.Truncate(0); err != nil {
			return false, fmt.Errorf("download %s: %w", t, err)
		}
		have = 0
	}
	resumed = have > 0
	algo, want := e.ContentHash()
	h := newHash(algo, size)
	if have > 0 {
		if _, err := io.Copy(h, io.NewSectionReader(fh, 0, have)); err != nil {
			return resumed, fmt.Errorf("download %s: read the partial file %s: %w", t, part, err)
		}
	}
	if have < size {
		f, err := c.Open(ctx, t.typ, t.repo, t.revision, t.path, size)
		if err != nil {
			return resumed, err
		}
		if _, err := fh.Seek(have, io.SeekStart); err != nil {
			return resumed, fmt.Errorf("download %s: %w", t, err)
		}
		// Bytes already on disk are skipped rather than fetched again; a server that
		// ignores ranges sends them anyway, and they are discarded.
		rr := f.newRangeReader(ctx, have, size, false, math.MaxInt64)
		n, err := io.Copy(io.MultiWriter(fh, h), rr)
		rr.Close()
		if err != nil {
			fh.Sync()
			return resumed, fmt.Errorf("download %s: stopped at byte %d of %d: %w; the partial file %s is kept: run again to resume", t, have+n, size, err, part)
		}
	}
	if err := fh.Sync(); err != nil {
		return resumed, fmt.Errorf("download %s: %w", t, err)
	}
	st, err = fh.Stat()
	if err != nil {
		return resumed, fmt.Errorf("download %s: %w", t, err)
	}
	err = fh.Close()
	fh = nil
	if err != nil {
		return resumed, fmt.Errorf("download %s: %w", t, err)
	}
	if st.Size() != size {
		os.Remove(part)
		return resumed, fmt.Errorf("download %s: got %d bytes, the listing says %d; the partial file was removed: run again (%w)", t, st.Size(), size, ErrIntegrity)
	}
	if algo != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			os.Remove(part)
			return resumed, fmt.Errorf("download %s: the content's %s is %s, the listing says %s; the file was removed: run again, and if it persists the Hub's copy or a proxy is corrupting it (%w)", t, algo, got, want, ErrIntegrity)
		}
	}
	return resumed, nil
}

// newHash returns the hash that verifies content of the given algorithm ("" = none).
func newHash(algo string, size int64) hash.Hash {
	switch algo {
	case "sha256":
		return sha256.New()
	case "git-sha1":
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", size)
		return h
	}
	return nopHash{}
}

type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 64 }

// VerifyFile checks a local file against its listing: size, then hash (see Download). The
// error wraps fs.ErrNotExist when the file is missing and ErrIntegrity when it differs.
func VerifyFile(path string, e Entry) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("verify %s: not a regular file (%w)", path, fs.ErrInvalid)
	}
	if st.Size() != e.FileSize() {
		return fmt.Errorf("verify %s: %d bytes, the listing of %s says %d (%w)", path, st.Size(), e.Path, e.FileSize(), ErrIntegrity)
	}
	algo, want := e.ContentHash()
	if algo == "" {
		return nil
	}
	h := newHash(algo, st.Size())
	if _, err := io.Copy(h, fh); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("verify %s: %s %s, the listing of %s says %s (%w)", path, algo, got, e.Path, want, ErrIntegrity)
	}
	return nil
}
