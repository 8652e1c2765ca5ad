package cache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestUse(t *testing.T) {
	dir := t.TempDir()
	u := model(t, Open(dir), infoA).Use()
	a, b, c := item(t, "a", []byte("1"), "q"), item(t, "b", []byte("2"), "q"), item(t, "c", []byte("3"), "q")
	for _, x := range []struct {
		id string
		it []byte
	}{{"a", a}, {"b", b}, {"c", c}} {
		if _, hit := u.Lookup(x.id, x.it); hit {
			t.Fatalf("%s: a hit in an empty cache", x.id)
		}
	}
	// b failed; "z" was never looked up: neither is stored.
	err := u.Store([]Answer{
		{ID: "a", Prediction: "A", Item: answer("a", "A")},
		{ID: "b", Err: "launcher error: boom"},
		{ID: "z", Prediction: "Z", Item: answer("z", "Z")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The same request under another id (another run, another task) is a hit; b and c miss.
	u2 := model(t, Open(dir), infoA).Use()
	if e, hit := u2.Lookup("other", item(t, "other", []byte("1"), "q")); !hit || e.Prediction != "A" {
		t.Errorf("a's answer: %+v %v", e, hit)
	}
	if _, hit := u2.Lookup("b", b); hit {
		t.Error("a failed answer was stored")
	}
	if st := u.Stats(); st.Hits != 0 || st.Misses != 3 || st.Stored != 1 || st.Err != nil {
		t.Errorf("stats %+v", st)
	}
	// An answer stored twice is stored once: Store forgot a's key.
	if err := u.Store([]Answer{{ID: "a", Prediction: "A", Item: answer("a", "A")}}); err != nil || u.Stats().Stored != 1 {
		t.Errorf("second store: %v %+v", err, u.Stats())
	}
	// A cache that cannot be written: the error once, then nothing more is tried.
	// (A regular file where the cache's directory should be: no directory can be made
	// there, not even by root.)
	root := filepath.Join(t.TempDir(), "cache")
	u3 := model(t, Open(root), infoA).Use()
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	u3.Lookup("a", a)
	u3.Lookup("c", c)
	if err := u3.Store([]Answer{{ID: "a", Prediction: "A", Item: json.RawMessage(answer("a", "A"))}}); err == nil {
		t.Fatal("no error from an unwritable cache")
	}
	if err := u3.Store([]Answer{{ID: "c", Prediction: "C", Item: answer("c", "C")}}); err != nil || u3.Stats().Err == nil {
		t.Errorf("second store after the error: %v %+v", err, u3.Stats())
	}
}
