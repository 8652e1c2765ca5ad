package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Names of the checks CheckLauncher runs, in order.
const (
	CheckHealth         = "health"
	CheckInfo           = "info fields"
	CheckInfoSchema     = "info lists predictions_v1"
	CheckAudioPayload   = "info accepts base64_wav"
	CheckBatch          = "batch of valid items"
	CheckOrder          = "matched by sample_id"
	CheckPartial        = "partial failure"
	CheckBatchLimit     = "batch over max_batch_size"
	CheckDuplicateIDs   = "duplicate sample_ids"
	CheckSchemaVersion  = "wrong schema_version"
	CheckUnknownGenKeys = "unknown generation_config keys"
)

// DefaultCheckTimeout bounds each request of CheckLauncher when its timeout is 0.
const DefaultCheckTimeout = 60 * time.Second

// maxCheckBody bounds how much of a launcher's answer the checker reads.
const maxCheckBody = 256 << 20

// Check is the outcome of one conformance check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Report is the outcome of CheckLauncher.
type Report struct {
	URL    string  `json:"url"`
	Checks []Check `json:"checks"`
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Check returns the check of the given name, and whether it was run.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// CheckLauncher checks the launcher at predictURL (the full URL of POST /predict) against
// CONTRACT.md: /health, the /info document, a batch of valid items matched by sample_id, a
// partial failure, HTTP 413 over the batch limit, duplicate ids, a wrong schema_version and
// unknown generation_config keys. Each request is bounded by timeout (0 means
// DefaultCheckTimeout); a nil client means a plain http.Client. Checks that cannot run
// because an earlier one failed are reported as failed with the reason.
func CheckLauncher(ctx context.Context, client *http.Client, predictURL string, timeout time.Duration) Report {
	if client == nil {
		client = &http.Client{}
	}
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	c := &checker{ctx: ctx, client: client, predictURL: predictURL, timeout: timeout, rep: Report{URL: predictURL}}
	c.run()
	return c.rep
}

type checker struct {
	ctx        context.Context
	client     *http.Client
	predictURL string
	timeout    time.Duration
	rep        Report
	wav        string // base64 of the test clip; "" when the launcher takes no base64_wav
}

func (c *checker) add(name string, ok bool, format string, args ...any) {
	c.rep.Checks = append(c.rep.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) notRun(reason string, names ...string) {
	for _, n := range names {
		c.add(n, false, "not run: %s", reason)
	}
}

func (c *checker) run() {
	infoDependent := []string{CheckInfoSchema, CheckAudioPayload, CheckBatch, CheckOrder, CheckPartial, CheckBatchLimit, CheckDuplicateIDs, CheckSchemaVersion, CheckUnknownGenKeys}
	ep, err := contract.ParsePredictURL(c.predictURL)
	if err != nil {
		c.add(CheckHealth, false, "%v", err)
		c.notRun("the predict URL is unusable", append([]string{CheckInfo}, infoDependent...)...)
		return
	}
	c.predictURL = ep.Predict
	healthURL, infoURL := ep.Health, ep.Info

	// /health
	if status, body, err := c.do(http.MethodGet, healthURL, nil); err != nil {
		c.add(CheckHealth, false, "GET %s: %v", healthURL, err)
	} else if status != http.StatusOK {
		c.add(CheckHealth, false, "GET %s: HTTP %d, want 200 (%s)", healthURL, status, contract.Excerpt(body))
	} else {
		c.add(CheckHealth, true, "HTTP 200")
	}

	// /info
	status, body, err := c.do(http.MethodGet, infoURL, nil)
	switch {
	case err != nil:
		c.add(CheckInfo, false, "GET %s: %v", infoURL, err)
		c.notRun("/info is unreachable", infoDependent...)
		return
	case status != http.StatusOK:
		c.add(CheckInfo, false, "GET %s: HTTP %d, want 200 (%s)", infoURL, status, contract.Excerpt(body))
		c.notRun("/info is unreachable", infoDependent...)
		return
	}
	info, err := contract.ParseInfo(body)
	if err != nil {
		c.add(CheckInfo, false, "%v", err)
		if !json.Valid(body) {
			c.notRun("/info is not JSON", infoDependent...)
			return
		}
	} else {
		c.add(CheckInfo, true, "%s serving %s@%s, max_batch_size %d, supports_batching %t", info.Name, info.Model, info.ModelRevision, info.MaxBatchSize, info.SupportsBatching)
	}
	if info.Speaks(contract.PredictionsV1) {
		c.add(CheckInfoSchema, true, "schema_versions %v", info.SchemaVersions)
	} else {
		c.add(CheckInfoSchema, false, "schema_versions %v lacks %q: clients must refuse this launcher", info.SchemaVersions, contract.PredictionsV1)
	}
	if info.Accepts(contract.PayloadBase64WAV) {
		c.wav = string(audio.AppendBase64WAV(nil, toneClip(16000, 0.25, 440), 16000))
		c.add(CheckAudioPayload, true, "audio checks send a 0.25 s 16 kHz tone as base64_wav")
	} else {
		c.add(CheckAudioPayload, true, "audio_payload_types %v: not accepted, so the checks send text-only items", info.AudioPayloadTypes)
	}
	limit := info.BatchLimit()

	c.checkBatch(limit)
	c.checkPartial(limit)
	c.checkBatchLimit(limit)
	c.checkDuplicates(limit)
	c.checkSchemaVersion()
	c.checkUnknownKeys()
}

// item builds a valid request item; with audio when the launcher takes base64_wav.
func (c *checker) item(id, question string) contract.RequestItem {
	it := contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: question}},
		AudioInputs:      []contract.AudioInput{},
		GenerationConfig: contract.GenerationConfig{"max_tokens": 16, "temperature": 0.0, "max_length_seconds": 10},
	}
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

