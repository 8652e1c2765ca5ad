package hubtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const repoID = "owner/data"

func get(t *testing.T, s *Server, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := s.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestRanges(t *testing.T) {
	s := New(t)
	data := []byte("0123456789")
	s.AddFile(repoID, "main", "f.bin", data)
	u := s.URL + "/datasets/" + repoID + "/resolve/main/f.bin"
	tests := []struct {
		mode         RangeMode
		rng          string
		status       int
		contentRange string
		body         string
	}{
		{RangeOK, "", 200, "", "0123456789"},
		{RangeOK, "bytes=2-4", 206, "bytes 2-4/10", "234"},
		{RangeOK, "bytes=7-", 206, "bytes 7-9/10", "789"},
		{RangeOK, "bytes=8-100", 206, "bytes 8-9/10", "89"},
		{RangeOK, "bytes=-3", 206, "bytes 7-9/10", "789"},
		{RangeOK, "bytes=-30", 206, "bytes 0-9/10", "0123456789"},
		{RangeOK, "bytes=10-12", 416, "bytes */10", ""},
		{RangeOK, "bytes=-0", 416, "bytes */10", ""},
		{RangeOK, "bytes=1-2,4-5", 200, "", "0123456789"}, // several ranges: ignored
		{RangeOK, "items=1-2", 200, "", "0123456789"},
		{RangeIgnore, "bytes=2-4", 200, "", "0123456789"},
		{Range416, "bytes=2-4", 416, "bytes */10", ""},
		{RangeWrongContentRange, "bytes=2-4", 206, "bytes 3-5/10", "234"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.mode))+"/"+tt.rng, func(t *testing.T) {
			s.SetRangeMode(tt.mode)
			resp, body := get(t, s, "GET", u, map[string]string{"Range": tt.rng})
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Range") != tt.contentRange {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Range"), tt.status, tt.contentRange)
			}
			if tt.status != 416 && string(body) != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
		})
	}
}

func TestResolveHeadersAndRedirect(t *testing.T) {
	s := New(t)
	big := bytes.Repeat([]byte("x"), 100)
	s.AddFile(repoID, "main", "a.parquet", big)
	s.AddFile(repoID, "main", "b.txt", []byte("small"))
	sha, _ := s.Hashes(repoID, "main", "a.parquet")
	_, oid := s.Hashes(repoID, "main", "b.txt")
	commit := s.Commit(repoID, "main")
	s.SetRedirect(true)

	resp, _ := get(t, s, "HEAD", s.URL+"/datasets/"+repoID+"/resolve/main/a.parquet", nil)
	h := resp.Header
	if resp.StatusCode != 302 || h.Get("X-Repo-Commit") != commit || h.Get("X-Linked-Size") != "100" ||
		h.Get("X-Linked-Etag") != `"`+sha+`"` || !strings.HasPrefix(h.Get("Location"), s.CDNURL+"/") {
		t.Fatalf("LFS HEAD: %d %v", resp.StatusCode, h)
	}
	if !strings.HasPrefix(s.CDNURL, "http://localhost:") {
		t.Fatalf("CDN URL %s is not on another host name", s.CDNURL)
	}
	resp, body := get(t, s, "GET", h.Get("Location"), map[string]string{"Range": "bytes=0-9"})
	if resp.StatusCode != 206 || string(body) != "xxxxxxxxxx" {
		t.Fatalf("CDN GET: %d %q", resp.StatusCode, body)
	}
	s.ExpireSignedURLs()
	if resp, _ := get(t, s, "GET", h.Get("Location"), nil); resp.StatusCode != 403 {
		t.Fatalf("expired URL answered %d", resp.StatusCode)
	}
	resp, body = get(t, s, "GET", s.URL+"/datasets/"+repoID+"/resolve/"+commit+"/b.txt", nil)
	if resp.StatusCode != 200 || string(body) != "small" || resp.Header.Get("ETag") != `"`+oid+`"` || resp.Header.Get("X-Linked-Size") != "" {
		t.Fatalf("git file by commit sha: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if st := s.Stats("a.parquet"); st.Requests != 3 || st.Bytes != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAccess(t *testing.T) {
	s := New(t)
	s.AddFile(repoID, "main", "f.txt", []byte("x"))
	s.Gate(repoID, "good")
	tests := []struct {
		url, token string
		status     int
		code       string
	}{
		{"/api/datasets/" + repoID + "/revision/main", "", 401, "GatedRepo"},
		{"/api/datasets/" + repoID + "/revision/main", "bad", 403, "GatedRepo"},
		{"/api/datasets/" + repoID + "/revision/main", "good", 200, ""},
		{"/api/datasets/" + repoID + "/revision/nope", "good", 404, "RevisionNotFound"},
		{"/api/datasets/other/repo/revision/main", "", 401, "RepoNotFound"},
		{"/api/datasets/other/repo/revision/main", "good", 404, "RepoNotFound"},
		{"/datasets/" + repoID + "/resolve/main/nope.txt", "good", 404, "EntryNotFound"},
		{"/datasets/" + repoID + "/resolve/main/f.txt", "", 401, "GatedRepo"},
		{"/api/datasets/" + repoID + "/tree/main/nodir", "good", 404, "EntryNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.url+"/"+tt.token, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.token != "" {
				hdr["Authorization"] = "Bearer " + tt.token
			}
			resp, _ := get(t, s, "GET", s.URL+tt.url, hdr)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Error-Code") != tt.code {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Error-Code"), tt.status, tt.code)
			}
		})
	}
}

