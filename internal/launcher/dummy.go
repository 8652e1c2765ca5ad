package launcher

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/retry"
)

// Dummy modes.
const (
	// ModeHash answers "hash:" and 16 hex digits of a SHA-256 over the whole request item
	// (messages, every audio byte, generation_config; not the sample_id).
	ModeHash = "hash"
	// ModeTone decodes the audio and answers what DummyOptions.Listener hears in it.
	ModeTone = "tone"
)

// Identity of the dummy launcher in /info.
const (
	DummyName     = "beans-slurm-dummy"
	DummyRevision = "1"
	// DefaultDummyBatch is the dummy's max_batch_size when DummyOptions.MaxBatchSize is 0.
	DefaultDummyBatch = 8
)

// InjectedFailure is the error of items failed on purpose by DummyOptions.FailEvery.
const InjectedFailure = "injected failure"

// Listener answers an instruction about a clip of audio (mono samples in [-1, 1] at rate Hz).
type Listener func(instruction string, samples []float64, rate int) string

// WAVDecoder decodes a complete WAV file to mono samples and their rate.
type WAVDecoder func(b []byte) (samples []float64, rate int, err error)

// DummyOptions configure the reference launcher.
type DummyOptions struct {
	// Mode is ModeHash (default) or ModeTone.
	Mode string
	// MaxBatchSize is max_batch_size in /info; 0 means DefaultDummyBatch.
	MaxBatchSize int
	// Latency is the simulated model time per batch (0 = none).
	Latency time.Duration
	// Slots is how many batches are worked on at once; further batches wait for a slot
	// (0 = unlimited). Throughput is then about Slots × batch size / Latency.
	Slots int
	// Listener answers in tone mode; nil means the demo listener (demo.Answer).
	Listener Listener
	// DecodeWAV decodes audio in tone mode; nil means audio.DecodeWAV.
	DecodeWAV WAVDecoder
	// FailEvery, when k > 0, fails every k-th item (by arrival at the model) with the
	// per-item error InjectedFailure. For testing clients.
	FailEvery int
	// Model replaces the model name in /info (default "dummy-<mode>"); a stub of a model
	// preset announces itself as "stub:<preset>".
	Model string

	// Faults, for testing clients (faults.go). Each is decided from Seed, the sample id and
	// how many times this launcher has seen it, so the same requests meet the same faults.

	// Seed fixes every fault decision.
	Seed uint64
	// FailRate is the probability that an item fails with the per-item error
	// InjectedItemFailure.
	FailRate float64
	// LatencyJitter adds a uniform extra model time in [0, LatencyJitter) to each batch.
	LatencyJitter time.Duration
	// DropRate is the probability that a POST /predict is dropped: the connection is closed
	// without an answer.
	DropRate float64
	// StatusRate is the probability that a POST /predict is answered with HTTP Status
	// (429, 500 or 503; 0 means 503) instead of predictions.
	StatusRate float64
	Status     int
	// RetryAfter is sent as Retry-After with the injected status (default 1 s for 429,
	// none otherwise).
	RetryAfter time.Duration
	// BadIDsRate is the probability that an answer's ids are wrong: one item answered under
	// an id that was not sent, one item missing, or one id answered twice (the second time
	// with another item's answer).
	BadIDsRate float64
	// MalformedRate is the probability that a POST /predict is answered 200 with a body that
	// is not JSON.
	MalformedRate float64
}