// post sends a predictions_v1 request built from items.
func (c *checker) post(schema string, items []contract.RequestItem) (int, []byte, error) {
	body, err := json.Marshal(contract.Request{SchemaVersion: schema, Requests: items})
	if err != nil {
		return 0, nil, fmt.Errorf("encode request: %w", err)
	}
	return c.do(http.MethodPost, c.predictURL, body)
}

// do sends one request bounded by the checker's timeout and reads the answer.
func (c *checker) do(method, u string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, b, nil
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

// extraIDs reports answered ids that were not sent, and the number of response items.
func extraIDs(body []byte, sent []string) ([]string, int) {
	got := responseIDs(body)
	want := make(map[string]bool, len(sent))
	for _, id := range sent {
		want[id] = true
	}
	var extra []string
	for _, id := range got {
		if !want[id] {
			extra = append(extra, strconv.Quote(id))
		}
	}
	return extra, len(got)
}

func (c *checker) checkBatch(limit int) {
	n := min(limit, 3)
	items := c.items("valid", n)
	sent := ids(items)
	status, body, err := c.post(contract.PredictionsV1, items)
	if err != nil {
		c.add(CheckBatch, false, "POST %d item(s): %v", n, err)
		c.notRun("the batch of valid items failed", CheckOrder)
		return
	}
	if status != http.StatusOK {
		c.add(CheckBatch, false, "POST %d item(s): HTTP %d, want 200 (%s)", n, status, contract.Excerpt(body))
		c.notRun("the batch of valid items failed", CheckOrder)
		return
	}
	var problems []string
	for _, o := range contract.MatchResponse(body, sent) {
		if o.Err != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", o.SampleID, o.Err))
		}
	}
	extra, got := extraIDs(body, sent)
	if len(extra) > 0 {
		problems = append(problems, "answered ids that were not sent: "+strings.Join(extra, ", "))
	}
	if len(problems) == 0 && got != n {
		problems = append(problems, fmt.Sprintf("%d response items for %d request items", got, n))
	}
	if len(problems) > 0 {
		c.add(CheckBatch, false, "%s", strings.Join(problems, "; "))
		c.notRun("the batch of valid items failed", CheckOrder)
		return
	}
	c.add(CheckBatch, true, "%d item(s) answered, one per sample_id, each with a prediction", n)

	order := responseIDs(body)
	switch {
	case n < 2:
		c.add(CheckOrder, true, "max batch of 1: order cannot differ; items matched by sample_id")
	case strings.Join(order, "\x00") == strings.Join(sent, "\x00"):
		c.add(CheckOrder, true, "response order equals request order; items matched by sample_id (clients must not rely on order)")
	default:
		c.add(CheckOrder, true, "response order differs from request order; items matched by sample_id")
	}
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
	status, body, err := c.post(contract.PredictionsV1, items)
	if err != nil {
		c.add(CheckPartial, false, "POST %d item(s), one malformed: %v", len(items), err)
		return
	}
	if status != http.StatusOK {
		c.add(CheckPartial, false, "POST %d item(s), one malformed: HTTP %d, want 200 with a per-item error (%s)", len(items), status, contract.Excerpt(body))
		return
	}
	var problems []string
	for _, o := range contract.MatchResponse(body, ids(items)) {
		switch {
		case o.SampleID == bad.SampleID && o.Err == "":
			problems = append(problems, fmt.Sprintf("malformed item %s (placeholder count ≠ audio count) succeeded with %q", o.SampleID, o.Prediction))
		case o.SampleID == bad.SampleID && !itemFailed(o.Item):
			problems = append(problems, fmt.Sprintf("malformed item %s has no per-item error: %s", o.SampleID, o.Err))
		case o.SampleID != bad.SampleID && o.Err != "":
			problems = append(problems, fmt.Sprintf("good item %s failed beside a bad one: %s", o.SampleID, o.Err))
		}
	}
	if extra, _ := extraIDs(body, ids(items)); len(extra) > 0 {
		problems = append(problems, "answered ids that were not sent: "+strings.Join(extra, ", "))
	}
	if len(problems) > 0 {
		c.add(CheckPartial, false, "%s", strings.Join(problems, "; "))
		return
	}
	if len(items) == 1 {
		c.add(CheckPartial, true, "max batch of 1: the malformed item alone got HTTP 200 with a per-item error")
		return
	}
	c.add(CheckPartial, true, "HTTP 200; the malformed item has an error, its %d neighbour(s) succeeded", len(items)-1)
}

