package judge

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

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
	var use *cache.Use
	var dir string
	if j.opts.Cache != nil {
		if m, err := j.opts.Cache.Model(c.InfoRaw()); err != nil {
			j.opts.Log.Warn("the judge's answer cache cannot be read; judging without it", "err", err)
		} else {
			use, dir = m.Use(), m.Dir()
		}
	}
	record := func() *CacheRecord {
		if use == nil {
			return nil
		}
		st := use.Stats()
		r := &CacheRecord{Dir: dir, Hits: st.Hits, Misses: st.Misses, Stored: st.Stored}
		if st.Err != nil {
			r.Error = st.Err.Error()
		}
		return r
	}
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
		if use != nil {
			if e, ok := use.Lookup(q.id, js); ok {
				out[q.id] = reply{raw: e.Prediction, cached: true}
				continue
			}
		}
		send = append(send, predict.Item{ID: q.id, JSON: js})
	}
	if len(send) == 0 {
		return out, record(), nil
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
	// emit is never called concurrently (predict.Client.Run).
	err := c.Run(ctx, in, func(results []predict.Result) error {
		answers := make([]cache.Answer, len(results))
		for i, r := range results {
			out[r.SampleID] = reply{raw: r.Prediction, err: r.Err, attempts: r.Attempts, latency: r.Latency.Seconds()}
			answers[i] = cache.Answer{ID: r.SampleID, Prediction: r.Prediction, Item: json.RawMessage(r.Item), Err: r.Err}
		}
		if use != nil {
			if err := use.Store(answers); err != nil {
				j.opts.Log.Warn("the judge's answer cache cannot be written; answers are no longer stored", "err", err)
			}
		}
		return nil
	})
	return out, record(), err
}
