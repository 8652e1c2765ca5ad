package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// findFormat is find's -printf format for one file: size, modification time (seconds with a
// fraction), permission bits, type, path below the starting point, NUL-terminated so that
// any name (newlines, tabs) passes.
const findFormat = `%s\t%T@\t%m\t%y\t%P\0`

// parseFind parses NUL-terminated records of findFormat.
func parseFind(out []byte) ([]FileInfo, error) {
	var files []FileInfo
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		f := strings.SplitN(string(rec), "\t", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("find: bad record %q", rec)
		}
		size, err1 := strconv.ParseInt(f[0], 10, 64)
		mtime, err2 := parseFindTime(f[1])
		mode, err3 := strconv.ParseUint(f[2], 8, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("find: bad record %q", rec)
		}
		fm := fs.FileMode(mode) & fs.ModePerm
		if f[3] == "d" {
			fm |= fs.ModeDir
		}
		files = append(files, FileInfo{Path: f[4], Size: size, ModTime: mtime, Mode: fm})
	}
	return files, nil
}

// parseFindTime parses %T@ ("1767225600.1234567890", "1767225600"): whole seconds and up to
// nine digits of fraction, exactly (a float64 would round the nanoseconds).
func parseFindTime(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var nsec int64
	if frac != "" {
		if strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, fmt.Errorf("bad time %q", s)
		}
		nsec, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if strings.HasPrefix(whole, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec), nil
}

// Exit codes of walkCommand.
const (
	exitNotDir = 45
	exitNoFind = 46 // no find, or one without -printf (not GNU find)
)

// errFindUnusable: the remote find cannot list the tree (missing, not GNU find, or output that
// does not parse, such as a login script's noise on standard output).
var errFindUnusable = errors.New("the remote find cannot list the tree (GNU find with -printf is needed)")

// findArg quotes p as a starting point of find: relative to the login directory, with "./"
// before a leading "-" so that it is not read as an option.
func findArg(p string) string {
	p = sftpPath(p)
	if strings.HasPrefix(p, "-") {
		p = "./" + p
	}
	return Quote(p)
}

// walkCommand lists the regular files below root and the symbolic links to regular files
// (find -L), pruning symbolic links to directories (-xtype l), in one command.
func walkCommand(root string) string {
	p := findArg(root)
	return fmt.Sprintf("[ -e %s ] || exit %d; [ -d %s ] || exit %d; find %s -maxdepth 0 -printf '' >/dev/null 2>&1 || exit %d; "+
		"exec find -L %s -mindepth 1 \\( -type d -xtype l -prune \\) -o -type f -printf '%s'",
		p, exitNotExist, p, exitNotDir, p, exitNoFind, p, findFormat)
}

// findWalk is Walk with one remote command, through run (a transport's Run): a missing root
// gives fs.ErrNotExist, a root that is not a directory ENOTDIR, and a find that cannot do it
// an error matching errFindUnusable. Paths are relative slash paths, sorted.
func findWalk(ctx context.Context, run func(ctx context.Context, command string, stdin io.Reader) (*Result, error), where, root string) ([]FileInfo, error) {
	res, err := run(ctx, walkCommand(root), nil)
	if err != nil {
		return nil, err
	}
	switch res.ExitCode {
	case 0:
	case exitNotExist:
		return nil, &fs.PathError{Op: "walk", Path: root, Err: fs.ErrNotExist}
	case exitNotDir:
		return nil, &fs.PathError{Op: "walk", Path: root, Err: syscall.ENOTDIR}
	case exitNoFind, 127:
		return nil, fmt.Errorf("walk %s on %s: %w", root, where, errFindUnusable)
	default:
		return nil, &ExitError{Command: "find " + root, Result: res, Where: where}
	}
	files, err := parseFind(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("walk %s on %s: %v: %w", root, where, err, errFindUnusable)
	}
	slices.SortFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}
