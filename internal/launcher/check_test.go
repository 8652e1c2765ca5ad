package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// tamper wraps a launcher handler and alters its requests or answers, to build broken
// launchers.
type tamper struct {
	inner http.Handler
	// req rewrites a /predict body before the inner handler sees it.
	req func(body []byte) []byte
	// resp rewrites an answer.
	resp func(path string, req []byte, status int, body []byte) (int, []byte)
}

func (tp tamper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/predict" && tp.req != nil {
		body = tp.req(body)
	}
	r2 := httptest.NewRequestWithContext(r.Context(), r.Method, r.URL.Path, bytes.NewReader(body))
	r2.Header = r.Header.Clone()
	rec := httptest.NewRecorder()
	tp.inner.ServeHTTP(rec, r2)
	status, out := rec.Code, rec.Body.Bytes()
	if tp.resp != nil {
		status, out = tp.resp(r.URL.Path, body, status, out)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(out)
}

// infoModel serves a model under a different /info.
type infoModel struct {
	Model
	edit func(*contract.Info)
}

func (m infoModel) Info() contract.Info {
	in := m.Model.Info()
	m.edit(&in)
	return in
}

func mustDummy(t *testing.T, opts DummyOptions) Model {
	t.Helper()
	m, err := NewDummy(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func editJSON(t *testing.T, body []byte, edit func(map[string]any)) []byte {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Errorf("tamper: %v", err)
		return body
	}
	edit(doc)
	b, _ := json.Marshal(doc)
	return b
}

// editInfo serves the dummy with its /info document edited as JSON.
func editInfo(t *testing.T, edit func(map[string]any)) http.Handler {
	return tamper{inner: dummyHandler(t), resp: func(path string, _ []byte, status int, body []byte) (int, []byte) {
		if path == "/info" {
			body = editJSON(t, body, edit)
		}
		return status, body
	}}
}

// editBatch rewrites the answer to the batch check's request (the one holding valid-000).
func editBatch(t *testing.T, edit func(r *contract.Response)) http.Handler {
	return tamper{inner: dummyHandler(t), resp: func(path string, req []byte, status int, body []byte) (int, []byte) {
		if path != "/predict" || status != 200 || !bytes.Contains(req, []byte(`"valid-000"`)) {
			return status, body
		}
		var r contract.Response
		if err := json.Unmarshal(body, &r); err != nil {
			t.Errorf("tamper: %v", err)
		}
		edit(&r)
		b, _ := json.Marshal(r)
		return status, b
	}}
}

func dummyHandler(t *testing.T) http.Handler {
	return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{})
}

type checkCase struct {
	name    string
	handler func(t *testing.T) http.Handler
	token   string        // given to the checker
	timeout time.Duration // 0 = 10 s
	// wantFail and wantNotRun are exactly the checks that must fail and not run; every
	// other check must pass.
	wantFail, wantNotRun []string
	// wantDetail maps a check to a substring its detail must contain.
	wantDetail map[string]string
}

