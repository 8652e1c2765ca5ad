package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Names of the checks CheckLauncher runs, in report order (see CheckNames). They are the
// stable identifiers of the checks in the JSON report.
const (
	CheckHealth         = "health"
	CheckInfo           = "info fields"
	CheckInfoSchema     = "info lists predictions_v1"
	CheckAudioPayload   = "info accepts base64_wav"
	CheckToken          = "bearer token required"
	CheckBatch          = "batch of valid items"
	CheckOrder          = "matched by sample_id"
	CheckPartial        = "partial failure"
	CheckBatchLimit     = "batch over max_batch_size"
	CheckDuplicateIDs   = "duplicate sample_ids"
	CheckSchemaVersion  = "wrong schema_version"
	CheckUnknownGenKeys = "unknown generation_config keys"
	CheckLongClip       = "60 s clip"
	CheckNonASCII       = "non-ASCII text"
	CheckTimeout        = "answers within the timeout"
)

// CheckNames lists every check in the order of a Report.
var CheckNames = []string{
	CheckHealth, CheckInfo, CheckInfoSchema, CheckAudioPayload, CheckToken,
	CheckBatch, CheckOrder, CheckPartial, CheckBatchLimit, CheckDuplicateIDs,
	CheckSchemaVersion, CheckUnknownGenKeys, CheckLongClip, CheckNonASCII, CheckTimeout,
}

// DefaultCheckTimeout bounds each request of CheckLauncher when its timeout is 0.
const DefaultCheckTimeout = 60 * time.Second

// DefaultCheckBatchItems caps the size of the batch check when CheckOptions.BatchItems is 0:
// the batch holds min(max_batch_size, DefaultCheckBatchItems) items.
const DefaultCheckBatchItems = 32

// LongClipSeconds is the length of the long clip check's audio.
const LongClipSeconds = 60

// ReportSchemaVersion is the schema_version of the JSON report (WriteReportJSON).
const ReportSchemaVersion = "check_launcher_v1"

// maxCheckBody bounds how much of a launcher's answer the checker reads.
const maxCheckBody = 256 << 20

// Result is the outcome of one check.
type Result string

// Results of a check. A check that could not run (an earlier check failed, or the launcher
// declares it does not do what the check needs) is NotRun: it is never a pass.
const (
	Pass   Result = "pass"
	Fail   Result = "fail"
	NotRun Result = "not_run"
)

// Check is the outcome of one conformance check.
type Check struct {
	Name string `json:"name"`
	// Result is pass, fail or not_run. Empty (in reports built by hand) means OK decides.
	Result Result `json:"result"`
	// OK is Result == pass.
	OK bool `json:"ok"`
	// Detail says what was seen; for not_run it starts with "not run: " and the reason.
	Detail string `json:"detail"`
}

// Outcome is c.Result, or derived from OK when Result is empty.
func (c Check) Outcome() Result {
	if c.Result != "" {
		return c.Result
	}
	if c.OK {
		return Pass
	}
	return Fail
}

// Report is the outcome of CheckLauncher.
type Report struct {
	URL string `json:"url"`
	// Reachable is true when the launcher answered HTTP at all (on /health or /info).
	Reachable bool `json:"reachable"`
	// Info is the launcher's /info document as served, when it is a JSON object.
	Info   json.RawMessage `json:"info,omitempty"`
	Checks []Check         `json:"checks"`
}

// OK reports whether no check failed and at least one passed. Checks that were not run do
// not fail a report (a launcher without batching cannot be tested on batches).
func (r Report) OK() bool {
	passed := 0
	for _, c := range r.Checks {
		switch c.Outcome() {
		case Fail:
			return false
		case Pass:
			passed++
		}
	}
	return passed > 0
}

// Count returns how many checks passed, failed and were not run.
func (r Report) Count() (passed, failed, notRun int) {
	for _, c := range r.Checks {
		switch c.Outcome() {
		case Pass:
			passed++
		case Fail:
			failed++
		default:
			notRun++
		}
	}
	return passed, failed, notRun
}

// Check returns the check of the given name, and whether it is in the report.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// CheckOptions configure CheckLauncherWith.
type CheckOptions struct {
	// PredictURL is the full URL of the launcher's POST /predict.
	PredictURL string
	// Client sends the requests; nil means a plain http.Client. Its own Timeout, if any,
	// should not be shorter than Timeout.
	Client *http.Client
	// Timeout bounds each request; 0 means DefaultCheckTimeout. The checker waits this long
	// for every answer, as a client would.
	Timeout time.Duration
	// Token is the bearer token the launcher requires ("" = none). It is sent on every
	// request, and the token check verifies that /info and /predict refuse requests without
	// it (HTTP 401).
	Token string
	// BatchItems caps the size of the batch check; 0 means DefaultCheckBatchItems.
	BatchItems int
}

// CheckLauncher checks the launcher at predictURL (the full URL of POST /predict) against
// CONTRACT.md; see CheckLauncherWith. Each request is bounded by timeout (0 means
// DefaultCheckTimeout); a nil client means a plain http.Client.
func CheckLauncher(ctx context.Context, client *http.Client, predictURL string, timeout time.Duration) Report {
	return CheckLauncherWith(ctx, CheckOptions{PredictURL: predictURL, Client: client, Timeout: timeout})
}

