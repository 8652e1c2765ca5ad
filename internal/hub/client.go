// Package hub is a client for the Hugging Face Hub over plain HTTP: revision lookup, the
// tree API (paginated listings), and files read with HTTP range requests or downloaded
// whole, resumably and verified.
//
// The client follows the Hub's protocol as huggingface_hub does:
//
//   - The endpoint is $HF_ENDPOINT or https://huggingface.co; the token comes from HF_TOKEN
//     or a token file (see TokenFromEnv) and is sent as "Authorization: Bearer …".
//   - Redirects are followed by hand. The token is sent only to the host it was meant for:
//     at the first redirect to another host (any change of scheme, host name or port,
//     subdomains included, where Go's http.Client would keep it) it is dropped for the rest
//     of the chain. Large files redirect to signed CDN URLs; Open learns that URL once with a
//     HEAD request and reads from it directly; a 403 from a signed URL (expired) makes the
//     File resolve it again, once.
//   - Every range answer is checked: 206 with a Content-Range naming exactly the bytes asked
//     for. A 200 to a range request (a server or proxy that ignores Range) carries the whole
//     file: the client then skips to the offset when that costs at most Options.MaxSkip bytes
//     (16 MiB by default), and otherwise fails with ErrRangeIgnored rather than transfer
//     gigabytes to read a few bytes. 416 fails with ErrRangeNotSatisfiable naming the file
//     and the range.
//   - Connection errors, stalls, 429 (honouring Retry-After) and 5xx answers are retried with
//     exponential backoff and jitter, a bounded number of times. 401/403 and 404 are not
//     retried; their errors say what to do (ErrAuth, ErrNotFound).
//   - Proxies are taken from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) as Go's
//     default client does: on clusters the Hub is usually reached through the site proxy.
//
// Every wait is bounded: connections by the transport's dial and TLS timeouts, answers and
// body reads by Options.IdleTimeout without progress, retries by Options.Retries.
package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/retry"
	"github.com/beans-slurm/beans-slurm/internal/version"
)

// DefaultEndpoint is the public Hub.
const DefaultEndpoint = "https://huggingface.co"

// Defaults of Options.
const (
	DefaultRetries     = 5
	DefaultIdleTimeout = 2 * time.Minute
	DefaultMaxSkip     = 16 << 20
)

const (
	baseBackoff   = 500 * time.Millisecond
	maxBackoff    = 30 * time.Second
	maxRetryAfter = 2 * time.Minute
	maxRedirects  = 10
	maxPages      = 100_000
	maxAPIBody    = 256 << 20
)

// Errors that callers may test with errors.Is.
var (
	// ErrAuth: the Hub refused access (401/403): no token, a wrong token, or the dataset's
	// terms not accepted.
	ErrAuth = errors.New("access refused")
	// ErrNotFound: the repository, the revision or the file does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrRangeNotSatisfiable: the server answered 416 to a range request.
	ErrRangeNotSatisfiable = errors.New("range not satisfiable")
	// ErrRangeIgnored: the server answered a range request with the whole file, and skipping
	// to the offset would cost more than Options.MaxSkip.
	ErrRangeIgnored = errors.New("server ignores byte ranges")
	// ErrBadAnswer: an answer that does not match the request (a wrong Content-Range, a
	// wrong length, a body that is not what the API documents).
	ErrBadAnswer = errors.New("unexpected answer")
	// ErrIntegrity: content whose size or hash does not match the Hub's listing, or a file
	// that changed on the Hub while it was being read.
	ErrIntegrity = errors.New("content does not match the Hub's listing")
	// ErrUnavailable: the Hub kept failing (connection errors, 429 or 5xx) after all retries.
	ErrUnavailable = errors.New("hub unavailable")
)

// Options configure a Client. The zero value reads the endpoint and the token from the
// environment.
type Options struct {
	// Endpoint is the Hub's base URL ("" = $HF_ENDPOINT, else https://huggingface.co).
	Endpoint string
	// Token is sent as a bearer token ("" = TokenFromEnv, unless Anonymous).
	Token string
	// Anonymous sends no token at all, whatever the environment says.
	Anonymous bool
	// HTTPClient carries the requests (nil = a client like http.DefaultClient, proxies from
	// the environment). Its CheckRedirect is replaced: the Client follows redirects itself.
	HTTPClient *http.Client
	// Retries is how many times a failed request is retried (0 = DefaultRetries; negative
	// = never).
	Retries int
	// IdleTimeout bounds the wait for an answer and between two reads of a body that make
	// progress (0 = DefaultIdleTimeout). A stalled request is cancelled and retried.
	IdleTimeout time.Duration
	// MaxSkip is how many bytes a File reads and discards to reach an offset when the server
	// ignores Range (0 = DefaultMaxSkip; negative = never: fail at once).
	MaxSkip int64
	// Logger receives warnings (token file permissions, retries); nil = no logging. The
	// token warning is also available from TokenWarning.
	Logger *log.Logger
}

