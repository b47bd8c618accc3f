"""Oort's training selector chooses exactly the clients recorded in the golden fixture, round for round, whether the
clients are registered one by one or in bulk and whatever form the feasible ids come in."""

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


WAYS = {
    "one_by_one": {},
    "bulk": {"register": scenario.register_in_bulk},
    "bulk_numpy_feasible": {"register": scenario.register_in_bulk, "feasible_form": scenario.numpy_feasible},
}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(("name", "config", "scheme"), scenario.TRACES, ids=[t[0] for t in scenario.TRACES])
def test_choices_match_the_golden_fixture(golden: dict[str, Any], name: str, config: str, scheme: str,
                                          way: str) -> None:
    _assert_same_trace(scenario.run_trace(config, scheme, **WAYS[way]), golden[name])
