#!/usr/bin/env bash
# Stop experiments: bash kill_exps.sh <dataset> <timestamp> | bash kill_exps.sh <dataset> | bash kill_exps.sh all
# Signals the process groups recorded when the experiments started, on every server they run on (over SSH with the
# credentials of their launch), drops their records and says what it stopped. Safe to run twice or on experiments
# that already ended. Experiments run by Slurm are cancelled by their recorded job ids (scancel). `fedscale-halor
# status` lists the recorded ones. See docs/experiments.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${1:?usage: bash kill_exps.sh <dataset> [timestamp] | all}"
python_bin=$(cat "$root/.env_python" 2>/dev/null || echo python)
# a data set's name matches the experiments of that data set (and of a job so named)
exec "$python_bin" -m fedscale_halor.cli kill "$@"
