package metrics

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScoreErrors(t *testing.T) {
	tests := []struct {
		name, task string
		labels     []string
		wantErr    string
	}{
		{"unknown task", "regression", []string{"a"}, "unknown task type"},
		{"empty task", "", []string{"a"}, "unknown task type"},
		{"classification without labels", TaskClassification, nil, "empty label vocabulary"},
		{"detection without labels", TaskDetection, []string{}, "empty label vocabulary"},
		{"captioning ignores labels", TaskCaptioning, nil, ""},
		{"classification ok", TaskClassification, []string{"a"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Score(tc.task, tc.labels, []Input{{SampleID: "1", Answer: "a", Target: "a"}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestScoreEmptyInput(t *testing.T) {
	for _, task := range []string{TaskClassification, TaskDetection, TaskCaptioning} {
		t.Run(task, func(t *testing.T) {
			res, err := Score(task, []string{"a", "b"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.N != 0 || len(res.Metrics) == 0 {
				t.Fatalf("result %+v", res)
			}
			for k, v := range res.Metrics {
				if v != 0 {
					t.Errorf("metric %s = %v, want 0", k, v)
				}
			}
			if _, ok := res.Metrics[res.Headline]; !ok {
				t.Errorf("headline %q missing from metrics %v", res.Headline, res.Metrics)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Errorf("result does not encode: %v", err)
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	res, err := Score(TaskDetection, []string{"Orca"}, []Input{{SampleID: "x", Answer: "Orca", Target: "Orca"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"task_type", "headline", "metrics", "n", "failed", "policy"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing in %s", k, b)
		}
	}
	if _, ok := m["Samples"]; ok {
		t.Errorf("samples must not be encoded in the result: %s", b)
	}
	sb, err := json.Marshal(res.Samples[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"sample_id":"x","raw":"Orca","cleaned":"Orca","prediction":"Orca","predicted_labels":["Orca"],"target":"Orca","target_labels":["Orca"],"scores":{"exact_match":1,"f1":1}}`
	if string(sb) != want {
		t.Errorf("sample JSON\n got %s\nwant %s", sb, want)
	}
}
