package slurm

import "time"

// Progress is the progress file an inference worker keeps up to date
// (progress/<model>/shard-<i>.json in a sweep), read by `beans-slurm status`.
type Progress struct {
	Job     string         `json:"job,omitempty"`
	Node    string         `json:"node,omitempty"`
	Shard   int            `json:"shard"`
	Shards  int            `json:"shards"`
	State   string         `json:"state"` // waiting, running, done, failed
	Error   string         `json:"error,omitempty"`
	URL     string         `json:"predict_url,omitempty"`
	Updated time.Time      `json:"updated"`
	Tasks   []TaskProgress `json:"tasks"`
}

// TaskProgress is one task's share of a Progress.
type TaskProgress struct {
	Task     string `json:"task"`
	Done     int    `json:"done"`
	Total    int    `json:"total"`
	Failed   int    `json:"failed"`
	Finished bool   `json:"finished"`
	Skipped  bool   `json:"skipped,omitempty"`
}
