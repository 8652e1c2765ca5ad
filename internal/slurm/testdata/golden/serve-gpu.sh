#!/bin/bash
#SBATCH --job-name=beans-s1-naturelm-serve
#SBATCH --comment="beans-slurm sweep=s1"
#SBATCH --partition=gpu
#SBATCH --account=bioacoustics
#SBATCH --qos=normal
#SBATCH --time=0-04:00:00
#SBATCH --mem=64G
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:a100:1
#SBATCH --exclude=gpu[01-03],gpu07
#SBATCH --constraint=a100&ib
#SBATCH --chdir=/scratch/beans/sweeps/s1
#SBATCH --output=/scratch/beans/sweeps/s1/logs/%x-%j.out
#SBATCH --signal=B:TERM@120
#SBATCH --reservation=beans
#SBATCH --nice=10

# beans-slurm serving job: starts the model's launcher and serves it until its inference
# jobs are done. Rendered by beans-slurm; edit the template, not this file.
set -euo pipefail
umask 077

# The cluster profile's environment (modules, conda…): run with unset variables allowed,
# since such scripts often read some.
set +u
module load cuda/12.1
source /opt/conda/etc/profile.d/conda.sh && conda activate naturelm
set -u

export HF_HOME='/scratch/hf cache'
export NO_PROXY='*'
export QUOTE='it'\''s "x"'

echo "beans-slurm serve: job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task ${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID})} on $(hostname) at $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
exec /scratch/beans/bin/beans-slurm-abc123 serve --model naturelm --handoff /scratch/beans/sweeps/s1/handoff/naturelm --note 'it'\''s $HOME'
