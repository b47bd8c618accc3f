"""The executors `start` runs on this machine, watched: a death is known from the process's exit, at once, instead of
after the executor timeout; a dead executor is started again up to ``executor_restarts`` times per slot."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, MutableSequence

from fedscale_halor.launch.forked import ForkedExecutor

_log = logging.getLogger("fedscale_halor.aggregator")

LocalExecutor = subprocess.Popen[bytes] | ForkedExecutor
POLL_S = 0.2


class ExecutorWatch:
    """Polls ``executors`` (index = rank) from a thread of its own until ``stop``."""

    def __init__(self, executors: MutableSequence[LocalExecutor], *, on_lost: Callable[[str, str], None],
                 job_over: Callable[[], bool], restart: Callable[[int], LocalExecutor] | None = None,
                 restarts: int = 0) -> None:
        self._executors = executors
        self._on_lost = on_lost
        self._job_over = job_over
        self._restart = restart
        self._restarts_left = dict.fromkeys(range(len(executors)), restarts)
        self._reported: set[int] = set()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="executor-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stopped.wait(POLL_S):
            for rank, process in enumerate(self._executors):
                if rank not in self._reported and process.poll() is not None:
                    self._exited(rank, process)

    def _exited(self, rank: int, process: LocalExecutor) -> None:
        if self._job_over():  # executors leave when they are told the job finished
            self._reported.add(rank)
            return
        code = process.returncode or 0
        ending = f"signal {-code}" if code < 0 else f"status {code}"
        why = f"exited (pid {process.pid}, {ending})"
        self._on_lost(f"executor_{rank}", why)
        if self._restart is None or self._restarts_left[rank] <= 0:
            self._reported.add(rank)
            return
        self._restarts_left[rank] -= 1
        self._executors[rank] = self._restart(rank)
        _log.warning("executor_%d started again (pid %d); %d restarts left", rank, self._executors[rank].pid,
                     self._restarts_left[rank])
