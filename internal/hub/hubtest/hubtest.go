// Package hubtest is a fake Hugging Face Hub for tests and benchmarks. It speaks the parts
// of the public Hub protocol that beans-slurm uses, including their failures:
//
//   - the revision API   GET  /api/{datasets|models|spaces}/{owner}/{name}/revision/{rev}
//   - the tree API       GET  /api/{type}/{owner}/{name}/tree/{rev}[/{path}]?recursive=true,
//     paginated with a cursor and a `Link: <…>; rel="next"` header
//   - file downloads     HEAD/GET /[datasets/|spaces/]{owner}/{name}/resolve/{rev}/{path},
//     with single byte ranges (`bytes=a-b`, `bytes=a-`, `bytes=-n`) answered 206 with a
//     Content-Range, 416 when unsatisfiable, and the headers X-Repo-Commit, ETag,
//     X-Linked-Etag and X-Linked-Size as the real Hub sends them
//   - optionally, LFS files answered with a 302 to a second server on another host name (a
//     "CDN") with signed, expirable URLs; the CDN records whether it received a token
//   - gated repositories (401 without a token, 403 with a token that was not granted access),
//     unknown repositories (401 anonymous, 404 with a token), X-Error-Code headers
//   - injected failures: 429 with Retry-After, 5xx, dropped connections, a server that
//     ignores Range, a server that answers 416, a wrong Content-Range, corrupted content
//
// Everything is deterministic: no behaviour depends on time. The server counts requests and
// body bytes per file so that tests can assert what was transferred.
package hubtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// TB is the part of testing.TB that New uses; a *testing.T, *testing.B or nil will do.
type TB interface {
	Helper()
	Cleanup(func())
}

// RangeMode says how byte ranges are answered.
type RangeMode int

const (
	// RangeOK answers single ranges with 206 and a Content-Range, as the Hub and its CDN do.
	RangeOK RangeMode = iota
	// RangeIgnore answers every GET with 200 and the whole file, as a server or proxy that
	// does not support ranges does.
	RangeIgnore
	// Range416 answers every range request with 416 Range Not Satisfiable.
	Range416
	// RangeWrongContentRange answers 206 with the bytes asked for but a Content-Range that
	// names other bytes (a broken cache in between).
	RangeWrongContentRange
)

// Default page size of the tree API (the Hub's own is 1000 without expand=true).
const DefaultPageSize = 1000

// Request is one request the fake received, for tests to inspect.
type Request struct {
	Server string // "hub" or "cdn"
	Method string
	Host   string
	Path   string // unescaped URL path
	Query  string
	Range  string // the Range header, if any
	Auth   bool   // whether an Authorization header was present
	Status int
	Bytes  int64 // body bytes written
}

// FileStats counts what was served for one file (hub and CDN together).
type FileStats struct {
	Requests int64 // HEAD and GET requests that reached the file, redirects included
	Bytes    int64 // bytes of the file's content written (error bodies not counted)
}

type file struct {
	path   string
	size   int64
	data   []byte // or:
	disk   string // a path on disk, read with ReadAt
	sha256 string
	gitOID string
	lfs    bool
}

func (f *file) reader() (io.ReaderAt, func(), error) {
	if f.disk == "" {
		return bytes.NewReader(f.data), func() {}, nil
	}
	fh, err := os.Open(f.disk)
	if err != nil {
		return nil, nil, err
	}
	return fh, func() { fh.Close() }, nil
}

type revision struct {
	name   string
	files  map[string]*file
	commit string
}

type repo struct {
	typ, id string
	revs    map[string]*revision
	gated   bool
	tokens  map[string]bool
}

type failure struct {
	match      string // file path, "" for any request
	status     int
	retryAfter string
	dropAfter  int64 // >= 0: write this many bytes of the answer and drop the connection
	count      int
}

type signed struct {
	repo, rev, path string
	gen             int
}

// Server is a fake Hub. Configure it with its methods, which are safe to call at any time.
type Server struct {
	// URL is the Hub endpoint, e.g. http://127.0.0.1:PORT (pass it as HF_ENDPOINT).
	URL string
	// CDNURL is the base URL of the CDN server, on another host name.
	CDNURL string

	hub, cdn *httptest.Server

	mu          sync.Mutex
	repos       map[string]*repo
	pageSize    int
	redirect    bool
	cdnHost     string
	rangeMode   RangeMode
	lfsMin      int64
	failures    []*failure
	corrupt     map[string]bool
	signed      map[string]signed
	gen         int
	nextSig     int
	log         []*Request
	stats       map[string]*FileStats
	cdnAuthSeen int
}

