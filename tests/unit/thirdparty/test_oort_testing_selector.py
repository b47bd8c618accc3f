"""Oort's testing selector: the Hoeffding cohort size and per-category selection (greedy and MILP)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import oort
import oort.testing_selector
import pytest

HAS_MILP = importlib.util.find_spec("scipy") is not None and oort.testing_selector._load_milp() is not None
needs_milp = pytest.mark.skipif(not HAS_MILP, reason="scipy.optimize.milp is not installed")

# Two categories; clients 0 and 1 are slow (100 ms per sample), clients 2 and 3 fast (1 ms per sample).
COUNTS = [[4, 0], [0, 4], [2, 2], [1, 1]]
PROFILES = [[100.0, 1e9], [100.0, 1e9], [1.0, 1e9], [1.0, 1e9]]


def _covers(assignment: dict[object, list[int]], counts: dict[object, list[int]], request: list[int]) -> bool:
    totals = np.sum([assignment[c] for c in assignment], axis=0)
    within_capacity = all(np.all(np.array(assignment[c]) <= np.array(counts[c])) for c in assignment)
    return within_capacity and bool(np.all(totals >= request))


def test_deviation_target_gives_the_hand_computed_hoeffding_number() -> None:
    selector = oort.create_testing_selector()

    # n0 = R² ln(1 / (1 - 0.8)) / (2 ε²) = 100² · ln 5 / 50 = 321.8876; n = n0 · 1001 / (1000 + n0) = 243.7495.
    assert oort.hoeffding_sample_size(5, 100, 1000, confidence=0.8) == pytest.approx(243.7495, abs=1e-4)
    # Over-committed by 1.1: ceil(268.12) = 269.
    assert selector.select_by_deviation(5, 100, 1000, confidence=0.8, overcommit=1.1) == 269
    assert selector.select_by_deviation(5, 100, 10) == 10  # never more than the population


def test_hoeffding_number_equals_oorts_closed_form() -> None:
    total, dev, capacity, confidence = 5000, 2.0, 60.0, 0.95
    closed_form = (total + 1.0) / (1.0 - 2 * total / math.log(1 - confidence) * (dev / capacity) ** 2)

    assert oort.hoeffding_sample_size(dev, capacity, total, confidence) == pytest.approx(closed_form)


def test_greedy_covers_the_request_taking_the_fastest_coverage_first() -> None:
    selector = oort.create_testing_selector(COUNTS, PROFILES, model_size=0)

    assignment, test_duration, _ = selector.select_by_category([4, 4])

    # Fast client 2 covers [2, 2], fast client 3 [1, 1]; the slow clients 0 and 1 add one sample each.
    assert assignment == {2: [2, 2], 3: [1, 1], 0: [1, 0], 1: [0, 1]}
    assert test_duration == pytest.approx(0.1)
    assert _covers(assignment, dict(enumerate(COUNTS)), [4, 4])


def test_greedy_respects_client_ids_of_a_mapping_and_transfer_time() -> None:
    counts = {"a": [5, 5], "b": [10, 10]}
    profiles = {"a": [1.0, 10.0], "b": [1.0, 1000.0]}  # "a" needs 100 kbit / 10 kbit/s = 10 s to receive the model
    selector = oort.create_testing_selector(counts, profiles, model_size=100)

    result = selector.select_by_category([3, 3], max_num_clients=1)

    assert result.selected_clients == ["b"]
    assert result.assignment == {"b": [3, 3]}
    assert result.test_duration == pytest.approx(0.006 + 0.1)


def test_requests_that_cannot_be_met_are_refused() -> None:
    selector = oort.create_testing_selector(COUNTS, PROFILES)

    with pytest.raises(ValueError, match="too few samples"):
        selector.select_by_category([8, 4])
    with pytest.raises(ValueError, match="3 clients"):
        selector.select_by_category([4, 4], max_num_clients=3)
    with pytest.raises(ValueError, match="2 non-negative counts"):
        selector.select_by_category([1, 1, 1])
    with pytest.raises(ValueError, match="data_distribution"):
        oort.create_testing_selector().select_by_category([1])


@needs_milp
def test_milp_meets_a_budget_the_greedy_heuristic_cannot() -> None:
    selector = oort.create_testing_selector(COUNTS, PROFILES, model_size=0)

    assignment, test_duration, _ = selector.select_by_category([4, 4], max_num_clients=3, greedy_heuristic=False)

    assert len(assignment) <= 3
    assert _covers(assignment, dict(enumerate(COUNTS)), [4, 4])
    assert test_duration == pytest.approx(0.2)  # two samples on each slow client


@needs_milp
def test_milp_is_feasible_and_no_slower_than_greedy() -> None:
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 20, size=(8, 3))
    profiles = np.column_stack([rng.uniform(1, 50, 8), rng.uniform(100, 1000, 8)])
    selector = oort.create_testing_selector(counts, profiles, model_size=200)
    request = [15, 15, 15]

    greedy = selector.select_by_category(request)
    exact = selector.select_by_category(request, greedy_heuristic=False)

    assert _covers(exact.assignment, dict(enumerate(counts.tolist())), request)
    assert exact.test_duration <= greedy.test_duration + 1e-9


def test_missing_milp_solver_falls_back_to_greedy_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oort.testing_selector, "_load_milp", lambda: None)
    selector = oort.create_testing_selector(COUNTS, PROFILES, model_size=0)

    with pytest.warns(RuntimeWarning, match="greedy heuristic"):
        fallback = selector.select_by_category([4, 4], greedy_heuristic=False)

    assert fallback.assignment == selector.select_by_category([4, 4]).assignment
