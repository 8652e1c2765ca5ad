#!/usr/bin/env bash
# Build the static beans-slurm binaries that `submit` uploads to clusters: linux/amd64 and
# linux/arm64, side by side in DIR (default dist/), named beans-slurm-linux-<arch>. Put them beside
# the beans-slurm you run (or pass --binary): submit picks the one for the cluster's CPU.
# Usage: scripts/build-release.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
mkdir -p "$out"
for arch in amd64 arm64; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -o "$out/beans-slurm-linux-$arch" ./cmd/beans-slurm
  echo "$out/beans-slurm-linux-$arch"
done