// New starts a fake Hub and its CDN on 127.0.0.1. With a non-nil tb the servers are closed
// when the test ends; otherwise call Close.
func New(tb TB) *Server {
	if tb != nil {
		tb.Helper()
	}
	s := &Server{
		repos:    map[string]*repo{},
		pageSize: DefaultPageSize,
		cdnHost:  "localhost",
		lfsMin:   10 << 20,
		corrupt:  map[string]bool{},
		signed:   map[string]signed{},
		stats:    map[string]*FileStats{},
	}
	s.hub = httptest.NewServer(http.HandlerFunc(s.serveHub))
	s.cdn = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	s.URL = s.hub.URL
	s.CDNURL = s.cdnURL()
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// Close stops both servers.
func (s *Server) Close() {
	s.hub.Close()
	s.cdn.Close()
}

func (s *Server) cdnURL() string {
	_, port, _ := net.SplitHostPort(s.cdn.Listener.Addr().String())
	return "http://" + net.JoinHostPort(s.cdnHost, port)
}

// HTTPClient returns a client that connects every host name to 127.0.0.1 on the port asked
// for and never uses a proxy, so tests may give the servers any host names (see SetCDNHost
// and EndpointAs).
func (s *Server) HTTPClient() *http.Client {
	d := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	return &http.Client{Transport: tr}
}

// EndpointAs returns the Hub's URL with another host name (to be used with HTTPClient).
func (s *Server) EndpointAs(host string) string {
	_, port, _ := net.SplitHostPort(s.hub.Listener.Addr().String())
	return "http://" + net.JoinHostPort(host, port)
}

// SetCDNHost sets the host name used in redirects to the CDN ("localhost" by default, which
// differs from the Hub's "127.0.0.1"). Names other than localhost need HTTPClient.
func (s *Server) SetCDNHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cdnHost = host
	s.CDNURL = s.cdnURL()
}

// SetPageSize sets the number of entries per page of the tree API.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 {
		n = 1
	}
	s.pageSize = n
}

// SetRedirect makes resolve answer LFS files with a 302 to a signed URL on the CDN.
func (s *Server) SetRedirect(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = on
}

// SetRangeMode sets how ranges are answered, by the Hub and the CDN alike.
func (s *Server) SetRangeMode(m RangeMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rangeMode = m
}

// SetLFSThreshold sets the size from which files are stored as LFS files (10 MiB by
// default); Parquet, Arrow and other binary formats are LFS files whatever their size, as
// with the Hub's default .gitattributes.
func (s *Server) SetLFSThreshold(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lfsMin = n
}

// Gate makes a repository gated: anonymous requests get 401, requests with a token not in
// tokens get 403.
func (s *Server) Gate(repoID string, tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(repoID, true)
	r.gated = true
	for _, t := range tokens {
		r.tokens[t] = true
	}
}

// Fail makes the next count requests for the file at path ("" for any request, listings
// included) answer status, with a Retry-After header when retryAfter is not empty.
func (s *Server) Fail(filePath string, status, count int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{match: filePath, status: status, retryAfter: retryAfter, dropAfter: -1, count: count})
}

// Drop makes the next count body-carrying answers for the file at path write only n bytes
// of their body and then close the connection.
func (s *Server) Drop(filePath string, n int64, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{match: filePath, dropAfter: n, count: count})
}

// Corrupt makes the file at path (in every repository and revision) be served with one
// byte changed, while its listing keeps the true hashes.
func (s *Server) Corrupt(filePath string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[filePath] = on
}

// ExpireSignedURLs makes every CDN URL issued so far answer 403, as expired signatures do.
func (s *Server) ExpireSignedURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
}

// AddFile adds (or replaces) a file in a revision (branch) of a repository, creating both
// as needed. repo is "owner/name" for a dataset, or "models/owner/name", "spaces/owner/name".
func (s *Server) AddFile(repoID, rev, filePath string, data []byte) {
	f := &file{path: filePath, size: int64(len(data)), data: bytes.Clone(data)}
	h := sha256.Sum256(data)
	f.sha256 = hex.EncodeToString(h[:])
	f.gitOID = gitBlobSHA1(bytes.NewReader(data), f.size)
	s.add(repoID, rev, f)
}

