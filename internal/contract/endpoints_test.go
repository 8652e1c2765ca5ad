package contract

import (
	"strings"
	"testing"
)

func TestParsePredictURL(t *testing.T) {
	tests := []struct {
		in, base, wantErr string
	}{
		{"http://node12:8000/predict", "http://node12:8000", ""},
		{"http://node12:8000/predict/", "http://node12:8000", ""},
		{"http://node12:8000", "http://node12:8000", ""},
		{"http://node12:8000/", "http://node12:8000", ""},
		{"https://h.example/models/af3/predict?x=1", "https://h.example/models/af3", ""},
		{"http://127.0.0.1:9/v1/chat", "", "does not end in /predict"},
		{"http://127.0.0.1:9/xpredict", "", "does not end in /predict"},
		{"node12:8000/predict", "", "scheme must be http or https"},
		{"", "", "scheme must be http or https"},
		{"ftp://h/predict", "", "scheme must be http or https"},
		{"http:///predict", "", "has no host"},
		{"http://[::1/predict", "", "parse predict URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParsePredictURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			want := Endpoints{Predict: tt.base + "/predict", Base: tt.base, Health: tt.base + "/health", Info: tt.base + "/info"}
			if err != nil || e != want {
				t.Errorf("got %+v, %v; want %+v", e, err, want)
			}
		})
	}
}