func TestTreePagination(t *testing.T) {
	s := New(t)
	for _, p := range []string{"a/1.txt", "a/2.txt", "a/b/3.txt", "4.txt"} {
		s.AddFile(repoID, "main", p, []byte(p))
	}
	s.SetPageSize(2)
	next := s.URL + "/api/datasets/" + repoID + "/tree/main?recursive=true"
	var paths []string
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		resp, body := get(t, s, "GET", next, nil)
		var page []struct{ Type, Path string }
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		for _, e := range page {
			paths = append(paths, e.Type+":"+e.Path)
		}
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			if !strings.HasSuffix(l, `>; rel="next"`) {
				t.Fatalf("Link %q", l)
			}
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	want := "[file:4.txt directory:a file:a/1.txt file:a/2.txt directory:a/b file:a/b/3.txt]"
	if got := strings.Join([]string{"[", strings.Join(paths, " "), "]"}, ""); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	// Not recursive: direct children only.
	_, body := get(t, s, "GET", s.URL+"/api/datasets/"+repoID+"/tree/main/a", nil)
	if !strings.Contains(string(body), `"a/1.txt"`) || strings.Contains(string(body), "3.txt") {
		t.Fatalf("non-recursive listing: %s", body)
	}
}

func TestDiskFileAndFailures(t *testing.T) {
	s := New(t)
	data := bytes.Repeat([]byte("abcdef"), 1000)
	p := filepath.Join(t.TempDir(), "shard.parquet")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDiskFile(repoID, "main", "shard.parquet", p); err != nil {
		t.Fatal(err)
	}
	sha, _ := s.Hashes(repoID, "main", "shard.parquet")
	want := sha256.Sum256(data)
	if sha != hex.EncodeToString(want[:]) {
		t.Fatal("wrong sha256")
	}
	u := s.URL + "/datasets/" + repoID + "/resolve/main/shard.parquet"
	s.Fail("shard.parquet", 429, 1, "3")
	resp, _ := get(t, s, "GET", u, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("injected 429: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := get(t, s, "GET", u, map[string]string{"Range": "bytes=6-11"})
	if resp.StatusCode != 206 || string(body) != "abcdef" {
		t.Fatalf("after the failure: %d %q", resp.StatusCode, body)
	}
	s.Corrupt("shard.parquet", true)
	_, body = get(t, s, "GET", u, nil)
	if bytes.Equal(body, data) || len(body) != len(data) {
		t.Fatal("corruption not applied")
	}
}
