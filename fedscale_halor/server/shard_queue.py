"""The work board's queue of test shards: one test of the current model, handed out shard by shard.

A test evaluates the model on each test view in ``shard_count`` shards; each (test view, shard) is one item of the
queue, handed to whichever executor asks next. Outcomes are collected by item, so the test's totals are summed in
shard order whoever evaluated them. A shard that an executor failed on goes back to the queue while its tries last
(``TaskFailures`` decides), and the shards that a dead executor held go back to it too, so every test still ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from fedscale_halor.server.task_failures import TaskFailures
from fedscale_halor.transport.messages import EvalFailure, EvalOutcome, ModelTest
from fedscale_halor.types import EvalResult

ShardKey = tuple[int, int]  # (test view, shard)


class ShardQueue:
    """The shards of the current test still to hand out, and the outcomes that came back. Not thread-safe: the
    board calls it under its lock. The shards an executor is evaluating are kept in that executor's own set
    (``held``), so they leave with it when it is declared dead."""

    def __init__(self, task_failures: TaskFailures) -> None:
        self._task_failures = task_failures
        self._round = -1
        self._shard_count = 0
        self._views: tuple[int, ...] = ()
        self._items: list[ShardKey] = []
        self._pending: deque[ShardKey] = deque()
        self._outcomes: dict[ShardKey, EvalResult] = {}

    def start(self, round_index: int, shard_count: int, views: Sequence[int]) -> None:
        """A new test: every view of ``views`` in ``shard_count`` shards; what the last test left is dropped."""
        self._round = round_index
        self._shard_count = shard_count
        self._views = tuple(views)
        self._items = [(view, shard) for view in views for shard in range(shard_count)]
        self._pending = deque(self._items)
        self._outcomes = {}
        self._task_failures.new_test()

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    @property
    def is_complete(self) -> bool:
        return len(self._outcomes) == len(self._items)

    def take(self, held: set[ShardKey], model_version: int, cohort: int) -> ModelTest | None:
        """The next shard to evaluate, now counted among ``held``; None when none is waiting."""
        if not self._pending:
            return None
        view, shard = self._pending.popleft()
        held.add((view, shard))
        return ModelTest(self._round, model_version, shard, self._shard_count, cohort, view)

    def evaluated(self, outcome: EvalOutcome, held: set[ShardKey]) -> None:
        held.discard((outcome.view, outcome.shard_index))
        if outcome.round == self._round:  # an outcome of an earlier test has no place in this one's totals
            self._outcomes[outcome.view, outcome.shard_index] = outcome.result

    def failed(self, executor_id: str, failure: EvalFailure, held: set[ShardKey]) -> None:
        held.discard((failure.view, failure.shard_index))
        if self._task_failures.shard_failed(executor_id, failure, self._round, self._outcomes):
            self._pending.append((failure.view, failure.shard_index))

    def put_back(self, held: Iterable[ShardKey]) -> None:
        """The shards of an executor declared dead: handed out again, so the test does not wait for them."""
        self._pending.extend(sorted(held))

    def totals(self) -> dict[int, EvalResult]:
        """Each view's result, its shards summed in shard order; only once the test is complete."""
        totals = {view: EvalResult() for view in self._views}
        for view, shard in self._items:
            totals[view] = totals[view] + self._outcomes[view, shard]
        return totals