// Client talks to one Hub endpoint. It is safe for concurrent use.
type Client struct {
	endpoint     *url.URL
	token        string
	tokenSource  string
	tokenWarning string
	hc           *http.Client
	retries      int
	idle         time.Duration
	maxSkip      int64
	log          *log.Logger
	userAgent    string
	// sleep waits between attempts; tests replace it to record the delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Client. It fails on a malformed endpoint or an unreadable token file.
func New(opts Options) (*Client, error) {
	ep := opts.Endpoint
	if ep == "" {
		ep = os.Getenv("HF_ENDPOINT")
	}
	if ep == "" {
		ep = DefaultEndpoint
	}
	u, err := url.Parse(strings.TrimRight(ep, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hub endpoint %q is not an http(s) URL: set HF_ENDPOINT to a URL like %s", ep, DefaultEndpoint)
	}
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		endpoint:  u,
		retries:   opts.Retries,
		idle:      opts.IdleTimeout,
		maxSkip:   opts.MaxSkip,
		log:       opts.Logger,
		userAgent: "beans-slurm/" + version.Version,
		sleep:     retry.Sleep,
	}
	if c.retries == 0 {
		c.retries = DefaultRetries
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.idle <= 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.maxSkip == 0 {
		c.maxSkip = DefaultMaxSkip
	} else if c.maxSkip < 0 {
		c.maxSkip = 0
	}
	if c.log == nil {
		c.log = log.New(io.Discard)
	}
	switch {
	case opts.Anonymous:
	case opts.Token != "":
		c.token, c.tokenSource = opts.Token, "Options.Token"
	default:
		tok, src, warn, err := TokenFromEnv()
		if err != nil {
			return nil, err
		}
		c.token, c.tokenSource, c.tokenWarning = tok, src, warn
		if warn != "" {
			c.log.Warn(warn)
		}
	}
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.hc = &hc
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		c.hc = &http.Client{Transport: tr}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// Endpoint returns the Hub's base URL.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// TokenSource says where the token came from ("HF_TOKEN", a file path, "Options.Token"),
// or "" when no token is sent.
func (c *Client) TokenSource() string { return c.tokenSource }

// TokenWarning is the warning about the token file, if any (see TokenFromEnv).
func (c *Client) TokenWarning() string { return c.tokenWarning }

// target names what a request is about, for URLs and error messages.
type target struct {
	typ      string // "datasets", "models", "spaces"
	repo     string
	revision string
	path     string
}

func (c *Client) target(repoType, repo, revision, path string) (target, error) {
	var typ string
	switch strings.ToLower(repoType) {
	case "datasets", "dataset":
		typ = "datasets"
	case "models", "model", "":
		typ = "models"
	case "spaces", "space":
		typ = "spaces"
	default:
		return target{}, fmt.Errorf("hub: repository type %q is not one of datasets, models, spaces", repoType)
	}
	repo = strings.Trim(repo, "/")
	parts := strings.Split(repo, "/")
	if repo == "" || len(parts) > 2 {
		return target{}, fmt.Errorf("hub: repository %q is not of the form owner/name", repo)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return target{}, fmt.Errorf("hub: repository %q is not of the form owner/name", repo)
		}
	}
	if revision == "" {
		revision = "main"
	}
	for _, p := range strings.Split(strings.Trim(path, "/"), "/") {
		if p == "." || p == ".." {
			return target{}, fmt.Errorf("hub: path %q must not contain . or .. segments", path)
		}
	}
	return target{typ: typ, repo: repo, revision: revision, path: strings.Trim(path, "/")}, nil
}

func (t target) kind() string { return strings.TrimSuffix(t.typ, "s") }

func (t target) String() string {
	s := fmt.Sprintf("%s %s, revision %s", t.kind(), t.repo, t.revision)
	if t.path != "" {
		s += ", file " + t.path
	}
	return s
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// repoPage is the repository's page on the Hub, where its terms are accepted.
func (c *Client) repoPage(t target) string {
	prefix := "/"
	if t.typ != "models" {
		prefix = "/" + t.typ + "/"
	}
	return c.endpoint.String() + prefix + t.repo
}

// apiURL is {endpoint}/api/{type}/{repo}/{op}/{revision}; the revision is escaped whole, so
// that branch names with slashes (refs/convert/parquet) stay one segment.
func (c *Client) apiURL(t target, op string) string {
	return c.endpoint.String() + "/api/" + t.typ + "/" + escapePath(t.repo) + "/" + op + "/" + url.PathEscape(t.revision)
}

func (c *Client) resolveURL(t target) string {
	prefix := "/"
	if t.typ != "models" {
		prefix = "/" + t.typ + "/"
	}
	return c.endpoint.String() + prefix + escapePath(t.repo) + "/resolve/" + url.PathEscape(t.revision) + "/" + escapePath(t.path)
}

func sameHost(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// redact drops the query of a URL (signed URLs carry credentials in it).
func redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	v := *u
	if v.RawQuery != "" {
		v.RawQuery = "…"
	}
	v.User = nil
	return v.String()
}

// StatusError is an HTTP answer the client could not use. It wraps one of the Err* values.
type StatusError struct {
	Op      string // what was being done: "list", "resolve revision", "open", "read bytes=…"
	Target  string // the repository, revision and file
	URL     string // the URL that answered (query removed)
	Status  int
	Code    string // the Hub's X-Error-Code, if any
	Message string // the Hub's X-Error-Message or an excerpt of the body
	Hint    string // what to do
	kind    error
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %s answered %d %s", e.Op, e.Target, e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		s += " (" + e.Message + ")"
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

func (e *StatusError) Unwrap() error { return e.kind }

// statusError describes an answer; it reads (a little of) and closes the body.
func (c *Client) statusError(op string, t target, resp *http.Response) *StatusError {
	defer resp.Body.Close()
	e := &StatusError{Op: op, Target: t.String(), URL: redact(resp.Request.URL), Status: resp.StatusCode,
		Code: resp.Header.Get("X-Error-Code"), Message: resp.Header.Get("X-Error-Message")}
	if e.Message == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		e.Message = strings.Join(strings.Fields(string(b)), " ")
	}
	onHub := sameHost(resp.Request.URL, c.endpoint)
	tokenState := "no token was sent"
	if c.token != "" {
		tokenState = "the token from " + c.tokenSource + " was sent: check that it is valid and that its account was granted access"
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.kind = ErrAuth
		e.Hint = fmt.Sprintf("set HF_TOKEN, and accept the %s's terms on the Hub (%s); %s", t.kind(), c.repoPage(t), tokenState)
		if e.Code == "RepoNotFound" {
			e.Hint = fmt.Sprintf("%s %s does not exist on %s, or it is private or gated: check the name; %s", t.kind(), t.repo, c.endpoint, e.Hint)
		}
		if !onHub {
			e.Hint = "the download URL the Hub redirected to was refused, also after resolving it again; if this persists, " + e.Hint
		}
	case code == http.StatusNotFound:
		e.kind = ErrNotFound
		switch e.Code {
		case "RepoNotFound":
			e.Hint = fmt.Sprintf("%s %s does not exist on %s: check the repository name", t.kind(), t.repo, c.endpoint)
		case "RevisionNotFound":
			e.Hint = fmt.Sprintf("revision %q does not exist in %s %s: check --revision (a branch, a tag or a full commit sha)", t.revision, t.kind(), t.repo)
		default:
			if t.path != "" {
				e.Hint = fmt.Sprintf("file %q does not exist in %s %s at revision %s: check the path and the revision", t.path, t.kind(), t.repo, t.revision)
			} else {
				e.Hint = fmt.Sprintf("check %s %s and revision %s", t.kind(), t.repo, t.revision)
			}
		}
	case code == http.StatusRequestedRangeNotSatisfiable:
		e.kind = ErrRangeNotSatisfiable
		e.Hint = "the file on the Hub is shorter than expected, or a server in between mishandles ranges; pin --revision to a commit sha and run again, or mirror the files with `beans-slurm data fetch` and use --data-dir"
	case code == http.StatusTooManyRequests || code >= 500:
		e.kind = ErrUnavailable
		e.Hint = "the Hub is rate-limiting or unavailable; wait and run again (downloads resume)"
	default:
		e.kind = ErrBadAnswer
	}
	return e
}

var errStalled = errors.New("no progress")

// request is one logical request (retries and redirects included).
type request struct {
	op        string
	t         target
	method    string
	url       string
	header    http.Header
	auth      bool // send the token to the first hop (if on the endpoint's host)
	stopCross bool // return a redirect to another host instead of following it
	counter   *atomic.Int64
}

// send issues one attempt and follows redirects by hand.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u, err := url.Parse(r.url)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad URL %q: %w", r.op, r.t, r.url, err)
	}
	auth := r.auth && c.token != "" && sameHost(u, c.endpoint)
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, r.method, u.String(), nil)
		if err != nil {
			return nil, noRetry{fmt.Errorf("%s %s: %w", r.op, r.t, err)}
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", c.userAgent)
		if auth {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if r.counter != nil {
			r.counter.Add(1)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return resp, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			resp.Body.Close()
			return nil, noRetry{fmt.Errorf("%s %s: %s redirected to a bad URL %q: %w", r.op, r.t, redact(u), loc, err)}
		}
		if next.Scheme != "http" && next.Scheme != "https" {
			resp.Body.Close()
			return nil, noRetry{fmt.Errorf("%s %s: %s redirected to a non-HTTP URL %s", r.op, r.t, redact(u), redact(next))}
		}
		cross := !sameHost(u, next)
		if cross && r.stopCross {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if hop >= maxRedirects {
			return nil, noRetry{fmt.Errorf("%s %s: more than %d redirects, last to %s", r.op, r.t, maxRedirects, redact(next))}
		}
		if cross {
			auth = false // for good: never send the token to another host
		}
		u = next
	}
}

type noRetry struct{ error }

func (e noRetry) Unwrap() error { return e.error }

// attempt is send bounded by the idle timeout: the request is cancelled when no answer
// comes, or when its body makes no progress, for c.idle.
func (c *Client) attempt(ctx context.Context, r request) (*http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.idle, func() { cancel(errStalled) })
	resp, err := c.send(rctx, r)
	if err != nil {
		timer.Stop()
		cancel(nil)
		if ctx.Err() == nil && errors.Is(context.Cause(rctx), errStalled) {
			err = fmt.Errorf("no answer within %s: %w", c.idle, errStalled)
		}
		return nil, err
	}
	timer.Reset(c.idle)
	resp.Body = &watchedBody{rc: resp.Body, timer: timer, idle: c.idle, cancel: cancel, ctx: rctx}
	return resp, nil
}

type watchedBody struct {
	rc     io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
	ctx    context.Context
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), errStalled) {
		err = fmt.Errorf("no data for %s: %w", b.idle, errStalled)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// retryable tells connection-level errors worth another attempt from the others.
func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var nr noRetry
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &nr), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &rh):
		return false
	case errors.Is(err, ErrBadAnswer), errors.Is(err, ErrIntegrity), errors.Is(err, ErrAuth),
		errors.Is(err, ErrNotFound), errors.Is(err, ErrRangeIgnored), errors.Is(err, ErrRangeNotSatisfiable),
		errors.Is(err, ErrUnavailable):
		return false
	}
	return true
}

func retryStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

// delay is the wait before attempt number attempt+1: Retry-After when the server sent one
// (capped), else exponential backoff with jitter.
func (c *Client) delay(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if ra, ok := retry.After(resp.Header, time.Now()); ok {
			return min(ra, maxRetryAfter)
		}
	}
	return retry.Backoff(attempt, baseBackoff, maxBackoff)
}

// call sends a request, retrying connection errors, stalls, 429 and 5xx. Answers of any
// other status are returned for the caller to interpret.
func (c *Client) call(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, r)
		var last error
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s %s: %w", r.op, r.t, context.Cause(ctx))
			}
			if !retryable(ctx, err) {
				return nil, fmt.Errorf("%s %s: %w", r.op, r.t, err)
			}
			last = err
		case retryStatus(resp.StatusCode):
			last = c.statusError(r.op, r.t, resp)
		default:
			return resp, nil
		}
		if attempt >= c.retries {
			if se, ok := last.(*StatusError); ok {
				se.Hint = fmt.Sprintf("gave up after %d attempts; %s", attempt+1, se.Hint)
				return nil, se
			}
			return nil, fmt.Errorf("%s %s: gave up after %d attempts: %w (%w)", r.op, r.t, attempt+1, last, ErrUnavailable)
		}
		d := c.delay(attempt, resp)
		c.log.Warn("hub: retrying", "op", r.op, "what", r.t.String(), "attempt", attempt+2, "of", c.retries+1, "in", d, "after", last)
		if err := c.sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.op, r.t, err)
		}
	}
}

