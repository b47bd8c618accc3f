#!/usr/bin/env bash
# shellcheck disable=SC2206  # the grid's lists are given as words
# Run the experiments of a data set:
#   bash run_exps.sh <dataset> [--detach] [--dry-run] [--scheduler slurm] [--set key=value ...]
#
# One experiment per combination of the grid below, each with its own timestamp and its config rendered from
# benchmark/configs/<dataset>/conf.yml, assigned to the servers of IPS round robin. An empty variable keeps the
# config's value, so as shipped the grid is the config itself: one experiment. Any variable can come from the
# environment instead of an edit here (values separated by spaces):
#   ROUNDS="100 500" SAMPLERS="random oort" bash run_exps.sh digits
# A single experiment on this machine runs in the foreground and exits with the job's status (unless --detach);
# otherwise every experiment starts in the background and a table says where. Stop them with kill_exps.sh.
# With --scheduler slurm (or launcher: slurm in the config) each experiment is one Slurm batch job instead, and IPS
# and GPUS stay empty: Slurm places the jobs.
# Sets up the Python environment on first use (install.sh). See docs/experiments.md.
set -euo pipefail
set -f  # values such as [2] are not file name patterns

#---- the servers: experiment i runs on IPS[i mod #IPS], its aggregator and all its executors ----
# host names or addresses, e.g. IPS="10.0.0.1 10.0.0.2"; empty: the config's ps_ip and worker_ips
IPS=(${IPS-})
# executors on each server, as FedScale's [n_gpu0,n_gpu1,...] (4 means [4]): one entry for every server, or one
# per server; empty: as many as the config's worker_ips
GPUS=(${GPUS-})

#---- the main experimental parameters (loop order: the first varies slowest) ----
# number of FL rounds (rounds), e.g. "100 1000"
ROUNDS=(${ROUNDS-})
# local SGD steps of each client per round (local_steps), e.g. "1 20"
LOCAL_STEPS=(${LOCAL_STEPS-})
# clients per round (num_participants), e.g. "10 50"
PARTICIPANTS=(${PARTICIPANTS-})
# round deadline in simulated seconds (deadline); 0 or less: the moving average of past rounds, e.g. "100"
DEADLINES=(${DEADLINES-})
# aggregation algorithm (gradient_policy): fedavg fed-prox fed-yogi fed-adam
AGGREGATORS=(${AGGREGATORS-})
# share of the selected clients after which a round ends, exp_type 0 (target_ratio), e.g. "0.8 1.0"
TARGET_RATIOS=(${TARGET_RATIOS-})
# total number of clients (total_clients), e.g. "1000"
CLIENTS=(${CLIENTS-})
# data partitioning (partitioning): -1 IID, 0 real clients, 1 non-IID uniform, 2 Zipf, 3 balanced, 8 Dirichlet
PARTITIONS=(${PARTITIONS-})
# clients selected per participant, to absorb dropouts (overcommitment), e.g. "1.3"
OVERCOMMIT=(${OVERCOMMIT-})
# who completes a round (exp_type): 0 deadline or target ratio, 1 deadline, 2 the first num_participants
EXP_TYPES=(${EXP_TYPES-})
# behaviour traces (random_behv): -1 always online, 0 by client id, 1 a random trace, 2 the least available 10%
RANDOM_BEHV=(${RANDOM_BEHV-})
# client selection (sample_mode): random oort
SAMPLERS=(${SAMPLERS-})
# stale updates (stale_update): 0 dropped, -1 whenever they arrive, n at most n rounds late (SAFA: 5)
STALES=(${STALES-})
# weight of a stale update (stale_factor): 1 equal, f>1 divided by f, -1 mean staleness, -2 AdaSGD, -3 DynSGD,
# -4 REFL's scaling
STALE_FACTORS=(${STALE_FACTORS-})
# REFL's availability priority with random selection (avail_priority): 0 off, 1 or 2 on
AVAIL_PRIOS=(${AVAIL_PRIOS-})
# Halor's label-histogram sharing and resampling (halor): true false
HALOR=(${HALOR-})
# how Halor resamples (halor_resample): under over off
HALOR_RESAMPLE=(${HALOR_RESAMPLE-})
# seeds of the runs of each setting (sample_seed), e.g. "0 1 2"
SAMPLE_SEEDS=(${SAMPLE_SEEDS-})

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage="usage: bash run_exps.sh <dataset> [--detach] [--dry-run] [--scheduler slurm] [--set key=value ...]"
dataset=${1:?$usage}
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
exec "$python_bin" -m fedscale_halor.cli sweep "$config" --ips "${IPS[*]-}" --gpus "${GPUS[*]-}" \
  --grid "rounds=${ROUNDS[*]-}" \
  --grid "local_steps=${LOCAL_STEPS[*]-}" \
  --grid "num_participants=${PARTICIPANTS[*]-}" \
  --grid "deadline=${DEADLINES[*]-}" \
  --grid "gradient_policy=${AGGREGATORS[*]-}" \
  --grid "target_ratio=${TARGET_RATIOS[*]-}" \
  --grid "total_clients=${CLIENTS[*]-}" \
  --grid "partitioning=${PARTITIONS[*]-}" \
  --grid "overcommitment=${OVERCOMMIT[*]-}" \
  --grid "exp_type=${EXP_TYPES[*]-}" \
  --grid "random_behv=${RANDOM_BEHV[*]-}" \
  --grid "sample_mode=${SAMPLERS[*]-}" \
  --grid "stale_update=${STALES[*]-}" \
  --grid "stale_factor=${STALE_FACTORS[*]-}" \
  --grid "avail_priority=${AVAIL_PRIOS[*]-}" \
  --grid "halor=${HALOR[*]-}" \
  --grid "halor_resample=${HALOR_RESAMPLE[*]-}" \
  --grid "sample_seed=${SAMPLE_SEEDS[*]-}" \
  "$@"