func runCheckCase(t *testing.T, tt checkCase) Report {
	t.Helper()
	srv := httptest.NewServer(tt.handler(t))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	timeout := cmpOr(tt.timeout, 10*time.Second)
	rep := CheckLauncherWith(ctx, CheckOptions{PredictURL: srv.URL + "/predict", Client: srv.Client(), Timeout: timeout, Token: tt.token})
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		want := Pass
		switch {
		case slices.Contains(tt.wantFail, c.Name):
			want = Fail
		case slices.Contains(tt.wantNotRun, c.Name):
			want = NotRun
		}
		if c.Result != want || c.OK != (want == Pass) {
			t.Errorf("check %q is %s (ok=%t), want %s: %s", c.Name, c.Result, c.OK, want, c.Detail)
		}
		if want == NotRun && !strings.HasPrefix(c.Detail, "not run: ") {
			t.Errorf("check %q not run, but its detail %q does not start with \"not run: \"", c.Name, c.Detail)
		}
		if w, ok := tt.wantDetail[c.Name]; ok && !strings.Contains(c.Detail, w) {
			t.Errorf("check %q detail %q, want it to contain %q", c.Name, c.Detail, w)
		}
	}
	if !slices.Equal(names, CheckNames) {
		t.Errorf("checks %v, want %v", names, CheckNames)
	}
	if rep.OK() != (len(tt.wantFail) == 0) {
		t.Errorf("report OK=%t", rep.OK())
	}
	if !rep.Reachable {
		t.Errorf("report says the launcher is unreachable")
	}
	if t.Failed() {
		var buf bytes.Buffer
		WriteReport(&buf, rep)
		t.Log("\n" + buf.String())
	}
	return rep
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// TestCheckLauncherConformant runs the suite against the dummy launcher in every mode and
// shape, and against launchers that differ from it in allowed ways.
func TestCheckLauncherConformant(t *testing.T) {
	noToken := []string{CheckToken}
	tests := []checkCase{
		{
			name:       "dummy hash",
			handler:    dummyHandler,
			wantNotRun: noToken,
			wantDetail: map[string]string{
				CheckBatch:        "8 item(s) in one POST",
				CheckOrder:        "in another order than the request",
				CheckBatchLimit:   "max_batch_size 8",
				CheckLongClip:     "60 s 16 kHz clip",
				CheckNonASCII:     `answered: "hash:`,
				CheckTimeout:      "of the 10s timeout",
				CheckInfo:         "extra fields latency_ms, mode, slots",
				CheckDuplicateIDs: "HTTP 400",
			},
		},
		{
			name: "dummy tone",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{Mode: ModeTone}), ServerOptions{})
			},
			wantNotRun: noToken,
		},
		{
			name: "dummy tone, slow, one slot",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{Mode: ModeTone, Latency: 150 * time.Millisecond, Slots: 1}), ServerOptions{})
			},
			wantNotRun: noToken,
		},
		{
			name: "max batch 1",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{MaxBatchSize: 1}), ServerOptions{})
			},
			wantNotRun: []string{CheckToken, CheckPartial},
			wantDetail: map[string]string{CheckBatch: "max batch of 1", CheckBatchLimit: "413 for 2 items", CheckPartial: "no neighbours", CheckDuplicateIDs: "HTTP 400"},
		},
		{
			name: "max batch 1, batch size checked before ids",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: NewHandler(mustDummy(t, DummyOptions{MaxBatchSize: 1}), ServerOptions{}), resp: func(_ string, _ []byte, status int, body []byte) (int, []byte) {
					if status == 400 && bytes.Contains(body, []byte("duplicate")) {
						return 413, []byte(`{"error":"batch of 2 items exceeds max_batch_size 1","max_batch_size":1}`)
					}
					return status, body
				}}
			},
			wantNotRun: []string{CheckToken, CheckPartial, CheckDuplicateIDs},
			wantDetail: map[string]string{CheckDuplicateIDs: "refused with HTTP 413 before their ids are read"},
		},
		{
			name: "max batch 2",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{MaxBatchSize: 2}), ServerOptions{})
			},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckBatch: "2 item(s)", CheckPartial: "1 neighbour(s)"},
		},
		{
			name: "no batching",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.SupportsBatching = false }}, ServerOptions{})
			},
			wantNotRun: []string{CheckToken, CheckPartial},
			wantDetail: map[string]string{CheckBatch: "1 item(s)", CheckBatchLimit: "413 for 2 items"},
		},
		{
			name: "no batching, no 413 for two items",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["supports_batching"] = false })
			},
			wantNotRun: []string{CheckToken, CheckPartial, CheckBatchLimit},
			wantDetail: map[string]string{CheckBatchLimit: "supports_batching is false", CheckDuplicateIDs: "HTTP 400"},
		},
		{
			name: "text-only launcher",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.AudioPayloadTypes = []string{"file_path"} }}, ServerOptions{})
			},
			wantNotRun: []string{CheckToken, CheckAudioPayload, CheckLongClip},
			wantDetail: map[string]string{CheckAudioPayload: "text-only", CheckLongClip: "no base64_wav"},
		},
		{
			name: "token required and given",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Token: "s3cret"})
			},
			token:      "s3cret",
			wantDetail: map[string]string{CheckToken: "HTTP 401 without the token"},
		},
		{
			name: "answers in request order",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(path string, _ []byte, status int, body []byte) (int, []byte) {
					if path != "/predict" || status != 200 {
						return status, body
					}
					var r contract.Response
					_ = json.Unmarshal(body, &r)
					slices.Reverse(r.Responses) // undo the dummy's reversal
					b, _ := json.Marshal(r)
					return status, b
				}}
			},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckOrder: "every answer in request order"},
		},
		{
			name: "extra /info fields",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["gpu"] = "A100"; m["quant"] = nil })
			},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckInfo: "extra fields gpu, latency_ms, mode, quant, slots"},
		},
		{
			name: "duplicate ids as item errors",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if status == 400 && bytes.Contains(body, []byte("duplicate")) {
						return 200, []byte(`{"schema_version":"predictions_v1","responses":[` +
							`{"sample_id":"dup","predictions":[],"error":"duplicate sample_id"},` +
							`{"sample_id":"dup","predictions":[],"error":"duplicate sample_id"}]}`)
					}
					return status, body
				}}
			},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckDuplicateIDs: "per-item errors"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCheckCase(t, tt) })
	}
}

