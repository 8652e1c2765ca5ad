package openaitest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/beans-slurm/beans-slurm/internal/audio"
)

// The fake refuses what the real API refuses, in the API's error format.
func TestServerChecksRequests(t *testing.T) {
	s := New(Options{Key: "sk-good-key-0001"})
	defer s.Close()
	wav := string(audio.AppendBase64WAV(nil, make([]float64, 1600), 16000))
	audioPart := `{"type":"input_audio","input_audio":{"data":"` + wav + `","format":"wav"}}`
	tests := []struct {
		name, auth, body string
		status           int
		want             string
	}{
		{"valid", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},` + audioPart + `]}],"max_tokens":5,"temperature":0}`, 200, `"openaitest:`},
		{"no key", "", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 401, "didn't provide an API key"},
		{"wrong key is masked", "Bearer sk-bad-key-9999", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 401, "sk-********9999"},
		{"unknown parameter", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_new_tokens":5}`, 400, "Unrecognized request argument supplied: max_new_tokens"},
		{"no model", "Bearer sk-good-key-0001", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model parameter"},
		{"audio in a system message", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"system","content":[` + audioPart + `]}]}`, 400, "only supported in user messages"},
		{"audio that is not a WAV", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"aGVsbG8=","format":"wav"}}]}]}`, 400, "corrupted"},
		{"data URL prefix", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"data:audio/wav;base64,` + wav + `","format":"wav"}}]}]}`, 400, "data: prefix"},
		{"bad format", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"` + wav + `","format":"flac"}}]}]}`, 400, "Supported values are: 'wav' and 'mp3'"},
		{"bad temperature", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":3}`, 400, "temperature"},
		{"both token fields", "Bearer sk-good-key-0001", `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"max_completion_tokens":1}`, 400, "mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/chat/completions", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("HTTP %d %s; want %d with %q", resp.StatusCode, b, tt.status, tt.want)
			}
			if tt.status != 200 {
				var e struct {
					Error struct{ Message, Type string } `json:"error"`
				}
				if json.Unmarshal(b, &e) != nil || e.Error.Message == "" || e.Error.Type == "" {
					t.Errorf("error body %s is not in OpenAI's format", b)
				}
			}
		})
	}
	if n := len(s.Violations()); n != 8 {
		t.Errorf("%d violations recorded, want 8: %q", n, s.Violations())
	}
}
