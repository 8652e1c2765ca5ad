package registry

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a registry file, found while loading.
type Problem struct {
	// File is where the entry came from: "embedded:registry/tasks/x.yaml" or a path.
	File string
	// Line is the 1-based line in File (0 when the problem concerns the file as a whole).
	Line int
	// Msg says what is wrong and, where it helps, what to do.
	Msg string
}

// String formats the problem as "file:line: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// LoadError lists every problem found while loading a registry.
type LoadError struct {
	Problems []Problem
	// what starts the message ("registry" when empty; "clusters", "sweep config", …).
	what string
}

// Error lists the problems, one a line.
func (e *LoadError) Error() string {
	what := cmp.Or(e.what, "registry")
	if len(e.Problems) == 1 {
		return what + ": " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", what, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects Problems while loading.
type problems []Problem

func (ps *problems) add(file string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil when there are no problems, else a *LoadError with the problems sorted by
// file and line.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sorted := slices.Clone([]Problem(ps))
	slices.SortStableFunc(sorted, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return &LoadError{Problems: sorted}
}

// errAs is err with the message starting with what instead of "registry".
func (ps problems) errAs(what string) error {
	err := ps.err()
	if le, ok := err.(*LoadError); ok {
		le.what = what
	}
	return err
}

// ErrNotFound is matched (errors.Is) by the error of a lookup of an unknown name.
var ErrNotFound = errors.New("not found")

// NotFoundError is the error of a lookup of an unknown task, suite, prompt or model.
type NotFoundError struct {
	// Kind is "task", "suite", "prompt", "model", "sweep" or "cluster".
	Kind string
	// Name is what was asked for.
	Name string
	// Suggestions are up to five close names, best first.
	Suggestions []string
	// Known is how many entries of the kind the registry holds.
	Known int
	// Hint, when set, replaces the default advice given when no close name exists
	// (e.g. where cluster profiles are defined).
	Hint string
}

// Error reads e.g. `unknown task "esc5"; did you mean beans_zero_esc50?`.
func (e *NotFoundError) Error() string {
	if len(e.Suggestions) > 0 {
		return fmt.Sprintf("unknown %s %q; did you mean %s?", e.Kind, e.Name, strings.Join(e.Suggestions, ", "))
	}
	if e.Hint != "" {
		return fmt.Sprintf("unknown %s %q: %s", e.Kind, e.Name, e.Hint)
	}
	return fmt.Sprintf("unknown %s %q: none of the %d registered %ss has that name or a close one; add %ss/%s.yaml to a registry directory to define it",
		e.Kind, e.Name, e.Known, e.Kind, e.Kind, e.Name)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