// getJSON fetches an API document into v.
func (c *Client) getJSON(ctx context.Context, op string, t target, u string, v any) (*http.Response, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad URL %q: %w", op, t, u, err)
	}
	resp, err := c.call(ctx, request{op: op, t: t, method: http.MethodGet, url: u,
		header: http.Header{"Accept": {"application/json"}}, auth: sameHost(pu, c.endpoint)})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(op, t, resp)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAPIBody))
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%s %s: the answer of %s is not the JSON the Hub API documents: %v (%w)", op, t, redact(resp.Request.URL), err, ErrBadAnswer)
	}
	return resp, nil
}

// Resolve returns the commit sha a revision (branch, tag or sha) points to, from
// {endpoint}/api/{type}/{repo}/revision/{revision}. Pin reads to that sha so that a push
// to the repository during a run cannot mix two versions.
func (c *Client) Resolve(ctx context.Context, repoType, repo, revision string) (string, error) {
	t, err := c.target(repoType, repo, revision, "")
	if err != nil {
		return "", err
	}
	var info struct {
		SHA string `json:"sha"`
	}
	if _, err := c.getJSON(ctx, "resolve revision of", t, c.apiURL(t, "revision"), &info); err != nil {
		return "", err
	}
	if !isHex(info.SHA) || len(info.SHA) < 40 {
		return "", fmt.Errorf("resolve revision of %s: the Hub answered sha %q, not a commit sha (%w)", t, info.SHA, ErrBadAnswer)
	}
	return info.SHA, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return s != ""
}

