package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/charmbracelet/log"
	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/audio"
	"github.com/beans-slurm/beans-slurm/internal/blockcache"
	"github.com/beans-slurm/beans-slurm/internal/cache"
	"github.com/beans-slurm/beans-slurm/internal/contract"
	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/eval"
	"github.com/beans-slurm/beans-slurm/internal/hub"
)

// dataOptions are the flags that say where a run's data comes from.
type dataOptions struct {
	dataDir   string
	revision  string
	cacheDir  string
	noCache   bool
	blockSize int64
	// noAnswerCache turns the answer cache off (run only; --no-cache does too).
	noAnswerCache bool
}

func (d *dataOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&d.dataDir, "data-dir", "", "local or shared-filesystem copy of the dataset (default $BEANS_SLURM_DATA_DIR; none: read the Hugging Face Hub)")
	f.StringVar(&d.revision, "revision", "", "dataset revision to read: a branch, tag or commit (default: each task's, else main)")
	f.StringVar(&d.cacheDir, "cache-dir", "", "beans-slurm's cache directory: blocks read from the Hub (blocks/), label vocabularies (labels/) and, for run, the launchers' answers (answers/) (default $BEANS_SLURM_CACHE_DIR, else the user cache directory)")
	f.BoolVar(&d.noCache, "no-cache", false, "keep nothing in the cache directory: read the Hub without keeping blocks, and (run) neither reuse nor keep launcher answers")
	f.Int64Var(&d.blockSize, "block-size", blockcache.DefaultBlockSize, "size in bytes of the blocks kept from Hub reads (a cache made with another size is not reused)")
}

// answerCacheFlags adds the answer cache's own flag (run only).
func (d *dataOptions) answerCacheFlags(f *pflag.FlagSet) {
	f.BoolVar(&d.noAnswerCache, "no-answer-cache", false, "ask the launcher for every sample: neither reuse nor keep answers in <cache-dir>/answers (also $BEANS_SLURM_NO_ANSWER_CACHE=1); data blocks are still cached")
}

// answerCache is the run's answer cache, <cache root>/answers, or nil when it is off
// (--no-cache, --no-answer-cache, $BEANS_SLURM_NO_ANSWER_CACHE). Nothing is read or
// created until a task uses it.
func (d *dataOptions) answerCache(logger *log.Logger) *cache.Cache {
	if d.noCache || d.noAnswerCache || envTrue("BEANS_SLURM_NO_ANSWER_CACHE") {
		return nil
	}
	c := cache.Open(filepath.Join(d.cacheRoot(), "answers"))
	logger.Debug("answer cache", "dir", c.Dir())
	return c
}

// envTrue reports whether an environment variable is set to something other than "", 0 or
// false.
func envTrue(name string) bool {
	v := strings.TrimSpace(os.Getenv(name))
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// cacheRoot is beans-slurm's cache directory.
func (d *dataOptions) cacheRoot() string {
	if d.cacheDir != "" {
		return d.cacheDir
	}
	if env := os.Getenv("BEANS_SLURM_CACHE_DIR"); env != "" {
		return env
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "beans-slurm")
}

// resolver builds the data resolver of a command. The Hub client is made on first use, so
// runs that read local data never look for a token.
func (d *dataOptions) resolver(logger *log.Logger, demoDir string) (*dataset.Resolver, error) {
	if d.dataDir == "" {
		d.dataDir = os.Getenv("BEANS_SLURM_DATA_DIR")
	}
	root := d.cacheRoot()
	r := &dataset.Resolver{DataDir: d.dataDir, DemoDir: demoDir, Revision: d.revision,
		LabelCacheDir: filepath.Join(root, "labels")}
	if demoDir == "" {
		r.DemoDir = filepath.Join(root, "demo")
	}
	if !d.noCache && d.dataDir == "" {
		if d.blockSize <= 0 {
			d.blockSize = blockcache.DefaultBlockSize
		}
		c, err := blockcache.Open(filepath.Join(root, "blocks"), d.blockSize)
		if err != nil {
			return nil, configError(fmt.Errorf("open the block cache: %w (choose another --cache-dir)", err))
		}
		r.Cache = c
	}
	var once sync.Once
	var client *hub.Client
	var cerr error
	r.Hub = func() (*hub.Client, error) {
		once.Do(func() {
			client, cerr = hub.New(hub.Options{Logger: logger})
			if cerr == nil {
				if w := client.TokenWarning(); w != "" {
					logger.Warn(w)
				}
				logger.Info("reading the Hugging Face Hub", "endpoint", client.Endpoint(), "token", tokenSource(client))
			}
		})
		return client, cerr
	}
	return r, nil
}

func tokenSource(c *hub.Client) string {
	if s := c.TokenSource(); s != "" {
		return s
	}
	return "none"
}

// audioFlags say how audio is sent.
type audioFlags struct {
	resample   int
	format     string
	payload    string
	payloadDir string
}

func (a *audioFlags) flags(f *pflag.FlagSet) {
	f.IntVar(&a.resample, "resample", 0, "resample every clip to `HZ` with a band-limited resampler (0 = send each clip's own rate)")
	f.StringVar(&a.format, "audio-format", "pcm16", "WAV sample format: pcm16 or float32")
	f.StringVar(&a.payload, "payload", contract.PayloadBase64WAV, "how audio travels: base64_wav (in the request) or file_path (WAV files in --payload-dir, for launchers that accept it)")
	f.StringVar(&a.payloadDir, "payload-dir", "", "directory for file_path payloads, readable by the launcher (a shared filesystem on a cluster)")
}

func (a *audioFlags) options() (eval.AudioOptions, error) {
	if a.format == "" {
		a.format = "pcm16"
	}
	format, err := audio.ParseWAVFormat(a.format)
	if err != nil {
		return eval.AudioOptions{}, fmt.Errorf("--audio-format: %w", err)
	}
	return eval.AudioOptions{ResampleHz: a.resample, Format: format, Payload: a.payload, PayloadDir: a.payloadDir}, nil
}

// scoreFlags tune scoring, in `run` and `score`.
type scoreFlags struct {
	policy, postprocess string
	bootstrap           int
	seed                uint64
	spiceDir            string
	noSPICE             bool
}

func (s *scoreFlags) flags(f *pflag.FlagSet) {
	f.StringVar(&s.policy, "policy", "", "label matching: beans_zero (snap to the nearest label) or strict (exact, case-insensitive); default: the task's")
	f.StringVar(&s.postprocess, "postprocess", "", "answer cleanup before matching: clean (default) or raw")
	f.IntVar(&s.bootstrap, "bootstrap", 0, "bootstrap resamples for the 95% intervals (0 = 1000, -1 = no intervals)")
	f.Uint64Var(&s.seed, "seed", 0, "seed of the bootstrap (0 = the default seed)")
	f.StringVar(&s.spiceDir, "spice-dir", "", "where `beans-slurm setup-spice` installed SPICE (default: the cache directory)")
	f.BoolVar(&s.noSPICE, "no-spice", false, "do not run SPICE (SPIDEr is then not reported)")
}

func (s *scoreFlags) options() eval.ScoreOptions {
	return eval.ScoreOptions{Policy: s.policy, Postprocess: s.postprocess, Bootstrap: s.bootstrap, Seed: s.seed,
		SPICECacheDir: s.spiceDir, NoSPICE: s.noSPICE}
}