// AddDiskFile adds a file whose content is read from diskPath when served (it is hashed
// once now and never held in memory).
func (s *Server) AddDiskFile(repoID, rev, filePath, diskPath string) error {
	fh, err := os.Open(diskPath)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return err
	}
	f := &file{path: filePath, size: st.Size(), disk: diskPath, sha256: hex.EncodeToString(h.Sum(nil))}
	f.gitOID = gitBlobSHA1(io.NewSectionReader(fh, 0, f.size), f.size)
	s.add(repoID, rev, f)
	return nil
}

func gitBlobSHA1(r io.Reader, size int64) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", size)
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

func lfsByName(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".parquet", ".arrow", ".bin", ".npy", ".npz", ".wav", ".flac", ".mp3", ".tar", ".gz", ".zip", ".safetensors", ".pt":
		return true
	}
	return false
}

func (s *Server) add(repoID, rev string, f *file) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.path = strings.Trim(f.path, "/")
	f.lfs = lfsByName(f.path) || f.size >= s.lfsMin
	r := s.repo(repoID, true)
	rv := r.revs[rev]
	if rv == nil {
		rv = &revision{name: rev, files: map[string]*file{}}
		r.revs[rev] = rv
	}
	rv.files[f.path] = f
	rv.commit = commitOf(r.id, rv)
}

// Commit returns the commit sha of a revision ("" when there is none).
func (s *Server) Commit(repoID, rev string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(repoID, false)
	if r == nil || r.revs[rev] == nil {
		return ""
	}
	return r.revs[rev].commit
}

// Hashes returns the sha256 and git blob sha1 of a file as listed.
func (s *Server) Hashes(repoID, rev, filePath string) (sha256, gitOID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(repoID, false)
	if r == nil || r.revs[rev] == nil || r.revs[rev].files[filePath] == nil {
		return "", ""
	}
	f := r.revs[rev].files[filePath]
	return f.sha256, f.gitOID
}

func commitOf(repoID string, rv *revision) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%s\x00", repoID, rv.name)
	names := make([]string, 0, len(rv.files))
	for p := range rv.files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", p, rv.files[p].gitOID)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func splitRepoID(id string) (typ, name string) {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) == 3 {
		switch parts[0] {
		case "datasets", "models", "spaces":
			return parts[0], parts[1] + "/" + parts[2]
		}
	}
	return "datasets", strings.Trim(id, "/")
}

// repo returns the repository; s.mu must be held.
func (s *Server) repo(id string, create bool) *repo {
	typ, name := splitRepoID(id)
	key := typ + "/" + name
	r := s.repos[key]
	if r == nil && create {
		r = &repo{typ: typ, id: name, revs: map[string]*revision{}, tokens: map[string]bool{}}
		s.repos[key] = r
	}
	return r
}

// Requests returns a copy of the log of requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		out[i] = *r
		if out[i].Status == 0 {
			out[i].Status = http.StatusOK
		}
	}
	return out
}

// ResetStats forgets the request log and the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
	s.stats = map[string]*FileStats{}
	s.cdnAuthSeen = 0
}

// Stats returns what was served for one file, over all repositories and revisions.
func (s *Server) Stats(filePath string) FileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stats[filePath]; st != nil {
		return *st
	}
	return FileStats{}
}

// TotalBytes is the number of body bytes served for files, by the Hub and the CDN.
func (s *Server) TotalBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, st := range s.stats {
		n += st.Bytes
	}
	return n
}

// CDNAuthSeen is the number of requests the CDN received with an Authorization header (it
// must stay 0: tokens must not leak to other hosts).
func (s *Server) CDNAuthSeen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cdnAuthSeen
}

// recorder logs a request and counts its answer as it is written, so that the counts are
// complete by the time the client has received the last byte.
type recorder struct {
	http.ResponseWriter
	s       *Server
	req     *Request
	st      *FileStats
	content bool // the body being written is file content (counted in FileStats.Bytes)
}

func (s *Server) begin(server string, w http.ResponseWriter, r *http.Request) *recorder {
	s.mu.Lock()
	defer s.mu.Unlock()
	auth := r.Header.Get("Authorization") != ""
	req := &Request{Server: server, Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery,
		Range: r.Header.Get("Range"), Auth: auth}
	s.log = append(s.log, req)
	if server == "cdn" && auth {
		s.cdnAuthSeen++
	}
	return &recorder{ResponseWriter: w, s: s, req: req}
}

