#!/usr/bin/env bash
# Create or reuse an isolated Python environment with fedscale_halor installed (editable) in it.
#
#   bash install.sh                 a venv at ./.venv (or $FEDSCALE_HALOR_VENV)
#   bash install.sh --conda NAME    a conda environment NAME (created when missing)
#   bash install.sh --test          also the test tools (pytest, ruff, grpcio-tools), and as root Debian's
#                                   slurm-wlm and munge for the real-Slurm test when they are missing
#
# Idempotent: when the environment already matches this checkout's requirements it returns in about a second.
# The chosen interpreter is recorded in ./.env_python for run_exps.sh and run_tests.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conda_env=""
extras=""
while [ $# -gt 0 ]; do
  case "$1" in
    --conda) conda_env=${2:?--conda needs an environment name}; shift 2 ;;
    --test) extras="[test]"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# tests/integration/test_slurm_job.py runs a single-node Slurm cluster on this machine; it fails, saying why,
# when the packages are missing, so that a run without Slurm never passes for one with it
if [ -n "$extras" ] && ! PATH="$PATH:/usr/sbin:/sbin" command -v slurmctld >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install.sh: installing slurm-wlm and munge (apt-get) for the Slurm integration test"
    slurm_started=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    echo "install.sh: slurm-wlm and munge installed in $(( $(date +%s) - slurm_started )) s"
  else
    echo "install.sh: Slurm is not installed and only root with apt-get can install it here: the Slurm" \
      "integration test will fail; install Debian's slurm-wlm and munge (sudo apt-get install slurm-wlm munge)," \
      "or leave the long tests out (bash run_tests.sh -m 'not slow')" >&2
  fi
fi

if [ -n "$conda_env" ]; then
  command -v conda >/dev/null || { echo "install.sh: --conda given but conda is not on PATH" >&2; exit 1; }
  if ! conda run -n "$conda_env" python --version >/dev/null 2>&1; then
    echo "install.sh: creating conda environment $conda_env"
    conda create -y -q -n "$conda_env" python=3.11 pip
  fi
  python_bin=$(conda run -n "$conda_env" python -c 'import sys; print(sys.executable)')
else
  venv=${FEDSCALE_HALOR_VENV:-$root/.venv}
  if [ ! -x "$venv/bin/python" ]; then
    echo "install.sh: creating virtual environment $venv"
    python3 -m venv "$venv"
  fi
  python_bin=$venv/bin/python
fi

# The stamp records what was installed; unchanged requirements and an importable package mean nothing to do.
stamp_file=$(dirname "$python_bin")/../.fedscale_halor_stamp
base=$(cat "$root/setup.py" "$root/pyproject.toml" "$root/install.sh" "$root/thirdparty/oort/pyproject.toml" \
  | sha256sum | cut -c1-16):$root
wanted=$base:${extras:-[base]}
have=$(cat "$stamp_file" 2>/dev/null || true)
if { [ "$have" = "$wanted" ] || [ "$have" = "$base:[test]" ]; } \
   && "$python_bin" -c 'import fedscale_halor, oort, torch' >/dev/null 2>&1; then
  echo "$python_bin" > "$root/.env_python"
  exit 0
fi

pip_install() { "$python_bin" -m pip install -q --disable-pip-version-check "$@"; }

if ! "$python_bin" -c 'import torch, torchvision' >/dev/null 2>&1; then
  # Pinned releases that this project is tested with; override with TORCH_SPEC="torch==X torchvision==Y".
  case "$(uname -m)" in
    aarch64|arm64) default_torch="torch==2.9.1 torchvision==0.24.1" ;;
    *) default_torch="torch==2.14.1 torchvision==0.29.1" ;;
  esac
  echo "install.sh: installing ${TORCH_SPEC:-$default_torch} (large, once)"
  # shellcheck disable=SC2086
  pip_install ${TORCH_SPEC:-$default_torch}
fi
echo "install.sh: installing oort (thirdparty/oort) and fedscale_halor$extras"
pip_install -e "$root/thirdparty/oort"
pip_install -e "$root$extras"
echo "$wanted" > "$stamp_file"
echo "$python_bin" > "$root/.env_python"
echo "install.sh: ready ($python_bin)"
