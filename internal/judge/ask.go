package judge

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

func filepathDir(p string) string { return filepath.Dir(p) }

func sortAnswers(a []eval.Answer) {
	slices.SortStableFunc(a, func(x, y eval.Answer) int { return strings.Compare(x.SampleID, y.SampleID) })
}

// question is one prompt for a predictions_v1 judge.
type question struct {
	id     string
	prompt string
}

// reply is a predictions_v1 judge's answer to one question.
type reply struct {
	raw      string // predictions[0]
	err      string // the item failed (after the client's retries)
	cached   bool
	attempts int
	latency  float64
}

// CacheRecord says how the answer cache served a judge.
type CacheRecord struct {
	Dir    string `json:"dir"`
	Hits   int    `json:"hits"`
	Misses int    `json:"misses"`
	Stored int    `json:"stored"`
	Error  string `json:"error,omitempty"`
}

// ask sends questions to a predictions_v1 judge (text only) and returns a reply per question
// id. Answers already in the cache are not sent; new successful answers are stored as each
// batch arrives, so a judge stopped half-way resumes where it stopped.
func (j *Judges) ask(ctx context.Context, c *predict.Client, qs []question, gen contract.GenerationConfig) (map[string]reply, *CacheRecord, error) {
	out := make(map[string]reply, len(qs))
	var m *cache.Model
	var rec *CacheRecord
	if j.opts.Cache != nil {
		var err error
		if m, err = j.opts.Cache.Model(c.InfoRaw()); err != nil {
			j.opts.Log.Warn("the judge's answer cache cannot be read; judging without it", "err", err)
			m = nil
		} else {
			rec = &CacheRecord{Dir: m.Dir()}
		}
	}
	var mu sync.Mutex
	keys := map[string]cache.Key{}
	var send []predict.Item
	for _, q := range qs {
		it := contract.RequestItem{
			SampleID:         q.id,
			Messages:         []contract.Message{{Role: "user", Content: q.prompt}},
			AudioInputs:      []contract.AudioInput{},
			GenerationConfig: gen,
		}
		js, err := contract.AppendRequestItem(nil, &it)
		if err != nil {
			out[q.id] = reply{err: "encode the judge request: " + err.Error()}
			continue
		}
		if m != nil {
			if k, err := m.Key(js); err == nil {
				if e, ok := m.Get(k); ok {
					out[q.id] = reply{raw: e.Prediction, cached: true}
					rec.Hits++
					continue
				}
				keys[q.id] = k
			}
			rec.Misses++
		}
		send = append(send, predict.Item{ID: q.id, JSON: js})
	}
	if len(send) == 0 {
		return out, rec, nil
	}
	in := make(chan predict.Item)
	go func() {
		defer close(in)
		for _, it := range send {
			select {
			case in <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	err := c.Run(ctx, in, func(results []predict.Result) error {
		var recs []cache.Record
		mu.Lock()
		for _, r := range results {
			out[r.SampleID] = reply{raw: r.Prediction, err: r.Err, attempts: r.Attempts, latency: r.Latency.Seconds()}
			if k, ok := keys[r.SampleID]; ok && r.Err == "" && m != nil && rec.Error == "" {
				recs = append(recs, cache.Record{Key: k, Entry: cache.Entry{Prediction: r.Prediction, Item: json.RawMessage(r.Item)}})
			}
		}
		mu.Unlock()
		if len(recs) > 0 {
			n, err := m.Put(recs)
			mu.Lock()
			rec.Stored += n
			if err != nil && rec.Error == "" {
				rec.Error = err.Error()
				j.opts.Log.Warn("the judge's answer cache cannot be written; answers are no longer stored", "err", err)
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return out, rec, err
	}
	return out, rec, nil
}