// setFile attributes the request to a file.
func (r *recorder) setFile(filePath string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	st := r.s.stats[filePath]
	if st == nil {
		st = &FileStats{}
		r.s.stats[filePath] = st
	}
	st.Requests++
	r.st = st
}

func (r *recorder) WriteHeader(code int) {
	r.s.mu.Lock()
	if r.req.Status == 0 {
		r.req.Status = code
	}
	r.s.mu.Unlock()
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.s.mu.Lock()
	if r.req.Status == 0 {
		r.req.Status = http.StatusOK
	}
	r.s.mu.Unlock()
	n, err := r.ResponseWriter.Write(p)
	r.s.mu.Lock()
	r.req.Bytes += int64(n)
	if r.st != nil && r.content {
		r.st.Bytes += int64(n)
	}
	r.s.mu.Unlock()
	return n, err
}

// Flush lets dropped answers reach the client before the connection closes.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// takeFailure pops an injected failure of one kind (a status, or a dropped connection)
// matching the file path; s.mu must not be held.
func (s *Server) takeFailure(filePath string, drop bool) *failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if f.match != "" && f.match != filePath {
			continue
		}
		if (f.dropAfter >= 0) != drop {
			continue
		}
		cp := *f
		f.count--
		if f.count <= 0 {
			s.failures = append(s.failures[:i], s.failures[i+1:]...)
		}
		return &cp
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// unescapeSegments splits an escaped path into unescaped segments.
func unescapeSegments(escaped string) ([]string, bool) {
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

func typeSingular(typ string) string { return strings.TrimSuffix(typ, "s") }

// lookup finds the repository and revision and checks access; it writes the error answer
// and returns ok=false when the request cannot go on.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, typ, id, rev string) (*repo, *revision, bool) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	rp := s.repos[typ+"/"+id]
	var rv *revision
	var gated, granted bool
	if rp != nil {
		gated, granted = rp.gated, rp.tokens[token]
		rv = rp.revs[rev]
		if rv == nil && len(rev) == 40 {
			for _, x := range rp.revs {
				if x.commit == rev {
					rv = x
				}
			}
		}
	}
	s.mu.Unlock()
	kind := typeSingular(typ)
	switch {
	case rp == nil && token == "":
		writeError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return nil, nil, false
	case rp == nil:
		writeError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		return nil, nil, false
	case gated && token == "":
		writeError(w, http.StatusUnauthorized, "GatedRepo", fmt.Sprintf("Access to %s %s is restricted. You must have access to it and be authenticated to access it. Please log in.", kind, id))
		return nil, nil, false
	case gated && !granted:
		writeError(w, http.StatusForbidden, "GatedRepo", fmt.Sprintf("Access to %s %s is restricted and you are not in the authorized list. Visit the %s page to ask for access.", kind, id, kind))
		return nil, nil, false
	case rv == nil:
		writeError(w, http.StatusNotFound, "RevisionNotFound", fmt.Sprintf("Invalid rev id: %s", rev))
		return nil, nil, false
	}
	return rp, rv, true
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	s.hubRoute(s.begin("hub", w, r), r)
}

