package cache

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/predict"
)

const infoA = `{"name":"beans-slurm-dummy","model":"dummy-hash","model_revision":"1","mode":"hash","max_batch_size":8,"supports_batching":true,"audio_payload_types":["base64_wav"],"schema_versions":["predictions_v1"],"latency_ms":0,"slots":0}`

// The same model behind another launcher configuration (batch size, latency, failures).
const infoA2 = `{"max_batch_size":2,"model_revision":"1","name":"beans-slurm-dummy","model":"dummy-hash","mode":"hash","supports_batching":false,"audio_payload_types":["base64_wav","file_path"],"schema_versions":["predictions_v1"],"latency_ms":15,"slots":1,"fail_every":3}`

// Another revision of the model.
const infoB = `{"name":"beans-slurm-dummy","model":"dummy-hash","model_revision":"2","mode":"hash","max_batch_size":8}`

func item(_ testing.TB, id string, audio []byte, text string) []byte {
	it := contract.RequestItem{
		SampleID:         id,
		Messages:         []contract.Message{{Role: "user", Content: text}},
		AudioInputs:      []contract.AudioInput{{PayloadType: contract.PayloadBase64WAV, Data: base64.StdEncoding.EncodeToString(audio), SampleRate: 16000}},
		GenerationConfig: contract.GenerationConfig{"max_tokens": 32},
	}
	b, _ := json.Marshal(it)
	return b
}