func (c *checker) checkBatchLimit(limit int) {
	n := limit + 1
	// Text-only items keep the request small whatever the limit.
	items := make([]contract.RequestItem, n)
	for i := range items {
		items[i] = contract.RequestItem{
			SampleID:         fmt.Sprintf("limit-%05d", i),
			Messages:         []contract.Message{{Role: "user", Content: "Batch limit check: answer anything."}},
			AudioInputs:      []contract.AudioInput{},
			GenerationConfig: contract.GenerationConfig{"max_tokens": 4},
		}
	}
	status, body, err := c.post(contract.PredictionsV1, items)
	if err != nil {
		c.add(CheckBatchLimit, false, "POST %d items (limit %d): %v", n, limit, err)
		return
	}
	if status != http.StatusRequestEntityTooLarge {
		c.add(CheckBatchLimit, false, "POST %d items (limit %d): HTTP %d, want 413 (%s)", n, limit, status, contract.Excerpt(body))
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		c.add(CheckBatchLimit, false, "HTTP 413, but the body is not a JSON object stating the limit (%s)", contract.Excerpt(body))
		return
	}
	if v, ok := doc["max_batch_size"].(float64); ok && v == float64(limit) {
		c.add(CheckBatchLimit, true, "HTTP 413 for %d items; body states max_batch_size %d", n, limit)
		return
	}
	if bytes.Contains(body, []byte(strconv.Itoa(limit))) {
		c.add(CheckBatchLimit, true, "HTTP 413 for %d items; body mentions the limit %d", n, limit)
		return
	}
	c.add(CheckBatchLimit, false, "HTTP 413 for %d items, but the body does not state the limit %d (%s)", n, limit, contract.Excerpt(body))
}

