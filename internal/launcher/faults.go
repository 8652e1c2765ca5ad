package launcher

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
)

// Faults the dummy launcher injects on purpose (DummyOptions), to test clients. Every
// decision is a pure function of the seed, the fault, a sample id and how many times this
// launcher process has seen that id: a retried item gets a new draw, and two runs with the
// same seed that send the same requests see the same faults whatever the timing.

// InjectedItemFailure is the per-item error of items failed by DummyOptions.FailRate.
const InjectedItemFailure = "injected failure (fail-rate)"

// Bad-id faults (DummyOptions.BadIDsRate): which way the answer's ids are wrong.
const (
	badIDNone = iota
	badIDWrong
	badIDMissing
	badIDDuplicate
)

// requestFault is what happens to one POST /predict.
type requestFault struct {
	drop       bool          // close the connection without answering
	status     int           // answer this HTTP status instead (0: none)
	retryAfter time.Duration // with status: the Retry-After header (0: none)
	malformed  bool          // answer 200 with a body that is not JSON
	badIDs     int           // badID*
	pick       uint64        // which item a bad-id fault touches
}

// faultInjector is implemented by models that misbehave on purpose; the handler asks it
// about every POST /predict that passed the batch checks.
type faultInjector interface {
	requestFault(ids []string) requestFault
}

// faultState counts, per sample id, how many times requests and items were seen.
type faultState struct {
	mu    sync.Mutex
	reqs  map[string]int64
	items map[string]int64
}

func (f *faultState) next(m *map[string]int64, id string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[id]++
	return (*m)[id]
}

// draw is a uniform number in [0, 1) fixed by the seed, the fault's name, an id and a count.
func draw(seed uint64, kind, id string, n int64) float64 {
	return float64(mix(seed, kind, id, n)>>11) / (1 << 53)
}

func mix(seed uint64, kind, id string, n int64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(id))
	h.Write([]byte{0})
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	// splitmix64 finaliser: FNV alone is weak in the high bits.
	z := h.Sum64() + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (o *DummyOptions) hasRequestFaults() bool {
	return o.DropRate > 0 || o.StatusRate > 0 || o.MalformedRate > 0 || o.BadIDsRate > 0
}

func (o *DummyOptions) hasFaults() bool {
	return o.hasRequestFaults() || o.FailRate > 0 || o.LatencyJitter > 0
}

// checkFaults validates the fault options and fills in defaults.
func (o *DummyOptions) checkFaults() error {
	for _, r := range []struct {
		name string
		p    float64
	}{{"fail-rate", o.FailRate}, {"drop-rate", o.DropRate}, {"status-rate", o.StatusRate}, {"bad-ids-rate", o.BadIDsRate}, {"malformed-rate", o.MalformedRate}} {
		if math.IsNaN(r.p) || r.p < 0 || r.p > 1 {
			return fmt.Errorf("dummy launcher: %s %v is not a probability in [0, 1]", r.name, r.p)
		}
	}
	if o.LatencyJitter < 0 {
		return fmt.Errorf("dummy launcher: latency jitter %s is negative", o.LatencyJitter)
	}
	if o.RetryAfter < 0 {
		return fmt.Errorf("dummy launcher: retry-after %s is negative", o.RetryAfter)
	}
	if o.Status == 0 {
		o.Status = http.StatusServiceUnavailable
	}
	switch o.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable:
	default:
		return fmt.Errorf("dummy launcher: status %d is not one of 429, 500, 503", o.Status)
	}
	if o.Status == http.StatusTooManyRequests && o.RetryAfter == 0 {
		o.RetryAfter = time.Second
	}
	return nil
}

// faultsInfo describes the faults in /info (extra field "faults"), nil without faults.
func (o *DummyOptions) faultsInfo() map[string]any {
	if !o.hasFaults() {
		return nil
	}
	m := map[string]any{"seed": o.Seed}
	add := func(k string, p float64) {
		if p > 0 {
			m[k] = p
		}
	}
	add("fail_rate", o.FailRate)
	add("drop_rate", o.DropRate)
	add("bad_ids_rate", o.BadIDsRate)
	add("malformed_rate", o.MalformedRate)
	if o.StatusRate > 0 {
		m["status_rate"] = o.StatusRate
		m["status"] = o.Status
		if o.RetryAfter > 0 {
			m["retry_after_ms"] = o.RetryAfter.Milliseconds()
		}
	}
	if o.LatencyJitter > 0 {
		m["latency_jitter_ms"] = o.LatencyJitter.Milliseconds()
	}
	return m
}

func (d *dummy) requestFault(ids []string) requestFault {
	o := &d.opts
	if !o.hasRequestFaults() || len(ids) == 0 {
		return requestFault{}
	}
	n := d.faults.next(&d.faults.reqs, ids[0])
	p := func(kind string) float64 { return draw(o.Seed, kind, ids[0], n) }
	switch {
	case o.DropRate > 0 && p("drop") < o.DropRate:
		return requestFault{drop: true}
	case o.StatusRate > 0 && p("status") < o.StatusRate:
		return requestFault{status: o.Status, retryAfter: o.RetryAfter}
	case o.MalformedRate > 0 && p("malformed") < o.MalformedRate:
		return requestFault{malformed: true}
	case o.BadIDsRate > 0 && p("bad-ids") < o.BadIDsRate:
		k := mix(o.Seed, "bad-ids-kind", ids[0], n)
		return requestFault{badIDs: badIDWrong + int(k%3), pick: k >> 8}
	}
	return requestFault{}
}

// itemFails says whether this arrival of the item fails (DummyOptions.FailRate).
func (d *dummy) itemFails(id string) bool {
	if d.opts.FailRate <= 0 {
		return false
	}
	n := d.faults.next(&d.faults.items, id)
	return draw(d.opts.Seed, "fail", id, n) < d.opts.FailRate
}

// jitter is the extra model time of a batch (DummyOptions.LatencyJitter), uniform.
func (d *dummy) jitter(items []contract.RequestItem) time.Duration {
	if d.opts.LatencyJitter <= 0 || len(items) == 0 {
		return 0
	}
	id := items[0].SampleID
	n := d.faults.next(&d.faults.reqs, "\x00jitter\x00"+id)
	return time.Duration(draw(d.opts.Seed, "jitter", id, n) * float64(d.opts.LatencyJitter))
}

// before serves the faults that replace the answer (a dropped connection, an HTTP error);
// it returns true when the request is answered (or dropped) that way.
func (f requestFault) before(w http.ResponseWriter) bool {
	switch {
	case f.drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		// Without hijacking (HTTP/2): abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	case f.status != 0:
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatFloat(f.retryAfter.Seconds(), 'f', -1, 64))
		}
		writeError(w, f.status, fmt.Sprintf("injected HTTP %d (status-rate)", f.status))
		return true
	}
	return false
}

// corrupt makes the answer's ids wrong as the fault says.
func (f requestFault) corrupt(answers []contract.ResponseItem) []contract.ResponseItem {
	if f.badIDs == badIDNone || len(answers) == 0 {
		return answers
	}
	k := int(f.pick % uint64(len(answers)))
	switch f.badIDs {
	case badIDWrong:
		answers[k].SampleID = "not-sent-" + answers[k].SampleID
	case badIDMissing:
		answers = append(answers[:k:k], answers[k+1:]...)
	case badIDDuplicate:
		// Another item's answer under this item's id: a client matching naively would
		// attribute it to the wrong sample.
		dup := answers[(k+1)%len(answers)]
		dup.SampleID = answers[k].SampleID
		answers = append(answers, dup)
	}
	return answers
}
