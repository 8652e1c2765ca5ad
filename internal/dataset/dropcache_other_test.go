//go:build !linux

package dataset

import "testing"

// dropCache is Linux-only; elsewhere the cold benchmark is skipped.
func dropCache(b *testing.B, _ string) { b.Skip("dropping one file's page cache needs Linux") }
