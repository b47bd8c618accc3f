"""One task of a Slurm job (``launcher: slurm``): `python -m fedscale_halor.launch.slurm_task aggregator|executor
--run-dir D`, started by the batch script's ``srun`` steps (``slurm_script``).

Everything a task needs is in the run folder, which the cluster's nodes share: the resolved ``config.yml``, the job's
``token`` (readable by its owner only) and, once the aggregator listens, ``aggregator_address``: its node and port,
stamped with the Slurm job id and restart count so that an executor of a requeued job never dials the address of
the attempt before. The aggregator resumes from the run's checkpoint when there is one: after a requeue, or when
`submit --resume` started the job again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.aggregator_main import serve_to_exit_status, stop_on_sigterm
from fedscale_halor.launch.executor_main import read_token, serve_executor
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.rundir import attach_log_file
from fedscale_halor.launch.slurm_script import ADDRESS_FILE_NAME, CONFIG_FILE_NAME, TOKEN_FILE_NAME
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.checkpoint_store import PREVIOUS_DIR, STATE_FILE

_POLL_S = 0.2

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class AggregatorAddress:
    host: str
    port: int
    job_id: str
    restart: str

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "port": self.port, "job_id": self.job_id, "restart": self.restart})

    @classmethod
    def from_json(cls, text: str) -> AggregatorAddress:
        data = json.loads(text)
        return cls(str(data["host"]), int(data["port"]), str(data["job_id"]), str(data["restart"]))


def attempt_of(environ: Mapping[str, str]) -> tuple[str, str]:
    """(Slurm job id, restart count) of the task's job: a requeued job keeps its id and counts its restarts."""
    return environ.get("SLURM_JOB_ID", ""), environ.get("SLURM_RESTART_COUNT", "0")


def task_gpu_index(environ: Mapping[str, str]) -> int:
    """The GPU an executor task uses, among those it sees: Slurm's --gpus-per-task leaves each task only its own
    (CUDA_VISIBLE_DEVICES), so the first; without that binding, every task of a node sees all of the node's GPUs
    and takes the one of its local rank."""
    if environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return 0
    return int(environ.get("SLURM_LOCALID", "0") or 0)


def node_address(environ: Mapping[str, str]) -> str:
    """The name executors dial to reach this node: loopback when the allocation is this one node (whatever the
    node's name resolves to), else Slurm's node name when it resolves (it usually is the host name), else the
    host's own names."""
    if environ.get("SLURM_JOB_NUM_NODES", "").strip() == "1":
        return "127.0.0.1"
    candidates = [name for name in (environ.get("SLURMD_NODENAME", ""), socket.gethostname(), socket.getfqdn())
                  if name]
    for name in candidates:
        try:
            socket.gethostbyname(name)
        except OSError:
            continue
        return name
    return candidates[0]


def has_checkpoint(run_dir: Path) -> bool:
    folder = run_dir / "checkpoint"
    return (folder / STATE_FILE).is_file() or (folder / PREVIOUS_DIR / STATE_FILE).is_file()


def write_address(run_dir: Path, address: AggregatorAddress) -> Path:
    target = run_dir / ADDRESS_FILE_NAME
    temporary = target.with_name(f".{ADDRESS_FILE_NAME}.{os.getpid()}")
    temporary.write_text(address.to_json() + "\n", encoding="utf-8")
    os.replace(temporary, target)  # an executor polling the file never reads half of it
    return target


def wait_for_address(run_dir: Path, job_id: str, restart: str, timeout_s: float) -> AggregatorAddress | None:
    """The address the aggregator of this attempt wrote, or None when none came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    path = run_dir / ADDRESS_FILE_NAME
    while True:
        try:
            address = AggregatorAddress.from_json(path.read_text(encoding="utf-8"))
            if (address.job_id, address.restart) == (job_id, restart):
                return address
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not written yet, or an earlier attempt's
        if time.monotonic() > deadline:
            return None
        time.sleep(_POLL_S)


def _read_run(run_dir: Path, role: str) -> tuple[ExperimentConfig, str] | None:
    """The run's config and token, as submit wrote them; None (said on stderr) when they cannot be read."""
    try:
        return load_config(run_dir / CONFIG_FILE_NAME), read_token(str(run_dir / TOKEN_FILE_NAME))
    except (OSError, ConfigError) as error:
        print(f"{role}: {error}", file=sys.stderr)
        return None


def run_aggregator(run_dir: Path, environ: Mapping[str, str]) -> int:
    run = _read_run(run_dir, "aggregator")
    if run is None:
        return 2
    cfg, token = run
    job_id, restart = attempt_of(environ)
    host = node_address(environ)
    resume = has_checkpoint(run_dir)
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=False)
    stop_on_sigterm()  # scancel's SIGTERM: the server stops and the logs are flushed

    def announce(port: int, _board: WorkBoard) -> None:
        write_address(run_dir, AggregatorAddress(host, port, job_id, restart))
        _log.info("Slurm job %s (restart %s): aggregator on %s:%d%s", job_id, restart, host, port,
                  ", resumed from the checkpoint" if resume else "")

    return serve_to_exit_status(cfg, run_dir, token, handler, on_listening=announce, resume=resume)


def run_executor(run_dir: Path, environ: Mapping[str, str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    run = _read_run(run_dir, "executor")
    if run is None:
        return 2
    cfg, token = run
    rank = int(environ.get("SLURM_PROCID", "0"))
    job_id, restart = attempt_of(environ)
    address = wait_for_address(run_dir, job_id, restart, cfg.job.register_timeout)
    if address is None:
        print(f"executor_{rank}: no aggregator address for Slurm job {job_id} (restart {restart}) in "
              f"{run_dir / ADDRESS_FILE_NAME} within register_timeout ({cfg.job.register_timeout:g} s); see "
              f"{run_dir / 'aggregator.log'}", file=sys.stderr)
        return 2
    return serve_executor(cfg, rank, f"{address.host}:{address.port}", token,
                          gpu_index=task_gpu_index(environ))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("role", choices=("aggregator", "executor"))
    parser.add_argument("--run-dir", required=True, help="the run folder submit prepared (shared by the nodes)")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    runner = run_aggregator if args.role == "aggregator" else run_executor
    return runner(run_dir, os.environ)


if __name__ == "__main__":
    sys.exit(main())
