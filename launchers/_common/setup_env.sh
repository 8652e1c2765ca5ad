#!/usr/bin/env bash
# Creates or updates one kit's Python environment. Called by launchers/<kit>/setup.sh:
#
#   setup_env.sh KIT REQUIREMENTS_FILE [--force]
#
# The environment is ${BEANS_SLURM_LAUNCHER_ENVS:-$HOME/.cache/beans-slurm/envs}/KIT, the
# directory `beans-slurm serve` looks in (<envs>/<kit>/bin/python). It is made with `uv venv`
# when uv is on the PATH, else with `python3 -m venv` ($BEANS_SLURM_PYTHON picks the
# interpreter, default python3; it must be Python >= 3.11). Running it again is cheap: nothing
# is reinstalled while requirements.txt is unchanged (--force reinstalls).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 KIT REQUIREMENTS_FILE [--force]" >&2
  exit 2
fi
kit=$1
req=$2
force=${3:-}
envs=${BEANS_SLURM_LAUNCHER_ENVS:-$HOME/.cache/beans-slurm/envs}
env_dir=$envs/$kit
python=${BEANS_SLURM_PYTHON:-python3}
stamp=$env_dir/.beans-slurm-requirements.sha256

if [[ ! -f $req ]]; then
  echo "$kit: no requirements file $req" >&2
  exit 1
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ $force != --force && -x $env_dir/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "$kit: environment $env_dir is up to date"
  exit 0
fi

mkdir -p "$envs"
if command -v uv >/dev/null 2>&1; then
  if [[ ! -x $env_dir/bin/python ]]; then
    uv venv --python "$python" "$env_dir"
  fi
  uv pip install --python "$env_dir/bin/python" -r "$req"
else
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "$kit: $python is older than Python 3.11 (set BEANS_SLURM_PYTHON)" >&2
    exit 1
  fi
  if [[ ! -x $env_dir/bin/python ]]; then
    "$python" -m venv "$env_dir"
  fi
  "$env_dir/bin/python" -m pip install --upgrade pip || echo "$kit: could not upgrade pip; going on with $("$env_dir/bin/python" -m pip --version)" >&2
  "$env_dir/bin/python" -m pip install -r "$req"
fi
"$env_dir/bin/python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
echo "$want" >"$stamp"
echo "$kit: environment ready: $env_dir/bin/python"