// TestCheckLauncherBroken runs the suite against deliberately broken launchers: the check
// that names the breakage fails, and only it (or the few it implies).
func TestCheckLauncherBroken(t *testing.T) {
	noToken := []string{CheckToken}
	tests := []checkCase{
		{
			name: "not ready",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Ready: func() bool { return false }})
			},
			wantFail:   []string{CheckHealth},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckHealth: "HTTP 503, want 200"},
		},
		{
			name: "info lacks predictions_v1",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.SchemaVersions = []string{"predictions_v0"} }}, ServerOptions{})
			},
			wantFail:   []string{CheckInfoSchema},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckInfoSchema: "lacks"},
		},
		{
			name: "max_batch_size as a string",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["max_batch_size"] = "8" })
			},
			wantFail:   []string{CheckInfo},
			wantNotRun: []string{CheckToken, CheckPartial, CheckBatchLimit},
			wantDetail: map[string]string{CheckInfo: `"max_batch_size" is a string "8", want an integer ≥ 1`, CheckBatchLimit: "limit is unknown"},
		},
		{
			name: "max_batch_size as a fraction",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["max_batch_size"] = 2.5 })
			},
			wantFail:   []string{CheckInfo},
			wantNotRun: []string{CheckToken, CheckPartial, CheckBatchLimit},
			wantDetail: map[string]string{CheckInfo: `"max_batch_size" is a number 2.5`},
		},
		{
			name: "info lacks model_revision",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { delete(m, "model_revision") })
			},
			wantFail:   []string{CheckInfo},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckInfo: `missing "model_revision"`},
		},
		{
			name: "info field types",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) {
					m["name"] = 3
					m["model"] = nil
					m["supports_batching"] = "yes"
					m["audio_payload_types"] = []string{"base64_wav", "mp3"}
					m["schema_versions"] = "predictions_v1"
				})
			},
			wantFail:   []string{CheckInfo, CheckInfoSchema},
			wantNotRun: []string{CheckToken, CheckPartial, CheckBatchLimit},
			wantDetail: map[string]string{CheckInfo: `"name" is a number 3, want a string; "model" is null, want a string; "audio_payload_types" has unknown type "mp3"`},
		},
		{
			name: "no audio payload types",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["audio_payload_types"] = []string{} })
			},
			wantFail:   []string{CheckInfo},
			wantNotRun: []string{CheckToken, CheckAudioPayload, CheckLongClip},
			wantDetail: map[string]string{CheckInfo: `"audio_payload_types" is empty`},
		},
		{
			name: "no 413 above the limit",
			handler: func(t *testing.T) http.Handler {
				return editInfo(t, func(m map[string]any) { m["max_batch_size"] = 2 })
			},
			wantFail:   []string{CheckBatchLimit},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckBatchLimit: "POST 3 items (limit 2): HTTP 200, want 413"},
		},
		{
			name: "413 without the limit",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, _ []byte, status int, body []byte) (int, []byte) {
					if status == 413 {
						return status, []byte(`{"error":"too big, 18 items"}`)
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckBatchLimit},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckBatchLimit: "does not state the limit"},
		},
		{
			name: "answers an id twice",
			handler: func(t *testing.T) http.Handler {
				return editBatch(t, func(r *contract.Response) { r.Responses = append(r.Responses, r.Responses[0]) })
			},
			wantFail:   []string{CheckOrder},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckOrder: "batch of valid items: valid-007 answered 2 times"},
		},
		{
			name: "answers in request order and drops an id",
			handler: func(t *testing.T) http.Handler {
				return editBatch(t, func(r *contract.Response) {
					slices.Reverse(r.Responses)
					r.Responses = r.Responses[:len(r.Responses)-1]
				})
			},
			wantFail:   []string{CheckOrder},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckOrder: "valid-007 not answered"},
		},
		{
			name: "answers an unknown id",
			handler: func(t *testing.T) http.Handler {
				return editBatch(t, func(r *contract.Response) {
					extra := r.Responses[0]
					extra.SampleID = "stranger"
					r.Responses = append(r.Responses, extra)
				})
			},
			wantFail:   []string{CheckOrder},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckOrder: `answered sample_id "stranger" that was not sent`},
		},
		{
			name: "answers one id that was never sent instead of a sent one",
			handler: func(t *testing.T) http.Handler {
				return editBatch(t, func(r *contract.Response) { r.Responses[1].SampleID = "valid-999" })
			},
			wantFail:   []string{CheckOrder},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckOrder: `valid-006 not answered, answered sample_id "valid-999" that was not sent`},
		},
		{
			name: "fails the whole batch for one bad item",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if bytes.Contains(req, []byte("partial-bad")) {
						return 400, []byte(`{"error":"bad item"}`)
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckPartial},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckPartial: "HTTP 400, want 200"},
		},
		{
			name: "fails the good neighbours of a bad item",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if !bytes.Contains(req, []byte("partial-bad")) {
						return status, body
					}
					return status, editJSON(t, body, func(m map[string]any) {
						for _, it := range m["responses"].([]any) {
							it.(map[string]any)["error"] = "batch poisoned"
							it.(map[string]any)["predictions"] = []string{}
						}
					})
				}}
			},
			wantFail:   []string{CheckPartial},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckPartial: "good item partial-good-0 failed beside a bad one"},
		},
		{
			name: "malformed item answered with success",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if !bytes.Contains(req, []byte("partial-bad")) {
						return status, body
					}
					var r contract.Response
					_ = json.Unmarshal(body, &r)
					for i := range r.Responses {
						r.Responses[i].Error, r.Responses[i].Predictions = nil, []string{"robin"}
					}
					b, _ := json.Marshal(r)
					return status, b
				}}
			},
			wantFail:   []string{CheckPartial},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckPartial: `malformed item partial-bad (placeholder count ≠ audio count) succeeded with "robin"`},
		},
		{
			name: "answers duplicate ids twice",
			handler: func(t *testing.T) http.Handler {
				// Renames duplicates before the dummy sees them and renames them back after.
				return tamper{inner: dummyHandler(t),
					req: func(body []byte) []byte {
						var r contract.Request
						_ = json.Unmarshal(body, &r)
						seen := map[string]bool{}
						for i := range r.Requests {
							if seen[r.Requests[i].SampleID] {
								r.Requests[i].SampleID += "~twin"
							}
							seen[r.Requests[i].SampleID] = true
						}
						b, _ := json.Marshal(r)
						return b
					},
					resp: func(_ string, _ []byte, status int, body []byte) (int, []byte) {
						return status, bytes.ReplaceAll(body, []byte("~twin"), nil)
					}}
			},
			wantFail:   []string{CheckDuplicateIDs},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckDuplicateIDs: "2 answer(s) for the duplicated id, 2 of them successes"},
		},
		{
			name: "lenient schema_version",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), req: func(body []byte) []byte {
					return bytes.Replace(body, []byte(`"predictions_v0"`), []byte(`"predictions_v1"`), 1)
				}}
			},
			wantFail:   []string{CheckSchemaVersion},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckSchemaVersion: "HTTP 200, want 400"},
		},
		{
			name: "rejects unknown generation_config keys",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if bytes.Contains(req, []byte("top_k")) {
						return 400, []byte(`{"error":"unknown key top_k"}`)
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckUnknownGenKeys},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckUnknownGenKeys: "HTTP 400, want 200"},
		},
		{
			name: "refuses a 60 s clip",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{MaxBodyBytes: 1 << 20})
			},
			wantFail:   []string{CheckLongClip},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckLongClip: "HTTP 413, want 200"},
		},
		{
			name: "mangles non-ASCII text",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if !bytes.Contains(req, []byte("日本語")) {
						return status, body
					}
					return status, editJSON(t, body, func(m map[string]any) {
						for _, it := range m["responses"].([]any) {
							it.(map[string]any)["error"] = "'ascii' codec can't encode character"
							it.(map[string]any)["predictions"] = []string{}
						}
					})
				}}
			},
			wantFail:   []string{CheckNonASCII},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckNonASCII: "'ascii' codec can't encode"},
		},
		{
			name: "answers non-ASCII text with invalid UTF-8",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, req []byte, status int, body []byte) (int, []byte) {
					if !bytes.Contains(req, []byte("日本語")) {
						return status, body
					}
					return status, bytes.Replace(body, []byte(`"hash:`), []byte("\"\xff\xfehash:"), 1)
				}}
			},
			wantFail:   []string{CheckNonASCII},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckNonASCII: "not valid UTF-8"},
		},
		{
			name: "slower than the timeout",
			handler: func(t *testing.T) http.Handler {
				inner := dummyHandler(t)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := io.ReadAll(r.Body)
					if bytes.Contains(body, []byte("日本語")) {
						select { // far longer than the timeout: the checker gives up first
						case <-r.Context().Done():
						case <-time.After(20 * time.Second):
						}
					}
					r.Body = io.NopCloser(bytes.NewReader(body))
					inner.ServeHTTP(w, r)
				})
			},
			timeout:    3 * time.Second,
			wantFail:   []string{CheckNonASCII, CheckTimeout},
			wantNotRun: noToken,
			wantDetail: map[string]string{CheckNonASCII: "no answer within the timeout of 3s", CheckTimeout: "no answer within 3s for: non-ASCII text"},
		},
		{
			name: "token required but not given",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Token: "s3cret"})
			},
			wantFail: []string{CheckInfo},
			wantNotRun: []string{CheckInfoSchema, CheckAudioPayload, CheckToken, CheckBatch, CheckOrder, CheckPartial, CheckBatchLimit,
				CheckDuplicateIDs, CheckSchemaVersion, CheckUnknownGenKeys, CheckLongClip, CheckNonASCII, CheckTimeout},
			wantDetail: map[string]string{CheckInfo: "HTTP 401: the launcher requires a bearer token; give it with --token-file", CheckBatch: "refused the request without a token"},
		},
		{
			name: "wrong token given",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Token: "s3cret"})
			},
			token:    "other",
			wantFail: []string{CheckInfo},
			wantNotRun: []string{CheckInfoSchema, CheckAudioPayload, CheckToken, CheckBatch, CheckOrder, CheckPartial, CheckBatchLimit,
				CheckDuplicateIDs, CheckSchemaVersion, CheckUnknownGenKeys, CheckLongClip, CheckNonASCII, CheckTimeout},
			wantDetail: map[string]string{CheckInfo: "refused the token given"},
		},
		{
			name: "token configured but /info open without it",
			handler: func(t *testing.T) http.Handler {
				inner := NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Token: "s3cret"})
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/info" {
						r.Header.Set("Authorization", "Bearer s3cret")
					}
					inner.ServeHTTP(w, r)
				})
			},
			token:      "s3cret",
			wantFail:   []string{CheckToken},
			wantDetail: map[string]string{CheckToken: "GET /info without a token: HTTP 200, want 401; GET /info with a wrong token: HTTP 200, want 401"},
		},
		{
			name: "token ignored entirely",
			handler: func(t *testing.T) http.Handler {
				return dummyHandler(t)
			},
			token:      "s3cret",
			wantFail:   []string{CheckToken},
			wantDetail: map[string]string{CheckToken: "POST /predict without a token: HTTP 200, want 401"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runCheckCase(t, tt) })
	}
}

func TestCheckLauncherUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/predict"
	srv.Close()
	tests := []struct {
		name, url, healthDetail string
	}{
		{"closed port", url, "GET " + strings.TrimSuffix(url, "/predict") + "/health"},
		{"not a predict URL", "http://127.0.0.1:1/v1/chat", "does not end in /predict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := CheckLauncher(context.Background(), nil, tt.url, 5*time.Second)
			if rep.OK() || rep.Reachable {
				t.Fatalf("report OK=%t reachable=%t for an unreachable launcher", rep.OK(), rep.Reachable)
			}
			if len(rep.Checks) != len(CheckNames) {
				t.Errorf("%d checks, want all %d reported", len(rep.Checks), len(CheckNames))
			}
			for _, c := range rep.Checks {
				if c.OK || c.Outcome() == Pass {
					t.Errorf("check %q passed: %s", c.Name, c.Detail)
				}
			}
			if c, _ := rep.Check(CheckHealth); !strings.Contains(c.Detail, tt.healthDetail) || c.Result != Fail {
				t.Errorf("health %s %q, want a failure mentioning %q", c.Result, c.Detail, tt.healthDetail)
			}
			if c, _ := rep.Check(CheckBatch); !strings.HasPrefix(c.Detail, "not run: ") || c.Result != NotRun {
				t.Errorf("batch %s %q, want not run", c.Result, c.Detail)
			}
		})
	}
}

