"""What the work board makes of a task that an executor reports as failed.

The executor judges the error (executor/task_errors.py): a fatal one stops the job at once with an
``ExecutorTaskError`` naming the executor, the task and the error; a transient one is retried. A failed client is
retried through the round's quorum like any dropped client; a test shard goes back to the queue, up to
``EVAL_TRIES`` tries in all, so that an evaluation that runs out of memory every time still ends the job.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container

from fedscale_halor.transport.messages import ClientFailure, EvalFailure

_log = logging.getLogger("fedscale_halor.aggregator")

EVAL_TRIES = 3


class TaskFailures:
    """The first fatal task error of the job (what the round loop's waits raise), and the transient failures of each
    test shard of the current test. Not thread-safe: the board calls it under its lock."""

    def __init__(self) -> None:
        self.fatal: str | None = None
        self._shard_failures: Counter[tuple[int, int]] = Counter()  # (test view, shard) -> transient failures

    def new_test(self) -> None:
        self._shard_failures.clear()

    def client_failed(self, executor_id: str, failure: ClientFailure) -> None:
        if failure.fatal:
            self._stop(f"executor {executor_id} failed training client {failure.client_id} in round {failure.round}: "
                       f"{failure.error}")

    def shard_failed(self, executor_id: str, failure: EvalFailure, test_round: int,
                     evaluated: Container[tuple[int, int]]) -> bool:
        """Whether the shard goes back to the queue. ``evaluated``: the (view, shard)s of ``test_round`` that came
        back."""
        reason = f"executor {executor_id} failed evaluating round {failure.round}: {failure.error}"
        if failure.fatal:
            self._stop(reason)
            return False
        item = (failure.view, failure.shard_index)
        if failure.round != test_round or item in evaluated:
            return False  # a shard of another test, or one another executor has evaluated since
        self._shard_failures[item] += 1
        if self._shard_failures[item] < EVAL_TRIES:
            _log.warning("%s; test shard %d is handed out again", reason, failure.shard_index)
            return True
        self._stop(f"{reason} (test shard {failure.shard_index}, {EVAL_TRIES} tries)")
        return False

    def _stop(self, reason: str) -> None:
        # the first error is the job's; later ones (other executors hitting the same bug) are only logged
        _log.error("%s", reason)
        if self.fatal is None:
            self.fatal = reason
