// Package cache is the answer cache: the launcher's answers to request items, kept on disk so
// that no answer is paid for twice ("never lose work"). An answer is keyed by the model's
// identity (its /info document without the launcher's operational fields) and by everything
// the model sees of the request item — messages, generation_config and a SHA-256 of every
// audio byte — never by the launcher's URL: the same model on another node or port hits, a
// model of another revision never does.
//
// The cache is made for shared filesystems (NFS, Lustre) with many writers at once, and takes
// no locks. Layout:
//
//	<dir>/<identity hash>/identity.json                      the identity, for people
//	<dir>/<identity hash>/<host>-<pid>-<random>.jsonl         one file per writing process
//
// A writer only ever appends to its own file, one JSON line per answer, and fsyncs after each
// batch. A reader reads every writer's file of an identity once, when that identity is first
// used, into an index in memory; a torn last line (a writer that crashed mid-write, or a
// write not yet visible) and any other unreadable line are skipped and counted. Answers
// written by other processes after that are not seen by this one.
package cache

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

// keyVersion changes whenever the key's encoding changes, so that old entries miss.
const keyVersion = 1

// Identity is the part of an /info document that names the model: every field but
// predict.OperationalFields, which describe how a launcher runs (batch limits, payload
// types, the dummy's latency, slots and injected faults) and may change between runs of the
// same model. It keeps name, model, model_revision and any extra identity fields.
func Identity(info json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(info, &m)
	for _, k := range predict.OperationalFields {
		delete(m, k)
	}
	return m
}

// Key identifies one request item of one model.
type Key [sha256.Size]byte

// String is the key in hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ErrUncacheable says that a request item cannot be keyed (audio the cache cannot read, such
// as a file_url payload or a file that is gone); such items are sent and not stored.
var ErrUncacheable = errors.New("request item cannot be cached")

// Entry is one cached answer.
type Entry struct {
	// Prediction is the answer's first prediction.
	Prediction string
	// Item is the launcher's response item as it arrived (predictions, finish_reason,
	// usage…), with the sample_id of the item that was asked.
	Item json.RawMessage
}