// CheckLauncherWith checks a launcher against CONTRACT.md and reports every check of
// CheckNames, in that order: /health; every /info field and its type; predictions_v1 in
// schema_versions; the bearer token (when opts.Token is set); a batch of valid items; that
// every sent sample_id is answered exactly once and no unknown id is (over every answer of
// the run, whatever the order); a partial failure; HTTP 413 over the batch limit with a body
// stating it; duplicate ids; a wrong schema_version; unknown generation_config keys; a 60 s
// clip; non-ASCII text; and that every answer arrived within the timeout. Checks that cannot
// run are reported as not_run with the reason, never as passes.
func CheckLauncherWith(ctx context.Context, opts CheckOptions) Report {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultCheckTimeout
	}
	if opts.BatchItems <= 0 {
		opts.BatchItems = DefaultCheckBatchItems
	}
	c := &checker{ctx: ctx, opts: opts, predictURL: opts.PredictURL, results: map[string]Check{}}
	c.rep.URL = opts.PredictURL
	c.run()
	for _, name := range CheckNames {
		ch, ok := c.results[name]
		if !ok {
			ch = Check{Name: name, Result: NotRun, Detail: "not run: " + c.skipReason}
		}
		c.rep.Checks = append(c.rep.Checks, ch)
	}
	return c.rep
}

type checker struct {
	ctx        context.Context
	opts       CheckOptions
	predictURL string
	rep        Report
	results    map[string]Check
	// skipReason is given to checks left unset when run returns early.
	skipReason string
	wav        string // base64 of the short test clip; "" when the launcher takes no base64_wav
	// matches collects the sample_id accounting of every predictions_v1 answer.
	matches []matchEntry
	// posts collects the timing of every POST /predict.
	posts []postTiming
}

type matchEntry struct {
	check     string
	items     int
	problems  []string
	reordered bool
}

type postTiming struct {
	check    string
	elapsed  time.Duration
	timedOut bool
}

func (c *checker) set(name string, r Result, format string, args ...any) {
	d := fmt.Sprintf(format, args...)
	if r == NotRun && !strings.HasPrefix(d, "not run: ") {
		d = "not run: " + d
	}
	c.results[name] = Check{Name: name, Result: r, OK: r == Pass, Detail: d}
}

func (c *checker) pass(name, format string, args ...any) { c.set(name, Pass, format, args...) }
func (c *checker) fail(name, format string, args ...any) { c.set(name, Fail, format, args...) }
func (c *checker) skip(name, format string, args ...any) { c.set(name, NotRun, format, args...) }

// Authorization modes of a request.
const (
	authToken = iota // the configured token, if any
	authNone         // no Authorization header
	authWrong        // a wrong token
)

// reply is one HTTP exchange.
type reply struct {
	status   int
	body     []byte
	err      error
	elapsed  time.Duration
	timedOut bool
}

