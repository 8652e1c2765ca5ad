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
	r2 := httptest.NewRequest(r.Method, r.URL.Path, bytes.NewReader(body))
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

func TestCheckLauncher(t *testing.T) {
	all := []string{CheckHealth, CheckInfo, CheckInfoSchema, CheckAudioPayload, CheckBatch, CheckOrder, CheckPartial, CheckBatchLimit, CheckDuplicateIDs, CheckSchemaVersion, CheckUnknownGenKeys}
	dummyHandler := func(t *testing.T) http.Handler { return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{}) }
	tests := []struct {
		name     string
		handler  func(t *testing.T) http.Handler
		wantFail []string
		// wantDetail maps a check to a substring its detail must contain.
		wantDetail map[string]string
	}{
		{
			name:       "dummy",
			handler:    dummyHandler,
			wantDetail: map[string]string{CheckOrder: "differs", CheckBatchLimit: "max_batch_size 8", CheckDuplicateIDs: "HTTP 400"},
		},
		{
			name: "dummy tone-free text-only launcher",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.AudioPayloadTypes = []string{"file_path"} }}, ServerOptions{})
			},
			wantDetail: map[string]string{CheckAudioPayload: "text-only"},
		},
		{
			name: "no batching",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.SupportsBatching = false }}, ServerOptions{})
			},
			wantDetail: map[string]string{CheckOrder: "max batch of 1", CheckPartial: "max batch of 1", CheckBatchLimit: "413 for 2 items", CheckDuplicateIDs: "HTTP 400"},
		},
		{
			name: "max batch 2",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{MaxBatchSize: 2}), ServerOptions{})
			},
			wantDetail: map[string]string{CheckBatch: "2 item(s)", CheckPartial: "1 neighbour(s)"},
		},
		{
			name: "not ready",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(mustDummy(t, DummyOptions{}), ServerOptions{Ready: func() bool { return false }})
			},
			wantFail: []string{CheckHealth},
		},
		{
			name: "info lacks predictions_v1",
			handler: func(t *testing.T) http.Handler {
				return NewHandler(infoModel{mustDummy(t, DummyOptions{}), func(in *contract.Info) { in.SchemaVersions = []string{"predictions_v0"} }}, ServerOptions{})
			},
			wantFail:   []string{CheckInfoSchema},
			wantDetail: map[string]string{CheckInfoSchema: "lacks"},
		},
		{
			name: "info lacks model_revision",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(path string, _ []byte, status int, body []byte) (int, []byte) {
					if path == "/info" {
						body = editJSON(t, body, func(m map[string]any) { delete(m, "model_revision") })
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckInfo},
			wantDetail: map[string]string{CheckInfo: `missing "model_revision"`},
		},
		{
			name: "answers in order and drops an id",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(path string, _ []byte, status int, body []byte) (int, []byte) {
					if path != "/predict" || status != 200 {
						return status, body
					}
					var r contract.Response
					_ = json.Unmarshal(body, &r)
					if len(r.Responses) < 3 || slices.ContainsFunc(r.Responses, contract.ResponseItem.Failed) {
						return status, body
					}
					slices.Reverse(r.Responses)
					r.Responses = r.Responses[:len(r.Responses)-1]
					b, _ := json.Marshal(r)
					return status, b
				}}
			},
			wantFail:   []string{CheckBatch, CheckOrder},
			wantDetail: map[string]string{CheckBatch: "valid-002: launcher sent no response item", CheckOrder: "not run"},
		},
		{
			name: "ignores batch limit",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(path string, _ []byte, status int, body []byte) (int, []byte) {
					if path == "/info" {
						body = editJSON(t, body, func(m map[string]any) { m["max_batch_size"] = 2 })
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckBatchLimit},
			wantDetail: map[string]string{CheckBatchLimit: "POST 3 items (limit 2): HTTP 200, want 413"},
		},
		{
			name: "413 without the limit",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), resp: func(_ string, _ []byte, status int, body []byte) (int, []byte) {
					if status == 413 {
						return status, []byte(`{"error":"too big"}`)
					}
					return status, body
				}}
			},
			wantFail:   []string{CheckBatchLimit},
			wantDetail: map[string]string{CheckBatchLimit: "does not state the limit"},
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
			wantDetail: map[string]string{CheckDuplicateIDs: "2 answer(s) for the duplicated id, 2 of them successes"},
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
			wantDetail: map[string]string{CheckDuplicateIDs: "per-item errors"},
		},
		{
			name: "lenient schema_version",
			handler: func(t *testing.T) http.Handler {
				return tamper{inner: dummyHandler(t), req: func(body []byte) []byte {
					return bytes.Replace(body, []byte(`"predictions_v0"`), []byte(`"predictions_v1"`), 1)
				}}
			},
			wantFail: []string{CheckSchemaVersion},
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
			wantDetail: map[string]string{CheckUnknownGenKeys: "HTTP 400, want 200"},
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
			wantDetail: map[string]string{CheckPartial: "HTTP 400, want 200"},
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
			wantDetail: map[string]string{CheckPartial: `malformed item partial-bad (placeholder count ≠ audio count) succeeded with "robin"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler(t))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep := CheckLauncher(ctx, srv.Client(), srv.URL+"/predict", 10*time.Second)
			var names []string
			for _, c := range rep.Checks {
				names = append(names, c.Name)
				wantOK := !slices.Contains(tt.wantFail, c.Name)
				if c.OK != wantOK {
					t.Errorf("check %q OK=%t, want %t: %s", c.Name, c.OK, wantOK, c.Detail)
				}
				if w, ok := tt.wantDetail[c.Name]; ok && !strings.Contains(c.Detail, w) {
					t.Errorf("check %q detail %q, want it to contain %q", c.Name, c.Detail, w)
				}
			}
			if !slices.Equal(names, all) {
				t.Errorf("checks %v, want %v", names, all)
			}
			if rep.OK() != (len(tt.wantFail) == 0) {
				t.Errorf("report OK=%t", rep.OK())
			}
			if t.Failed() {
				var buf bytes.Buffer
				WriteReport(&buf, rep)
				t.Log("\n" + buf.String())
			}
		})
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
			if rep.OK() {
				t.Fatal("report OK for an unreachable launcher")
			}
			if len(rep.Checks) != 11 {
				t.Errorf("%d checks, want all 11 reported", len(rep.Checks))
			}
			for _, c := range rep.Checks {
				if c.OK {
					t.Errorf("check %q passed: %s", c.Name, c.Detail)
				}
			}
			if c, _ := rep.Check(CheckHealth); !strings.Contains(c.Detail, tt.healthDetail) {
				t.Errorf("health detail %q, want %q", c.Detail, tt.healthDetail)
			}
			if c, _ := rep.Check(CheckBatch); !strings.HasPrefix(c.Detail, "not run: ") {
				t.Errorf("batch detail %q, want not run", c.Detail)
			}
		})
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
		}}, `launcher http://n1:8000/predict

CHECK                      RESULT  DETAIL
health                     PASS    HTTP 200
batch over max_batch_size  FAIL    HTTP 200, want 413

1 of 2 checks passed: the launcher does NOT conform to predictions_v1
`},
		{"all pass", Report{URL: "u", Checks: []Check{{Name: "x", OK: true, Detail: "d"}}}, `launcher u

CHECK  RESULT  DETAIL
x      PASS    d

1 of 1 checks passed: the launcher conforms to predictions_v1
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
