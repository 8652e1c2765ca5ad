package launcher

import (
	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// Defaults of tone mode: the demo benchmark's listener and the audio package's WAV decoder.
// Callers may inject others through DummyOptions.
var (
	defaultListener  Listener   = demo.Answer
	defaultDecodeWAV WAVDecoder = audio.DecodeWAV
)
