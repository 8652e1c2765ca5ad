package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

type dummyOptions struct {
	port      int
	bind      string
	batch     int
	mode      string
	latency   time.Duration
	slots     int
	failEvery int
	model     string
	tokenFile string
	faults    launcher.DummyOptions // the fault options only
}

func newLauncherCmd(ios IO, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "launcher",
		Short: "Serve a built-in predictions_v1 launcher",
	}
	cmd.AddCommand(newDummyCmd(ios, g))
	cmd.AddCommand(newOpenAIProxyCmd(ios, g))
	return cmd
}

func newDummyCmd(ios IO, g *globals) *cobra.Command {
	o := &dummyOptions{}
	cmd := &cobra.Command{
		Use:   "dummy [--port P] [--bind ADDR] [--max-batch-size N] [--mode hash|tone|judge] [--latency D] [--slots N]",
		Short: "Serve the reference launcher (deterministic answers, no model)",
		Long: `The reference predictions_v1 launcher. In hash mode it answers a digest of the whole
request item, every audio byte included; in tone mode it listens to the audio and
recognises the demo benchmark's synthetic calls; in judge mode it is a deterministic judge
for beans-slurm's judge prompts (YES when the answer contains the reference, the labels an
answer names for the extractor) and serves judge_scores_v1 at /judge. --latency and --slots make it behave like
a model server of fixed capacity (slots × batch size / latency samples per second).`,
		Example: `  beans-slurm launcher dummy --port 8000
  beans-slurm launcher dummy --mode tone --latency 200ms --slots 4
  beans-slurm launcher dummy --mode judge --port 8010
  beans-slurm launcher dummy --seed 7 --fail-rate 0.1 --drop-rate 0.02 --status-rate 0.05 --status 429`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := o.faults
			opts.Mode, opts.MaxBatchSize, opts.Latency, opts.Slots, opts.FailEvery, opts.Model = o.mode, o.batch, o.latency, o.slots, o.failEvery, o.model
			m, err := launcher.NewDummy(opts)
			if err != nil {
				return configError(err)
			}
			token := ""
			if o.tokenFile != "" {
				if token, err = launcher.ReadToken(o.tokenFile); err != nil {
					return configError(err)
				}
			}
			logger := g.logger(ios)
			h := launcher.NewHandler(m, launcher.ServerOptions{Logger: logger, Token: token})
			addr := net.JoinHostPort(o.bind, strconv.Itoa(o.port))
			return launcher.Serve(cmd.Context(), addr, h, func(base string) {
				logger.Info("serving predictions_v1", "predict_url", base+"/predict", "mode", m.Info().Model, "max_batch_size", m.Info().MaxBatchSize)
				fmt.Fprintf(ios.Out, "%s/predict\n", base)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 8000, "TCP port (0 = any free port)")
	f.StringVar(&o.bind, "bind", "127.0.0.1", "address to listen on")
	f.IntVar(&o.batch, "max-batch-size", launcher.DefaultDummyBatch, "max_batch_size announced in /info and enforced (HTTP 413 above)")
	f.StringVar(&o.mode, "mode", launcher.ModeHash, "hash (digest of the request), tone (recognises the demo's calls) or judge (a deterministic judge: YES/NO, extractor, and judge_scores_v1 at /judge)")
	f.DurationVar(&o.latency, "latency", 0, "simulated model time per batch")
	f.IntVar(&o.slots, "slots", 0, "batches worked on at once; further requests wait (0 = unlimited)")
	f.IntVar(&o.failEvery, "fail-every", 0, "fail every N-th item with a per-item error (testing clients)")
	// Faults, for testing clients (docs/launchers.md, "The dummy launcher's faults").
	f.Uint64Var(&o.faults.Seed, "seed", 0, "seed of every fault decision: the same seed and requests meet the same faults")
	f.Float64Var(&o.faults.FailRate, "fail-rate", 0, "probability `P` that an item fails with a per-item error")
	f.DurationVar(&o.faults.LatencyJitter, "latency-jitter", 0, "uniform extra model time per batch, in [0, `D`)")
	f.Float64Var(&o.faults.DropRate, "drop-rate", 0, "probability `P` that a request's connection is closed without an answer")
	f.Float64Var(&o.faults.StatusRate, "status-rate", 0, "probability `P` that a request is answered with --status instead")
	f.IntVar(&o.faults.Status, "status", 503, "the HTTP status of --status-rate: 429, 500 or 503")
	f.DurationVar(&o.faults.RetryAfter, "retry-after", 0, "Retry-After sent with --status (default 1s for 429, none otherwise)")
	f.Float64Var(&o.faults.BadIDsRate, "bad-ids-rate", 0, "probability `P` that an answer has a wrong, a missing or a duplicated sample_id")
	f.Float64Var(&o.faults.MalformedRate, "malformed-rate", 0, "probability `P` that a request is answered 200 with a body that is not JSON")
	f.StringVar(&o.model, "model-name", "", "model name announced in /info (default dummy-<mode>)")
	f.StringVar(&o.tokenFile, "token-file", "", "require the bearer token in this 0600 `file` on /info and /predict")
	return cmd
}

// startDummy serves a dummy launcher on a free loopback port until ctx ends; it returns the
// predict URL once the server listens.
func startDummy(ctx context.Context, opts launcher.DummyOptions) (string, <-chan error, error) {
	m, err := launcher.NewDummy(opts)
	if err != nil {
		return "", nil, err
	}
	h := launcher.NewHandler(m, launcher.ServerOptions{})
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- launcher.Serve(ctx, "127.0.0.1:0", h, func(base string) { ready <- base })
	}()
	select {
	case base := <-ready:
		return base + "/predict", done, nil
	case err := <-done:
		return "", nil, fmt.Errorf("start the dummy launcher: %w", err)
	case <-time.After(30 * time.Second):
		return "", nil, fmt.Errorf("start the dummy launcher: not listening after 30 s")
	}
}