func TestReportOK(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		want   bool
	}{
		{"empty", nil, false},
		{"pass", []Check{{Name: "a", Result: Pass, OK: true}}, true},
		{"pass and not run", []Check{{Name: "a", Result: Pass, OK: true}, {Name: "b", Result: NotRun}}, true},
		{"only not run", []Check{{Name: "b", Result: NotRun}}, false},
		{"a failure", []Check{{Name: "a", Result: Pass, OK: true}, {Name: "b", Result: Fail}}, false},
		{"legacy OK fields", []Check{{Name: "a", OK: true}, {Name: "b", OK: false}}, false},
	}
	for _, tt := range tests {
		if got := (Report{Checks: tt.checks}).OK(); got != tt.want {
			t.Errorf("%s: OK=%t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestWriteReport(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		want string
	}{
		{"mixed", Report{URL: "http://n1:8000/predict", Checks: []Check{
			{Name: "health", OK: true, Detail: "HTTP 200"},
			{Name: "batch over max_batch_size", OK: false, Detail: "HTTP 200,\nwant 413"},
			{Name: "partial failure", Result: NotRun, Detail: "not run: max batch of 1"},
		}}, `launcher http://n1:8000/predict

CHECK                      RESULT   DETAIL
health                     PASS     HTTP 200
batch over max_batch_size  FAIL     HTTP 200, want 413
partial failure            NOT RUN  max batch of 1

1 of 3 checks passed (1 not run): the launcher does NOT conform to predictions_v1
`},
		{"all pass", Report{URL: "u", Checks: []Check{{Name: "x", OK: true, Detail: "d"}}}, `launcher u

CHECK  RESULT  DETAIL
x      PASS    d

1 of 1 checks passed: the launcher conforms to predictions_v1
`},
		{"pass and not run", Report{URL: "u", Checks: []Check{{Name: "x", Result: Pass, OK: true, Detail: "d"}, {Name: "y", Result: NotRun, Detail: "not run: why"}}}, `launcher u

CHECK  RESULT   DETAIL
x      PASS     d
y      NOT RUN  why

1 of 2 checks passed (1 not run): the launcher conforms to predictions_v1 in every check that could run
`},
		{"empty", Report{URL: "u"}, `launcher u

CHECK  RESULT  DETAIL

0 of 0 checks passed: the launcher does NOT conform to predictions_v1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			WriteReport(&buf, tt.rep)
			if buf.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
		})
	}
}

func TestWriteReportJSON(t *testing.T) {
	srv := httptest.NewServer(NewHandler(mustDummy(t, DummyOptions{MaxBatchSize: 1}), ServerOptions{}))
	defer srv.Close()
	rep := CheckLauncher(context.Background(), srv.Client(), srv.URL+"/predict", 10*time.Second)
	var buf bytes.Buffer
	if err := WriteReportJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SchemaVersion string         `json:"schema_version"`
		URL           string         `json:"url"`
		OK            bool           `json:"ok"`
		Reachable     bool           `json:"reachable"`
		Passed        int            `json:"passed"`
		Failed        int            `json:"failed"`
		NotRun        int            `json:"not_run"`
		Info          map[string]any `json:"info"`
		Checks        []struct {
			Name, Result, Detail string
			OK                   bool
		} `json:"checks"`
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.SchemaVersion != ReportSchemaVersion || doc.URL != srv.URL+"/predict" || !doc.OK || !doc.Reachable {
		t.Errorf("header %+v", doc)
	}
	if doc.Passed+doc.Failed+doc.NotRun != len(CheckNames) || doc.Failed != 0 || doc.NotRun != 2 {
		t.Errorf("counts passed %d failed %d not_run %d", doc.Passed, doc.Failed, doc.NotRun)
	}
	if doc.Info["max_batch_size"] != 1.0 || doc.Info["mode"] != "hash" {
		t.Errorf("info %v", doc.Info)
	}
	for i, c := range doc.Checks {
		if c.Name != CheckNames[i] || (c.Result == "pass") != c.OK || !slices.Contains([]string{"pass", "fail", "not_run"}, c.Result) {
			t.Errorf("check %d: %+v", i, c)
		}
	}
}
