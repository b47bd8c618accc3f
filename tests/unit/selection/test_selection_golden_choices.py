"""The selectors behind the seam choose exactly the clients recorded in the golden fixture, round for round."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.unit.selection import selector_choices_scenario as scenario


@pytest.fixture(scope="module")
def golden() -> dict[str, list[list[int]]]:
    return json.loads(scenario.FIXTURE.read_text())


RUNS: dict[str, Callable[[], list[list[int]]]] = {
    "oort_durations_known": lambda: scenario.run_oort(True),
    "oort_durations_unknown": lambda: scenario.run_oort(False),
    "random": scenario.run_random,
    "availability": scenario.run_availability,
}


def _assert_same_rounds(got: list[list[int]], want: list[list[int]]) -> None:
    assert len(got) == len(want)
    for round_index, (picked, expected) in enumerate(zip(got, want, strict=True), start=1):
        assert picked == expected, f"round {round_index} differs"
        assert all(type(client) is int for client in picked)


@pytest.mark.parametrize("name", list(RUNS))
def test_choices_match_the_golden_fixture(golden: dict[str, list[list[int]]], name: str) -> None:
    _assert_same_rounds(RUNS[name](), golden[name])
