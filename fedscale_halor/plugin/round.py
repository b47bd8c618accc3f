"""A feature's hooks into the aggregator's round pipeline.

The round runs its stages in a fixed order (docs/architecture.md): select, pre-round protocols, plan on the clock,
train, fold, evaluate, log and checkpoint. A ``RoundPlugin`` hooks the stages it needs; every hook has a default
that leaves the round as it is, so the loop calls every plug-in's hooks and names none of them.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from fedscale_halor.types import RoundMetrics, TrainResult

_Parsed = TypeVar("_Parsed")


class SavedFiles(Protocol):
    """A checkpoint's files as a plug-in reads them back: checked against the checkpoint's record, and a file that
    ``parse`` refuses (with ValueError, KeyError or TypeError) is reported with its path and what to do."""

    def read(self, name: str, parse: Callable[[bytes], _Parsed], what: str) -> _Parsed | None:
        """The parsed file, or None when the checkpoint has no such file."""


class RoundPlugin(ABC):  # noqa: B024 - every hook has a default: a plug-in overrides the ones it needs
    #: the files this plug-in writes into each checkpoint (plain names, unique across the job's plug-ins)
    checkpoint_files: tuple[str, ...] = ()

    def before_run(self, client_ids: Sequence[int]) -> None:
        """Once before the first round of the run (a resumed run too), with every client of the job."""
        return None

    def eligible(self, round_index: int, candidates: Sequence[int], needed: int) -> Sequence[int]:
        """Selection: the candidates the selector may pick from, of which the round needs ``needed``."""
        return candidates

    def before_round(self, round_index: int, sampled: Sequence[int]) -> tuple[object, ...]:
        """A pre-round protocol over the round's sampled clients, once per round (retried attempts of the round
        reuse its answer); returns payloads that travel as hints with every training task of the round."""
        return ()

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