// LFS describes a file stored with Git LFS (or Xet): its sha256 and its size.
type LFS struct {
	OID         string `json:"oid"`
	Size        int64  `json:"size"`
	PointerSize int64  `json:"pointerSize,omitempty"`
}

// Entry is one item of the tree API: a "file" or a "directory". For LFS files, OID is the
// git blob id of the pointer and LFS.OID the sha256 of the content; for other files OID is
// the git blob sha1 of the content.
type Entry struct {
	Type    string `json:"type"`
	Path    string `json:"path"`
	OID     string `json:"oid"`
	Size    int64  `json:"size"`
	LFS     *LFS   `json:"lfs,omitempty"`
	XetHash string `json:"xetHash,omitempty"`
}

// FileSize is the size of the file's content.
func (e Entry) FileSize() int64 {
	if e.LFS != nil && e.LFS.Size > 0 {
		return e.LFS.Size
	}
	return e.Size
}

// ContentHash returns how the content is verified: ("sha256", hex) for LFS files,
// ("git-sha1", hex) for the others, ("", "") when the listing carries no hash.
func (e Entry) ContentHash() (algo, sum string) {
	switch {
	case e.LFS != nil && len(e.LFS.OID) == 64 && isHex(e.LFS.OID):
		return "sha256", e.LFS.OID
	case e.LFS == nil && len(e.OID) == 40 && isHex(e.OID):
		return "git-sha1", e.OID
	}
	return "", ""
}

// CacheKey names the content for content-addressed caches ("sha256-…" or "git-sha1-…"),
// or "" when the listing carries no hash.
func (e Entry) CacheKey() string {
	algo, sum := e.ContentHash()
	if algo == "" {
		return ""
	}
	return algo + "-" + sum
}

// List lists the files and directories under path ("" = the whole repository) at a
// revision, recursively, following the tree API's pagination (Link: <…>; rel="next").
func (c *Client) List(ctx context.Context, repoType, repo, revision, path string) ([]Entry, error) {
	t, err := c.target(repoType, repo, revision, path)
	if err != nil {
		return nil, err
	}
	u := c.apiURL(t, "tree")
	if t.path != "" {
		u += "/" + escapePath(t.path)
	}
	u += "?recursive=true"
	var all []Entry
	seen := map[string]bool{}
	for page := 0; u != ""; page++ {
		if seen[u] || page >= maxPages {
			return nil, fmt.Errorf("list %s: the pagination of the tree API loops at %s (%w)", t, u, ErrBadAnswer)
		}
		seen[u] = true
		var batch []Entry
		resp, err := c.getJSON(ctx, "list", t, u, &batch)
		if err != nil {
			return nil, err
		}
		all = append(all, batch...)
		next := nextLink(resp.Header.Values("Link"))
		if next == "" {
			break
		}
		nu, err := resp.Request.URL.Parse(next)
		if err != nil {
			return nil, fmt.Errorf("list %s: bad next-page link %q: %v (%w)", t, next, err, ErrBadAnswer)
		}
		u = nu.String()
	}
	return all, nil
}

// nextLink finds the rel="next" target in Link headers (RFC 8288).
func nextLink(values []string) string {
	for _, v := range values {
		for len(v) > 0 {
			v = strings.TrimLeft(v, " \t,")
			if !strings.HasPrefix(v, "<") {
				break
			}
			end := strings.IndexByte(v, '>')
			if end < 0 {
				break
			}
			target := v[1:end]
			v = v[end+1:]
			params := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				params, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}
