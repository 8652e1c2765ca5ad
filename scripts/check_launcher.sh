#!/usr/bin/env bash
# Check a predictions_v1 launcher against the contract (docs/launchers.md, "Conformance:
# check-launcher"), for users who do not build Go themselves.
#
# Usage: scripts/check_launcher.sh URL [--token-file F] [--timeout D] [--json] [--batch-items N]
#   URL is the launcher's predict URL, e.g. http://127.0.0.1:8000/predict
#
# It runs `beans-slurm check-launcher URL [args]` with the first of:
#   1. $BEANS_SLURM, if set (path to a beans-slurm binary);
#   2. beans-slurm on PATH;
#   3. ./cmd/beans-slurm of this repository, built with Go (like `go run`, but keeping
#      check-launcher's exit status), when Go is installed.
# Exit status is check-launcher's: 0 every check that ran passed, 1 a check failed,
# 2 the launcher is unreachable or the arguments are unusable.
set -euo pipefail

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	usage
	[ $# -ge 1 ] && exit 0
	exit 2
fi

if [ -n "${BEANS_SLURM:-}" ]; then
	exec "$BEANS_SLURM" check-launcher "$@"
fi
if command -v beans-slurm >/dev/null 2>&1; then
	exec beans-slurm check-launcher "$@"
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if command -v go >/dev/null 2>&1 && [ -f "$repo/go.mod" ] && [ -d "$repo/cmd/beans-slurm" ]; then
	cd "$repo"
	# Build first so that compiler output never mixes with the report (--json stays parseable).
	bin_dir=$(mktemp -d)
	trap 'rm -rf "$bin_dir"' EXIT
	if ! go build -o "$bin_dir/beans-slurm" ./cmd/beans-slurm; then
		echo "check_launcher.sh: building beans-slurm from $repo failed (see above)" >&2
		exit 2
	fi
	# No exec: the trap removes the temporary binary afterwards.
	status=0
	"$bin_dir/beans-slurm" check-launcher "$@" || status=$?
	exit "$status"
fi

cat >&2 <<'MSG'
check_launcher.sh: no beans-slurm binary found, and Go is not installed to build one.
Get a binary in one of these ways, then run this script again:
  - copy a beans-slurm binary built elsewhere (scripts/build-release.sh builds static
    Linux binaries) onto PATH, or point BEANS_SLURM=/path/to/beans-slurm at it;
  - on any machine with Go 1.26 or newer, in a checkout of this repository:
      go build -o beans-slurm ./cmd/beans-slurm
    (GOOS=linux GOARCH=amd64 to cross-build), and copy the binary here;
  - install Go (https://go.dev/dl/) and rerun: the script builds from this repository.
MSG
exit 2
