package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"
	"github.com/beans-slurm/beans-slurm/internal/cache"
)

// ConfigChangedError refuses to resume a task directory whose run asked for something else:
// its answers would not be comparable with the new ones.
type ConfigChangedError struct {
	Dir         string
	Differences []string
}

func (e *ConfigChangedError) Error() string {
	return fmt.Sprintf("%s was run with another configuration, so its answers cannot be continued:\n  %s\nresume with the original options, or choose another --output-dir (or --overwrite to start it again)",
		e.Dir, strings.Join(e.Differences, "\n  "))
}

// resumable reads a task directory's earlier answers for a resumed run: the successful ones
// are kept (and not asked again), failed ones are dropped (asked again). The predictions file
// is rewritten atomically with only the kept lines, so each sample appears once when the new
// answers are appended. A torn last line (a write cut by a crash) is dropped.
func resumable(predPath string) (done map[string]bool, kept int, err error) {
	b, err := os.ReadFile(predPath)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	done = map[string]bool{}
	var keep bytes.Buffer
	lines := bytes.Split(b, []byte("\n"))
	for i, raw := range lines {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var l PredictionLine
		if err := json.Unmarshal(raw, &l); err != nil {
			if i == len(lines)-1 {
				break // a torn last line: the file does not end with its newline
			}
			return nil, 0, fmt.Errorf("%s line %d is not a prediction line (%v); repair or move the file before resuming", predPath, i+1, err)
		}
		if l.Error != "" || done[l.SampleID] {
			continue
		}
		done[l.SampleID] = true
		keep.Write(raw)
		keep.WriteByte('\n')
		kept++
	}
	if err := atomicfile.Write(predPath, keep.Bytes()); err != nil {
		return nil, 0, err
	}
	return done, kept, nil
}

// compareRecords lists what differs between the task record of an earlier run and this one,
// in the fields that decide what is evaluated.
func compareRecords(old, cur TaskRecord) []string {
	var diffs []string
	add := func(what string, a, b any) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			diffs = append(diffs, fmt.Sprintf("%s: was %s, now %s", what, clip(string(ja)), clip(string(jb))))
		}
	}
	add("task", old.Task, cur.Task)
	add("suite", old.Suite, cur.Suite)
	add("prompt", old.Prompt, cur.Prompt)
	add("labels", old.Labels, cur.Labels)
	add("limit", old.Limit, cur.Limit)
	oi, ci := cache.Identity(old.Model), cache.Identity(cur.Model)
	add("model identity (/info)", oi, ci)
	add("dataset repository", old.Dataset.Repo, cur.Dataset.Repo)
	add("dataset revision", old.Dataset.Commit, cur.Dataset.Commit)
	return diffs
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "…"
	}
	return s
}

// moveAside renames a task directory out of the way (nothing is deleted).
func moveAside(dir, why string, now time.Time) (string, error) {
	aside := fmt.Sprintf("%s.%s-%s", dir, why, now.UTC().Format("20060102T150405"))
	if err := os.Rename(dir, aside); err != nil {
		return "", fmt.Errorf("move %s aside: %w", dir, err)
	}
	return aside, nil
}

// readTaskRecord reads task.json of an earlier run, if any.
func readTaskRecord(dir string) (*TaskRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, TaskFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r TaskRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, TaskFile), err)
	}
	return &r, nil
}