// hubRoute answers a Hub request.
func (s *Server) hubRoute(w *recorder, r *http.Request) {
	segs, ok := unescapeSegments(r.URL.EscapedPath())
	if !ok {
		writeError(w, http.StatusBadRequest, "", "bad path")
		return
	}
	if len(segs) > 0 && segs[0] == "api" {
		s.serveAPI(w, r, segs[1:])
		return
	}
	typ := "models"
	if len(segs) > 0 && (segs[0] == "datasets" || segs[0] == "spaces") {
		typ, segs = segs[0], segs[1:]
	}
	if len(segs) < 5 || segs[2] != "resolve" {
		writeError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	id, rev, filePath := segs[0]+"/"+segs[1], segs[3], strings.Join(segs[4:], "/")
	w.setFile(filePath)
	if f := s.takeFailure(filePath, false); f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		writeError(w, f.status, "", http.StatusText(f.status))
		return
	}
	rp, rv, ok := s.lookup(w, r, typ, id, rev)
	if !ok {
		return
	}
	s.mu.Lock()
	f := rv.files[filePath]
	redirect := s.redirect && f != nil && f.lfs
	s.mu.Unlock()
	if f == nil {
		writeError(w, http.StatusNotFound, "EntryNotFound", fmt.Sprintf("%s does not exist on %q", filePath, rev))
		return
	}
	h := w.Header()
	h.Set("X-Repo-Commit", rv.commit)
	h.Set("Accept-Ranges", "bytes")
	if f.lfs {
		h.Set("X-Linked-Etag", strconv.Quote(f.sha256))
		h.Set("X-Linked-Size", strconv.FormatInt(f.size, 10))
		h.Set("ETag", strconv.Quote(f.sha256))
	} else {
		h.Set("ETag", strconv.Quote(f.gitOID))
	}
	if redirect {
		s.mu.Lock()
		s.nextSig++
		sig := fmt.Sprintf("%d-%x", s.nextSig, sha256.Sum256([]byte(f.sha256+strconv.Itoa(s.nextSig))))
		s.signed[sig] = signed{repo: typ + "/" + rp.id, rev: rv.name, path: filePath, gen: s.gen}
		loc := s.CDNURL + "/repos/" + f.sha256[:2] + "/" + f.sha256 + "?X-Amz-Signature=" + sig
		s.mu.Unlock()
		h.Set("Location", loc)
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusFound)
		return
	}
	s.serveContent(w, r, f)
	return
}

type treeEntry struct {
	Type string `json:"type"`
	OID  string `json:"oid"`
	Size int64  `json:"size"`
	Path string `json:"path"`
	LFS  *struct {
		OID         string `json:"oid"`
		Size        int64  `json:"size"`
		PointerSize int64  `json:"pointerSize"`
	} `json:"lfs,omitempty"`
}

func (s *Server) serveAPI(w *recorder, r *http.Request, segs []string) {
	if f := s.takeFailure("", false); f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		writeError(w, f.status, "", http.StatusText(f.status))
		return
	}
	if len(segs) < 5 || (segs[0] != "datasets" && segs[0] != "models" && segs[0] != "spaces") {
		writeError(w, http.StatusNotFound, "", "Not Found")
		return
	}
	typ, id, op, rev := segs[0], segs[1]+"/"+segs[2], segs[3], segs[4]
	rp, rv, ok := s.lookup(w, r, typ, id, rev)
	if !ok {
		return
	}
	switch op {
	case "revision":
		if len(segs) != 5 {
			break
		}
		s.mu.Lock()
		var siblings []map[string]string
		for p := range rv.files {
			siblings = append(siblings, map[string]string{"rfilename": p})
		}
		body := map[string]any{"id": rp.id, "sha": rv.commit, "private": false, "gated": rp.gated, "siblings": siblings}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
		return
	case "tree":
		s.serveTree(w, r, rp, rv, strings.Join(segs[5:], "/"))
		return
	}
	writeError(w, http.StatusNotFound, "", "Not Found")
	return
}

func (s *Server) serveTree(w *recorder, r *http.Request, rp *repo, rv *revision, dir string) {
	recursive := r.URL.Query().Get("recursive") == "true" || r.URL.Query().Get("recursive") == "1"
	s.mu.Lock()
	pageSize := s.pageSize
	dirs := map[string]bool{}
	var entries []treeEntry
	for p, f := range rv.files {
		if dir != "" && !strings.HasPrefix(p, dir+"/") {
			continue
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if dir == "" {
			rel = p
		}
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			if !recursive && i > 1 {
				break
			}
			d := path.Join(append([]string{dir}, parts[:i]...)...)
			dirs[d] = true
		}
		if !recursive && len(parts) > 1 {
			continue
		}
		e := treeEntry{Type: "file", OID: f.gitOID, Size: f.size, Path: p}
		if f.lfs {
			// An LFS file's git blob is its pointer; the Hub lists the pointer's oid and the
			// real size.
			e.OID = gitBlobSHA1(strings.NewReader(pointer(f)), int64(len(pointer(f))))
			e.LFS = &struct {
				OID         string `json:"oid"`
				Size        int64  `json:"size"`
				PointerSize int64  `json:"pointerSize"`
			}{f.sha256, f.size, int64(len(pointer(f)))}
		}
		entries = append(entries, e)
	}
	s.mu.Unlock()
	if dir != "" && len(entries) == 0 && len(dirs) == 0 {
		writeError(w, http.StatusNotFound, "EntryNotFound", fmt.Sprintf("%s does not exist on %q", dir, rv.name))
		return
	}
	for d := range dirs {
		h := sha1.Sum([]byte(d))
		entries = append(entries, treeEntry{Type: "directory", OID: hex.EncodeToString(h[:]), Path: d})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(entries) {
			writeError(w, http.StatusBadRequest, "", "Invalid cursor")
			return
		}
		start = n
	}
	end := min(start+pageSize, len(entries))
	if end < len(entries) {
		q := r.URL.Query()
		q.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
		next := "http://" + r.Host + r.URL.EscapedPath() + "?" + q.Encode()
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next))
	}
	w.Header().Set("Content-Type", "application/json")
	page := entries[start:end]
	if page == nil {
		page = []treeEntry{}
	}
	json.NewEncoder(w).Encode(page)
}

