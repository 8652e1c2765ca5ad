// Package registryfs embeds the default registry: the YAML files under tasks/, suites/,
// prompts/ and models/ (one entry per file, file name = id + ".yaml"). Package
// internal/registry loads it; it lives here because a package cannot embed files of a
// parent directory.
package registryfs

import "embed"

// FS holds the default registry, rooted at this directory (paths "tasks/x.yaml", …).
//
//go:embed tasks suites prompts models
var FS embed.FS
