"""The aggregator role of a job: serve gRPC for one run folder and token, run the rounds, see the executors off.

Shared by `start` (which also spawns the executors here) and by the aggregator entry point that `submit` starts on
``ps_ip`` (whose executors are started on their own hosts).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.assembly import build_aggregator, new_board
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.hosts import executor_slots
from fedscale_halor.launch.inprocess import JobOutcome
from fedscale_halor.launch.process_tuning import flush_denormals
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.base import AggregatorService
from fedscale_halor.transport.grpc_server import GrpcAggregatorServer
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply, Shutdown
from fedscale_halor.transport.shared_memory import default_parent
from fedscale_halor.transport.tls import server_tls_from_settings

_log = logging.getLogger("fedscale_halor.aggregator")

# how long a finished job keeps serving so that every live executor hears "shutdown" rather than finding the
# aggregator gone (which it would only conclude after its reconnect window)
FAREWELL_TIMEOUT_S = 10.0
SERVE_HOST = "0.0.0.0"


class _FarewellTracker(AggregatorService):
    """Passes calls to the service and notes which executors were last seen when, and which were told to stop."""

    def __init__(self, service: AggregatorService) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._last_seen: dict[str, float] = {}
        self._told_to_stop: set[str] = set()

    def _seen(self, executor_id: str) -> None:
        with self._lock:
            self._last_seen[executor_id] = time.monotonic()

    def register(self, token: str, info: ExecutorInfo) -> RegisterReply:
        reply = self._service.register(token, info)
        self._seen(info.executor_id)
        return reply

    def next_event(self, token: str, executor_id: str) -> Event:
        event = self._service.next_event(token, executor_id)
        self._seen(executor_id)
        if isinstance(event, Shutdown):
            with self._lock:
                self._told_to_stop.add(executor_id)
        return event

    def submit(self, token: str, executor_id: str, completion: Completion) -> None:
        self._service.submit(token, executor_id, completion)
        self._seen(executor_id)

    def attend(self, token: str, executor_id: str) -> None:
        self._service.attend(token, executor_id)
        self._seen(executor_id)

    def hung_up(self, executor_id: str) -> None:
        self._service.hung_up(executor_id)
        with self._lock:  # a farewell is not waited for from an executor that hung up, unless it calls again
            self._last_seen.pop(executor_id, None)

    def wait_for_farewells(self, silent_after_s: float, timeout_s: float) -> None:
        """Wait until every executor heard from within ``silent_after_s`` has been told to stop."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                now = time.monotonic()
                waiting = [executor for executor, seen in self._last_seen.items()
                           if executor not in self._told_to_stop and now - seen < silent_after_s]
            if not waiting:
                return
            time.sleep(0.05)
        _log.warning("executors %s did not collect the shutdown within %g s", ", ".join(sorted(waiting)), timeout_s)


def check_port_free(host: str, port: int) -> None:
    """Raise LaunchError, naming the port and what to do, when this process cannot listen on ``host:port``."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as gRPC does: connections of an earlier job in TIME_WAIT do not hold the port, a listener does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LaunchError(
                    f"port {port} on {host} is already in use (by another job or program): stop it (see "
                    "`fedscale-halor status`, then `fedscale-halor stop <job_name> <timestamp>` or "
                    "`bash kill_exps.sh <dataset> <timestamp>`) or set ps_port to a free port (0 picks one)") from None
            raise LaunchError(f"cannot listen on port {port} on {host}: {error.strerror}; set ps_port to a port this "
                              "user may open (above 1023, or 0 to pick a free one)") from None


def server_threads(executor_count: int) -> int:
    """Each executor holds a thread for its attendance and at times one for a poll and one for a submission."""
    return max(32, 3 * executor_count + 8)


def serve_aggregator(cfg: ExperimentConfig, run_dir: Path, token: str, *,
                     on_listening: Callable[[int, WorkBoard], None] | None = None, resume: bool = False) -> JobOutcome:
    """Serve gRPC on 0.0.0.0:ps_port, run the job's rounds with the executors of every worker_ips slot, and return
    once each live executor has been told to shut down. ``on_listening(port, board)`` runs once the server
    accepts calls and before the wait for executors (`start` spawns them there). A port that cannot be opened is
    a LaunchError, raised before anything else is done."""
    job, deployment = cfg.job, cfg.deployment
    # before the data is prepared, and before gRPC prints its own error lines for a port it cannot bind
    check_port_free(SERVE_HOST, deployment.ps_port)
    # the aggregator's math is memory-bound; a second thread would only take a core from a local executor
    torch.set_num_threads(1)
    flush_denormals()
    board = new_board(job)
    tracker = _FarewellTracker(BoardService(board, token))
    tls = server_tls_from_settings(job.tls_cert_file, job.tls_key_file)
    executor_count = len(executor_slots(deployment.worker_ips))
    server = GrpcAggregatorServer(tracker, SERVE_HOST, deployment.ps_port,
                                  chunk_bytes=int(job.message_chunk_mb * 2**20), tls=tls,
                                  max_workers=server_threads(executor_count),
                                  shared_memory_parent=default_parent() if job.shared_memory else None,
                                  token=token)
    try:
        _log.info("job %s: logs in %s", job.job_name, run_dir)
        # prepares the data once, before executors open it
        aggregator = build_aggregator(job, board, run_dir, resume=resume)
        try:
            port = server.start()
        except OSError as error:  # taken between the check and now
            raise LaunchError(f"{error}; set ps_port to a free port (0 picks one)") from error
        _log.info("aggregator serving gRPC on port %d; waiting for %d executors", port, executor_count)
        if on_listening is not None:
            on_listening(port, board)
        history = aggregator.run(executor_count=executor_count, register_timeout_s=job.register_timeout)
        tracker.wait_for_farewells(silent_after_s=job.executor_timeout, timeout_s=FAREWELL_TIMEOUT_S)
        _log.info("job %s finished; logs in %s", job.job_name, run_dir)
        return JobOutcome(run_dir, tuple(history), aggregator.weights)
    finally:
        server.stop()
        traffic = server.traffic
        _log.info("gRPC traffic: %d bytes to executors, %d bytes from executors", traffic.bytes_to_executors,
                  traffic.bytes_from_executors)
