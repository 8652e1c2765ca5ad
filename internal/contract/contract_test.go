package contract

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMatchResponse(t *testing.T) {
	sent := []string{"a", "b", "c"}
	tests := []struct {
		name string
		body string
		// want maps id → prediction (prefix "ERR:" means an error containing the rest)
		want map[string]string
	}{
		{"reordered", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"c","predictions":["C"],"error":null},
			{"sample_id":"a","predictions":["A","alt"],"error":""},
			{"sample_id":"b","predictions":["B"],"error":null,"finish_reason":"stop","usage":{"prompt_tokens":1},"latency_sec":0.5}]}`,
			map[string]string{"a": "A", "b": "B", "c": "C"}},
		{"item error", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":[],"error":"bad audio"},
			{"sample_id":"b","predictions":["B"],"error":null},
			{"sample_id":"c","predictions":["C"],"error":null}]}`,
			map[string]string{"a": "ERR:launcher error: bad audio", "b": "B", "c": "C"}},
		{"missing id and stray id", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":["A"],"error":null},
			{"sample_id":"zz","predictions":["Z"],"error":null},
			{"sample_id":"c","predictions":["C"],"error":null}]}`,
			map[string]string{"a": "A", "b": `ERR:not sent`, "c": "C"}},
		{"duplicate answer", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":["A"],"error":null},
			{"sample_id":"a","predictions":["A2"],"error":null},
			{"sample_id":"b","predictions":["B"],"error":null},
			{"sample_id":"c","predictions":["C"],"error":null}]}`,
			map[string]string{"a": "ERR:more than once", "b": "B", "c": "C"}},
		{"unknown field", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":["A"],"error":null,"extra":1},
			{"sample_id":"b","predictions":["B"],"error":null},
			{"sample_id":"c","predictions":["C"],"error":null}]}`,
			map[string]string{"a": "ERR:unknown field(s) extra", "b": "B", "c": "C"}},
		{"missing field", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":["A"]},
			{"sample_id":"b","predictions":["B"],"error":null},
			{"sample_id":"c","predictions":[],"error":null}]}`,
			map[string]string{"a": `ERR:missing field "error"`, "b": "B", "c": "ERR:no error and no predictions"}},
		{"wrong types", `{"schema_version":"predictions_v1","responses":[
			{"sample_id":"a","predictions":"A","error":null},
			{"sample_id":"b","predictions":[1],"error":null},
			{"sample_id":"c","predictions":["C"],"error":5}]}`,
			map[string]string{"a": "ERR:wrong field type", "b": "ERR:wrong field type", "c": "ERR:wrong field type"}},
		{"wrong schema", `{"schema_version":"predictions_v2","responses":[]}`,
			map[string]string{"a": "ERR:predictions_v2", "b": "ERR:predictions_v2", "c": "ERR:predictions_v2"}},
		{"not json", `<html>oops</html>`,
			map[string]string{"a": "ERR:not a predictions_v1", "b": "ERR:not a predictions_v1", "c": "ERR:not a predictions_v1"}},
		{"unknown top-level field", `{"schema_version":"predictions_v1","responses":[],"x":1}`,
			map[string]string{"a": "ERR:not a predictions_v1", "b": "ERR:", "c": "ERR:"}},
		{"no responses", `{"schema_version":"predictions_v1"}`,
			map[string]string{"a": "ERR:no responses", "b": "ERR:no responses", "c": "ERR:no responses"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MatchResponse([]byte(tt.body), sent)
			if len(got) != len(sent) {
				t.Fatalf("got %d outcomes, want %d", len(got), len(sent))
			}
			for i, o := range got {
				if o.SampleID != sent[i] {
					t.Errorf("outcome %d has id %q, want %q", i, o.SampleID, sent[i])
				}
				want := tt.want[o.SampleID]
				if msg, isErr := strings.CutPrefix(want, "ERR:"); isErr {
					if o.Err == "" || !strings.Contains(o.Err, msg) {
						t.Errorf("%s: err %q, want one containing %q (prediction %q)", o.SampleID, o.Err, msg, o.Prediction)
					}
					if o.Prediction != "" {
						t.Errorf("%s: failed item carries prediction %q", o.SampleID, o.Prediction)
					}
					continue
				}
				if o.Err != "" || o.Prediction != want {
					t.Errorf("%s: got (%q, err %q), want %q", o.SampleID, o.Prediction, o.Err, want)
				}
				if len(o.Item) == 0 {
					t.Errorf("%s: whole answer item not kept", o.SampleID)
				}
			}
		})
	}
}

