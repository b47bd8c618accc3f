"""The selectors behind the seam choose exactly the clients recorded in the golden fixture, round for round, whether
registered from a mapping or from columns and with the feasible ids as lists or numpy arrays."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.unit.selection import selector_choices_scenario as scenario


@pytest.fixture(scope="module")
def golden() -> dict[str, list[list[int]]]:
    return json.loads(scenario.FIXTURE.read_text())


COLUMNS = {"register": scenario.register_columns, "feasible_form": scenario.numpy_feasible}

RUNS: dict[str, Callable[[], list[list[int]]]] = {
    "oort_durations_known": lambda: scenario.run_oort(True),
    "oort_durations_unknown": lambda: scenario.run_oort(False),
    "random": scenario.run_random,
    "availability": scenario.run_availability,
}
COLUMN_RUNS: dict[str, Callable[[], list[list[int]]]] = {
    "oort_durations_known": lambda: scenario.run_oort(True, **COLUMNS),
    "oort_durations_unknown": lambda: scenario.run_oort(False, **COLUMNS),
    "random": lambda: scenario.run_random(feasible_form=scenario.numpy_feasible),
    "availability": lambda: scenario.run_availability(**COLUMNS),
}


def _assert_same_rounds(got: list[list[int]], want: list[list[int]]) -> None:
    assert len(got) == len(want)
    for round_index, (picked, expected) in enumerate(zip(got, want, strict=True), start=1):
        assert picked == expected, f"round {round_index} differs"
        assert all(type(client) is int for client in picked)


@pytest.mark.parametrize("name", list(RUNS))
def test_choices_match_the_golden_fixture(golden: dict[str, list[list[int]]], name: str) -> None:
    _assert_same_rounds(RUNS[name](), golden[name])


@pytest.mark.parametrize("name", list(COLUMN_RUNS))
def test_choices_from_columns_and_numpy_feasible_ids_match_the_golden_fixture(
        golden: dict[str, list[list[int]]], name: str) -> None:
    _assert_same_rounds(COLUMN_RUNS[name](), golden[name])