// NewDummy returns the reference launcher's model. It answers deterministically, simulates
// a model server of fixed capacity (Latency, Slots), and answers in a different order than
// asked once served by NewHandler.
func NewDummy(opts DummyOptions) (Model, error) {
	if opts.Mode == "" {
		opts.Mode = ModeHash
	}
	switch opts.Mode {
	case ModeHash, ModeTone, ModeJudge:
	default:
		return nil, fmt.Errorf("dummy launcher: mode %q is not one of %q, %q, %q", opts.Mode, ModeHash, ModeTone, ModeJudge)
	}
	if opts.MaxBatchSize == 0 {
		opts.MaxBatchSize = DefaultDummyBatch
	}
	if opts.MaxBatchSize < 0 {
		return nil, fmt.Errorf("dummy launcher: max batch size %d is negative", opts.MaxBatchSize)
	}
	if opts.Latency < 0 {
		return nil, fmt.Errorf("dummy launcher: latency %s is negative", opts.Latency)
	}
	if opts.Slots < 0 {
		return nil, fmt.Errorf("dummy launcher: slots %d is negative (0 means unlimited)", opts.Slots)
	}
	if opts.FailEvery < 0 {
		return nil, fmt.Errorf("dummy launcher: fail-every %d is negative (0 means never)", opts.FailEvery)
	}
	if err := opts.checkFaults(); err != nil {
		return nil, err
	}
	if opts.Mode == ModeTone {
		if opts.Listener == nil {
			opts.Listener = defaultListener
		}
		if opts.DecodeWAV == nil {
			opts.DecodeWAV = defaultDecodeWAV
		}
		if opts.Listener == nil || opts.DecodeWAV == nil {
			return nil, errors.New("dummy launcher: tone mode needs a listener and a WAV decoder, and none is built in")
		}
	}
	d := &dummy{opts: opts, wait: retry.Sleep}
	if opts.Slots > 0 {
		d.slots = make(chan struct{}, opts.Slots)
	}
	extra := map[string]any{
		"mode":       opts.Mode,
		"latency_ms": opts.Latency.Milliseconds(),
		"slots":      opts.Slots,
	}
	if opts.FailEvery > 0 {
		extra["fail_every"] = opts.FailEvery
	}
	if f := opts.faultsInfo(); f != nil {
		extra["faults"] = f
	}
	d.info = contract.Info{
		Name:              DummyName,
		Model:             cmp.Or(opts.Model, "dummy-"+opts.Mode),
		ModelRevision:     DummyRevision,
		AudioPayloadTypes: []string{contract.PayloadBase64WAV},
		MaxBatchSize:      opts.MaxBatchSize,
		SupportsBatching:  true,
		SchemaVersions:    []string{contract.PredictionsV1},
		Extra:             map[string]json.RawMessage{},
	}
	if opts.Mode == ModeJudge {
		d.info.SchemaVersions = append(d.info.SchemaVersions, contract.JudgeScoresV1)
	}
	for k, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("dummy launcher: encode /info field %s: %w", k, err)
		}
		d.info.Extra[k] = b
	}
	return d, nil
}

type dummy struct {
	opts    DummyOptions
	info    contract.Info
	slots   chan struct{} // nil: unlimited
	arrived atomic.Int64  // items seen, for FailEvery
	faults  faultState

	// wait simulates model time; tests replace it to observe concurrency.
	wait func(ctx context.Context, d time.Duration) error
	// onQueue, when set, is called when a batch has to wait for a slot (tests).
	onQueue func()
}

func (d *dummy) Info() contract.Info {
	in := d.info
	in.Extra = make(map[string]json.RawMessage, len(d.info.Extra))
	for k, v := range d.info.Extra {
		in.Extra[k] = v
	}
	return in
}

func (d *dummy) Predict(ctx context.Context, items []contract.RequestItem) []contract.ResponseItem {
	start := time.Now()
	out := make([]contract.ResponseItem, len(items))
	failAll := func(msg string) []contract.ResponseItem {
		for i := range items {
			out[i] = failedItem(items[i].SampleID, msg)
		}
		return out
	}
	if d.slots != nil {
		select {
		case d.slots <- struct{}{}:
		default:
			if d.onQueue != nil {
				d.onQueue()
			}
			select {
			case d.slots <- struct{}{}:
			case <-ctx.Done():
				return failAll("cancelled while waiting for a model slot: " + context.Cause(ctx).Error())
			}
		}
		defer func() { <-d.slots }()
	}
	if err := d.wait(ctx, d.opts.Latency+d.jitter(items)); err != nil {
		return failAll("cancelled during model time: " + err.Error())
	}
	var h hashState
	for i := range items {
		it := &items[i]
		n := d.arrived.Add(1)
		var answer string
		var err error
		switch {
		case d.opts.FailEvery > 0 && n%int64(d.opts.FailEvery) == 0:
			err = errors.New(InjectedFailure)
		case d.itemFails(it.SampleID):
			err = errors.New(InjectedItemFailure)
		case d.opts.Mode == ModeTone:
			answer, err = d.listen(it)
		case d.opts.Mode == ModeJudge:
			answer, err = judgeAnswer(it)
		default:
			answer, err = h.answer(it)
		}
		if err != nil {
			out[i] = failedItem(it.SampleID, err.Error())
			continue
		}
		latency := time.Since(start).Seconds()
		out[i] = contract.ResponseItem{
			SampleID:     it.SampleID,
			Predictions:  []string{answer},
			FinishReason: "stop",
			Usage:        usage(it, answer),
			LatencySec:   &latency,
		}
	}
	return out
}

