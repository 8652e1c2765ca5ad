package eval

import (
	"encoding/json"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

// AnswerCacheRecord is the answer cache's part of run.json.
type AnswerCacheRecord struct {
	// Dir is the model identity's directory in the cache.
	Dir string `json:"dir"`
	// Hits are the samples answered from the cache (not sent); Misses those sent.
	Hits   int `json:"hits"`
	Misses int `json:"misses"`
	// Stored are this task's answers added to the cache.
	Stored int `json:"stored"`
	// Uncacheable are the samples whose request could not be keyed (sent, not stored).
	Uncacheable int `json:"uncacheable,omitempty"`
	// SkippedLines are the cache's unreadable lines (torn or corrupt) skipped when it was read.
	SkippedLines int `json:"skipped_lines,omitempty"`
	// Error is why storing stopped, when it did (the run went on without storing).
	Error string `json:"error,omitempty"`
}

// answerCache is one task's use of the answer cache; a nil *answerCache is off.
type answerCache struct {
	u       *cache.Use
	log     *log.Logger
	dir     string
	skipped int
}

// newAnswerCache opens the cache of the launcher's model, or returns nil when the run has
// no answer cache or it cannot be read (the run then goes on without it).
func newAnswerCache(cfg Config, client *predict.Client, task string) *answerCache {
	if cfg.AnswerCache == nil {
		return nil
	}
	m, err := cfg.AnswerCache.Model(client.InfoRaw())
	if err != nil {
		cfg.Log.Warn("the answer cache cannot be read; this task runs without it", "task", task, "err", err)
		return nil
	}
	return &answerCache{u: m.Use(), log: cfg.Log, dir: m.Dir(), skipped: m.Stats().Skipped}
}

// lookup returns the line of a sample answered from the cache, else remembers the key of its
// request for store.
func (a *answerCache) lookup(js []byte, line PredictionLine) (PredictionLine, bool) {
	if a == nil {
		return line, false
	}
	e, ok := a.u.Lookup(line.SampleID, js)
	if ok {
		line.Prediction, line.Response, line.Cached = e.Prediction, e.Relabel(line.SampleID), true
	}
	return line, ok
}

// store adds the successful answers of a batch to the cache. A cache that cannot be written
// is reported once and no longer written; the run goes on.
func (a *answerCache) store(results []predict.Result) {
	if a == nil {
		return
	}
	answers := make([]cache.Answer, len(results))
	for i, r := range results {
		answers[i] = cache.Answer{ID: r.SampleID, Prediction: r.Prediction, Item: json.RawMessage(r.Item), Err: r.Err}
	}
	if err := a.u.Store(answers); err != nil {
		a.log.Warn("the answer cache cannot be written; answers are no longer stored in it", "err", err)
	}
}

// record is run.json's answer_cache (nil without a cache).
func (a *answerCache) record() *AnswerCacheRecord {
	if a == nil {
		return nil
	}
	st := a.u.Stats()
	r := &AnswerCacheRecord{Dir: a.dir, Hits: st.Hits, Misses: st.Misses, Stored: st.Stored, Uncacheable: st.Uncacheable, SkippedLines: a.skipped}
	if st.Err != nil {
		r.Error = st.Err.Error()
	}
	return r
}
