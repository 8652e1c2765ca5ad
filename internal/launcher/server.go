// Package launcher holds the built-in launchers (the dummy reference launcher) and the
// predictions_v1 server code they share: an http.Handler serving GET /health, GET /info and
// POST /predict for any Model, a Serve loop with graceful shutdown, and a conformance
// checker that tests any launcher against CONTRACT.md.
package launcher

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Model is what a launcher serves.
type Model interface {
	// Info is the launcher's /info document.
	Info() contract.Info
	// Predict answers one batch of items that already passed contract.ValidateItem; it
	// returns one ResponseItem per item (same sample_id); per-item failures go in the item's
	// Error. It may block (model time) and must honour ctx.
	Predict(ctx context.Context, items []contract.RequestItem) []contract.ResponseItem
}

// DefaultMaxBodyBytes is the request body limit of /predict when ServerOptions.MaxBodyBytes
// is zero.
const DefaultMaxBodyBytes int64 = 1 << 30

// ServerOptions tune NewHandler.
type ServerOptions struct {
	// Logger receives request logs; nil discards them.
	Logger *log.Logger
	// MaxBodyBytes is the largest /predict body accepted (HTTP 413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Ready reports whether the model can serve; /health answers 503 while it is false.
	// nil means always ready.
	Ready func() bool
	// Token, when set, is required as "Authorization: Bearer <token>" on /info and /predict
	// (HTTP 401 otherwise). /health stays open: it says nothing but "ok" or "loading".
	Token string
}

// NewHandler serves GET /health, GET /info and POST /predict for m, exactly at these paths.
//
// /predict answers HTTP 405 for another method, 413 for a body over the limit or a batch
// over Info().BatchLimit() (the JSON body states max_batch_size), 400 with {"error": …} for
// a batch-level violation (contract.DecodeRequest), and otherwise 200: items failing
// contract.ValidateItem get a per-item error and are not passed to the model. The response
// array is in reverse request order, deterministically, so that clients matching by
// position instead of sample_id fail at once.
func NewHandler(m Model, opts ServerOptions) http.Handler {
	h := &handler{model: m, logger: opts.Logger, maxBody: opts.MaxBodyBytes, ready: opts.Ready, token: opts.Token}
	if h.logger == nil {
		h.logger = log.New(io.Discard)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	return h
}

type handler struct {
	model   Model
	logger  *log.Logger
	maxBody int64
	ready   func() bool
	token   string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		if h.ready != nil && !h.ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/info":
		if !allowMethod(w, r, http.MethodGet, http.MethodHead) || !h.authorized(w, r) {
			return
		}
		writeJSON(w, http.StatusOK, h.model.Info())
	case "/predict":
		if !allowMethod(w, r, http.MethodPost) || !h.authorized(w, r) {
			return
		}
		h.predict(w, r)
	case "/judge":
		s, ok := h.model.(Scorer)
		if !ok || !h.model.Info().Speaks(contract.JudgeScoresV1) {
			writeError(w, http.StatusNotFound, "this launcher does not serve judge_scores_v1 (no /judge)")
			return
		}
		if !allowMethod(w, r, http.MethodPost) || !h.authorized(w, r) {
			return
		}
		h.judge(w, r, s)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s (this launcher serves /health, /info, /predict)", r.URL.Path))
	}
}

// authorized answers 401 unless the request carries the configured bearer token.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="beans-slurm launcher"`)
	writeError(w, http.StatusUnauthorized, "this launcher requires its sweep's bearer token (Authorization: Bearer …)")
	return false
}

// allowMethod answers 405 unless r's method is one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (use %s)", r.Method, r.URL.Path, allow))
	return false
}