// usage makes plausible token counts: about four characters per text token, a fixed
// budget per audio clip, at least one completion token.
func usage(it *contract.RequestItem, answer string) json.RawMessage {
	prompt := 0
	for _, m := range it.Messages {
		prompt += 4 + (len(strings.ReplaceAll(m.Content, contract.AudioPlaceholder, ""))+3)/4
	}
	prompt += 188 * len(it.AudioInputs)
	completion := max(1, (len(answer)+3)/4)
	return json.RawMessage(fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d}`, prompt, completion))
}

// checkPayload refuses payload types other than base64_wav.
func checkPayload(i int, a *contract.AudioInput) error {
	if a.PayloadType != contract.PayloadBase64WAV {
		return fmt.Errorf("audio_inputs[%d]: payload_type %q is not supported by this launcher (it accepts %s)", i, a.PayloadType, contract.PayloadBase64WAV)
	}
	return nil
}

// hashState is reused across the items of one batch.
type hashState struct {
	outer, audio hash.Hash
	buf          []byte
}

// answer hashes a canonical serialisation of the item: every field is length-prefixed, audio
// enters as the SHA-256 of its decoded bytes, generation_config as canonical JSON (sorted
// keys). The sample_id is left out: the same content gets the same answer.
func (h *hashState) answer(it *contract.RequestItem) (string, error) {
	if h.outer == nil {
		h.outer, h.audio = sha256.New(), sha256.New()
	}
	h.outer.Reset()
	h.buf = h.buf[:0]
	h.buf = appendField(h.buf, "predictions_v1/dummy-hash/1")
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(len(it.Messages)))
	for _, m := range it.Messages {
		h.buf = appendField(h.buf, m.Role)
		h.buf = appendField(h.buf, m.Content)
	}
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(len(it.AudioInputs)))
	for i := range it.AudioInputs {
		a := &it.AudioInputs[i]
		if err := checkPayload(i, a); err != nil {
			return "", err
		}
		h.audio.Reset()
		if err := hashWAV(h.audio, a.Data); err != nil {
			return "", fmt.Errorf("audio_inputs[%d]: %w", i, err)
		}
		h.buf = appendField(h.buf, a.PayloadType)
		h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(int64(a.SampleRate)))
		h.buf = h.audio.Sum(h.buf)
	}
	gc, err := json.Marshal(it.GenerationConfig) // maps marshal with sorted keys
	if err != nil {
		return "", fmt.Errorf("generation_config: %w", err)
	}
	h.buf = appendField(h.buf, string(gc))
	h.outer.Write(h.buf)
	var sum [sha256.Size]byte
	return "hash:" + hex.EncodeToString(h.outer.Sum(sum[:0])[:8]), nil
}

func appendField(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(s)))
	return append(dst, s...)
}

// hashWAV streams the decoded base64 into w, checking the RIFF/WAVE header on the way.
func hashWAV(w io.Writer, data string) error {
	dec := base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))
	var hdr [12]byte
	if _, err := io.ReadFull(dec, hdr[:]); err != nil {
		var corrupt base64.CorruptInputError
		if errors.As(err, &corrupt) {
			return errors.New("not valid base64")
		}
		return errors.New("not a WAV file (shorter than a RIFF/WAVE header)")
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return errors.New("not a WAV file (no RIFF/WAVE header)")
	}
	w.Write(hdr[:])
	if _, err := io.Copy(w, dec); err != nil {
		return errors.New("not valid base64")
	}
	return nil
}

// listen decodes the first audio input and asks the listener about it with the text of the
// last user message. Every audio input must decode. Items without audio answer "unknown".
func (d *dummy) listen(it *contract.RequestItem) (string, error) {
	var samples []float64
	rate := 0
	for i := range it.AudioInputs {
		a := &it.AudioInputs[i]
		if err := checkPayload(i, a); err != nil {
			return "", err
		}
		raw, err := base64.StdEncoding.DecodeString(a.Data)
		if err != nil {
			return "", fmt.Errorf("audio_inputs[%d]: not valid base64", i)
		}
		s, r, err := d.opts.DecodeWAV(raw)
		if err != nil {
			return "", fmt.Errorf("audio_inputs[%d]: not a WAV file: %w", i, err)
		}
		if i == 0 {
			samples, rate = s, r
		}
	}
	if len(it.AudioInputs) == 0 {
		return "unknown", nil
	}
	instruction := ""
	for k := len(it.Messages) - 1; k >= 0; k-- {
		if it.Messages[k].Role == "user" {
			instruction = it.Messages[k].Content
			break
		}
	}
	instruction = strings.TrimSpace(strings.ReplaceAll(instruction, contract.AudioPlaceholder, ""))
	return d.opts.Listener(instruction, samples, rate), nil
}