func pointer(f *file) string {
	return fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha256, f.size)
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.cdnRoute(s.begin("cdn", w, r), r)
}

func (s *Server) cdnRoute(w *recorder, r *http.Request) {
	sig := r.URL.Query().Get("X-Amz-Signature")
	s.mu.Lock()
	sg, ok := s.signed[sig]
	expired := ok && sg.gen != s.gen
	var f *file
	if ok {
		if rp := s.repos[sg.repo]; rp != nil && rp.revs[sg.rev] != nil {
			f = rp.revs[sg.rev].files[sg.path]
		}
	}
	s.mu.Unlock()
	if !ok || f == nil {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
		return
	}
	w.setFile(sg.path)
	if expired {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
		return
	}
	if fl := s.takeFailure(sg.path, false); fl != nil {
		if fl.retryAfter != "" {
			w.Header().Set("Retry-After", fl.retryAfter)
		}
		w.WriteHeader(fl.status)
		return
	}
	w.Header().Set("ETag", strconv.Quote(fmt.Sprintf("%x", sha1.Sum([]byte(f.sha256)))))
	w.Header().Set("Accept-Ranges", "bytes")
	s.serveContent(w, r, f)
	return
}

// parseRange parses a single byte range; ok=false means "ignore the header" (absent,
// malformed or several ranges), unsat=true means 416.
func parseRange(h string, size int64) (start, end int64, ok, unsat bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, false, true
		}
		return max(0, size-n), size - 1, true, false
	}
	s, err := strconv.ParseInt(a, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false, false
	}
	e := size - 1
	if b != "" {
		e, err = strconv.ParseInt(b, 10, 64)
		if err != nil || e < s {
			return 0, 0, false, false
		}
	}
	if s >= size {
		return 0, 0, false, true
	}
	return s, min(e, size-1), true, false
}

func (s *Server) serveContent(w *recorder, r *http.Request, f *file) {
	s.mu.Lock()
	mode := s.rangeMode
	corrupt := s.corrupt[f.path]
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	start, end := int64(0), f.size-1
	status := http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" && mode != RangeIgnore {
		a, b, ok, unsat := parseRange(rh, f.size)
		if mode == Range416 {
			unsat = true
		}
		if unsat {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", f.size))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "", "Requested Range Not Satisfiable")
			return
		}
		if ok {
			start, end, status = a, b, http.StatusPartialContent
			cr := fmt.Sprintf("bytes %d-%d/%d", a, b, f.size)
			if mode == RangeWrongContentRange {
				cr = fmt.Sprintf("bytes %d-%d/%d", a+1, b+1, f.size)
			}
			h.Set("Content-Range", cr)
		}
	}
	n := end - start + 1
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	drop := s.takeFailure(f.path, true)
	ra, done, err := f.reader()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	defer done()
	w.content = true
	w.WriteHeader(status)
	var body io.Reader = io.NewSectionReader(ra, start, n)
	if corrupt {
		body = &corrupter{r: body, at: f.size / 2, pos: start}
	}
	if drop != nil {
		io.CopyN(w, body, min(drop.dropAfter, n))
		w.Flush()
		panic(http.ErrAbortHandler)
	}
	io.Copy(w, body)
}

// corrupter flips the byte at absolute offset at.
type corrupter struct {
	r       io.Reader
	at, pos int64
}

func (c *corrupter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.at >= c.pos && c.at < c.pos+int64(n) {
		p[c.at-c.pos] ^= 0xff
	}
	c.pos += int64(n)
	return n, err
}