func (c *checker) run() {
	ep, err := contract.ParsePredictURL(c.predictURL)
	if err != nil {
		c.fail(CheckHealth, "%v", err)
		c.skipReason = "the predict URL is unusable"
		return
	}
	c.predictURL = ep.Predict

	// /health
	h := c.do(http.MethodGet, ep.Health, nil, authToken)
	switch {
	case h.err != nil:
		c.fail(CheckHealth, "GET %s: %v", ep.Health, h.err)
	case h.status != http.StatusOK:
		c.rep.Reachable = true
		c.fail(CheckHealth, "GET %s: HTTP %d, want 200 (%s)", ep.Health, h.status, contract.Excerpt(h.body))
	default:
		c.rep.Reachable = true
		c.pass(CheckHealth, "HTTP 200")
	}

	// /info
	r := c.do(http.MethodGet, ep.Info, nil, authToken)
	switch {
	case r.err != nil:
		c.fail(CheckInfo, "GET %s: %v", ep.Info, r.err)
		c.skipReason = "/info is unreachable"
		return
	case r.status == http.StatusUnauthorized && c.opts.Token == "":
		c.rep.Reachable = true
		c.fail(CheckInfo, "GET %s: HTTP 401: the launcher requires a bearer token; give it with --token-file", ep.Info)
		c.skipReason = "/info refused the request without a token"
		return
	case r.status == http.StatusUnauthorized:
		c.rep.Reachable = true
		c.fail(CheckInfo, "GET %s: HTTP 401: the launcher refused the token given (--token-file)", ep.Info)
		c.skipReason = "/info refused the token"
		return
	case r.status != http.StatusOK:
		c.rep.Reachable = true
		c.fail(CheckInfo, "GET %s: HTTP %d, want 200 (%s)", ep.Info, r.status, contract.Excerpt(r.body))
		c.skipReason = "/info did not answer HTTP 200"
		return
	}
	c.rep.Reachable = true
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &fields); err != nil || fields == nil {
		c.fail(CheckInfo, "/info is not a JSON object (%s)", contract.Excerpt(r.body))
		c.skipReason = "/info is not a JSON object"
		return
	}
	c.rep.Info = append(json.RawMessage(nil), r.body...)
	info, _ := contract.ParseInfo(r.body) // lenient decoding; infoProblems is the judge
	problems, batchOK := infoProblems(fields)
	if len(problems) > 0 {
		c.fail(CheckInfo, "%s", strings.Join(problems, "; "))
	} else {
		var extra []string
		for k := range info.Extra {
			extra = append(extra, k)
		}
		sort.Strings(extra)
		extraNote := "no extra fields"
		if len(extra) > 0 {
			extraNote = "extra fields " + strings.Join(extra, ", ")
		}
		c.pass(CheckInfo, "%s serving %s@%s, audio_payload_types %v, max_batch_size %d, supports_batching %t, schema_versions %v; %s",
			info.Name, info.Model, info.ModelRevision, info.AudioPayloadTypes, info.MaxBatchSize, info.SupportsBatching, info.SchemaVersions, extraNote)
	}
	if info.Speaks(contract.PredictionsV1) {
		c.pass(CheckInfoSchema, "schema_versions %v", info.SchemaVersions)
	} else {
		c.fail(CheckInfoSchema, "schema_versions %v lacks %q: clients must refuse this launcher", info.SchemaVersions, contract.PredictionsV1)
	}
	if info.Accepts(contract.PayloadBase64WAV) {
		c.wav = string(audio.AppendBase64WAV(nil, toneClip(16000, 0.25, 440), 16000))
		c.pass(CheckAudioPayload, "audio checks send a 0.25 s 16 kHz tone as base64_wav")
	} else {
		c.skip(CheckAudioPayload, "audio_payload_types %v lacks base64_wav, the only payload the checker sends: items are sent text-only", info.AudioPayloadTypes)
	}
	c.checkToken(ep)

	limit := 1
	if batchOK {
		limit = info.BatchLimit()
	}
	c.checkBatch(limit)
	c.checkPartial(limit)
	if batchOK {
		c.checkBatchLimit(limit, info)
	} else {
		c.skip(CheckBatchLimit, "max_batch_size is not an integer ≥ 1, so the limit is unknown")
	}
	c.checkDuplicates(limit)
	c.checkSchemaVersion()
	c.checkUnknownKeys()
	c.checkLongClip()
	c.checkNonASCII()
	c.checkMatching()
	c.checkTimeout()
}

// infoProblems checks the type of every contract field of /info. batchOK reports whether
// max_batch_size is an integer ≥ 1.
func infoProblems(fields map[string]json.RawMessage) (problems []string, batchOK bool) {
	str := func(key string, nonEmpty bool) {
		raw, ok := fields[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (a string)", key))
			return
		}
		var s string
		if !isJSONKind(raw, '"') || json.Unmarshal(raw, &s) != nil {
			problems = append(problems, fmt.Sprintf("%q is %s, want a string", key, jsonExcerpt(raw)))
			return
		}
		if nonEmpty && strings.TrimSpace(s) == "" {
			problems = append(problems, fmt.Sprintf("%q is empty", key))
		}
	}
	strList := func(key string) ([]string, bool) {
		raw, ok := fields[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing %q (a list of strings)", key))
			return nil, false
		}
		var l []string
		if !isJSONKind(raw, '[') || json.Unmarshal(raw, &l) != nil {
			problems = append(problems, fmt.Sprintf("%q is %s, want a list of strings", key, jsonExcerpt(raw)))
			return nil, false
		}
		return l, true
	}
	str("name", true)
	str("model", true)
	str("model_revision", false)
	if l, ok := strList("audio_payload_types"); ok {
		if len(l) == 0 {
			problems = append(problems, `"audio_payload_types" is empty, want at least one of base64_wav, file_path, file_url`)
		}
		for _, p := range l {
			switch p {
			case contract.PayloadBase64WAV, contract.PayloadFilePath, contract.PayloadFileURL:
			default:
				problems = append(problems, fmt.Sprintf("%q has unknown type %q (known: base64_wav, file_path, file_url)", "audio_payload_types", p))
			}
		}
	}
	if raw, ok := fields["max_batch_size"]; !ok {
		problems = append(problems, `missing "max_batch_size" (an integer ≥ 1)`)
	} else if n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err != nil || n < 1 || n > math.MaxInt32 {
		problems = append(problems, fmt.Sprintf("%q is %s, want an integer ≥ 1", "max_batch_size", jsonExcerpt(raw)))
	} else {
		batchOK = true
	}
	if raw, ok := fields["supports_batching"]; !ok {
		problems = append(problems, `missing "supports_batching" (a boolean)`)
	} else if s := string(bytes.TrimSpace(raw)); s != "true" && s != "false" {
		problems = append(problems, fmt.Sprintf("%q is %s, want a boolean", "supports_batching", jsonExcerpt(raw)))
	}
	strList("schema_versions")
	return problems, batchOK
}

