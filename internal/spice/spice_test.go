package spice

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSpice answers like SPICE 1.0: it checks the command line, reads the
// input items (image_id, test, refs in that order, as Runner writes them)
// and writes one output item per input, in reverse order, with
// scores.All.f = 1 if the candidate equals its first reference, NaN if it
// contains "nan-case", else 0.25. "sleep-case" sleeps, "crash-case" exits 1.
// Every invocation appends its item count to $FAKE_SPICE_LOG.
const fakeSpice = `
import java.nio.file.*;
import java.util.*;
import java.util.regex.*;

public class FakeSpice {
  public static void main(String[] args) throws Exception {
    List<String> a = Arrays.asList(args);
    if (a.contains("-cache") || !a.contains("-subset") || !a.contains("-silent") || a.indexOf("-out") < 1) {
      System.err.println("bad args " + a);
      System.exit(3);
    }
    String out = a.get(a.indexOf("-out") + 1);
    String in = new String(Files.readAllBytes(Paths.get(a.get(0))), "UTF-8");
    Matcher m = Pattern.compile("\"image_id\":(\\d+),\"test\":\"((?:[^\"\\\\]|\\\\.)*)\",\"refs\":\\[\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(in);
    List<String> items = new ArrayList<>();
    while (m.find()) {
      String id = m.group(1), test = m.group(2), ref = m.group(3);
      if (test.contains("sleep-case")) Thread.sleep(60000);
      if (test.contains("crash-case")) { System.err.println("boom"); System.exit(1); }
      String f = test.equals(ref) ? "1.0" : test.contains("nan-case") ? "NaN" : "0.25";
      items.add(0, "{\"image_id\":" + id + ",\"scores\":{\"All\":{\"pr\":0.5,\"re\":0.5,\"f\":" + f + ",\"fn\":1,\"numImages\":1,\"fp\":1,\"tp\":1},\"Relation\":{\"f\":0.0}}}");
    }
    Files.write(Paths.get(out), ("[" + String.join(",", items) + "]").getBytes("UTF-8"));
    String log = System.getenv("FAKE_SPICE_LOG");
    if (log != null) Files.write(Paths.get(log), (items.size() + "\n").getBytes(), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
  }
}
`

// buildFakeJar compiles fakeSpice into dir/spice-1.0.jar.
func buildFakeJar(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"java", "javac", "jar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no JDK on this machine (%s not on PATH): install one (Debian: apt-get install default-jdk-headless) to test the SPICE runner", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "FakeSpice.java")
	if err := os.WriteFile(src, []byte(fakeSpice), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"javac", "-d", dir, src},
		{"jar", "cfe", filepath.Join(dir, JarName), "FakeSpice", "-C", dir, "FakeSpice.class"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestRunner(t *testing.T) {
	dir := buildFakeJar(t)
	log := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FAKE_SPICE_LOG", log)
	r := NewRunner(dir)
	r.JavaArgs = []string{"-Xmx256m"}
	r.BatchSize = 2
	cands := []string{"a bird sings", "rain \"falls\" \\ hard", "", "a nan-case", "no refs", "dog barks"}
	refs := [][]string{{"a bird sings"}, {"rain falls"}, {"x"}, {"y"}, nil, {"dog barks", "a dog"}}
	got, err := r.Score(context.Background(), cands, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 0.25, 0, 0, 0, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("caption %d: SPICE %v, want %v", i, got[i], want[i])
		}
	}
	// Four captions are sent (empty and reference-less ones are not), two per batch.
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Fields(string(b)); len(s) != 2 || s[0] != "2" || s[1] != "2" {
		t.Errorf("batches %q, want [2 2]", s)
	}
}

