package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// JudgeItem is one item of a judge_scores_v1 request.
type JudgeItem struct {
	SampleID      string `json:"sample_id"`
	Rubric        string `json:"rubric"`
	ReferenceText string `json:"reference_text"`
	CandidateText string `json:"candidate_text"`
}

// JudgeRequest is the body of POST <judge-url>.
type JudgeRequest struct {
	SchemaVersion string      `json:"schema_version"`
	Items         []JudgeItem `json:"items"`
}

// JudgeScore is one item of a judge_scores_v1 answer: Score in [0, 1], or nil exactly when
// Error is set.
type JudgeScore struct {
	SampleID  string   `json:"sample_id"`
	Score     *float64 `json:"score"`
	Rationale string   `json:"rationale"`
	Error     *string  `json:"error"`
}

// JudgeResponse is the answer of a judge_scores_v1 service.
type JudgeResponse struct {
	SchemaVersion string       `json:"schema_version"`
	Items         []JudgeScore `json:"items"`
}

// DecodeJudgeRequest parses and checks a judge_scores_v1 request body (for servers): the
// schema version, at least one item, non-empty and unique sample ids.
func DecodeJudgeRequest(body []byte) (*JudgeRequest, error) {
	var req JudgeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &BatchError{Reason: "request is not a judge_scores_v1 object: " + shorten(err.Error())}
	}
	if req.SchemaVersion != JudgeScoresV1 {
		return nil, &BatchError{Reason: fmt.Sprintf("schema_version is %q, want %q", req.SchemaVersion, JudgeScoresV1)}
	}
	if len(req.Items) == 0 {
		return nil, &BatchError{Reason: "items is empty"}
	}
	seen := make(map[string]bool, len(req.Items))
	for i, it := range req.Items {
		if strings.TrimSpace(it.SampleID) == "" {
			return nil, &BatchError{Reason: fmt.Sprintf("items[%d] has no sample_id", i)}
		}
		if seen[it.SampleID] {
			return nil, &BatchError{Reason: fmt.Sprintf("sample_id %q appears twice", shorten(it.SampleID))}
		}
		seen[it.SampleID] = true
	}
	return &req, nil
}

// JudgeOutcome is the client's verdict on one judged item.
type JudgeOutcome struct {
	SampleID  string
	Score     float64
	Rationale string
	// Err is non-empty when the item has no usable score: the judge's own error, or a
	// violation of the contract (missing or repeated id, a score outside [0, 1], a score and
	// an error together, neither).
	Err string
}

// MatchJudgeResponse parses a judge_scores_v1 answer (HTTP 200) against the ids sent and
// returns one outcome per sent id, in the order of sent. Like MatchResponse, every violation
// becomes the failure of the affected items: never a crash, never a score.
func MatchJudgeResponse(body []byte, sent []string) []JudgeOutcome {
	out := make([]JudgeOutcome, len(sent))
	index := make(map[string]int, len(sent))
	for i, id := range sent {
		out[i].SampleID = id
		index[id] = i
	}
	failAll := func(reason string) []JudgeOutcome {
		for i := range out {
			out[i].Err = reason
		}
		return out
	}
	var envelope struct {
		SchemaVersion *string           `json:"schema_version"`
		Items         []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&envelope); err != nil {
		return failAll("response is not a judge_scores_v1 object: " + shorten(err.Error()))
	}
	if envelope.SchemaVersion == nil || *envelope.SchemaVersion != JudgeScoresV1 {
		got := "missing"
		if envelope.SchemaVersion != nil {
			got = fmt.Sprintf("%q", *envelope.SchemaVersion)
		}
		return failAll(fmt.Sprintf("response schema_version is %s, want %q", got, JudgeScoresV1))
	}
	if envelope.Items == nil {
		return failAll("response has no items array")
	}
	answered := make([]int, len(sent))
	var strays []string
	for k, raw := range envelope.Items {
		var it JudgeScore
		err := json.Unmarshal(raw, &it)
		if it.SampleID == "" {
			strays = append(strays, fmt.Sprintf("items[%d] has no sample_id", k))
			continue
		}
		i, ok := index[it.SampleID]
		if !ok {
			strays = append(strays, fmt.Sprintf("items[%d] answers sample_id %q that was not sent", k, shorten(it.SampleID)))
			continue
		}
		answered[i]++
		if answered[i] > 1 {
			out[i] = JudgeOutcome{SampleID: it.SampleID, Err: "judge answered this sample_id more than once"}
			continue
		}
		if it.Error != nil && strings.TrimSpace(*it.Error) == "" {
			it.Error = nil // a blank error is no error
		}
		if err == nil {
			err = checkJudgeScore(it)
		}
		if err != nil {
			out[i].Err = "malformed judge item: " + err.Error()
			continue
		}
		if it.Error != nil {
			out[i].Err = "judge error: " + strings.TrimSpace(*it.Error)
			continue
		}
		out[i].Score, out[i].Rationale = *it.Score, it.Rationale
	}
	for i := range out {
		if answered[i] == 0 {
			msg := "judge sent no item for this sample_id"
			if len(strays) > 0 {
				msg += " (" + strings.Join(strays, "; ") + ")"
			}
			out[i].Err = msg
		}
	}
	return out
}

func checkJudgeScore(it JudgeScore) error {
	hasErr := it.Error != nil
	switch {
	case hasErr && it.Score != nil:
		return errors.New("both a score and an error")
	case hasErr:
		return nil
	case it.Score == nil:
		return errors.New("no score and no error")
	case math.IsNaN(*it.Score) || *it.Score < 0 || *it.Score > 1:
		return fmt.Errorf("score %v is outside [0, 1]", *it.Score)
	}
	return nil
}