// Relabel returns the entry's response item with sampleID as its sample_id (first), the
// other fields after it in name order.
func (e Entry) Relabel(sampleID string) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Item, &m); err != nil {
		return e.Item
	}
	delete(m, "sample_id")
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	id, _ := json.Marshal(sampleID)
	var b bytes.Buffer
	b.WriteString(`{"sample_id":`)
	b.Write(id)
	for _, k := range names {
		kb, _ := json.Marshal(k)
		b.WriteByte(',')
		b.Write(kb)
		b.WriteByte(':')
		b.Write(m[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// failed reports whether a response item carries an error (such items are never stored).
func failed(item json.RawMessage) bool {
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(item, &r); err != nil {
		return true
	}
	e := bytes.TrimSpace(r.Error)
	if len(e) == 0 || string(e) == "null" {
		return false
	}
	var s string
	if json.Unmarshal(e, &s) == nil && strings.TrimSpace(s) == "" {
		return false
	}
	return true
}

// Record is one answer to store.
type Record struct {
	Key Key
	Entry
}

// Stats say what a model's cache held when it was loaded and what was added since.
type Stats struct {
	// Entries are the answers in the index (loaded and stored).
	Entries int `json:"entries"`
	// Files are the writers' files read when the identity was loaded.
	Files int `json:"files"`
	// Skipped are the lines that could not be read (torn or corrupt) and were skipped.
	Skipped int `json:"skipped_lines,omitempty"`
	// Stored are the answers this process appended.
	Stored int `json:"stored"`
}

// Cache is an answer cache rooted at a directory. Its methods are safe for concurrent use.
type Cache struct {
	dir    string
	mu     sync.Mutex
	models map[string]*Model
}

// Open returns the cache rooted at dir. Nothing is read or created until it is used.
func Open(dir string) *Cache {
	return &Cache{dir: dir, models: map[string]*Model{}}
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

// Model returns the cache of the model that /info describes, reading every writer's file of
// its identity the first time.
func (c *Cache) Model(info json.RawMessage) (*Model, error) {
	id, err := canonical(Identity(info))
	if err != nil {
		return nil, fmt.Errorf("answer cache: the model's /info: %w", err)
	}
	sum := sha256.Sum256(id)
	name := hex.EncodeToString(sum[:16])
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.models[name]; m != nil {
		return m, nil
	}
	m := &Model{dir: filepath.Join(c.dir, name), identity: id, index: map[Key]Entry{}}
	if err := m.load(); err != nil {
		return nil, err
	}
	c.models[name] = m
	return m, nil
}

// Close closes the files this process writes (a nil Cache is a no-op).
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, m := range c.models {
		errs = append(errs, m.close())
	}
	return errors.Join(errs...)
}

// Model is the cache of one model identity.
type Model struct {
	dir      string
	identity []byte // canonical JSON

	mu    sync.Mutex
	index map[Key]Entry
	stats Stats
	w     *os.File
}

// Dir is the identity's directory.
func (m *Model) Dir() string { return m.dir }

// Stats says what the cache holds.
func (m *Model) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Entries = len(m.index)
	return s
}

// line is one stored answer.
type line struct {
	Key        string          `json:"key"`
	Prediction string          `json:"prediction"`
	Item       json.RawMessage `json:"item"`
}

func (m *Model) load() error {
	ents, err := os.ReadDir(m.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("answer cache: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.dir, e.Name()))
		if err != nil {
			m.stats.Skipped++ // a file that vanished or cannot be read costs only its answers
			continue
		}
		m.stats.Files++
		for len(b) > 0 {
			raw, rest, complete := bytes.Cut(b, []byte{'\n'})
			b = rest
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			var l line
			var k Key
			if !complete || json.Unmarshal(raw, &l) != nil || len(l.Item) == 0 || decodeKey(l.Key, &k) != nil {
				m.stats.Skipped++
				continue
			}
			m.index[k] = Entry{Prediction: l.Prediction, Item: l.Item}
		}
	}
	return nil
}

func decodeKey(s string, k *Key) error {
	if len(s) != 2*len(k) {
		return errors.New("bad key")
	}
	_, err := hex.Decode(k[:], []byte(s))
	return err
}

// Get returns the answer stored under k.
func (m *Model) Get(k Key) (Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.index[k]
	return e, ok
}

// Put appends answers to this process's file and fsyncs it, then adds them to the index,
// and returns how many it stored. Answers whose item carries an error, or that have no item,
// are not stored.
func (m *Model) Put(recs []Record) (int, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var keep []Record
	for _, r := range recs {
		if len(bytes.TrimSpace(r.Item)) == 0 || failed(r.Item) {
			continue
		}
		var item bytes.Buffer
		if err := json.Compact(&item, r.Item); err != nil {
			continue
		}
		r.Item = item.Bytes()
		if err := enc.Encode(line{Key: r.Key.String(), Prediction: r.Prediction, Item: r.Item}); err != nil {
			return 0, fmt.Errorf("answer cache: %w", err)
		}
		keep = append(keep, r)
	}
	if len(keep) == 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.w == nil {
		if err := m.create(); err != nil {
			return 0, err
		}
	}
	if _, err := m.w.Write(buf.Bytes()); err != nil {
		return 0, fmt.Errorf("answer cache: write %s: %w", m.w.Name(), err)
	}
	if err := m.w.Sync(); err != nil {
		return 0, fmt.Errorf("answer cache: sync %s: %w", m.w.Name(), err)
	}
	for _, r := range keep {
		m.index[r.Key] = r.Entry
	}
	m.stats.Stored += len(keep)
	return len(keep), nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// create makes this process's file, never one another process writes.
func (m *Model) create() error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return fmt.Errorf("answer cache: %w", err)
	}
	idFile := filepath.Join(m.dir, "identity.json")
	if _, err := os.Stat(idFile); err != nil {
		_ = atomicfile.Write(idFile, append(append([]byte(nil), m.identity...), '\n'))
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%s-%d-%s.jsonl", unsafeName.ReplaceAllString(host, "_"), os.Getpid(), hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(filepath.Join(m.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("answer cache: %w", err)
	}
	if d, err := os.Open(m.dir); err == nil {
		_ = d.Sync() // the new name survives a crash where the filesystem allows it
		d.Close()
	}
	m.w = f
	return nil
}

func (m *Model) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.w == nil {
		return nil
	}
	err := m.w.Close()
	m.w = nil
	return err
}

// Key keys an encoded predictions_v1 request item (as sent) for this model: a SHA-256 over
// the canonical JSON of the model's identity and of the item without its sample_id, with
// each audio input's payload replaced by the SHA-256 of its bytes (the decoded WAV of a
// base64_wav payload, the file's content of a file_path one). How the audio travels
// (payload_type, the file's path) is not part of the key. Items whose audio cannot be read
// return ErrUncacheable.
func (m *Model) Key(item []byte) (Key, error) {
	dec := json.NewDecoder(bytes.NewReader(item))
	dec.UseNumber()
	var it map[string]any
	if err := dec.Decode(&it); err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrUncacheable, err)
	}
	delete(it, "sample_id")
	if raw, ok := it["audio_inputs"]; ok {
		inputs, ok := raw.([]any)
		if !ok {
			return Key{}, fmt.Errorf("%w: audio_inputs is not a list", ErrUncacheable)
		}
		for i, a := range inputs {
			in, ok := a.(map[string]any)
			if !ok {
				return Key{}, fmt.Errorf("%w: audio_inputs[%d] is not an object", ErrUncacheable, i)
			}
			sum, err := audioSum(in)
			if err != nil {
				return Key{}, fmt.Errorf("%w: audio_inputs[%d]: %v", ErrUncacheable, i, err)
			}
			delete(in, "payload_type")
			delete(in, "data")
			in["sha256"] = sum
		}
	}
	b, err := canonical(map[string]any{"v": keyVersion, "identity": json.RawMessage(m.identity), "item": it})
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrUncacheable, err)
	}
	return sha256.Sum256(b), nil
}

// audioSum hashes every byte of one audio input.
func audioSum(in map[string]any) (string, error) {
	pt, _ := in["payload_type"].(string)
	data, _ := in["data"].(string)
	h := sha256.New()
	switch pt {
	case contract.PayloadBase64WAV:
		if _, err := io.Copy(h, base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))); err != nil {
			return "", fmt.Errorf("base64: %v", err)
		}
	case contract.PayloadFilePath:
		f, err := os.Open(data)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("payload_type %q is not read by the cache", pt)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// canonical encodes v as JSON with object keys in order and numbers as written.
func canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}
