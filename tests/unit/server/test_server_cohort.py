"""Cohort state: a branch starts where its parent stands and then goes its own way; the checkpoint files of the
cohorts beyond the first restore every cohort exactly, and a damaged record is refused with its file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.components import build_strategy
from fedscale_halor.plugin.cohorts import CohortLayout
from fedscale_halor.selection.random_selector import RandomSelector
from fedscale_halor.server.checkpoint import CheckpointState, save_checkpoint, saved_files
from fedscale_halor.server.cohort import COHORTS_FILE, Cohort, cohort_files, restore_cohorts
from fedscale_halor.server.planning import EveryoneCompletes

_Parsed = TypeVar("_Parsed")


def _cohort(weights: dict[str, torch.Tensor], members: tuple[int, ...] = (0, 1, 2, 3)) -> Cohort:
    return Cohort(index=0, members=members, weights=weights, version=0, planner=EveryoneCompletes(4),
                  selector=RandomSelector(1), strategy=build_strategy(JobConfig(gradient_policy="fed-yogi")),
                  participants=4)


class _Files:
    """Hand-written SavedFiles over a dict."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = files

    def read(self, name: str, parse: Callable[[bytes], _Parsed], what: str) -> _Parsed | None:
        return parse(self._files[name]) if name in self._files else None


def test_a_branch_copies_the_clock_and_plans_its_own_share() -> None:
    # Prepare
    parent = _cohort({"w": torch.ones(2)})
    parent.planner.now_s = 12.5
    parent.version = 3

    # Execute
    child = parent.branch(1, (1, 3))
    child.set_participants(2)
    child.planner.now_s += 1.0

    # Assert
    assert (child.index, child.members, child.version, child.participants) == (1, (1, 3), 3, 2)
    assert child.planner.selection_size() == 2 and parent.planner.selection_size() == 4
    assert parent.planner.now_s == 12.5 and child.planner.now_s == 13.5
    assert child.strategy is not parent.strategy and child.selector is not parent.selector


def test_selection_reads_the_members_as_one_ascending_array() -> None:
    # Prepare: members in the order a layout lists them, with a repeat
    cohort = _cohort({"w": torch.ones(2)}, members=(7, 2, 9, 2))

    # Execute
    cohort.set_members((5, 1, 3))

    # Assert: the array follows the members; selection draws from it as it did from the sorted members
    assert cohort.member_ids.dtype == np.int64 and cohort.member_ids.tolist() == [1, 3, 5]
    assert cohort.selector.select(1, cohort.member_ids, 2) == cohort.selector.select(1, [1, 3, 5], 2)


def test_a_one_cohort_job_writes_no_cohort_files() -> None:
    assert cohort_files([_cohort({"w": torch.ones(2)})]) == {}


def test_the_cohort_files_restore_every_cohort_exactly(tmp_path: Path) -> None:
    # Prepare: two cohorts with their own models, versions, clocks and shares
    first = _cohort({"w": torch.tensor([1.0, 2.0])}, members=(0, 2))
    second = first.branch(1, (1, 3))
    second.weights, second.version = {"w": torch.tensor([-1.5, 0.25])}, 7
    second.planner.now_s = 40.0
    second.set_participants(1)
    files = cohort_files([first, second])

    # Execute: a fresh cohort 0 restored as the aggregator restores it, then the others from the files
    fresh = _cohort({"w": torch.tensor([1.0, 2.0])})
    restored = restore_cohorts(fresh, _Files(files))

    # Assert
    assert [cohort.members for cohort in restored] == [(0, 2), (1, 3)]
    assert restored[1].version == 7 and restored[1].planner.now_s == 40.0 and restored[1].participants == 1
    assert restored[1].weights["w"].tolist() == [-1.5, 0.25]
    assert restored[1].planner.selection_size() == 1


def test_a_damaged_cohorts_record_is_refused_with_its_file(tmp_path: Path) -> None:
    # Prepare: a real checkpoint whose cohorts.json names cohort 2 in first position
    files = {COHORTS_FILE: b'{"cohorts": [{"index": 2, "version": 1, "clock_s": 0, "participants": 2, '
                           b'"members": [0]}]}\n'}
    save_checkpoint(tmp_path, CheckpointState(1, 1, 0.0), {"w": torch.ones(1)}, plugin_files=files)

    # Execute / Assert
    with pytest.raises(Exception, match=rf"{COHORTS_FILE}.*not a cohorts record.*entry 0 is cohort 2"):
        restore_cohorts(_cohort({"w": torch.ones(1)}), saved_files(tmp_path))


@pytest.mark.parametrize(("members", "parents", "problem"), [
    (((0, 1), (1, 2)), {1: 0}, r"clients \[1\] are in two cohorts"),
    (((0,), (1,)), {1: 1}, "new cohort 1 cannot branch from cohort 1"),
])
def test_an_inconsistent_layout_is_refused(members: tuple[tuple[int, ...], ...], parents: dict[int, int],
                                           problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CohortLayout(members=members, parents=parents)
