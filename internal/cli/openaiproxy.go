package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/launcher"
)

type openAIProxyOptions struct {
	upstream       string
	model          string
	port           int
	bind           string
	apiKeyEnv      string
	keyFile        string
	concurrency    int
	batch          int
	timeout        time.Duration
	attempts       int
	audioCap       float64
	textOnly       bool
	tokenFile      string
	revision       string
	maxTokensField string
}

func newOpenAIProxyCmd(ios IO, g *globals) *cobra.Command {
	o := &openAIProxyOptions{}
	cmd := &cobra.Command{
		Use:   "openai-proxy --upstream URL --model NAME [--port P] [--api-key-env VAR|none] [--key-file F]",
		Short: "Serve an OpenAI-compatible chat API (OpenAI, Gemini, vLLM) as a predictions_v1 launcher",
		Long: `Serves predictions_v1 and forwards every request item to POST {upstream}/chat/completions:
the prompt's audio placeholders become input_audio content parts (WAV, cut to the audio cap),
and choices[0].message.content becomes the prediction. Items are sent concurrently (at most
--concurrency at once over all batches); connection errors, timeouts, 429 and 5xx are
retried with backoff, honouring Retry-After, up to --attempts; any other failure is that
item's error.

The API key comes from the environment variable named by --api-key-env (OPENAI_API_KEY by
default, GEMINI_API_KEY for Gemini), else from ~/.config/openai/cfg or ~/.config/gemini/cfg
(OPENAI_API_KEY=sk-… or the key alone on a line; keep it chmod 600), or from --key-file,
which wins over both. A local vLLM needs no key: --api-key-env none. The key never appears
in logs, /info, errors or results.`,
		Example: `  beans-slurm launcher openai-proxy --upstream https://api.openai.com/v1 --model gpt-4o-audio-preview
  beans-slurm launcher openai-proxy --upstream https://generativelanguage.googleapis.com/v1beta/openai \
      --model gemini-2.5-flash --api-key-env GEMINI_API_KEY
  beans-slurm launcher openai-proxy --upstream http://127.0.0.1:8001/v1 --model Qwen/Qwen3-Omni-30B-A3B-Instruct \
      --api-key-env none --audio-cap-seconds 10 --port 8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.upstream == "" || o.model == "" {
				return configError(errors.New("openai-proxy needs --upstream (the API's base URL, e.g. https://api.openai.com/v1) and --model (the upstream model name)"))
			}
			logger := g.logger(ios)
			key, err := launcher.LoadAPIKey(o.apiKeyEnv, o.keyFile, func(msg string) { logger.Warn(msg) })
			if err != nil {
				return configError(err)
			}
			token := ""
			if o.tokenFile != "" {
				if token, err = launcher.ReadToken(o.tokenFile); err != nil {
					return configError(err)
				}
			}
			m, err := launcher.NewOpenAIProxyContext(cmd.Context(), launcher.OpenAIProxyOptions{
				Upstream: o.upstream, Model: o.model, APIKey: key, KeySource: keySource(o.apiKeyEnv, o.keyFile),
				Concurrency: o.concurrency, MaxBatchSize: o.batch, Timeout: o.timeout, Attempts: o.attempts,
				AudioCapSeconds: o.audioCap, TextOnly: o.textOnly, ModelRevision: o.revision,
				MaxTokensField: o.maxTokensField, Logger: logger,
			})
			if err != nil {
				return configError(err)
			}
			if err := cmd.Context().Err(); err != nil {
				return err
			}
			info := m.Info()
			var host string
			_ = json.Unmarshal(info.Extra["upstream_host"], &host)
			h := launcher.NewHandler(m, launcher.ServerOptions{Logger: logger, Token: token})
			addr := net.JoinHostPort(o.bind, strconv.Itoa(o.port))
			return launcher.Serve(cmd.Context(), addr, h, func(base string) {
				logger.Info("serving predictions_v1", "predict_url", base+"/predict", "model", info.Model, "model_revision", info.ModelRevision,
					"upstream", host, "max_batch_size", info.MaxBatchSize, "text_only", o.textOnly)
				fmt.Fprintf(ios.Out, "%s/predict\n", base)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.upstream, "upstream", "", "the OpenAI-compatible API's base `URL` (…/v1; Gemini: https://generativelanguage.googleapis.com/v1beta/openai)")
	f.StringVar(&o.model, "model", "", "upstream model `name` (gpt-4o-audio-preview, gemini-2.5-flash, the name vLLM serves)")
	f.IntVar(&o.port, "port", 8000, "TCP port (0 = any free port)")
	f.StringVar(&o.bind, "bind", "127.0.0.1", "address to listen on")
	f.StringVar(&o.apiKeyEnv, "api-key-env", launcher.OpenAIKeyEnv, "environment `variable` holding the API key (OPENAI_API_KEY, GEMINI_API_KEY; none = no key, for a local vLLM)")
	f.StringVar(&o.keyFile, "key-file", "", "read the API key from this `file` (default ~/.config/openai/cfg or ~/.config/gemini/cfg when the variable is unset)")
	f.IntVar(&o.concurrency, "concurrency", launcher.DefaultOpenAIConcurrency, "upstream requests in flight at most, over all batches")
	f.IntVar(&o.batch, "max-batch-size", launcher.DefaultOpenAIBatch, "max_batch_size announced in /info and enforced (HTTP 413 above)")
	f.DurationVar(&o.timeout, "timeout", launcher.DefaultOpenAITimeout, "bound of one upstream request")
	f.IntVar(&o.attempts, "attempts", launcher.DefaultOpenAIAttempts, "tries per item on connection errors, timeouts, 429 and 5xx (1 = no retries)")
	f.Float64Var(&o.audioCap, "audio-cap-seconds", 0, "cut every clip to this many `seconds` before upload (0 = only the request's max_length_seconds)")
	f.BoolVar(&o.textOnly, "text-only", false, "send text only and refuse items with audio (text judges)")
	f.StringVar(&o.tokenFile, "token-file", "", "require the bearer token in this 0600 `file` on /info and /predict")
	f.StringVar(&o.revision, "model-revision", "", "model_revision announced in /info (default: what the upstream's /models says, else unknown)")
	f.StringVar(&o.maxTokensField, "max-tokens-field", launcher.MaxTokensField, "request field for generation_config.max_tokens: max_tokens or max_completion_tokens")
	return cmd
}

// keySource says where LoadAPIKey takes the key from, for error messages; never the key.
func keySource(envName, file string) string {
	if envName == "" {
		envName = launcher.OpenAIKeyEnv
	}
	switch {
	case envName == launcher.NoAPIKey:
		return ""
	case file != "":
		return file
	case strings.TrimSpace(os.Getenv(envName)) != "":
		return "$" + envName
	}
	return launcher.DefaultKeyFile(envName)
}
