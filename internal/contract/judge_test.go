package contract

import (
	"strings"
	"testing"
)

func TestMatchJudgeResponse(t *testing.T) {
	body := `{"schema_version":"judge_scores_v1","items":[
	 {"sample_id":"b","score":0.25,"rationale":"one of four","error":null},
	 {"sample_id":"a","score":1,"rationale":"ok","error":""},
	 {"sample_id":"c","score":1.5,"rationale":"too good","error":null},
	 {"sample_id":"d","score":null,"rationale":"","error":"context too long"},
	 {"sample_id":"e","score":0.5,"rationale":"","error":"both"},
	 {"sample_id":"f","score":null,"rationale":"","error":null},
	 {"sample_id":"g","score":-0.1,"error":null},
	 {"sample_id":"h","score":0.5,"error":null},
	 {"sample_id":"h","score":0.6,"error":null},
	 {"sample_id":"zz","score":0.5,"error":null}]}`
	got := MatchJudgeResponse([]byte(body), []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"})
	want := map[string]string{ // id → substring of the error, "" for a score
		"a": "", "b": "", "c": "outside [0, 1]", "d": "judge error: context too long", "e": "both a score and an error",
		"f": "no score and no error", "g": "outside [0, 1]", "h": "more than once", "i": `sample_id "zz" that was not sent`,
	}
	for _, o := range got {
		w := want[o.SampleID]
		if w == "" && o.Err != "" || w != "" && !strings.Contains(o.Err, w) {
			t.Errorf("%s: %+v, want error %q", o.SampleID, o, w)
		}
	}
	if got[0].Score != 1 || got[1].Score != 0.25 || got[1].Rationale != "one of four" {
		t.Errorf("scores: %+v", got[:2])
	}
	for _, bad := range []string{`not json`, `{"schema_version":"predictions_v1","items":[]}`, `{"schema_version":"judge_scores_v1"}`} {
		for _, o := range MatchJudgeResponse([]byte(bad), []string{"a", "b"}) {
			if o.Err == "" {
				t.Errorf("body %s: %+v", bad, o)
			}
		}
	}
}

func TestDecodeJudgeRequest(t *testing.T) {
	ok := `{"schema_version":"judge_scores_v1","items":[{"sample_id":"a","rubric":"r","reference_text":"x","candidate_text":"y"}]}`
	if r, err := DecodeJudgeRequest([]byte(ok)); err != nil || r.Items[0].CandidateText != "y" {
		t.Errorf("%+v %v", r, err)
	}
	for _, bad := range []string{`[]`, `{"schema_version":"judge_scores_v1","items":[]}`,
		`{"schema_version":"x","items":[{"sample_id":"a"}]}`,
		`{"schema_version":"judge_scores_v1","items":[{"sample_id":"a"},{"sample_id":"a"}]}`} {
		if _, err := DecodeJudgeRequest([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
