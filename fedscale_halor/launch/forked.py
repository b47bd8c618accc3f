"""Executors forked from a fresh `start` process, so that they share its memory instead of importing everything again.

Every process that imports this PyTorch build holds about 0.3 GiB of private memory before it does any work; forked
children share those pages with the aggregator (copy-on-write) and start in milliseconds. Forking is only safe
before the parent runs a thread, a gRPC channel or server, or a parallel torch operation, so `start` forks first
thing and each child then waits on a pipe for the port of the aggregator's server; when that is not possible the
executors are spawned as new interpreters instead (``can_fork``).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.executor_main import serve_executor
from fedscale_halor.launch.hosts import ExecutorSlot

_log = logging.getLogger("fedscale_halor.aggregator")


def can_fork() -> bool:
    """Linux, and no thread but the main one: a fork would otherwise copy locks held by threads that do not exist in
    the child."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


class ForkedExecutor:
    """The parent's handle on a forked executor, with the part of ``subprocess.Popen`` that the runner uses."""

    def __init__(self, pid: int, rank: int, port_pipe: int) -> None:
        self.pid = pid
        self.rank = rank
        self.returncode: int | None = None
        self._port_pipe: int | None = port_pipe

    def release(self, address: str) -> None:
        """Tell the waiting child where the aggregator serves; it starts its executor then."""
        if self._port_pipe is not None:
            os.write(self._port_pipe, address.encode() + b"\n")
            self.close_pipe()

    def close_pipe(self) -> None:
        if self._port_pipe is not None:
            os.close(self._port_pipe)
            self._port_pipe = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"executor_{self.rank} (pid {self.pid})", timeout or 0.0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode


def fork_executors(cfg: ExperimentConfig, slots: Sequence[ExecutorSlot], run_dir: Path, token: str,
                   threads: int) -> list[ForkedExecutor]:
    """One child per slot, each in a session of its own, logging to executor_<rank>.log, waiting for ``release``."""
    executors: list[ForkedExecutor] = []
    # objects that exist now are never collected: the collector's passes would write to (and so copy) every page the
    # children share with this process
    gc.freeze()
    for slot in slots:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into the parent's stack
            status = 1
            try:
                os.close(write_end)
                for sibling in executors:  # so that each child sees end-of-file when the parent is gone
                    sibling.close_pipe()
                status = _run_child(cfg, slot, run_dir, token, threads, read_end)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(read_end)
        executors.append(ForkedExecutor(pid, slot.rank, write_end))
    return executors


def _run_child(cfg: ExperimentConfig, slot: ExecutorSlot, run_dir: Path, token: str, threads: int,
               port_pipe: int) -> int:
    os.setsid()  # a group of its own, so that a stop can end the executor and anything it starts
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    log_fd = os.open(run_dir / f"executor_{slot.rank}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    for logger in (logging.getLogger(), logging.getLogger("fedscale_halor")):
        logger.handlers.clear()  # the parent's handlers write aggregator.log and its terminal
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout, force=True)
    address = _read_line(port_pipe)
    if not address:
        logging.getLogger("fedscale_halor.executor").info("executor_%d: the aggregator never started", slot.rank)
        return 0
    return serve_executor(cfg, slot.rank, address, token, threads)


def _read_line(descriptor: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        piece = os.read(descriptor, 256)
        if not piece:
            break
        data += piece
    os.close(descriptor)
    return data.decode().strip()
