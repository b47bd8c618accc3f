"""Oort's training selector chooses exactly the clients recorded in the golden fixture, round for round."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.thirdparty import oort_choices_scenario as scenario


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(scenario.FIXTURE.read_text())


def _assert_same_trace(trace: dict[str, Any], expected: dict[str, Any]) -> None:
    assert len(trace["rounds"]) == len(expected["rounds"])
    for round_index, (got, want) in enumerate(zip(trace["rounds"], expected["rounds"], strict=True), start=1):
        assert got == want, f"round {round_index} differs"
    assert {k: v for k, v in trace.items() if k != "rounds"} == {k: v for k, v in expected.items() if k != "rounds"}


@pytest.mark.parametrize(("name", "config", "scheme"), scenario.TRACES, ids=[t[0] for t in scenario.TRACES])
def test_choices_match_the_golden_fixture(golden: dict[str, Any], name: str, config: str, scheme: str) -> None:
    _assert_same_trace(scenario.run_trace(config, scheme), golden[name])
