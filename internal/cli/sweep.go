package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/spf13/pflag"

	"github.com/beans-slurm/beans-slurm/internal/registry"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// clusterFlags choose a cluster profile.
type clusterFlags struct {
	name     string
	profiles string
}

func (c *clusterFlags) flags(f *pflag.FlagSet) {
	f.StringVar(&c.name, "cluster", "", "cluster profile (from clusters.yaml; default: its `default`)")
	f.StringVar(&c.profiles, "clusters", "", "the cluster profiles `file` (default $BEANS_SLURM_CLUSTERS, else ~/.config/beans-slurm/clusters.yaml)")
}

func (c *clusterFlags) load(names ...string) (registry.Cluster, error) {
	p := c.profiles
	if p == "" {
		var err error
		if p, err = registry.DefaultClustersPath(); err != nil {
			return registry.Cluster{}, configError(err)
		}
	}
	all, err := registry.LoadClusters(p)
	if err != nil {
		return registry.Cluster{}, configError(err)
	}
	cl, err := all.Select(append([]string{c.name}, names...)...)
	if err != nil {
		return registry.Cluster{}, configError(err)
	}
	return cl, nil
}

// connect opens the transport a cluster profile asks for. Closing it logs, at debug level, the
// remote calls the command made (round trips are what cost time on a far cluster).
func connect(ctx context.Context, ios IO, logger *log.Logger, c registry.Cluster) (remote.Transport, error) {
	t, err := dial(ctx, ios, logger, c)
	if err != nil {
		return nil, err
	}
	return &countedTransport{Counter: remote.Counting(t), logger: logger, started: time.Now()}, nil
}

type countedTransport struct {
	*remote.Counter
	logger  *log.Logger
	started time.Time
}

func (c *countedTransport) Close() error {
	n := c.Counts()
	c.logger.Debug("remote calls", "commands", n.Runs, "file_writes", n.Writes, "file_opens", n.Opens,
		"stats", n.Stats, "walks", n.Walks, "bytes_read", n.BytesRead, "bytes_written", n.BytesWritten,
		"elapsed", time.Since(c.started).Round(time.Millisecond))
	return c.Counter.Close()
}

func dial(ctx context.Context, ios IO, logger *log.Logger, c registry.Cluster) (remote.Transport, error) {
	if c.Local {
		return remote.NewLocal(), nil
	}
	if c.Transport == registry.TransportOpenSSH {
		var args []string
		if c.Port != 0 {
			args = append(args, "-p", fmt.Sprint(c.Port))
		}
		if c.IdentityFile != "" {
			args = append(args, "-i", expandHome(c.IdentityFile))
		}
		if c.KnownHosts != "" {
			args = append(args, "-o", "UserKnownHostsFile="+expandHome(c.KnownHosts))
		}
		if c.ProxyJump != "" {
			args = append(args, "-J", c.ProxyJump)
		}
		host := c.Host
		if c.User != "" {
			host = c.User + "@" + host
		}
		return remote.NewOpenSSH(host, args), nil
	}
	cfg := remote.SSHConfig{Host: c.Host, User: c.User, Port: c.Port, ProxyJump: c.ProxyJump,
		Logf: func(format string, args ...any) { logger.Warn(fmt.Sprintf(format, args...)) }}
	if c.IdentityFile != "" {
		cfg.IdentityFiles = []string{expandHome(c.IdentityFile)}
	}
	if c.KnownHosts != "" {
		cfg.KnownHostsFiles = []string{expandHome(c.KnownHosts)}
	}
	if ios.Terminal {
		cfg.Prompt = remote.TerminalPrompt()
	}
	t, err := remote.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to cluster %s (%s): %w", c.Name, c.Host, err)
	}
	return t, nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// profile turns a cluster profile into what the planner needs.
func profile(c registry.Cluster) slurm.Profile {
	gres := c.GPU.GRES
	if gres == "" {
		gres = registry.DefaultGRES
	}
	return slurm.Profile{
		Name: c.Name, WorkDir: c.WorkDir, Setup: c.Setup, Env: c.Env, LauncherEnvs: c.LauncherEnvsDir(),
		GPU: slurm.Resources{Partition: c.GPU.Partition, Account: c.GPU.Account, QoS: c.GPU.QOS, Time: c.GPU.Time,
			Memory: c.GPU.Memory, Exclude: c.GPU.Exclude, Constraint: c.GPU.Constraint, CPUs: c.GPU.CPUs, GRES: gres, Extra: c.GPU.Extra},
		CPU: slurm.Resources{Partition: c.CPU.Partition, Account: c.CPU.Account, QoS: c.CPU.QOS, Time: c.CPU.Time,
			Memory: c.CPU.Memory, Exclude: c.CPU.Exclude, CPUs: c.CPU.CPUs, Extra: c.CPU.Extra},
	}
}

func sweepStore() (slurm.Store, error) {
	d, err := slurm.DefaultStoreDir()
	if err != nil {
		return slurm.Store{}, configError(err)
	}
	return slurm.Store{Dir: d}, nil
}

// loadSweep loads the named sweep, or the newest one when name is "".
func loadSweep(name string) (slurm.Store, *slurm.Manifest, error) {
	st, err := sweepStore()
	if err != nil {
		return st, nil, err
	}
	var m *slurm.Manifest
	if name == "" {
		m, err = st.Latest()
	} else {
		m, err = st.Load(name)
	}
	if err != nil {
		return st, nil, configError(err)
	}
	return st, m, nil
}

// localBinary finds the beans-slurm binary to upload for the cluster's architecture: --binary,
// $BEANS_SLURM_BINARY_<ARCH>, this binary when it fits, or beans-slurm-linux-<arch> beside it.
func localBinary(explicit, goarch string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv("BEANS_SLURM_BINARY_" + strings.ToUpper(goarch)); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == goarch && strings.HasPrefix(filepath.Base(self), "beans-slurm") {
		return self, nil
	}
	beside := filepath.Join(filepath.Dir(self), "beans-slurm-linux-"+goarch)
	if _, err := os.Stat(beside); err == nil {
		return beside, nil
	}
	return "", fmt.Errorf("no beans-slurm binary for linux/%s to upload: build one with\n  CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -o beans-slurm-linux-%s ./cmd/beans-slurm\nand pass --binary beans-slurm-linux-%s (or put it beside this binary)", goarch, goarch, goarch, goarch)
}

// binaryName is the uploaded binary's name: its content hash, so that each version goes up once.
func binaryName(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "beans-slurm-" + hex.EncodeToString(h.Sum(nil))[:16], nil
}