func (h *handler) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, status, err := readBody(r, h.maxBody)
	if err != nil {
		h.logger.Warn("rejected /predict body", "status", status, "err", err)
		writeError(w, status, err.Error())
		return
	}
	req, err := contract.DecodeRequest(body)
	if err != nil {
		// DecodeRequest reports only batch-level violations; all are the client's fault.
		var be *contract.BatchError
		if !errors.As(err, &be) {
			err = fmt.Errorf("decode request: %w", err)
		}
		h.logger.Warn("rejected /predict batch", "status", http.StatusBadRequest, "err", err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit := h.model.Info().BatchLimit(); len(req.Requests) > limit {
		msg := fmt.Sprintf("batch of %d items exceeds max_batch_size %d", len(req.Requests), limit)
		h.logger.Warn("rejected /predict batch", "status", http.StatusRequestEntityTooLarge, "err", msg)
		writeJSON(w, http.StatusRequestEntityTooLarge, struct {
			Error        string `json:"error"`
			MaxBatchSize int    `json:"max_batch_size"`
		}{msg, limit})
		return
	}

	var fault requestFault
	if fi, ok := h.model.(faultInjector); ok {
		ids := make([]string, len(req.Requests))
		for i := range req.Requests {
			ids[i] = req.Requests[i].SampleID
		}
		if fault = fi.requestFault(ids); fault.before(w) {
			h.logger.Debug("injected a fault", "items", len(ids), "drop", fault.drop, "status", fault.status)
			return
		}
	}

	answers := make([]contract.ResponseItem, len(req.Requests))
	valid := make([]contract.RequestItem, 0, len(req.Requests))
	validAt := make([]int, 0, len(req.Requests))
	for i := range req.Requests {
		it := &req.Requests[i]
		if err := contract.ValidateItem(it); err != nil {
			answers[i] = failedItem(it.SampleID, err.Error())
			continue
		}
		valid = append(valid, *it)
		validAt = append(validAt, i)
	}
	if len(valid) > 0 {
		got := h.model.Predict(r.Context(), valid)
		byID := make(map[string]int, len(got))
		for k := range got {
			if _, dup := byID[got[k].SampleID]; !dup {
				byID[got[k].SampleID] = k
			}
		}
		for j, i := range validAt {
			k, ok := byID[valid[j].SampleID]
			if !ok {
				answers[i] = failedItem(valid[j].SampleID, "model gave no answer for this item")
				continue
			}
			answers[i] = normalise(got[k])
		}
	}
	failed := 0
	for i := range answers {
		if answers[i].Failed() {
			failed++
		}
	}
	// Reverse: deterministic, and different from request order whenever there are ≥ 2 items.
	for i, j := 0, len(answers)-1; i < j; i, j = i+1, j-1 {
		answers[i], answers[j] = answers[j], answers[i]
	}
	if fault.malformed {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"schema_version":"predictions_v1","responses":[{"sample_id": (injected malformed body`)
		return
	}
	answers = fault.corrupt(answers)
	writeJSON(w, http.StatusOK, contract.Response{SchemaVersion: contract.PredictionsV1, Responses: answers})
	h.logger.Debug("answered /predict", "items", len(answers), "failed", failed, "bytes", len(body), "elapsed", time.Since(start).Round(time.Millisecond))
}

// normalise makes a model's answer conform: an error item carries a list (possibly empty) of
// predictions, a success carries at least one.
func normalise(it contract.ResponseItem) contract.ResponseItem {
	if it.Failed() {
		if it.Predictions == nil {
			it.Predictions = []string{}
		}
		return it
	}
	it.Error = nil
	if len(it.Predictions) == 0 {
		msg := "model returned no prediction"
		it.Error = &msg
		it.Predictions = []string{}
	}
	return it
}

func failedItem(id, msg string) contract.ResponseItem {
	return contract.ResponseItem{SampleID: id, Predictions: []string{}, Error: &msg}
}

// readBody reads the request body with one allocation when Content-Length is known. It
// returns the HTTP status to answer with on error.
func readBody(r *http.Request, max int64) ([]byte, int, error) {
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, max)
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("read request body (%d bytes announced): %w", r.ContentLength, err)
		}
		return buf, 0, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(buf)) > max {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds the limit of %d bytes", max)
	}
	return buf, 0, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ShutdownTimeout bounds the graceful shutdown of Serve; requests still running after it are
// cut off.
const ShutdownTimeout = 10 * time.Second

// Serve listens on addr (e.g. "127.0.0.1:0"), calls ready(baseURL) with the base URL
// (http://host:port) once listening, and serves h until ctx is done; then it shuts down
// gracefully, waiting at most ShutdownTimeout for requests in flight. When addr binds every
// interface (":8000", "0.0.0.0:8000"), the base URL carries this machine's host name, which is
// what other nodes of a cluster need. It returns nil after a shutdown caused by ctx.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(baseURL string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(baseURL(ln.Addr()))
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down server on %s: %w", ln.Addr(), err)
	}
	return nil
}

func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		} else {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
