"""How a job's clients form cohorts, each training its own model.

A job runs one or more cohorts. Each has its own model and version, server-optimizer state, selector state,
virtual clock and round counter, and its own members; in every round each cohort runs its round in turn, over its
members, with its share of the participants. A ``CohortPlugin`` decides the shares and, after a cohort's round,
the clients' cohorts: a new cohort starts as a copy of the cohort it branched from (its model, clock and optimizer
state), as Auxo's cohorts do when one splits. A plain job's plug-in is ``OneCohort``: every client in cohort 0, which
takes all the participants, so the round is the one-model round.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedscale_halor.plugin.round import SavedFiles
from fedscale_halor.types import TrainResult, Weights


@dataclass(frozen=True)
class CohortLayout:
    """The clients of every cohort after a change. ``members[i]``: cohort i's clients; cohorts beyond the current
    count are new, and ``parents`` names the cohort each new one starts as a copy of."""

    members: tuple[tuple[int, ...], ...]
    parents: Mapping[int, int]

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for cohort, clients in enumerate(self.members):
            overlap = seen.intersection(clients)
            if overlap:
                raise ValueError(f"cohort layout: clients {sorted(overlap)[:5]} are in two cohorts (again in {cohort})")
            seen.update(clients)
        for child, parent in self.parents.items():
            if not 0 <= parent < child < len(self.members):
                raise ValueError(f"cohort layout: new cohort {child} cannot branch from cohort {parent}")


class CohortPlugin(ABC):  # noqa: B024 - every hook has a default: one cohort that takes every participant
    #: the files this plug-in writes into each checkpoint (plain names, unique across the job's plug-ins)
    checkpoint_files: tuple[str, ...] = ()
    #: whether ``take_update`` reads each update's weights; if so, executors send every update on its own instead
    #: of summing them (aggregation/partial.py)
    takes_updates: bool = False

    def participants(self, round_index: int, cohort: int, cohort_sizes: Sequence[int], total: int) -> int:
        """How many of the job's ``total`` participants per round ``cohort`` gets; ``cohort_sizes``: every
        cohort's member count. Auxo's resource manager: an even share, at least one."""
        return max(1, total // len(cohort_sizes))

    def take_update(self, round_index: int, cohort: int, base_weights: Weights, result: TrainResult) -> None:
        """One client's update as it arrives, with its weights (which are not kept after the fold);
        ``base_weights``: the cohort's model the client trained from. Updates of an attempt of the round that
        fell short of the quorum come here too: only ``after_cohort_round``'s results were committed."""
        return None

    def after_cohort_round(self, round_index: int, cohort: int, members: Sequence[Sequence[int]],
                           results: Sequence[TrainResult]) -> CohortLayout | None:
        """After ``cohort``'s round is committed (``results``: its committed updates, without weights;
        ``members``: every cohort's clients): the new layout, or None to keep it."""
        return None

    def save(self) -> Mapping[str, bytes]:
        """The contents of ``checkpoint_files`` (a name may be left out)."""
        return {}

    def restore(self, files: SavedFiles) -> None:
        """Continue from a checkpoint's files."""
        return None


class OneCohort(CohortPlugin):
    """Every client in cohort 0, with all the participants: the plain job."""
