#!/usr/bin/env bash
# Stop experiments: bash kill_exps.sh <dataset> [timestamp] | bash kill_exps.sh all
# Signals the process groups recorded when the runs started (on every host they run on) and marks the records
# stopped; safe to run twice or on runs that already ended. `fedscale-halor status` lists the recorded runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=${1:?usage: bash kill_exps.sh <dataset> [timestamp] | all}
python_bin=$(cat "$root/.env_python" 2>/dev/null || echo python)
if [ "$target" = "all" ]; then
  exec "$python_bin" -m fedscale_halor.cli stop --all
fi
# the shipped configs name each job after its data set
exec "$python_bin" -m fedscale_halor.cli stop "$target" ${2:+"$2"}
