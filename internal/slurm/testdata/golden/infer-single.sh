#!/bin/bash
#SBATCH --job-name=beans-s1-naturelm-infer
#SBATCH --comment="beans-slurm sweep=s1"
#SBATCH --partition=cpu
#SBATCH --time=120
#SBATCH --mem=8000
#SBATCH --cpus-per-task=2
#SBATCH --chdir=/scratch/beans/sweeps/s1
#SBATCH --output=/scratch/beans/sweeps/s1/logs/%x-%j.out

# beans-slurm inference job: runs the benchmark
# against the serving job whose id is this script's first argument.
# Rendered by beans-slurm; edit the template, not this file.
set -euo pipefail
umask 077

echo "beans-slurm infer: job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task ${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID})} on $(hostname) at $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
case ${1:-} in
''|*[!0-9]*)
  echo "beans-slurm infer: the first argument must be the serving job's id (a number), not '${1:-}'" >&2
  exit 2 ;;
esac
exec /scratch/beans/bin/beans-slurm-abc123 run --suite beans_zero_core --output-dir /scratch/beans/sweeps/s1/results/naturelm --serve-job "$1"
