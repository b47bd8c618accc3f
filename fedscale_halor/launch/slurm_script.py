"""The batch script of a job that `submit` hands to Slurm (``launcher: slurm``): a pure function of the config.

The allocation holds one task per executor slot of ``worker_ips``, each with its CPUs and, on a GPU cluster, its
GPUs. Inside it the script starts two job steps with ``srun``: first the aggregator, one task on the allocation's
first node (``--overlap``: it shares that node's resources rather than holding a GPU of its own), then the
executors, one task each. Both steps run ``python -m fedscale_halor.launch.slurm_task`` from ``exp_path`` after the
job's ``setup_commands``; the task module finds the run folder, the token and the aggregator's address there, so the
token never appears on a command line. ``--requeue`` with ``--open-mode=append`` lets Slurm restart a job whose
node failed: the logs go on, and the aggregator resumes from the run's checkpoint.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig, SlurmConfig
from fedscale_halor.launch.hosts import executor_slots

TASK_MODULE = "fedscale_halor.launch.slurm_task"
# the run folder's files a task reads: written by submit, and the aggregator's address by the aggregator's task
CONFIG_FILE_NAME = "config.yml"
TOKEN_FILE_NAME = "token"
ADDRESS_FILE_NAME = "aggregator_address"
SLURM_OUTPUT_NAME = "slurm-%j.out"  # the batch script's own output; %j is Slurm's job id
SETUP_FAILED_STATUS = 97
# Slurm truncates longer job names in squeue's default columns; the run folder names the run anyway
_MAX_JOB_NAME = 64


@dataclass(frozen=True)
class BatchPlan:
    """What the batch script asks for and runs, read from the config once."""

    job_name: str
    run_dir: Path
    exp_path: str
    executors: int
    cpus_per_executor: int
    setup_commands: tuple[str, ...]
    slurm: SlurmConfig


def batch_plan(cfg: ExperimentConfig, run_dir: Path, exp_path: str) -> BatchPlan:
    slurm = cfg.deployment.slurm
    cpus = slurm.slurm_cpus_per_executor or max(1, cfg.job.executor_threads)
    return BatchPlan(job_name=cfg.job.job_name, run_dir=run_dir, exp_path=exp_path,
                     executors=len(executor_slots(cfg.deployment.worker_ips)), cpus_per_executor=cpus,
                     setup_commands=cfg.deployment.setup_commands, slurm=slurm)


def directives(plan: BatchPlan) -> list[str]:
    """The ``#SBATCH`` options, in the order they are written."""
    slurm = plan.slurm
    options = [f"--job-name={_job_name(plan.job_name)}",
               f"--output={plan.run_dir / SLURM_OUTPUT_NAME}",
               "--open-mode=append",
               "--requeue",
               f"--ntasks={plan.executors}",
               f"--cpus-per-task={plan.cpus_per_executor}"]
    if slurm.slurm_partition:
        options.append(f"--partition={slurm.slurm_partition}")
    if slurm.slurm_account:
        options.append(f"--account={slurm.slurm_account}")
    if slurm.slurm_time:
        options.append(f"--time={slurm.slurm_time}")
    if slurm.slurm_gpus_per_executor:
        options.append(f"--gpus-per-task={slurm.slurm_gpus_per_executor}")
    if slurm.slurm_executors_per_node:
        options.append(f"--ntasks-per-node={slurm.slurm_executors_per_node}")
    options += [option.strip() for option in slurm.slurm_extra_directives]
    return options


def batch_script(plan: BatchPlan) -> str:
    """The whole script, ready for ``sbatch``."""
    run_dir = shlex.quote(str(plan.run_dir))
    task = f"python -m {TASK_MODULE}"
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in directives(plan))]
    lines += [
        f"# job {plan.job_name}: written by fedscale-halor submit; the run's logs are in {plan.run_dir}",
        f"cd {shlex.quote(plan.exp_path)} || {{ echo 'cannot enter exp_path {plan.exp_path}' >&2; exit 1; }}",
        *_setup_lines(plan.setup_commands),
        # the executors' step holds every task's resources; the aggregator shares the first node's
        'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        f"srun {' '.join(_aggregator_step_options(plan))} {task} aggregator --run-dir {run_dir} &",
        "aggregator=$!",
        f"srun {' '.join(_executor_step_options(plan))} {task} executor --run-dir {run_dir} &",
        "executors=$!",
        'wait "$aggregator"',
        "status=$?",
        # the executors leave on the aggregator's shutdown; a failed aggregator must not leave them waiting
        '[ "$status" -eq 0 ] || kill "$executors" 2>/dev/null',
        'wait "$executors"',
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def _aggregator_step_options(plan: BatchPlan) -> list[str]:
    options = ["--overlap", "--nodes=1", "--ntasks=1", '--nodelist="$head_node"', "--cpus-per-task=1"]
    if plan.slurm.slurm_gpus_per_executor:
        options.append("--gres=none")  # the aggregator folds and logs on the CPU; every GPU goes to an executor
    options += [f"--output={shlex.quote(str(plan.run_dir / 'aggregator.log'))}", "--open-mode=append"]
    return options


def _executor_step_options(plan: BatchPlan) -> list[str]:
    options = [f"--ntasks={plan.executors}", f"--cpus-per-task={plan.cpus_per_executor}"]
    if plan.slurm.slurm_gpus_per_executor:
        options.append(f"--gpus-per-task={plan.slurm.slurm_gpus_per_executor}")
    if plan.slurm.slurm_executors_per_node:
        options.append(f"--ntasks-per-node={plan.slurm.slurm_executors_per_node}")
    # %t is the task's rank in the step: executor_0.log, executor_1.log, ... as under the other launchers
    options += [f"--output={shlex.quote(str(plan.run_dir / 'executor_%t.log'))}", "--open-mode=append"]
    return options


def _setup_lines(setup_commands: Sequence[str]) -> list[str]:
    lines: list[str] = []
    for command in filter(str.strip, setup_commands):
        # in this shell: a `source venv/bin/activate` must reach the steps started below
        lines += ["{", command, f"}} || {{ status=$?; printf 'setup command failed with exit status %s: %s\\n' "
                                f"\"$status\" {shlex.quote(command)} >&2; exit {SETUP_FAILED_STATUS}; }}"]
    return lines


def _job_name(name: str) -> str:
    # a job name with spaces or quotes would end the directive early
    cleaned = "".join(character if character.isalnum() or character in "._-" else "_" for character in name)
    return cleaned[:_MAX_JOB_NAME] or "fedscale_halor"
