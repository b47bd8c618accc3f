"""Run a job on this machine as real processes: the aggregator here, serving gRPC, and one executor process per slot.

Executors run in their own process groups (so a stop can kill each whole tree) and write executor_<rank>.log in
the run folder. The aggregator's round loop is the same as in the in-process runner; only the transport differs.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.assembly import build_aggregator, new_board, torch_threads_per_executor
from fedscale_halor.launch.executor_main import TOKEN_VARIABLE
from fedscale_halor.launch.hosts import ExecutorSlot, executor_slots, is_local_host
from fedscale_halor.launch.inprocess import JobOutcome
from fedscale_halor.launch.rundir import attach_log_file, create_run_dir, detach_log_file
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.tls import server_tls_from_settings

_log = logging.getLogger("fedscale_halor.aggregator")


def run_local(cfg: ExperimentConfig, *, timestamp: str | None = None, echo: bool = True,
              token: str | None = None) -> JobOutcome:
    job, deployment = cfg.job, cfg.deployment
    run_dir = create_run_dir(job.log_path, job.job_name, timestamp)
    config_path = dump_config(cfg, run_dir / "config.yml")
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=echo)
    slots = executor_slots(deployment.worker_ips)
    remote = sorted({slot.host for slot in slots if not is_local_host(slot.host)})
    if remote:
        _log.warning("start runs every executor on this machine; hosts %s are not used (submit runs them there)",
                     ", ".join(remote))
    token = token or secrets.token_hex(16)
    board = new_board(job)
    tls = server_tls_from_settings(job.tls_cert_file, job.tls_key_file)
    server = GrpcAggregatorServer(BoardService(board, token), "0.0.0.0", deployment.ps_port,
                                  chunk_bytes=int(job.message_chunk_mb * 2**20), tls=tls)
    executors: list[subprocess.Popen[bytes]] = []
    try:
        _log.info("job %s: logs in %s", job.job_name, run_dir)
        aggregator = build_aggregator(job, board, run_dir)  # prepares the data once, before executors open it
        port = server.start()
        _log.info("aggregator serving gRPC on port %d; starting %d executors", port, len(slots))
        threads = torch_threads_per_executor(job)
        executors = [_spawn_executor(slot, config_path, f"127.0.0.1:{port}", token, run_dir, threads)
                     for slot in slots]
        history = aggregator.run(executor_count=len(slots), register_timeout_s=job.register_timeout)
        _wait_for(executors, timeout_s=30.0)
        _log.info("job %s finished; logs in %s", job.job_name, run_dir)
        return JobOutcome(run_dir, tuple(history), aggregator.weights)
    finally:
        _stop(executors)
        server.stop()
        detach_log_file("fedscale_halor", handler)


def _spawn_executor(slot: ExecutorSlot, config_path: Path, address: str, token: str, run_dir: Path,
                    threads: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fedscale_halor.launch.executor_main", "--config", str(config_path),
               "--rank", str(slot.rank), "--address", address, "--threads", str(threads)]
    with (run_dir / f"executor_{slot.rank}.log").open("ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, TOKEN_VARIABLE: token})


def _wait_for(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _log.warning("executor pid %d did not exit after shutdown; stopping it", process.pid)


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
