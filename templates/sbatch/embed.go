// Package sbatch holds the sbatch job templates (Go text/template) that internal/slurm renders
// into job scripts: serve.sh.tmpl (the GPU serving job), infer.sh.tmpl (the CPU inference job
// or job array) and common.tmpl (the #SBATCH header and the prelude both share).
package sbatch

import "embed"

// FS holds every template: *.tmpl at its root.
//
//go:embed *.tmpl
var FS embed.FS
