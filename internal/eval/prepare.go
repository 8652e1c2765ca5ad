package eval

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// AudioOptions say how audio is prepared and sent.
type AudioOptions struct {
	// ResampleHz converts every clip to this rate with a band-limited resampler (0 = send
	// the source rate).
	ResampleHz int
	// Format is the WAV sample format (PCM 16-bit by default).
	Format audio.WAVFormat
	// Payload is contract.PayloadBase64WAV (default) or contract.PayloadFilePath.
	Payload string
	// PayloadDir receives the WAV files of file_path payloads (a shared filesystem on a
	// cluster, so that the launcher can open them).
	PayloadDir string
}

func (o AudioOptions) payload() string {
	if o.Payload == "" {
		return contract.PayloadBase64WAV
	}
	return o.Payload
}

func (o AudioOptions) check() error {
	switch o.payload() {
	case contract.PayloadBase64WAV:
	case contract.PayloadFilePath:
		if o.PayloadDir == "" {
			return fmt.Errorf("a file_path payload needs a directory the launcher can read: pass --payload-dir DIR")
		}
	default:
		return fmt.Errorf("payload %q is not one of %s, %s", o.Payload, contract.PayloadBase64WAV, contract.PayloadFilePath)
	}
	if o.ResampleHz < 0 || (o.ResampleHz > 0 && o.ResampleHz < 1000) {
		return fmt.Errorf("--resample %d Hz: give a rate of at least 1000 Hz, or 0 to keep each clip's rate", o.ResampleHz)
	}
	return nil
}

// preparer turns samples into encoded request items for one task.
type preparer struct {
	task registry.Task
	gen  contract.GenerationConfig
	opts AudioOptions
	dir  string // file_path payloads of this task
}

func newPreparer(cfg Config, task registry.Task, _ string) (*preparer, error) {
	p := &preparer{task: task, opts: cfg.Audio, gen: contract.GenerationConfig{}}
	for k, v := range task.GenerationConfig {
		p.gen[k] = v
	}
	if task.AudioCapSeconds > 0 {
		if _, ok := p.gen["max_length_seconds"]; !ok {
			p.gen["max_length_seconds"] = task.AudioCapSeconds
		}
	}
	if p.opts.payload() == contract.PayloadFilePath {
		dir, err := filepath.Abs(filepath.Join(p.opts.PayloadDir, task.ID))
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create the payload directory %s: %w", dir, err)
		}
		p.dir = dir
	}
	return p, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// item encodes the request item of a sample into buf (reused when large enough): the audio
// is capped to the task's maximum, resampled when asked, and written as base64 WAV straight
// into the JSON, or once into the payload directory for file_path payloads.
func (p *preparer) item(buf []byte, s *dataset.Sample, text string) ([]byte, error) {
	samples, rate := audio.Cap(s.Audio, s.SampleRate, p.task.AudioCapSeconds), s.SampleRate
	if p.opts.ResampleHz > 0 && p.opts.ResampleHz != rate {
		samples, rate = audio.Resample(samples, rate, p.opts.ResampleHz), p.opts.ResampleHz
	}
	it := contract.RequestItem{
		SampleID:         s.ID,
		Messages:         []contract.Message{{Role: "user", Content: text}},
		AudioInputs:      []contract.AudioInput{{PayloadType: p.opts.payload(), SampleRate: rate}},
		GenerationConfig: p.gen,
	}
	if p.dir != "" {
		path := filepath.Join(p.dir, unsafeName.ReplaceAllString(s.ID, "_")+".wav")
		if _, err := os.Stat(path); err != nil {
			if err := audio.WriteWAVFile(path, samples, rate, p.opts.Format); err != nil {
				return nil, fmt.Errorf("write the audio of sample %s: %w", s.ID, err)
			}
		}
		it.AudioInputs[0].Data = path
		return contract.AppendRequestItem(buf[:0], &it)
	}
	need := p.opts.Format.Base64Size(len(samples)) + len(text) + len(s.ID) + 512
	if cap(buf) < need {
		buf = make([]byte, 0, need+need/8)
	}
	js, err := contract.AppendRequestItemWith(buf[:0], &it, func(dst []byte, _ int) []byte {
		return audio.AppendBase64WAVFormat(dst, samples, rate, p.opts.Format)
	})
	if err != nil {
		return nil, fmt.Errorf("encode request for sample %s: %w", s.ID, err)
	}
	return js, nil
}

// lineWriter appends prediction lines, flushed per call; safe for concurrent use.
type lineWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	enc  *json.Encoder
	path string
}

func (l *lineWriter) write(lines []PredictionLine) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range lines {
		if err := l.enc.Encode(line); err != nil {
			return fmt.Errorf("write %s: %w", l.path, err)
		}
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

func (l *lineWriter) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}
