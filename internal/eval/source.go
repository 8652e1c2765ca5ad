package eval

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

type source struct {
	data   *dataset.Local
	record DatasetRecord
}

// openSource opens the rows of a task: the generated demo benchmark, or a local copy of a
// Hub dataset or of Parquet files under cfg.DataDir.
func openSource(ctx context.Context, cfg Config, task registry.Task) (*source, error) {
	s := task.Source
	rec := DatasetRecord{Kind: s.Kind, Repo: s.Repo, Revision: s.Revision}
	var root, glob string
	switch s.Kind {
	case "demo":
		dir := cfg.DemoDir
		if cfg.DataDir != "" {
			dir = cfg.DataDir
		}
		if dir == "" {
			return nil, fmt.Errorf("task %s uses the demo benchmark but no directory was given to generate it in", task.ID)
		}
		r, err := dataset.EnsureDemo(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("generate the demo benchmark in %s: %w", dir, err)
		}
		root, glob = r, "*.parquet"
	case "hub", "parquet":
		if cfg.DataDir == "" {
			where := "local Parquet files"
			if s.Kind == "hub" {
				where = fmt.Sprintf("the Hugging Face dataset %s", s.Repo)
			}
			return nil, fmt.Errorf("task %s reads %s; this version reads a local copy only: pass --data-dir PATH (or set BEANS_SLURM_DATA_DIR) with the repository's files", task.ID, where)
		}
		root = cfg.DataDir
		glob = s.Files
		if glob == "" {
			glob = "**/*.parquet"
		}
		if !strings.HasSuffix(glob, ".parquet") && !strings.HasSuffix(glob, "*") {
			glob += "*"
		}
		if s.Kind == "hub" && !strings.Contains(glob, "**") {
			glob = "**/" + glob
		}
	default:
		return nil, fmt.Errorf("task %s has unknown source kind %q", task.ID, s.Kind)
	}
	d, err := dataset.OpenLocal(ctx, root, glob)
	if err != nil {
		return nil, err
	}
	rec.Root = root
	for _, f := range d.Files() {
		if rel, err := filepath.Rel(root, f); err == nil {
			f = rel
		}
		rec.Files = append(rec.Files, f)
	}
	return &source{data: d, record: rec}, nil
}

// vocabulary returns the task's label vocabulary and where it came from: the labels the task
// declares, else the distinct answers of the task's whole split (never only the rows a
// --limit loads).
func vocabulary(ctx context.Context, task registry.Task, src *source) ([]string, string, error) {
	if task.Type == registry.Captioning {
		return nil, "none (captioning)", nil
	}
	if len(task.Labels) > 0 {
		return task.Labels, "declared by the task in the registry", nil
	}
	outs, err := src.data.Outputs(ctx, dataset.Query{DatasetNames: task.DatasetNames})
	if err != nil {
		return nil, "", fmt.Errorf("read the label vocabulary of %s: %w", task.ID, err)
	}
	var labels []string
	seen := map[string]bool{}
	add := func(l string) {
		l = strings.TrimSpace(l)
		if l != "" && l != "None" && !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
	}
	for _, o := range outs {
		if task.Type == registry.Detection {
			for _, part := range strings.Split(o, ",") {
				add(part)
			}
			continue
		}
		add(o)
	}
	if len(labels) == 0 {
		return nil, "", fmt.Errorf("task %s declares no labels and its rows hold no answers to build a vocabulary from", task.ID)
	}
	return labels, fmt.Sprintf("distinct outputs of the task's whole split (%d values) in %s", len(outs), src.record.Root), nil
}
