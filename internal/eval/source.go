package eval

import (
	"context"

	"github.com/beans-slurm/beans-slurm/internal/dataset"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

type source struct {
	data   *dataset.Dataset
	loc    *dataset.Location
	record DatasetRecord
}

// openSource opens the rows of a task through the run's resolver: the generated demo, a
// local or shared-filesystem copy, or the Hugging Face Hub.
func openSource(ctx context.Context, cfg Config, task registry.Task) (*source, error) {
	loc, err := cfg.Resolver.Locate(ctx, task)
	if err != nil {
		return nil, err
	}
	d, err := dataset.Open(ctx, loc.Files)
	if err != nil {
		return nil, err
	}
	rec := DatasetRecord{Kind: loc.Kind, Repo: loc.Repo, Revision: loc.Revision, Commit: loc.Commit,
		Root: loc.Root, Remote: loc.Remote, Files: loc.Paths}
	return &source{data: d, loc: loc, record: rec}, nil
}