func FuzzMatchResponse(f *testing.F) {
	f.Add([]byte(`{"schema_version":"predictions_v1","responses":[{"sample_id":"a","predictions":["A"],"error":null}]}`))
	f.Add([]byte(`{"schema_version":"predictions_v1","responses":[{"sample_id":"a","predictions":["A"],"error":null},{"sample_id":"a"}]}`))
	f.Add([]byte(`{"schema_version":"predictions_v1","responses":[null,1,"x",{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sent := []string{"a", "b"}
		out := MatchResponse(body, sent)
		if len(out) != 2 {
			t.Fatalf("got %d outcomes", len(out))
		}
		for i, o := range out {
			if o.SampleID != sent[i] {
				t.Fatalf("order lost")
			}
			if o.Err == "" {
				// A success must come from an item with at least one prediction.
				var it ResponseItem
				if json.Unmarshal(o.Item, &it) != nil || len(it.Predictions) == 0 || it.Predictions[0] != o.Prediction {
					t.Fatalf("success without a matching prediction: %+v", o)
				}
			}
		}
	})
}

func TestParseInfo(t *testing.T) {
	good := `{"name":"x","model":"m","model_revision":"r","audio_payload_types":["base64_wav"],"max_batch_size":4,"supports_batching":true,"schema_versions":["predictions_v1"],"gpu":"a100"}`
	in, err := ParseInfo([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if in.BatchLimit() != 4 || !in.Speaks(PredictionsV1) || string(in.Extra["gpu"]) != `"a100"` {
		t.Fatalf("parsed %+v", in)
	}
	b, _ := json.Marshal(in)
	if !strings.Contains(string(b), `"gpu":"a100"`) || !strings.Contains(string(b), `"max_batch_size":4`) {
		t.Fatalf("extra fields not preserved: %s", b)
	}
	bad := []struct{ body, want string }{
		{`{}`, `missing "name"`},
		{`{"name":1}`, `"name" is not a string`},
		{`{"name":"x","model":"m","model_revision":"r","audio_payload_types":["mp3"],"max_batch_size":0,"supports_batching":true,"schema_versions":[]}`, `unknown type "mp3"`},
		{`{"name":"x","model":"m","model_revision":"r","audio_payload_types":[],"max_batch_size":0,"supports_batching":true,"schema_versions":[]}`, `want an integer ≥ 1`},
		{`nope`, `not a JSON object`},
	}
	for _, b := range bad {
		if _, err := ParseInfo([]byte(b.body)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("ParseInfo(%s) = %v, want error containing %q", b.body, err, b.want)
		}
	}
	nb := Info{MaxBatchSize: 8, SupportsBatching: false}
	if nb.BatchLimit() != 1 {
		t.Errorf("BatchLimit without batching = %d, want 1", nb.BatchLimit())
	}
}

func TestValidateItemAndDecodeRequest(t *testing.T) {
	ok := RequestItem{SampleID: "a", Messages: []Message{{Role: "user", Content: AudioPlaceholder + " what?"}},
		AudioInputs: []AudioInput{{PayloadType: PayloadBase64WAV, Data: "UklG", SampleRate: 16000}}, GenerationConfig: GenerationConfig{}}
	if err := ValidateItem(&ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		mut  func(*RequestItem)
		want string
	}{
		{func(it *RequestItem) { it.Messages = nil }, "messages is empty"},
		{func(it *RequestItem) { it.AudioInputs = append(it.AudioInputs, it.AudioInputs[0]) }, "1 audio placeholder(s)"},
		{func(it *RequestItem) { it.AudioInputs[0].PayloadType = "mp3" }, "payload_type"},
		{func(it *RequestItem) { it.AudioInputs[0].SampleRate = 0 }, "sample_rate"},
		{func(it *RequestItem) { it.GenerationConfig = nil }, "generation_config"},
	}
	for _, c := range cases {
		it := ok
		it.AudioInputs = append([]AudioInput(nil), ok.AudioInputs...)
		c.mut(&it)
		if err := ValidateItem(&it); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateItem = %v, want %q", err, c.want)
		}
	}
	for body, want := range map[string]string{
		`{"schema_version":"predictions_v2","requests":[{}]}`:                                  "schema_version",
		`{"schema_version":"predictions_v1","requests":[]}`:                                    "empty",
		`{"schema_version":"predictions_v1","requests":[{"sample_id":"x"},{"sample_id":"x"}]}`: "duplicate",
		`not json`: "not a predictions_v1",
	} {
		_, err := DecodeRequest([]byte(body))
		var be *BatchError
		if err == nil || !strings.Contains(err.Error(), want) || !asBatch(err, &be) {
			t.Errorf("DecodeRequest(%s) = %v, want batch error %q", body, err, want)
		}
	}
}

func asBatch(err error, be **BatchError) bool {
	b, ok := err.(*BatchError)
	*be = b
	return ok
}

func TestAppendRequestItemMatchesEncodingJSON(t *testing.T) {
	it := RequestItem{SampleID: "id-\"1\"", Messages: []Message{{Role: "user", Content: "<Audio><AudioHere></Audio> Ünïcode & <tags>\n\t\x01 \u2028 bad:\xff"}},
		AudioInputs:      []AudioInput{{PayloadType: PayloadBase64WAV, Data: "UklGRiQAAABXQVZF+/==", SampleRate: 22050}},
		GenerationConfig: GenerationConfig{"max_tokens": 64, "temperature": 0.0}}
	got, err := AppendRequestItem(nil, &it)
	if err != nil {
		t.Fatal(err)
	}
	var back RequestItem
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	want := it
	want.Messages = []Message{{Role: "user", Content: strings.ToValidUTF8(it.Messages[0].Content, "\ufffd")}}
	wb, _ := json.Marshal(want)
	bb, _ := json.Marshal(back)
	if string(wb) != string(bb) {
		t.Fatalf("round trip differs:\n%s\n%s", wb, bb)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("quote\" back\\ nl\n ctl\x00 utf8 é \u2028 bad \xff")
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		if back != strings.ToValidUTF8(s, "\ufffd") {
			// encoding/json replaces each invalid byte with U+FFFD, as we do.
			want, _ := json.Marshal(s)
			var w string
			json.Unmarshal(want, &w)
			if back != w {
				t.Fatalf("round trip of %q gave %q, want %q", s, back, w)
			}
		}
	})
}
