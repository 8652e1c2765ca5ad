package cli

import (
	"cmp"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/remote"
	"github.com/beans-slurm/beans-slurm/internal/slurm"
)

// audioExt are the file kinds fetch leaves on the cluster unless --audio is given.
var audioExt = []string{".wav", ".flac", ".mp3", ".ogg", ".npy", ".parquet"}

func newFetchCmd(ios IO, g *globals) *cobra.Command {
	var cf clusterFlags
	var to string
	var withLogs, withAudio bool
	var workers int
	cmd := &cobra.Command{
		Use:   "fetch [SWEEP] [--to DIR]",
		Short: "Copy a sweep's results back, incrementally (only new or changed files)",
		Long: `Copies the sweep's result trees (one directory per model, one per task in it) over SFTP.
Only new or changed files travel; an interrupted copy resumes from its .part file; every
file's size is verified. Logs and audio stay on the cluster unless --logs / --audio.
Remote file names that would land outside --to are refused.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			store, m, err := loadSweep(name)
			if err != nil {
				return err
			}
			if to == "" {
				to = cmp.Or(m.Fetched, filepath.Join("results", m.Name))
			}
			cl, err := cf.load(m.Cluster)
			if err != nil {
				return err
			}
			t, err := connect(ctx, ios, g.logger(ios), cl)
			if err != nil {
				return err
			}
			defer t.Close()
			keep := func(rel string, fi remote.FileInfo) bool {
				if strings.HasSuffix(rel, ".part") || strings.Contains(rel, "/.") {
					return false
				}
				if !withAudio {
					for _, ext := range audioExt {
						if strings.HasSuffix(strings.ToLower(rel), ext) {
							return false
						}
					}
				}
				return true
			}
			total := remote.MirrorStats{}
			trees := []struct{ from, to string }{{path.Join(m.Dir, "results"), to}}
			if withLogs {
				trees = append(trees, struct{ from, to string }{m.LogDir(), filepath.Join(to, "logs")})
			}
			for _, tr := range trees {
				st, err := remote.Mirror(ctx, t, tr.from, tr.to, remote.MirrorOptions{Filter: keep, Workers: workers})
				total.Files += st.Files
				total.Copied += st.Copied
				total.Resumed += st.Resumed
				total.Skipped += st.Skipped
				total.Bytes += st.Bytes
				if err != nil {
					return fmt.Errorf("fetch %s: %w (run fetch again: it resumes)", tr.from, err)
				}
			}
			b, err := slurm.MarshalManifest(m)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(to, 0o755); err != nil {
				return err
			}
			if err := atomicfile.Write(filepath.Join(to, "sweep.json"), b); err != nil {
				return err
			}
			if abs, err := filepath.Abs(to); err == nil && abs != m.Fetched {
				m.Fetched = abs
				if err := store.Save(m); err != nil {
					return err
				}
			}
			fmt.Fprintf(ios.Out, "fetched sweep %s to %s: %d files, %d copied (%d resumed), %d up to date, %s\n",
				m.Name, to, total.Files, total.Copied, total.Resumed, total.Skipped, humanBytes(total.Bytes))
			fmt.Fprintf(ios.Out, "compare: beans-slurm compare %s\n", m.Name)
			return nil
		},
	}
	cf.flags(cmd.Flags())
	cmd.Flags().StringVar(&to, "to", "", "local `dir` (default: where the sweep was fetched last, else results/<sweep>)")
	cmd.Flags().BoolVar(&withLogs, "logs", false, "also fetch the job logs (to DIR/logs)")
	cmd.Flags().BoolVar(&withAudio, "audio", false, "also fetch audio files")
	cmd.Flags().IntVar(&workers, "workers", 0, "files copied at once (default 4)")
	return cmd
}