func (c *checker) checkDuplicates(limit int) {
	items := []contract.RequestItem{c.item("dup", "Duplicate id, first."), c.item("dup", "Duplicate id, second.")}
	status, body, err := c.post(contract.PredictionsV1, items)
	if err != nil {
		c.add(CheckDuplicateIDs, false, "POST two items with one sample_id: %v", err)
		return
	}
	switch status {
	case http.StatusBadRequest:
		c.add(CheckDuplicateIDs, true, "HTTP 400")
		return
	case http.StatusRequestEntityTooLarge:
		if limit < 2 {
			c.add(CheckDuplicateIDs, true, "HTTP 413: max batch of 1, so two items are refused before their ids are read")
			return
		}
	case http.StatusOK:
		var r contract.Response
		if err := json.Unmarshal(body, &r); err != nil {
			c.add(CheckDuplicateIDs, false, "HTTP 200 with a body that is not predictions_v1: %v", err)
			return
		}
		answered, succeeded := 0, 0
		for _, it := range r.Responses {
			if it.SampleID != "dup" {
				continue
			}
			answered++
			if !it.Failed() {
				succeeded++
			}
		}
		if answered > 0 && succeeded == 0 {
			c.add(CheckDuplicateIDs, true, "HTTP 200 with per-item errors on the duplicates (HTTP 400 is customary)")
			return
		}
		c.add(CheckDuplicateIDs, false, "HTTP 200: %d answer(s) for the duplicated id, %d of them successes; want HTTP 400 (or errors on every duplicate)", answered, succeeded)
		return
	}
	c.add(CheckDuplicateIDs, false, "HTTP %d, want 400 (%s)", status, contract.Excerpt(body))
}

func (c *checker) checkSchemaVersion() {
	const wrong = "predictions_v0"
	status, body, err := c.post(wrong, []contract.RequestItem{c.item("schema-0", "Wrong schema version.")})
	switch {
	case err != nil:
		c.add(CheckSchemaVersion, false, "POST with schema_version %q: %v", wrong, err)
	case status != http.StatusBadRequest:
		c.add(CheckSchemaVersion, false, "POST with schema_version %q: HTTP %d, want 400 (%s)", wrong, status, contract.Excerpt(body))
	default:
		c.add(CheckSchemaVersion, true, "HTTP 400 for schema_version %q", wrong)
	}
}

func (c *checker) checkUnknownKeys() {
	it := c.item("genkeys-0", "Unknown generation_config keys must be ignored.")
	it.GenerationConfig["beans_slurm_unknown_key"] = map[string]any{"nested": []int{1, 2}}
	it.GenerationConfig["top_k"] = 5
	status, body, err := c.post(contract.PredictionsV1, []contract.RequestItem{it})
	switch {
	case err != nil:
		c.add(CheckUnknownGenKeys, false, "POST: %v", err)
		return
	case status != http.StatusOK:
		c.add(CheckUnknownGenKeys, false, "HTTP %d, want 200 (%s)", status, contract.Excerpt(body))
		return
	}
	o := contract.MatchResponse(body, []string{it.SampleID})[0]
	if o.Err != "" {
		c.add(CheckUnknownGenKeys, false, "item failed: %s", o.Err)
		return
	}
	c.add(CheckUnknownGenKeys, true, "item with unknown keys answered")
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

// WriteReport prints r as an aligned table: check, PASS or FAIL, detail; then a summary.
func WriteReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "launcher %s\n\n", r.URL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
	passed := 0
	for _, c := range r.Checks {
		res := "FAIL"
		if c.OK {
			res = "PASS"
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, res, strings.ReplaceAll(c.Detail, "\n", " "))
	}
	tw.Flush()
	verdict := "conforms to predictions_v1"
	if !r.OK() {
		verdict = "does NOT conform to predictions_v1"
	}
	fmt.Fprintf(w, "\n%d of %d checks passed: the launcher %s\n", passed, len(r.Checks), verdict)
}
