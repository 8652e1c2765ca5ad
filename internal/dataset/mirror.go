package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/beans-slurm/beans-slurm/internal/hub"
	"github.com/beans-slurm/beans-slurm/internal/registry"
)

// MirrorPlan is what a set of tasks needs from a Hub repository: the files that hold their
// rows, at one commit.
type MirrorPlan struct {
	Repo   string
	Commit string
	Files  []PlannedFile
}

// PlannedFile is one file of a plan and the tasks whose rows it holds.
type PlannedFile struct {
	Entry hub.Entry
	Tasks []string
}

// Size is the plan's total size in bytes.
func (p *MirrorPlan) Size() int64 {
	var n int64
	for _, f := range p.Files {
		n += f.Entry.FileSize()
	}
	return n
}

// Plan finds the files of the Hub that hold the rows of the tasks (hub sources of one
// repository). It reads only footers and dataset_name columns, through the block cache: a
// shard that holds none of the tasks' rows is left out.
func (r *Resolver) Plan(ctx context.Context, tasks []registry.Task) (*MirrorPlan, error) {
	var plan *MirrorPlan
	byPath := map[string]int{}
	for _, t := range tasks {
		if t.Source.Kind != registry.SourceHub {
			continue
		}
		rev := r.Revision
		if rev == "" {
			rev = t.Source.Revision
		}
		if rev == "" {
			rev = "main"
		}
		commit, err := r.Commit(ctx, t.Source.Repo, rev)
		if err != nil {
			return nil, err
		}
		if plan == nil {
			plan = &MirrorPlan{Repo: t.Source.Repo, Commit: commit}
		} else if plan.Repo != t.Source.Repo || plan.Commit != commit {
			return nil, fmt.Errorf("the tasks read several repositories or revisions (%s@%s and %s@%s); fetch them into separate directories", plan.Repo, shortCommit(plan.Commit), t.Source.Repo, shortCommit(commit))
		}
		loc, err := r.remote(ctx, &Location{Kind: t.Source.Kind, Repo: t.Source.Repo, Revision: rev}, t)
		if err != nil {
			return nil, err
		}
		entries, err := r.Entries(ctx, t, commit)
		if err != nil {
			return nil, err
		}
		for i, f := range loc.Files {
			d, err := Open(ctx, []File{f})
			if err != nil {
				return nil, err
			}
			n, err := d.Count(ctx, Query{DatasetNames: t.DatasetNames})
			d.Close()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				continue
			}
			e := entries[i]
			k, ok := byPath[e.Path]
			if !ok {
				k = len(plan.Files)
				byPath[e.Path] = k
				plan.Files = append(plan.Files, PlannedFile{Entry: e})
			}
			if !slices.Contains(plan.Files[k].Tasks, t.ID) {
				plan.Files[k].Tasks = append(plan.Files[k].Tasks, t.ID)
			}
		}
	}
	if plan == nil {
		return nil, errors.New("none of the tasks reads the Hugging Face Hub: nothing to fetch")
	}
	sort.Slice(plan.Files, func(i, j int) bool { return plan.Files[i].Entry.Path < plan.Files[j].Entry.Path })
	return plan, nil
}

// FileState is whether a planned file is in a mirror directory.
type FileState string

// File states.
const (
	Present FileState = "present" // the right size (and hash, when verified)
	Partial FileState = "partial" // a resumable partial download
	Missing FileState = "missing"
	Wrong   FileState = "wrong" // present with the wrong size or hash
)

// State tells whether a planned file is in dir; with verify, its hash is checked too.
func (p PlannedFile) State(dir string, verify bool) FileState {
	dst := filepath.Join(dir, filepath.FromSlash(p.Entry.Path))
	st, err := os.Stat(dst)
	if err != nil {
		if _, perr := os.Stat(dst + ".part"); perr == nil {
			return Partial
		}
		return Missing
	}
	if st.Size() != p.Entry.FileSize() {
		return Wrong
	}
	if verify && hub.VerifyFile(dst, p.Entry) != nil {
		return Wrong
	}
	return Present
}

// Fetch downloads the plan's files into dir (resumable, each verified by size and hash),
// then records the mirror's manifest, so that runs with --data-dir dir read them. done is
// called after each file.
func (r *Resolver) Fetch(ctx context.Context, plan *MirrorPlan, dir string, done func(PlannedFile, error)) error {
	c, err := r.hub()
	if err != nil {
		return err
	}
	if m, err := ReadMirror(dir); err != nil {
		return err
	} else if m != nil && (m.Repo != plan.Repo || m.Commit != plan.Commit) {
		return fmt.Errorf("%s already mirrors %s at %s; fetch %s at %s into another directory", dir, m.Repo, shortCommit(m.Commit), plan.Repo, shortCommit(plan.Commit))
	}
	var failed []string
	for _, f := range plan.Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Entry.Path))
		err := os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = c.Download(ctx, "datasets", plan.Repo, plan.Commit, f.Entry, dst)
		}
		if done != nil {
			done(f, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, f.Entry.Path)
		}
	}
	m := &Mirror{Repo: plan.Repo, Commit: plan.Commit}
	if old, _ := ReadMirror(dir); old != nil {
		m.Files = old.Files
	}
	for _, f := range plan.Files {
		if slices.Contains(failed, f.Entry.Path) {
			continue
		}
		i := slices.IndexFunc(m.Files, func(e MirrorEntry) bool { return e.Path == f.Entry.Path })
		e := MirrorEntry{Path: f.Entry.Path, Size: f.Entry.FileSize(), Hash: f.Entry.CacheKey()}
		if i >= 0 {
			m.Files[i] = e
		} else {
			m.Files = append(m.Files, e)
		}
	}
	if err := WriteMirror(dir, m); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d files failed (%v); run the same command again to resume", len(failed), len(plan.Files), failed)
	}
	return nil
}
