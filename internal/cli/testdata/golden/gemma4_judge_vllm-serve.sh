#!/bin/bash
#SBATCH --job-name=beans-golden-gemma4_judge_vllm-serve
#SBATCH --comment="beans-slurm-sweep=golden"
#SBATCH --partition=gpu
#SBATCH --account=my-project
#SBATCH --qos=normal
#SBATCH --time=12:00:00
#SBATCH --mem=64G
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:a100:1
#SBATCH --exclude=node[01-02]
#SBATCH --constraint=a100-80gb
#SBATCH --chdir=/shared/jdoe/beans-slurm/sweeps/golden
#SBATCH --output=/shared/jdoe/beans-slurm/sweeps/golden/logs/%x-%j.out
#SBATCH --signal=B:TERM@120
#SBATCH --mail-type=FAIL

# beans-slurm serving job: starts the model's launcher and serves it until its inference
# jobs are done. Rendered by beans-slurm; edit the template, not this file.
set -euo pipefail
umask 077

# The cluster profile's environment (modules, conda…): run with unset variables allowed,
# since such scripts often read some.
set +u
module load cuda/12.4
export HF_HOME=/shared/jdoe/hf
set -u

export BEANS_SLURM_CACHE_DIR=/shared/jdoe/beans-slurm/cache
export BEANS_SLURM_DATA_DIR=/shared/datasets/BEANS-Zero

echo "beans-slurm serve: job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task ${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID})} on $(hostname) at $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
exec /shared/jdoe/beans-slurm/bin/beans-slurm-0123456789abcdef serve --model gemma4_judge_vllm --handoff /shared/jdoe/beans-slurm/sweeps/golden/handoff/gemma4_judge_vllm --token-file /shared/jdoe/beans-slurm/sweeps/golden/token --expect 2 --infer-name beans-golden-gemma4_judge_vllm-infer --launcher-envs /shared/jdoe/beans-slurm/envs
