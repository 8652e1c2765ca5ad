package launcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/judge/prompt"
)

// ModeJudge makes the dummy a deterministic judge for tests and demos. Over predictions_v1 it
// answers the prompts of internal/judge/prompt: a YES/NO prompt gets YES when the model's
// answer contains the reference (ignoring case and spacing), else NO; an extractor prompt
// gets the allowed labels named in the answer (the longest one for classification, all of
// them for detection) or the answer in one line (captioning). It also serves
// judge_scores_v1 at POST /judge: score 1 when the candidate contains the reference, else
// 0. Any other prompt is answered with a per-item error.
const ModeJudge = "judge"

// Scorer is a Model that also serves judge_scores_v1 at POST /judge (when its /info says
// it speaks judge_scores_v1).
type Scorer interface {
	Score(ctx context.Context, items []contract.JudgeItem) []contract.JudgeScore
}

// fold lowercases and collapses whitespace, for the judge's containment test.
func fold(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// judgeAnswer answers one predictions_v1 item in judge mode.
func judgeAnswer(it *contract.RequestItem) (string, error) {
	if len(it.Messages) == 0 {
		return "", errors.New("judge mode: the item has no message")
	}
	p := it.Messages[len(it.Messages)-1].Content
	answer, _ := prompt.Section(p, prompt.SecAnswer)
	switch kind := prompt.KindOf(p); kind {
	case prompt.YesNoID:
		ref, _ := prompt.Section(p, prompt.SecReference)
		if r := fold(ref); r != "" && strings.Contains(fold(answer), r) {
			return "YES", nil
		}
		return "NO", nil
	case prompt.ExtractID(prompt.TypeCaption):
		return strings.Join(strings.Fields(answer), " "), nil
	case prompt.ExtractID(prompt.TypeClassify), prompt.ExtractID(prompt.TypeDetect):
		labels, _ := prompt.Section(p, prompt.SecLabels)
		a := fold(answer)
		var found []string
		for _, l := range strings.Split(labels, "\n") {
			if l = strings.TrimSpace(l); l != "" && strings.Contains(a, fold(l)) {
				found = append(found, l)
			}
		}
		if kind == prompt.ExtractID(prompt.TypeDetect) {
			if len(found) == 0 {
				return "None", nil
			}
			return strings.Join(found, ", "), nil
		}
		if len(found) == 0 {
			return prompt.NoneLabel, nil
		}
		return slices.MaxFunc(found, func(a, b string) int { return len(a) - len(b) }), nil
	}
	return "", errors.New("judge mode: the prompt is none of beans-slurm's judge templates")
}

// Score answers judge_scores_v1 items in judge mode.
func (d *dummy) Score(ctx context.Context, items []contract.JudgeItem) []contract.JudgeScore {
	out := make([]contract.JudgeScore, len(items))
	for i, it := range items {
		out[i].SampleID = it.SampleID
		if err := ctx.Err(); err != nil {
			msg := "cancelled: " + err.Error()
			out[i].Error = &msg
			continue
		}
		score, why := 0.0, "the candidate does not contain the reference"
		if r := fold(it.ReferenceText); r != "" && strings.Contains(fold(it.CandidateText), r) {
			score, why = 1, "the candidate contains the reference"
		}
		out[i].Score, out[i].Rationale = &score, why
	}
	return out
}

// judge serves POST /judge for a Scorer.
func (h *handler) judge(w http.ResponseWriter, r *http.Request, s Scorer) {
	body, status, err := readBody(r, h.maxBody)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	req, err := contract.DecodeJudgeRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit := h.model.Info().BatchLimit(); len(req.Items) > limit {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
			"error": fmt.Sprintf("batch of %d items exceeds max_batch_size %d", len(req.Items), limit), "max_batch_size": limit})
		return
	}
	got := s.Score(r.Context(), req.Items)
	slices.Reverse(got)
	writeJSON(w, http.StatusOK, contract.JudgeResponse{SchemaVersion: contract.JudgeScoresV1, Items: got})
}