func answer(id, pred string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"sample_id":%q,"predictions":[%q],"error":null,"finish_reason":"stop","usage":{"output_tokens":3}}`, id, pred))
}

func model(t testing.TB, c *Cache, info string) *Model {
	t.Helper()
	m, err := c.Model(json.RawMessage(info))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func key(t testing.TB, m *Model, it []byte) Key {
	t.Helper()
	k, err := m.Key(it)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeying(t *testing.T) {
	dir := t.TempDir()
	c := Open(dir)
	a := model(t, c, infoA)
	clip := []byte("RIFF....WAVEfmt audio bytes")
	it := item(t, "s1", clip, "what species? <|audio|>")
	k := key(t, a, it)
	if _, err := a.Put([]Record{{Key: k, Entry: Entry{Prediction: "owl", Item: answer("s1", "owl")}}}); err != nil {
		t.Fatal(err)
	}

	// A new process (a new Cache) on another node: the same model, another URL and launcher
	// configuration, another sample_id: a hit, relabelled.
	c2 := Open(dir)
	a2 := model(t, c2, infoA2)
	e, ok := a2.Get(key(t, a2, item(t, "other-id", clip, "what species? <|audio|>")))
	if !ok || e.Prediction != "owl" {
		t.Fatalf("same model, same item: hit %v %+v", ok, e)
	}
	var r contract.ResponseItem
	if err := json.Unmarshal(e.Relabel("other-id"), &r); err != nil || r.SampleID != "other-id" || r.Predictions[0] != "owl" || r.FinishReason != "stop" {
		t.Errorf("relabelled: %s (%v)", e.Relabel("other-id"), err)
	}

	// Another revision: a miss.
	b := model(t, c2, infoB)
	if _, ok := b.Get(key(t, b, it)); ok {
		t.Error("another model_revision hit")
	}
	if a2.Dir() == b.Dir() {
		t.Error("two identities share a directory")
	}
	// One audio byte changed: a miss. Another prompt, another generation_config: a miss.
	clip2 := append([]byte(nil), clip...)
	clip2[len(clip2)-1] ^= 1
	if _, ok := a2.Get(key(t, a2, item(t, "s1", clip2, "what species? <|audio|>"))); ok {
		t.Error("changed audio hit")
	}
	if _, ok := a2.Get(key(t, a2, item(t, "s1", clip, "what call type? <|audio|>"))); ok {
		t.Error("changed prompt hit")
	}
	var m map[string]any
	_ = json.Unmarshal(it, &m)
	m["generation_config"] = map[string]any{"max_tokens": 33}
	gc, _ := json.Marshal(m)
	if _, ok := a2.Get(key(t, a2, gc)); ok {
		t.Error("changed generation_config hit")
	}

	// file_path: keyed by the file's content, as base64_wav is.
	p := filepath.Join(t.TempDir(), "clip.wav")
	if err := os.WriteFile(p, clip, 0o644); err != nil {
		t.Fatal(err)
	}
	m["generation_config"] = map[string]any{"max_tokens": 32}
	m["audio_inputs"] = []any{map[string]any{"payload_type": "file_path", "data": p, "sample_rate": 16000}}
	fp, _ := json.Marshal(m)
	if _, ok := a2.Get(key(t, a2, fp)); !ok {
		t.Error("the same audio sent as a file missed")
	}
	if err := os.WriteFile(p, clip2, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := a2.Get(key(t, a2, fp)); ok {
		t.Error("a file whose content changed hit")
	}
	os.Remove(p)
	if _, err := a2.Key(fp); err == nil {
		t.Error("a missing file was keyed")
	}
}

func TestErrorsNotStored(t *testing.T) {
	dir := t.TempDir()
	m := model(t, Open(dir), infoA)
	it := item(t, "s1", []byte("abc"), "x <|audio|>")
	k := key(t, m, it)
	bad := []Record{
		{Key: k, Entry: Entry{Item: json.RawMessage(`{"sample_id":"s1","predictions":[],"error":"CUDA out of memory"}`)}},
		{Key: k, Entry: Entry{Item: nil}},
		{Key: k, Entry: Entry{Item: json.RawMessage(`not json`)}},
	}
	if _, err := m.Put(bad); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get(k); ok {
		t.Error("an error item was stored")
	}
	if _, ok := model(t, Open(dir), infoA).Get(k); ok {
		t.Error("an error item was written")
	}
	// A blank error is a success.
	ok := json.RawMessage(`{"sample_id":"s1","predictions":["a"],"error":"  "}`)
	if _, err := m.Put([]Record{{Key: k, Entry: Entry{Prediction: "a", Item: ok}}}); err != nil {
		t.Fatal(err)
	}
	if _, hit := model(t, Open(dir), infoA).Get(k); !hit {
		t.Error("a success with a blank error was not stored")
	}
}

func TestTornAndCorruptLines(t *testing.T) {
	dir := t.TempDir()
	m := model(t, Open(dir), infoA)
	var recs []Record
	for i := range 3 {
		k := key(t, m, item(t, "s", []byte{byte(i)}, "x"))
		recs = append(recs, Record{Key: k, Entry: Entry{Prediction: strconv.Itoa(i), Item: answer("s", strconv.Itoa(i))}})
	}
	if _, err := m.Put(recs); err != nil {
		t.Fatal(err)
	}
	// Another writer's file: a good line, a corrupt line, a line of NULs, a torn last line.
	k3 := key(t, m, item(t, "s", []byte{3}, "x"))
	k4 := key(t, m, item(t, "s", []byte{4}, "x"))
	good, _ := json.Marshal(line{Key: k3.String(), Prediction: "3", Item: answer("s", "3")})
	torn, _ := json.Marshal(line{Key: k4.String(), Prediction: "4", Item: answer("s", "4")})
	other := append(append([]byte(nil), good...), '\n')
	other = append(other, "{\"key\": 12\n\x00\x00\x00\x00\n"...)
	other = append(other, torn[:len(torn)-5]...)
	if err := os.WriteFile(filepath.Join(m.Dir(), "node9-1-abc.jsonl"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	r := model(t, Open(dir), infoA)
	st := r.Stats()
	if st.Entries != 4 || st.Skipped != 3 || st.Files != 2 {
		t.Errorf("stats %+v, want 4 entries, 3 skipped lines, 2 files", st)
	}
	if _, ok := r.Get(k3); !ok {
		t.Error("the good line of the other writer was not read")
	}
	if _, ok := r.Get(k4); ok {
		t.Error("a torn line was read")
	}
}

// Many writers at once — goroutines of one process and separate processes — append to the
// same identity's directory; a reader then sees every answer.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const goroutines, procs, per = 4, 3, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine is its own "process": its own Cache, its own file.
			if err := writeMany(Open(dir), "g"+strconv.Itoa(g), per); err != nil {
				t.Error(err)
			}
		}()
	}
	// Goroutines sharing one Cache share its file.
	shared := Open(dir)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeMany(shared, "s"+strconv.Itoa(g), per); err != nil {
				t.Error(err)
			}
		}()
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(exe, "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "CACHE_HELPER_DIR="+dir, "CACHE_HELPER_PREFIX=p"+strconv.Itoa(p), "CACHE_HELPER_N="+strconv.Itoa(per))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	wg.Wait()
	shared.Close()

	r := model(t, Open(dir), infoA)
	st := r.Stats()
	want := (2*goroutines + procs) * per
	if st.Entries != want || st.Skipped != 0 {
		t.Fatalf("reader sees %+v, want %d entries", st, want)
	}
	if st.Files != goroutines+1+procs {
		t.Errorf("%d files, want one per writing process (%d)", st.Files, goroutines+1+procs)
	}
	for _, prefix := range []string{"g0", "s3", "p2"} {
		k := key(t, r, item(t, "x", []byte(prefix+"-7"), "q"))
		if e, ok := r.Get(k); !ok || e.Prediction != prefix+"-7" {
			t.Errorf("%s-7: %v %+v", prefix, ok, e)
		}
	}
}

// writeMany stores n answers in batches of 5.
func writeMany(c *Cache, prefix string, n int) error {
	m, err := c.Model(json.RawMessage(infoA))
	if err != nil {
		return err
	}
	var batch []Record
	for i := range n {
		name := prefix + "-" + strconv.Itoa(i)
		k, err := m.Key(item(nil, "x", []byte(name), "q"))
		if err != nil {
			return err
		}
		batch = append(batch, Record{Key: k, Entry: Entry{Prediction: name, Item: answer("x", name)}})
		if len(batch) == 5 {
			if _, err := m.Put(batch); err != nil {
				return err
			}
			batch = nil
		}
	}
	_, err = m.Put(batch)
	return err
}

// TestHelperWriter is a separate writing process of TestConcurrentWriters.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv("CACHE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process of TestConcurrentWriters")
	}
	n, _ := strconv.Atoi(os.Getenv("CACHE_HELPER_N"))
	c := Open(dir)
	if err := writeMany(c, os.Getenv("CACHE_HELPER_PREFIX"), n); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestIdentity(t *testing.T) {
	id := Identity(json.RawMessage(infoA2))
	for _, k := range predict.OperationalFields {
		if _, ok := id[k]; ok {
			t.Errorf("identity keeps operational field %s", k)
		}
	}
	for _, k := range []string{"name", "model", "model_revision", "mode"} {
		if _, ok := id[k]; !ok {
			t.Errorf("identity lacks %s", k)
		}
	}
}
