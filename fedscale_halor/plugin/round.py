"""A feature's hooks into the aggregator's round pipeline.

The round runs its stages in a fixed order (docs/architecture.md): select, plan on the clock, pre-round protocols,
train, fold, evaluate, log and checkpoint; the planning itself is the round's ``RoundPlanner``
(server/planning.py). A ``RoundPlugin`` hooks the stages it needs; every hook has a default that leaves the round
as it is, so the loop calls every plug-in's hooks and names none of them.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from fedscale_halor.types import RoundMetrics, TrainResult, Weights

if TYPE_CHECKING:
    from fedscale_halor.selection.base import ClientIds
    from fedscale_halor.server.planning import RoundPlanner

_Parsed = TypeVar("_Parsed")


class SavedFiles(Protocol):
    """A checkpoint's files as a plug-in reads them back: checked against the checkpoint's record, and a file that
    ``parse`` refuses (with ValueError, KeyError or TypeError) is reported with its path and what to do."""

    def read(self, name: str, parse: Callable[[bytes], _Parsed], what: str) -> _Parsed | None:
        """The parsed file, or None when the checkpoint has no such file."""


class Clock(Protocol):
    """The round's planner as plug-ins see it: the virtual time, and how long rounds take."""

    @property
    def now_s(self) -> float: ...

    def expected_round_s(self) -> float: ...


class Fold(Protocol):
    """The round's aggregation as plug-ins may add to it (``aggregation.fold.RoundFold``)."""

    @property
    def base_weights(self) -> Weights: ...

    def fresh_mean(self) -> Weights | None: ...

    def add_stale(self, result: TrainResult, weight: float) -> None: ...


class RoundPlugin(ABC):  # noqa: B024 - every hook has a default: a plug-in overrides the ones it needs
    #: the files this plug-in writes into each checkpoint (plain names, unique across the job's plug-ins)
    checkpoint_files: tuple[str, ...] = ()

    def planner(self, default: RoundPlanner) -> RoundPlanner | None:
        """Planning: a planner that replaces the job's (``default``: the virtual clock, or everyone completes);
        at most one plug-in of a job may replace it."""
        return None

    def before_run(self, client_ids: Sequence[int]) -> None:
        """Once before the first round of the run (a resumed run too), with every client of the job."""
        return None

    def selection_size(self, round_index: int, count: int, clock: Clock) -> int:
        """Selection: how many clients the round selects, of the ``count`` the planner asks for."""
        return count

    def eligible(self, round_index: int, candidates: ClientIds, needed: int) -> ClientIds:
        """Selection: the candidates the selector may pick from (an ascending int64 array, or a sequence of ints),
        of which the round needs ``needed``."""
        return candidates

    def before_round(self, round_index: int, sampled: Sequence[int]) -> tuple[object, ...]:
        """A pre-round protocol over the round's sampled clients, once per round (retried attempts of the round
        reuse its answer); returns payloads that travel as hints with every training task of the round."""
        return ()

    def late_clients(self, round_index: int, stragglers: Mapping[int, float]) -> Mapping[int, float]:
        """Planning: the stragglers (client -> seconds after the round's start it finishes) to train anyway, for a
        later round; their updates come to ``take_late``, not to the round's fold."""
        return {}

    def take_late(self, round_index: int, results: Sequence[TrainResult], round_start_s: float,
                  finish_after_start_s: Mapping[int, float]) -> None:
        """The updates of the clients ``late_clients`` asked for, once the round is committed."""
        return None

    def fold_more(self, round_index: int, fold: Fold, fresh_client_ids: Sequence[int], clock_s: float) -> None:
        """Folding: add to the round's fold after its own updates (stale updates of earlier rounds)."""
        return None

    def after_round(self, round_index: int, results: Sequence[TrainResult]) -> None:
        """The round's results, once the round is committed (weights are not kept)."""
        return None

    def round_metrics(self, metrics: RoundMetrics) -> RoundMetrics:
        """What this plug-in adds to the round's metrics."""
        return metrics

    def save(self) -> Mapping[str, bytes]:
        """The contents of ``checkpoint_files`` (a name may be left out)."""
        return {}

    def restore(self, files: SavedFiles) -> None:
        """Continue from a checkpoint's files, before ``before_run``."""
        return None
