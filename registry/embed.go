// Package registryfs embeds the default registry: the YAML files under tasks/, suites/,
// prompts/, models/ and sweeps/ (one entry per file, file name = id + ".yaml"), and
// clusters.example.yaml, the documented example of a user's clusters.yaml (not a registry
// entry: the registry loader reads only the kind directories). Package
// internal/registry loads it; it lives here because a package cannot embed files of a
// parent directory.
package registryfs

import "embed"

// FS holds the default registry, rooted at this directory (paths "tasks/x.yaml", …).
//
//go:embed tasks suites prompts models sweeps clusters.example.yaml
var FS embed.FS
