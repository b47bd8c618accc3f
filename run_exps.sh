#!/usr/bin/env bash
# Run the experiment(s) of a data set: bash run_exps.sh <dataset> [--set key=value ...]
# Uses benchmark/configs/<dataset>/conf.yml; sets up the Python environment on first use (install.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dataset=${1:?usage: bash run_exps.sh <dataset> [--set key=value ...]}
shift
config=$root/benchmark/configs/$dataset/conf.yml
if [ ! -f "$config" ]; then
  echo "run_exps.sh: no config for '$dataset' ($config); available: $(ls "$root/benchmark/configs" | tr '\n' ' ')" >&2
  exit 2
fi
bash "$root/install.sh"
python_bin=$(cat "$root/.env_python")
export FEDSCALE_HALOR_HOME=${FEDSCALE_HALOR_HOME:-$root}
cd "$root"
exec "$python_bin" -m fedscale_halor.cli start "$config" "$@"
