"""The state of one cohort of a job, and how cohorts beyond the first are checkpointed.

Cohort 0's model, strategy state, version and clock are the checkpoint's own files and record (so a one-cohort
job's checkpoint is the plain job's). Every further cohort adds ``cohort_<i>.safetensors`` (its model),
``cohort_<i>_strategy.safetensors`` (its server-optimizer state, when it has any) and its line in ``cohorts.json``:
its version, clock, participants and members. Selectors, as in a one-cohort job, start afresh on resume.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from safetensors.torch import load, save

from fedscale_halor.aggregation.base import Strategy
from fedscale_halor.plugin.round import SavedFiles
from fedscale_halor.selection.base import ClientSelector, distinct_sorted
from fedscale_halor.server.planning import RoundPlanner
from fedscale_halor.types import Weights

COHORTS_FILE = "cohorts.json"


@dataclass
class Cohort:
    index: int
    members: tuple[int, ...]
    weights: Weights
    version: int
    planner: RoundPlanner
    selector: ClientSelector
    strategy: Strategy
    participants: int  # its share of the job's participants per round, as its planner plans it
    # the members as one ascending int64 array: what selection takes each round, with no per-round conversion of a
    # million Python ints
    member_ids: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.set_members(self.members)

    def set_members(self, members: Sequence[int]) -> None:
        self.members = tuple(members)
        self.member_ids = distinct_sorted(np.asarray(self.members, dtype=np.int64))

    def set_participants(self, count: int) -> None:
        if count != self.participants:
            self.planner.set_participants(count)
            self.participants = count

    def branch(self, index: int, members: Sequence[int]) -> Cohort:
        """A new cohort that starts where this one stands: its model, version, clock, optimizer and selector
        state (each then goes its own way)."""
        return Cohort(index=index, members=tuple(members), weights=self.weights, version=self.version,
                      planner=copy.deepcopy(self.planner), selector=copy.deepcopy(self.selector),
                      strategy=copy.deepcopy(self.strategy), participants=self.participants)


def model_file(index: int) -> str:
    return f"cohort_{index}.safetensors"


def strategy_file(index: int) -> str:
    return f"cohort_{index}_strategy.safetensors"


def cohort_files(cohorts: Sequence[Cohort]) -> dict[str, bytes]:
    """The checkpoint files of the cohorts beyond the first (none for a one-cohort job)."""
    if len(cohorts) == 1:
        return {}
    record = [{"index": cohort.index, "version": cohort.version, "clock_s": cohort.planner.now_s,
               "participants": cohort.participants, "members": list(cohort.members)} for cohort in cohorts]
    files = {COHORTS_FILE: (json.dumps({"cohorts": record}) + "\n").encode()}
    for cohort in cohorts[1:]:
        files[model_file(cohort.index)] = save(_plain(cohort.weights))
        state = cohort.strategy.state_dict()
        if state:
            files[strategy_file(cohort.index)] = save(_plain(state))
    return files


def checkpoint_file_names(cohort_count: int) -> tuple[str, ...]:
    names = [COHORTS_FILE]
    for index in range(1, cohort_count):
        names += [model_file(index), strategy_file(index)]
    return tuple(names)


def restore_cohorts(first: Cohort, files: SavedFiles) -> list[Cohort]:
    """The job's cohorts from a checkpoint whose cohort 0 ``first`` is already restored."""
    record = files.read(COHORTS_FILE, _parse_record, "a cohorts record (JSON with one entry per cohort)")
    if record is None:
        return [first]
    cohorts = [first]
    first.set_members(record[0]["members"])
    first.set_participants(record[0]["participants"])
    for entry in record[1:]:
        index = entry["index"]
        weights = files.read(model_file(index), load, f"cohort {index}'s model (safetensors)")
        if weights is None:
            raise ValueError(f"the checkpoint's {COHORTS_FILE} names cohort {index} but has no {model_file(index)}")
        cohort = first.branch(index, entry["members"])
        cohort.weights, cohort.version = weights, entry["version"]
        cohort.planner.restore(entry["clock_s"])
        cohort.set_participants(entry["participants"])
        strategy_state = files.read(strategy_file(index), load, f"cohort {index}'s strategy state (safetensors)")
        cohort.strategy.load_state_dict(strategy_state or {})
        cohorts.append(cohort)
    return cohorts


def _parse_record(data: bytes) -> list[Mapping[str, object]]:
    entries = json.loads(data)["cohorts"]
    for position, entry in enumerate(entries):
        if entry["index"] != position:
            raise ValueError(f"entry {position} is cohort {entry['index']}")
        int(entry["version"]), float(entry["clock_s"]), int(entry["participants"])
        if not all(isinstance(client, int) for client in entry["members"]):
            raise TypeError(f"cohort {position}'s members are not client ids")
    return entries


def _plain(tensors: Weights) -> Weights:
    return {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
