// Package report renders what beans-slurm shows people: progress while a run goes, and
// results tables (terminal, Markdown, CSV, JSON).
package report

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"github.com/beans-slurm/beans-slurm/internal/eval"
)

// Progress shows a run's progress: a line redrawn in place on a terminal, plain log lines
// (at most one every Every) elsewhere.
type Progress struct {
	W        io.Writer   // the terminal (stderr)
	Terminal bool        // W is a terminal
	Log      *log.Logger // used when not a terminal
	Every    time.Duration
	Now      func() time.Time

	mu      sync.Mutex
	last    time.Time
	lastLen int
}

// Update is an eval.Config.Progress callback.
func (p *Progress) Update(pr eval.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	line := Line(pr, now)
	if p.Terminal {
		pad := ""
		if n := p.lastLen - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.W, "\r%s%s", line, pad)
		p.lastLen = len(line)
		if pr.Finished {
			fmt.Fprintln(p.W)
			p.lastLen = 0
		}
		return
	}
	every := p.Every
	if every == 0 {
		every = 10 * time.Second
	}
	if pr.Finished || pr.Done == 0 || now.Sub(p.last) >= every {
		p.last = now
		if p.Log != nil {
			p.Log.Info(line)
		}
	}
}

// Line renders one progress line: task i/n, samples done/total, rate, ETA, failures.
func Line(pr eval.Progress, now time.Time) string {
	el := now.Sub(pr.Started).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(pr.Done) / el
	}
	eta := "?"
	switch {
	case pr.Done >= pr.Total:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(pr.Total-pr.Done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 0.0
	if pr.Total > 0 {
		pct = 100 * float64(pr.Done) / float64(pr.Total)
	}
	s := fmt.Sprintf("[%d/%d] %s  %d/%d (%.0f%%)  %.1f samples/s  ETA %s", pr.TaskIndex, pr.Tasks, pr.Task, pr.Done, pr.Total, pct, rate, eta)
	if pr.Failed > 0 {
		s += fmt.Sprintf("  %d failed", pr.Failed)
	}
	return s
}
