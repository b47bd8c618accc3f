"""The work board's roster of executors: who is alive, what each holds, and when one is declared dead.

An executor silent for longer than the executor timeout is overdue; one whose held connection broke is overdue
sooner, once the hang-up grace passes without a call of its own. The board declares the overdue dead and puts
their work back; the roster remembers them, so that one that comes back is taken in again with a clean slate. With
no executor alive for longer than the orphan timeout, the job cannot go on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fedscale_halor.server.round_terms import LivenessPolicy
from fedscale_halor.server.shard_queue import ShardKey
from fedscale_halor.types import TrainTask

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass
class ExecutorState:
    known_versions: dict[int, int] = field(default_factory=dict)  # cohort -> the latest version it was sent
    last_seen: float = field(default_factory=time.monotonic)
    clients: dict[int, TrainTask] = field(default_factory=dict)
    shards: set[ShardKey] = field(default_factory=set)  # the test shards it is evaluating
    hung_up_at: float | None = None  # when its held connection broke, until a call of its own shows it is alive

    def heard_from(self) -> None:
        """A call of its own: it is alive, whatever became of its held connection."""
        self.last_seen, self.hung_up_at = time.monotonic(), None


class ExecutorRoster:
    """The live executors' states and the ids of those declared dead. Not thread-safe: the board calls it under its
    lock."""

    def __init__(self, liveness: LivenessPolicy) -> None:
        self._liveness = liveness
        self._live: dict[str, ExecutorState] = {}
        self._dead: set[str] = set()
        self._orphaned_since: float | None = None

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, executor_id: object) -> bool:
        return executor_id in self._live

    def add(self, executor_id: str) -> None:
        self._live[executor_id] = ExecutorState()
        self._dead.discard(executor_id)

    def get(self, executor_id: str) -> ExecutorState | None:
        return self._live.get(executor_id)

    def state_of(self, executor_id: str) -> ExecutorState:
        """The state of a registered executor; one declared dead that calls again is alive again, holding nothing."""
        state = self._live.get(executor_id)
        if state is None and executor_id in self._dead:
            _log.warning("executor %s was declared dead but is back; it gets work again", executor_id)
            self._dead.discard(executor_id)
            state = self._live[executor_id] = ExecutorState()
        if state is None:
            raise KeyError(f"executor {executor_id!r} has not registered")
        return state

    def overdue(self, now: float) -> list[tuple[str, str]]:
        """The executors to declare dead at ``now``, each with why."""
        overdue: list[tuple[str, str]] = []
        for executor_id, state in self._live.items():
            silent_s = now - state.last_seen
            if silent_s > self._liveness.executor_timeout_s:
                overdue.append((executor_id, f"silent for {silent_s:.0f} s"))
            elif state.hung_up_at is not None and now - state.hung_up_at > self._liveness.hang_up_grace_s:
                overdue.append((executor_id, f"hung up {now - state.hung_up_at:.1f} s ago and did not call again"))
        return overdue

    def remove(self, executor_id: str) -> ExecutorState:
        """Declare the executor dead; its state comes back, for the board to put its work back."""
        state = self._live.pop(executor_id)
        self._dead.add(executor_id)
        return state

    def orphan_failure(self, now: float) -> str | None:
        """Why the job cannot go on, once no executor has been alive for longer than the orphan timeout."""
        if self._live:
            self._orphaned_since = None
        elif self._orphaned_since is None:
            self._orphaned_since = now
        elif now - self._orphaned_since > self._liveness.orphan_timeout_s:
            return (f"no executor has been alive for {self._liveness.orphan_timeout_s:.0f} s "
                    f"(executor timeout {self._liveness.executor_timeout_s:.0f} s)")
        return None
