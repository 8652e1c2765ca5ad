package eval

import (
	"encoding/json"
	"sync"

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
	m   *cache.Model
	log *log.Logger

	mu   sync.Mutex
	keys map[string]cache.Key // sample id → key of the request sent
	rec  AnswerCacheRecord
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
	st := m.Stats()
	return &answerCache{m: m, log: cfg.Log, keys: map[string]cache.Key{},
		rec: AnswerCacheRecord{Dir: m.Dir(), SkippedLines: st.Skipped}}
}

// lookup returns the line of a sample answered from the cache, else remembers the key of its
// request for store.
func (a *answerCache) lookup(js []byte, line PredictionLine) (PredictionLine, bool) {
	if a == nil {
		return line, false
	}
	k, err := a.m.Key(js)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.rec.Misses++
		a.rec.Uncacheable++
		return line, false
	}
	if e, ok := a.m.Get(k); ok {
		a.rec.Hits++
		line.Prediction, line.Response, line.Cached = e.Prediction, e.Relabel(line.SampleID), true
		return line, true
	}
	a.rec.Misses++
	a.keys[line.SampleID] = k
	return line, false
}

// store adds the successful answers of a batch to the cache. A cache that cannot be written
// is reported once and no longer written; the run goes on.
func (a *answerCache) store(results []predict.Result) {
	if a == nil {
		return
	}
	a.mu.Lock()
	recs := make([]cache.Record, 0, len(results))
	for _, r := range results {
		k, ok := a.keys[r.SampleID]
		delete(a.keys, r.SampleID)
		if ok && r.Err == "" && len(r.Item) > 0 && a.rec.Error == "" {
			recs = append(recs, cache.Record{Key: k, Entry: cache.Entry{Prediction: r.Prediction, Item: json.RawMessage(r.Item)}})
		}
	}
	a.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	stored, err := a.m.Put(recs)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rec.Stored += stored
	if err != nil && a.rec.Error == "" {
		a.rec.Error = err.Error()
		a.log.Warn("the answer cache cannot be written; answers are no longer stored in it", "err", err)
	}
}

// record is run.json's answer_cache (nil without a cache).
func (a *answerCache) record() *AnswerCacheRecord {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rec
	return &r
}