// isJSONKind reports whether raw starts with the given character (after white space).
func isJSONKind(raw json.RawMessage, first byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == first
}

// jsonExcerpt describes a JSON value for a message: its type and a short rendering.
func jsonExcerpt(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	kind := "a number"
	switch {
	case len(t) == 0:
		return "empty"
	case t[0] == '"':
		kind = "a string"
	case t[0] == '[':
		kind = "a list"
	case t[0] == '{':
		kind = "an object"
	case string(t) == "null":
		return "null"
	case string(t) == "true" || string(t) == "false":
		kind = "a boolean"
	}
	s := contract.Excerpt(t)
	if len(s) > 40 {
		s = s[:37] + "…"
	}
	return kind + " " + s
}

// checkToken verifies that /info and /predict refuse requests without the configured token.
func (c *checker) checkToken(ep contract.Endpoints) {
	if c.opts.Token == "" {
		c.skip(CheckToken, "no token given (--token-file): the launcher's refusal of requests without one is not tested")
		return
	}
	probe, _ := json.Marshal(contract.Request{SchemaVersion: contract.PredictionsV1, Requests: []contract.RequestItem{c.textItem("token-0", "Token check.")}})
	var problems []string
	for _, p := range []struct {
		what        string
		method, url string
		body        []byte
		auth        int
	}{
		{"GET /info without a token", http.MethodGet, ep.Info, nil, authNone},
		{"GET /info with a wrong token", http.MethodGet, ep.Info, nil, authWrong},
		{"POST /predict without a token", http.MethodPost, ep.Predict, probe, authNone},
	} {
		r := c.do(p.method, p.url, p.body, p.auth)
		switch {
		case r.err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", p.what, r.err))
		case r.status != http.StatusUnauthorized:
			problems = append(problems, fmt.Sprintf("%s: HTTP %d, want 401", p.what, r.status))
		}
	}
	if len(problems) > 0 {
		c.fail(CheckToken, "%s", strings.Join(problems, "; "))
		return
	}
	c.pass(CheckToken, "HTTP 401 without the token and with a wrong one, on /info and /predict; the token is accepted")
}

// textItem builds a valid text-only request item.
func (c *checker) textItem(id, question string) contract.RequestItem {
	return contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: question}},
		AudioInputs:      []contract.AudioInput{},
		GenerationConfig: contract.GenerationConfig{"max_tokens": 16, "temperature": 0.0, "max_length_seconds": 10},
	}
}

// item builds a valid request item; with audio when the launcher takes base64_wav.
func (c *checker) item(id, question string) contract.RequestItem {
	it := c.textItem(id, question)
	if c.wav != "" {
		it.Messages[0].Content = contract.AudioPlaceholder + " " + question
		it.AudioInputs = []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: c.wav, SampleRate: 16000}}
	}
	return it
}

func (c *checker) items(prefix string, n int) []contract.RequestItem {
	out := make([]contract.RequestItem, n)
	for i := range out {
		out[i] = c.item(fmt.Sprintf("%s-%03d", prefix, i), fmt.Sprintf("Conformance check %d: what is the common name of the focal species?", i))
	}
	return out
}

func ids(items []contract.RequestItem) []string {
	out := make([]string, len(items))
	for i := range items {
		out[i] = items[i].SampleID
	}
	return out
}

// post sends a predictions_v1 request built from items, on behalf of the named check.
func (c *checker) post(check, schema string, items []contract.RequestItem) reply {
	body, err := json.Marshal(contract.Request{SchemaVersion: schema, Requests: items})
	if err != nil {
		return reply{err: fmt.Errorf("encode request: %w", err)}
	}
	r := c.do(http.MethodPost, c.predictURL, body, authToken)
	c.posts = append(c.posts, postTiming{check: check, elapsed: r.elapsed, timedOut: r.timedOut})
	return r
}