func TestRunnerErrors(t *testing.T) {
	dir := buildFakeJar(t)
	tests := []struct {
		name    string
		cand    string
		timeout time.Duration
		args    []string
		wantErr string
	}{
		{"crash", "crash-case", time.Minute, nil, "boom"},
		{"timeout", "sleep-case", 500 * time.Millisecond, nil, "timed out"},
		{"jvm options passed", "ok", time.Minute, []string{"-Dx=1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRunner(dir)
			r.JavaArgs = append([]string{"-Xmx256m"}, tc.args...)
			r.Timeout = tc.timeout
			_, err := r.Score(context.Background(), []string{tc.cand}, [][]string{{"ref"}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	r := &Runner{Jar: "/c/spice-1.0.jar", JavaArgs: []string{"-Xmx8G"}}
	got := strings.Join(r.Args("in.json", "out.json"), " ")
	if want := "-Xmx8G -jar /c/spice-1.0.jar in.json -out out.json -subset -silent"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if strings.Contains(got, "-cache") {
		t.Error("-cache must never be passed")
	}
}

func TestParseOutput(t *testing.T) {
	tests := []struct {
		name, raw string
		n         int
		want      []float64
		wantErr   string
	}{
		{"ok reversed", `[{"image_id":1,"scores":{"All":{"f":0.5}}},{"image_id":0,"scores":{"All":{"f":0.125}}}]`, 2, []float64{0.125, 0.5}, ""},
		{"string ids", `[{"image_id":"0","scores":{"All":{"f":0.5}}}]`, 1, []float64{0.5}, ""},
		{"NaN is 0", `[{"image_id":0,"scores":{"All":{"pr":NaN,"f":NaN}}}]`, 1, []float64{0}, ""},
		{"missing id", `[{"image_id":0,"scores":{"All":{"f":0.5}}}]`, 2, nil, "image_id 1 missing"},
		{"duplicate id", `[{"image_id":0,"scores":{"All":{"f":0.5}}},{"image_id":0,"scores":{"All":{"f":0.5}}}]`, 1, nil, "twice"},
		{"unknown id", `[{"image_id":7,"scores":{"All":{"f":0.5}}}]`, 1, nil, "unexpected image_id"},
		{"no All", `[{"image_id":0,"scores":{}}]`, 1, nil, "no scores.All"},
		{"not json", `oops`, 1, nil, "parse SPICE output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOutput([]byte(tc.raw), tc.n)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if math.Abs(got[i]-tc.want[i]) > 0 {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// maven serves the Artifacts and their .sha1 files; corrupt names a jar
// whose published digest is wrong.
func maven(t *testing.T, corrupt string, hits *atomic.Int64) *httptest.Server {
	files := map[string][]byte{}
	for _, a := range Artifacts {
		body := []byte("jar bytes of " + a.Name)
		sum := sha1.Sum(body)
		d := hex.EncodeToString(sum[:])
		if a.Name == corrupt {
			d = strings.Repeat("0", 40)
		}
		files["/maven2/"+a.Path] = body
		files["/maven2/"+a.Path+".sha1"] = []byte(d + "  " + a.Name + "\n")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSetup(t *testing.T) {
	var hits atomic.Int64
	srv := maven(t, "", &hits)
	cache := t.TempDir()
	if ok, why := Available(cache); ok || why == "" {
		t.Errorf("Available on an empty cache = %v, %q", ok, why)
	}
	if err := SetupFrom(context.Background(), cache, srv.URL+"/maven2/", srv.Client()); err != nil {
		t.Fatal(err)
	}
	for _, a := range Artifacts {
		b, err := os.ReadFile(filepath.Join(cache, "lib", a.Name))
		if err != nil || string(b) != "jar bytes of "+a.Name {
			t.Errorf("%s: %q, %v", a.Name, b, err)
		}
	}
	first := hits.Load()
	if first != 4 {
		t.Errorf("%d requests, want 4", first)
	}
	// A second run finds verified jars and fetches nothing.
	if err := SetupFrom(context.Background(), cache, srv.URL+"/maven2", srv.Client()); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != first {
		t.Errorf("second setup made %d requests", hits.Load()-first)
	}
	// With a jar present, Available only lacks the SPICE jar (or java).
	if err := os.WriteFile(filepath.Join(cache, JarName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok, why := Available(cache)
	if _, err := exec.LookPath("java"); err == nil && (!ok || why != "") {
		t.Errorf("Available = %v, %q; want true", ok, why)
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name, corrupt, path, wantErr string
	}{
		{"checksum mismatch", Artifacts[1].Name, "/maven2", "checksum mismatch"},
		{"not found", "", "/elsewhere", "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := maven(t, tc.corrupt, &hits)
			cache := t.TempDir()
			err := SetupFrom(context.Background(), cache, srv.URL+tc.path, srv.Client())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.corrupt != "" && !errors.Is(err, errChecksum) {
				t.Errorf("error %v does not wrap errChecksum", err)
			}
			entries, _ := os.ReadDir(filepath.Join(cache, "lib"))
			for _, e := range entries {
				if e.Name() == tc.corrupt || strings.Contains(e.Name(), ".part-") {
					t.Errorf("left %s behind", e.Name())
				}
			}
		})
	}
}
