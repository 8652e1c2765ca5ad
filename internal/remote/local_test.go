package remote

import (
	"context"
	"testing"
)

func TestLocalRun(t *testing.T) {
	home := isolate(t)
	testTransportRun(t, NewLocal(), home)
}

func TestLocalFiles(t *testing.T) {
	home := isolate(t)
	testTransportFiles(t, NewLocal(), home, "files")
}

func TestLoginRelative(t *testing.T) {
	for in, want := range map[string]string{"~": ".", "~/": ".", "~/a/b": "a/b", "a": "a", "/abs": "/abs", "~user/x": "~user/x"} {
		if got := loginRelative(in); got != want {
			t.Errorf("loginRelative(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalString(t *testing.T) {
	tr := NewLocal()
	if tr.String() != "local" || tr.Close() != nil {
		t.Fatal(tr.String())
	}
	if _, err := tr.Run(context.Background(), "exit 0", nil); err != nil {
		t.Fatal(err)
	}
}
