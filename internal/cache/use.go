package cache

import (
	"encoding/json"
	"sync"
)

// Use is one run's (or one judge pass's) use of a model's cache, safe for concurrent calls:
// Lookup answers a request item from the cache, or remembers its key under the item's id;
// Store keeps the successful answers of the items looked up. The first write error stops
// storing (the caller goes on without it) and is kept.
type Use struct {
	m *Model

	mu    sync.Mutex
	keys  map[string]Key
	stats UseStats
}

// UseStats count how the cache served.
type UseStats struct {
	// Hits are the items answered from the cache; Misses those to send.
	Hits, Misses int
	// Stored are the answers added; Uncacheable the items that could not be keyed (sent,
	// not stored).
	Stored, Uncacheable int
	// Err is why storing stopped, when it did.
	Err error
}

// Answer is one item's outcome: its id as looked up, its prediction and the launcher's
// response item, or the error it failed with (not stored).
type Answer struct {
	ID         string
	Prediction string
	Item       json.RawMessage
	Err        string
}

// Use starts a use of the model's cache.
func (m *Model) Use() *Use { return &Use{m: m, keys: map[string]Key{}} }

// Lookup returns the cached answer of an encoded request item, or remembers the item's key
// under id for Store.
func (u *Use) Lookup(id string, item []byte) (Entry, bool) {
	k, err := u.m.Key(item)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		u.stats.Misses++
		u.stats.Uncacheable++
		return Entry{}, false
	}
	if e, ok := u.m.Get(k); ok {
		u.stats.Hits++
		return e, true
	}
	u.stats.Misses++
	u.keys[id] = k
	return Entry{}, false
}

// Store keeps the answers of items looked up before and forgets their keys (answers of other
// items, failed ones and those without an item are not stored). It returns the write error that stopped storing, once: the
// first time it happens.
func (u *Use) Store(answers []Answer) error {
	u.mu.Lock()
	recs := make([]Record, 0, len(answers))
	for _, a := range answers {
		k, ok := u.keys[a.ID]
		delete(u.keys, a.ID)
		if ok && a.Err == "" && len(a.Item) > 0 && u.stats.Err == nil {
			recs = append(recs, Record{Key: k, Entry: Entry{Prediction: a.Prediction, Item: a.Item}})
		}
	}
	u.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	n, err := u.m.Put(recs)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stats.Stored += n
	if err != nil && u.stats.Err == nil {
		u.stats.Err = err
		return err
	}
	return nil
}

// Stats returns the counts so far.
func (u *Use) Stats() UseStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stats
}