// do sends one request bounded by the checker's timeout and reads the answer.
func (c *checker) do(method, u string, body []byte, auth int) reply {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return reply{err: fmt.Errorf("build request: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case auth == authToken && c.opts.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	case auth == authWrong:
		req.Header.Set("Authorization", "Bearer wrong-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	start := time.Now()
	r := reply{}
	finish := func(err error) reply {
		r.elapsed = time.Since(start)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
				r.timedOut = true
				err = fmt.Errorf("no answer within the timeout of %s", c.opts.Timeout)
			}
			r.err = err
		}
		return r
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return finish(err)
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	r.body, err = io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	if err != nil {
		return finish(fmt.Errorf("read answer: %w", err))
	}
	return finish(nil)
}

// answer is a POST /predict answer judged against the ids that were sent.
type answer struct {
	reply
	sent []string
	// parseErr is set when the body is not a predictions_v1 response envelope.
	parseErr string
	order    []string       // answered ids, in response order
	count    map[string]int // times each sent id was answered
	unknown  []string       // answered ids that were not sent
	noID     int            // response items without a sample_id
	outcome  map[string]contract.Outcome
}

// analyze judges an HTTP 200 answer. Ids answered other than exactly once have no outcome.
func analyze(r reply, sent []string) *answer {
	a := &answer{reply: r, sent: sent, count: map[string]int{}, outcome: map[string]contract.Outcome{}}
	var env struct {
		SchemaVersion *string           `json:"schema_version"`
		Responses     []json.RawMessage `json:"responses"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	switch err := dec.Decode(&env); {
	case err != nil:
		a.parseErr = "the answer is not a predictions_v1 response: " + contract.Excerpt([]byte(err.Error()))
		return a
	case env.SchemaVersion == nil || *env.SchemaVersion != contract.PredictionsV1:
		a.parseErr = fmt.Sprintf("the answer's schema_version is not %q (%s)", contract.PredictionsV1, contract.Excerpt(r.body))
		return a
	case env.Responses == nil:
		a.parseErr = "the answer has no responses array"
		return a
	}
	sentSet := make(map[string]bool, len(sent))
	for _, id := range sent {
		sentSet[id] = true
	}
	for _, raw := range env.Responses {
		var it struct {
			SampleID *string `json:"sample_id"`
		}
		if json.Unmarshal(raw, &it) != nil || it.SampleID == nil || *it.SampleID == "" {
			a.noID++
			continue
		}
		id := *it.SampleID
		a.order = append(a.order, id)
		if sentSet[id] {
			a.count[id]++
		} else {
			a.unknown = append(a.unknown, id)
		}
	}
	for _, o := range contract.MatchResponse(r.body, sent) {
		if a.count[o.SampleID] == 1 {
			a.outcome[o.SampleID] = o
		}
	}
	return a
}

// idProblems lists violations of "one answer per sent sample_id, no other".
func (a *answer) idProblems() []string {
	var out []string
	for _, id := range a.sent {
		switch n := a.count[id]; {
		case n == 0:
			out = append(out, fmt.Sprintf("%s not answered", id))
		case n > 1:
			out = append(out, fmt.Sprintf("%s answered %d times", id, n))
		}
	}
	for _, id := range a.unknown {
		out = append(out, fmt.Sprintf("answered sample_id %s that was not sent", strconv.Quote(id)))
	}
	if a.noID > 0 {
		out = append(out, fmt.Sprintf("%d response item(s) without a sample_id", a.noID))
	}
	return out
}

// record adds the answer's id accounting to the matching check.
func (c *checker) record(check string, a *answer) {
	if a.parseErr != "" {
		return
	}
	c.matches = append(c.matches, matchEntry{
		check:     check,
		items:     len(a.sent),
		problems:  a.idProblems(),
		reordered: len(a.sent) > 1 && !slices.Equal(a.order, a.sent),
	})
}

// single sends one item and judges that it succeeded: HTTP 200, a prediction.
func (c *checker) single(check string, it contract.RequestItem) (*answer, string) {
	r := c.post(check, contract.PredictionsV1, []contract.RequestItem{it})
	switch {
	case r.err != nil:
		return nil, fmt.Sprintf("POST: %v", r.err)
	case r.status != http.StatusOK:
		return nil, fmt.Sprintf("HTTP %d, want 200 (%s)", r.status, contract.Excerpt(r.body))
	}
	a := analyze(r, []string{it.SampleID})
	if a.parseErr != "" {
		return a, a.parseErr
	}
	c.record(check, a)
	o, ok := a.outcome[it.SampleID]
	switch {
	case !ok:
		return a, fmt.Sprintf("%s answered %d times (see %q)", it.SampleID, a.count[it.SampleID], CheckOrder)
	case o.Err != "":
		return a, "item failed: " + o.Err
	}
	return a, ""
}

func (c *checker) checkBatch(limit int) {
	n := min(limit, c.opts.BatchItems)
	items := c.items("valid", n)
	r := c.post(CheckBatch, contract.PredictionsV1, items)
	switch {
	case r.err != nil:
		c.fail(CheckBatch, "POST %d item(s): %v", n, r.err)
		return
	case r.status != http.StatusOK:
		c.fail(CheckBatch, "POST %d item(s): HTTP %d, want 200 (%s)", n, r.status, contract.Excerpt(r.body))
		return
	}
	a := analyze(r, ids(items))
	if a.parseErr != "" {
		c.fail(CheckBatch, "POST %d item(s): %s", n, a.parseErr)
		return
	}
	c.record(CheckBatch, a)
	var problems []string
	judged := 0
	for _, id := range a.sent {
		o, ok := a.outcome[id]
		if !ok {
			continue // not answered exactly once: the matching check reports it
		}
		judged++
		if o.Err != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", id, o.Err))
		}
	}
	if judged == 0 {
		problems = append(problems, fmt.Sprintf("no sample_id was answered exactly once (see %q)", CheckOrder))
	}
	if len(problems) > 0 {
		c.fail(CheckBatch, "%s", strings.Join(problems, "; "))
		return
	}
	what := fmt.Sprintf("batch limit %d", limit)
	if limit == 1 {
		what = "max batch of 1: one item per POST"
	}
	c.pass(CheckBatch, "%d item(s) in one POST (%s), HTTP 200, answered with predictions in %s", n, what, r.elapsed.Round(time.Millisecond))
}

func (c *checker) checkPartial(limit int) {
	bad := c.item("partial-bad", "This item is malformed: its placeholder count differs from its audio count.")
	if c.wav != "" {
		bad.AudioInputs = []contract.AudioInput{} // one placeholder, no audio
	} else {
		bad.Messages[0].Content = contract.AudioPlaceholder + " " + bad.Messages[0].Content
	}
	var items []contract.RequestItem
	switch {
	case limit >= 3:
		items = []contract.RequestItem{c.item("partial-good-0", "Good item before the bad one."), bad, c.item("partial-good-1", "Good item after the bad one.")}
	case limit == 2:
		items = []contract.RequestItem{c.item("partial-good-0", "Good item beside the bad one."), bad}
	default:
		items = []contract.RequestItem{bad}
	}
	r := c.post(CheckPartial, contract.PredictionsV1, items)
	switch {
	case r.err != nil:
		c.fail(CheckPartial, "POST %d item(s), one malformed: %v", len(items), r.err)
		return
	case r.status != http.StatusOK:
		c.fail(CheckPartial, "POST %d item(s), one malformed: HTTP %d, want 200 with a per-item error (%s)", len(items), r.status, contract.Excerpt(r.body))
		return
	}
	a := analyze(r, ids(items))
	if a.parseErr != "" {
		c.fail(CheckPartial, "POST %d item(s), one malformed: %s", len(items), a.parseErr)
		return
	}
	c.record(CheckPartial, a)
	var problems []string
	for _, id := range a.sent {
		o, ok := a.outcome[id]
		switch {
		case !ok && id == bad.SampleID:
			problems = append(problems, fmt.Sprintf("malformed item %s answered %d times, want once with an error", id, a.count[id]))
		case !ok:
			// reported by the matching check
		case id == bad.SampleID && o.Err == "":
			problems = append(problems, fmt.Sprintf("malformed item %s (placeholder count ≠ audio count) succeeded with %q", id, o.Prediction))
		case id == bad.SampleID && !itemFailed(o.Item):
			problems = append(problems, fmt.Sprintf("malformed item %s has no per-item error: %s", id, o.Err))
		case id != bad.SampleID && o.Err != "":
			problems = append(problems, fmt.Sprintf("good item %s failed beside a bad one: %s", id, o.Err))
		}
	}
	if len(problems) > 0 {
		c.fail(CheckPartial, "%s", strings.Join(problems, "; "))
		return
	}
	if len(items) == 1 {
		c.skip(CheckPartial, "max batch of 1: a bad item has no neighbours (alone it got HTTP 200 with a per-item error, as it should)")
		return
	}
	c.pass(CheckPartial, "HTTP 200; the malformed item has an error, its %d neighbour(s) succeeded", len(items)-1)
}

func (c *checker) checkBatchLimit(limit int, info contract.Info) {
	n := limit + 1
	// Text-only items keep the request small whatever the limit.
	items := make([]contract.RequestItem, n)
	for i := range items {
		items[i] = c.textItem(fmt.Sprintf("limit-%05d", i), "Batch limit check: answer anything.")
	}
	r := c.post(CheckBatchLimit, contract.PredictionsV1, items)
	if r.err != nil {
		c.fail(CheckBatchLimit, "POST %d items (limit %d): %v", n, limit, r.err)
		return
	}
	if r.status != http.StatusRequestEntityTooLarge {
		if !info.SupportsBatching {
			c.skip(CheckBatchLimit, "supports_batching is false, so clients send one item per POST; %d items got HTTP %d", n, r.status)
			return
		}
		c.fail(CheckBatchLimit, "POST %d items (limit %d): HTTP %d, want 413 (%s)", n, limit, r.status, contract.Excerpt(r.body))
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		c.fail(CheckBatchLimit, "HTTP 413, but the body is not a JSON object stating the limit (%s)", contract.Excerpt(r.body))
		return
	}
	stated := []int{limit, info.MaxBatchSize}
	if v, ok := doc["max_batch_size"].(float64); ok && slices.Contains(stated, int(v)) && v == math.Trunc(v) {
		c.pass(CheckBatchLimit, "HTTP 413 for %d items; body states max_batch_size %d", n, int(v))
		return
	}
	for _, s := range stated {
		if regexp.MustCompile(`(^|[^0-9])` + strconv.Itoa(s) + `([^0-9]|$)`).Match(r.body) {
			c.pass(CheckBatchLimit, "HTTP 413 for %d items; body mentions the limit %d", n, s)
			return
		}
	}
	c.fail(CheckBatchLimit, "HTTP 413 for %d items, but the body does not state the limit %d (%s)", n, limit, contract.Excerpt(r.body))
}

func (c *checker) checkDuplicates(limit int) {
	items := []contract.RequestItem{c.item("dup", "Duplicate id, first."), c.item("dup", "Duplicate id, second.")}
	r := c.post(CheckDuplicateIDs, contract.PredictionsV1, items)
	if r.err != nil {
		c.fail(CheckDuplicateIDs, "POST two items with one sample_id: %v", r.err)
		return
	}
	switch r.status {
	case http.StatusBadRequest:
		c.pass(CheckDuplicateIDs, "HTTP 400")
		return
	case http.StatusRequestEntityTooLarge:
		if limit < 2 {
			c.skip(CheckDuplicateIDs, "max batch of 1: two items are refused with HTTP 413 before their ids are read")
			return
		}
	case http.StatusOK:
		var resp contract.Response
		if err := json.Unmarshal(r.body, &resp); err != nil {
			c.fail(CheckDuplicateIDs, "HTTP 200 with a body that is not predictions_v1: %v", err)
			return
		}
		answered, succeeded := 0, 0
		for _, it := range resp.Responses {
			if it.SampleID != "dup" {
				continue
			}
			answered++
			if !it.Failed() {
				succeeded++
			}
		}
		if answered > 0 && succeeded == 0 {
			c.pass(CheckDuplicateIDs, "HTTP 200 with per-item errors on the duplicates (HTTP 400 is customary)")
			return
		}
		c.fail(CheckDuplicateIDs, "HTTP 200: %d answer(s) for the duplicated id, %d of them successes; want HTTP 400 (or errors on every duplicate, never an answer)", answered, succeeded)
		return
	}
	c.fail(CheckDuplicateIDs, "HTTP %d, want 400 (%s)", r.status, contract.Excerpt(r.body))
}

func (c *checker) checkSchemaVersion() {
	const wrong = "predictions_v0"
	r := c.post(CheckSchemaVersion, wrong, []contract.RequestItem{c.item("schema-0", "Wrong schema version.")})
	switch {
	case r.err != nil:
		c.fail(CheckSchemaVersion, "POST with schema_version %q: %v", wrong, r.err)
	case r.status == http.StatusBadRequest || r.status == http.StatusUnprocessableEntity:
		c.pass(CheckSchemaVersion, "HTTP %d for schema_version %q", r.status, wrong)
	default:
		c.fail(CheckSchemaVersion, "POST with schema_version %q: HTTP %d, want 400: the whole batch refused (%s)", wrong, r.status, contract.Excerpt(r.body))
	}
}

func (c *checker) checkUnknownKeys() {
	it := c.item("genkeys-0", "Unknown generation_config keys must be ignored.")
	it.GenerationConfig["beans_slurm_unknown_key"] = map[string]any{"nested": []int{1, 2}}
	it.GenerationConfig["top_k"] = 5
	if _, problem := c.single(CheckUnknownGenKeys, it); problem != "" {
		c.fail(CheckUnknownGenKeys, "%s", problem)
		return
	}
	c.pass(CheckUnknownGenKeys, "item with generation_config keys top_k and beans_slurm_unknown_key answered")
}

func (c *checker) checkLongClip() {
	if c.wav == "" {
		c.skip(CheckLongClip, "the launcher takes no base64_wav, the only payload the checker sends")
		return
	}
	const rate = 16000
	data := string(audio.AppendBase64WAV(nil, toneClip(rate, LongClipSeconds, 440), rate))
	it := c.item("long-clip-0", "This clip lasts 60 seconds: what is the common name of the focal species?")
	it.AudioInputs[0].Data = data
	it.GenerationConfig["max_length_seconds"] = LongClipSeconds
	a, problem := c.single(CheckLongClip, it)
	if problem != "" {
		c.fail(CheckLongClip, "%d s %d kHz clip (%.1f MB of base64): %s", LongClipSeconds, rate/1000, float64(len(data))/1e6, problem)
		return
	}
	c.pass(CheckLongClip, "%d s %d kHz clip (%.1f MB of base64) answered in %s", LongClipSeconds, rate/1000, float64(len(data))/1e6, a.elapsed.Round(time.Millisecond))
}

// nonASCIIQuestion mixes Japanese, emoji, accents and other scripts.
const nonASCIIQuestion = "この音声の鳥の名前は何ですか？ 🐦🎶 Quelle espèce entend-on — « ça chante » ? Ñandú, Ærøskøbing, naïve café, Straße, Привет, 你好"

func (c *checker) checkNonASCII() {
	it := c.item("non-ascii-0", nonASCIIQuestion)
	it.Messages = append([]contract.Message{{Role: "system", Content: "Réponds en français ou en 日本語 ✓"}}, it.Messages...)
	a, problem := c.single(CheckNonASCII, it)
	if problem == "" && !utf8.Valid(a.body) {
		problem = "the answer is not valid UTF-8"
	}
	if problem != "" {
		c.fail(CheckNonASCII, "question in Japanese, emoji and accented Latin: %s", problem)
		return
	}
	c.pass(CheckNonASCII, "question in Japanese, emoji and accented Latin answered: %q", a.outcome[it.SampleID].Prediction)
}

// checkMatching judges every answer of the run: each sent id answered exactly once, none
// other, whatever the order.
func (c *checker) checkMatching() {
	if len(c.matches) == 0 {
		c.skip(CheckOrder, "no /predict request got a predictions_v1 answer")
		return
	}
	var problems []string
	answers, items, reordered := 0, 0, 0
	for _, m := range c.matches {
		answers++
		items += m.items
		if m.reordered {
			reordered++
		}
		if len(m.problems) > 0 {
			problems = append(problems, m.check+": "+strings.Join(m.problems, ", "))
		}
	}
	if len(problems) > 0 {
		c.fail(CheckOrder, "%s", strings.Join(problems, "; "))
		return
	}
	order := "every answer in request order (allowed; clients must not rely on it)"
	if reordered > 0 {
		order = fmt.Sprintf("%d answer(s) in another order than the request", reordered)
	}
	c.pass(CheckOrder, "%d item(s) over %d answer(s): every sample_id answered exactly once, no unknown ids; %s", items, answers, order)
}

// checkTimeout judges that every POST /predict was answered within the timeout.
func (c *checker) checkTimeout() {
	if len(c.posts) == 0 {
		c.skip(CheckTimeout, "no /predict request was sent")
		return
	}
	var late []string
	slowest := c.posts[0]
	for _, p := range c.posts {
		if p.timedOut {
			late = append(late, p.check)
		}
		if p.elapsed > slowest.elapsed {
			slowest = p
		}
	}
	if len(late) > 0 {
		c.fail(CheckTimeout, "no answer within %s for: %s (a slower launcher needs a longer --timeout, and a run's client timeout to match)", c.opts.Timeout, strings.Join(late, ", "))
		return
	}
	note := ""
	if slowest.elapsed > c.opts.Timeout/2 {
		note = "; that is over half of the timeout: consider a longer one"
	}
	c.pass(CheckTimeout, "%d /predict request(s) answered; the slowest (%s) took %s of the %s timeout%s", len(c.posts), slowest.check, slowest.elapsed.Round(time.Millisecond), c.opts.Timeout, note)
}

// itemFailed reports whether raw is a response item carrying an error.
func itemFailed(raw json.RawMessage) bool {
	var it contract.ResponseItem
	return raw != nil && json.Unmarshal(raw, &it) == nil && it.Failed()
}

// toneClip is a sine tone at -12 dBFS.
func toneClip(rate int, seconds, freq float64) []float64 {
	out := make([]float64, int(float64(rate)*seconds))
	for i := range out {
		out[i] = 0.25 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))
	}
	return out
}

// WriteReport prints r as an aligned table: check, PASS, FAIL or NOT RUN, detail; then a
// summary.
func WriteReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "launcher %s\n\n", r.URL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	for _, c := range r.Checks {
		res, detail := "FAIL", c.Detail
		switch c.Outcome() {
		case Pass:
			res = "PASS"
		case NotRun:
			res = "NOT RUN"
			detail = strings.TrimPrefix(detail, "not run: ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, res, strings.ReplaceAll(detail, "\n", " "))
	}
	tw.Flush()
	passed, _, notRun := r.Count()
	verdict := "conforms to predictions_v1"
	switch {
	case !r.OK():
		verdict = "does NOT conform to predictions_v1"
	case notRun > 0:
		verdict = "conforms to predictions_v1 in every check that could run"
	}
	skipped := ""
	if notRun > 0 {
		skipped = fmt.Sprintf(" (%d not run)", notRun)
	}
	fmt.Fprintf(w, "\n%d of %d checks passed%s: the launcher %s\n", passed, len(r.Checks), skipped, verdict)
}

// ReportJSON is the JSON document of a report (check_launcher_v1), as written by
// WriteReportJSON. Fields are only ever added.
type ReportJSON struct {
	SchemaVersion string `json:"schema_version"`
	URL           string `json:"url"`
	// OK is true when no check failed and at least one passed.
	OK bool `json:"ok"`
	// Reachable is false when the launcher gave no HTTP answer at all.
	Reachable bool            `json:"reachable"`
	Passed    int             `json:"passed"`
	Failed    int             `json:"failed"`
	NotRun    int             `json:"not_run"`
	Info      json.RawMessage `json:"info,omitempty"`
	Checks    []Check         `json:"checks"`
}

// JSON returns the report's JSON document.
func (r Report) JSON() ReportJSON {
	p, f, n := r.Count()
	checks := make([]Check, len(r.Checks))
	for i, c := range r.Checks {
		c.Result = c.Outcome()
		c.OK = c.Result == Pass
		checks[i] = c
	}
	return ReportJSON{SchemaVersion: ReportSchemaVersion, URL: r.URL, OK: r.OK(), Reachable: r.Reachable,
		Passed: p, Failed: f, NotRun: n, Info: r.Info, Checks: checks}
}

// WriteReportJSON writes r as an indented check_launcher_v1 JSON document.
func WriteReportJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r.JSON())
}

// responseIDs lists the sample ids of a response body in their order (nil if unreadable).
func responseIDs(body []byte) []string {
	var r struct {
		Responses []struct {
			SampleID string `json:"sample_id"`
		} `json:"responses"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	out := make([]string, len(r.Responses))
	for i, it := range r.Responses {
		out[i] = it.SampleID
	}
	return out
}
