"""Run a job on this machine as real processes: the aggregator here, serving gRPC, and one executor process per slot.

Executors run in their own process groups (so a stop can kill each whole tree) and write executor_<rank>.log in
the run folder. The aggregator's round loop is the same as in the in-process runner; only the transport differs.
While the job runs, its record (this process and the executors) lets `fedscale-halor stop` end it from another
terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.assembly import torch_threads_per_executor
from fedscale_halor.launch.executor_main import TOKEN_VARIABLE
from fedscale_halor.launch.executor_watch import ExecutorWatch
from fedscale_halor.launch.forked import ForkedExecutor, can_fork, fork_executors
from fedscale_halor.launch.hosts import ExecutorSlot, executor_slots, is_local_host
from fedscale_halor.launch.inprocess import JobOutcome
from fedscale_halor.launch.records import JobRecord, ProcessRecord, forget_record, save_record
from fedscale_halor.launch.resume_check import log_config_changes, write_run_config
from fedscale_halor.launch.rundir import attach_log_file, detach_log_file, open_run_dir
from fedscale_halor.launch.serving import SERVE_HOST, check_port_free, serve_aggregator
from fedscale_halor.launch.stop import process_command_line
from fedscale_halor.server.board import WorkBoard

_log = logging.getLogger("fedscale_halor.aggregator")

# how `stop` names this machine in the records of `start`
_THIS_HOST = "localhost"


def run_local(cfg: ExperimentConfig, *, timestamp: str | None = None, echo: bool = True,
              token: str | None = None, fork: bool = False, resume: bool = False,
              force_config: bool = False) -> JobOutcome:
    """Run the job to its end. ``fork``: executors are forked from this process, which must not have started any
    thread, gRPC object or parallel torch work yet (a fresh `start`); otherwise they are new interpreters.
    ``resume``: continue the run of ``timestamp`` from its last checkpoint, refused when the config changes what is
    trained (``resume_check``) unless ``force_config``."""
    job, deployment = cfg.job, cfg.deployment
    check_port_free(SERVE_HOST, deployment.ps_port)  # before a run folder exists that would hold only the failure
    run_dir = open_run_dir(job.log_path, job.job_name, timestamp, resume=resume)
    config_path, config_changes = write_run_config(cfg, run_dir, resume=resume, force_config=force_config)
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=echo)
    log_config_changes(config_changes, _log)
    slots = executor_slots(deployment.worker_ips)
    remote = sorted({slot.host for slot in slots if not is_local_host(slot.host)})
    if remote:
        _log.warning("start runs every executor on this machine; hosts %s are not used (submit runs them there)",
                     ", ".join(remote))
    token = token or secrets.token_hex(16)
    record = _record_of_this_process(job.job_name, run_dir, job.data_set)
    save_record(record)
    threads = torch_threads_per_executor(job)
    forked = fork_executors(cfg, slots, run_dir, token, threads) if fork and can_fork() else []
    executors: list[subprocess.Popen[bytes] | ForkedExecutor] = list(forked)

    watches: list[ExecutorWatch] = []

    def start_executors(port: int, board: WorkBoard) -> None:
        nonlocal record
        address = f"127.0.0.1:{port}"
        for executor in forked:
            executor.release(address)
        if not forked:
            executors.extend(_spawn_executor(slot, config_path, address, token, run_dir, threads) for slot in slots)
        # a forked executor's command line is this process's
        marker = record.processes[0].command_marker if forked else str(run_dir)
        for slot, executor in zip(slots, executors, strict=True):
            record = record.with_process(ProcessRecord("executor", slot.rank, _THIS_HOST, executor.pid,
                                                       command_marker=marker))
        save_record(record)

        def restart(rank: int) -> subprocess.Popen[bytes]:
            nonlocal record
            # threads run now, so a restarted executor is a new interpreter, never a fork
            process = _spawn_executor(slots[rank], config_path, address, token, run_dir, threads)
            record = record.with_process(ProcessRecord("executor", rank, _THIS_HOST, process.pid,
                                                       command_marker=str(run_dir)))
            save_record(record)
            return process

        watch = ExecutorWatch(executors, on_lost=board.executor_lost, job_over=lambda: board.has_shut_down,
                              restart=restart, restarts=job.executor_restarts)
        watch.start()
        watches.append(watch)

    status = "failed"
    try:
        outcome = serve_aggregator(cfg, run_dir, token, on_listening=start_executors, resume=resume)
        for watch in watches:
            watch.stop()
        _wait_for(executors, timeout_s=30.0)
        status = "finished"
        return outcome
    finally:
        for watch in watches:
            watch.stop()
        for executor in forked:
            executor.close_pipe()  # a child still waiting for the port exits
        _stop(executors)
        # every process of the run has ended here: `stop` has nothing left to find
        save_record(record.with_status(status))
        forget_record(record)
        detach_log_file("fedscale_halor", handler)


def _record_of_this_process(job_name: str, run_dir: Path, data_set: str) -> JobRecord:
    # only this process's pid, not its group: the group may be the caller's shell pipeline or test runner
    aggregator = ProcessRecord("aggregator", -1, _THIS_HOST, os.getpid(), process_group=False,
                               command_marker=process_command_line(os.getpid()) or "")
    return JobRecord(job_name, run_dir.name, str(run_dir), launcher="start", processes=(aggregator,),
                     data_set=data_set)


def _spawn_executor(slot: ExecutorSlot, config_path: Path, address: str, token: str, run_dir: Path,
                    threads: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fedscale_halor.launch.executor_main", "--config", str(config_path),
               "--rank", str(slot.rank), "--address", address, "--threads", str(threads)]
    with (run_dir / f"executor_{slot.rank}.log").open("ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, TOKEN_VARIABLE: token})


def _wait_for(processes: Sequence[subprocess.Popen[bytes] | ForkedExecutor], timeout_s: float) -> None:
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _log.warning("executor pid %d did not exit after shutdown; stopping it", process.pid)


def _stop(processes: Sequence[subprocess.Popen[bytes] | ForkedExecutor]) -> None:
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the executor leads its group: its children go too
            process.wait()
