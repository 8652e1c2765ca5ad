#!/usr/bin/env bash
# Creates the naturelm-v1.1 kit's environment in ${BEANS_SLURM_LAUNCHER_ENVS:-$HOME/.cache/beans-slurm/envs}/naturelm-v1.1
# (uv venv when uv exists, else python3 -m venv) and installs requirements.txt. Idempotent;
# --force reinstalls. See README.md next to this file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/../_common/setup_env.sh" naturelm-v1.1 "$here/requirements.txt" "$@"
