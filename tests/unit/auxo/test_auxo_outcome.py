"""The fit of a round's cohorts to the planted groups, worked out by hand."""

from __future__ import annotations

import pytest

from fedscale_halor.auxo.outcome import cohort_purity, view_top1
from fedscale_halor.types import EvalResult, RoundMetrics


def _row(cohort: int, view_members: dict[int, int], view_tests: dict[int, EvalResult] | None = None,
         test: EvalResult | None = None) -> RoundMetrics:
    return RoundMetrics(round=7, clock_s=0.0, wall_time_s=0.0, participants=(), completed=0, train_loss=0.0,
                        learning_rate=0.1, test=test, cohort=cohort, view_members=view_members,
                        view_tests=view_tests or {})


def test_purity_counts_each_cohorts_majority_group() -> None:
    # Prepare: cohort 0 holds 9 of group 0 and 1 of group 1; cohort 1 holds 2 of group 0 and 8 of group 1
    rows = [_row(0, {0: 9, 1: 1}), _row(1, {0: 2, 1: 8})]

    # Execute / Assert: (9 + 8) / 20
    assert cohort_purity(rows) == pytest.approx(0.85)


def test_a_cohort_of_one_group_reports_its_plain_result_for_that_group() -> None:
    # Prepare: every member in group 1, tested on 50 samples with 40 right
    row = _row(0, {1: 12}, test=EvalResult(num_samples=50, top1_correct=40))

    # Execute / Assert
    assert view_top1(row) == {1: pytest.approx(0.8)}


def test_a_mixed_cohort_reports_each_view_it_was_tested_on() -> None:
    row = _row(0, {0: 3, 1: 5}, view_tests={0: EvalResult(num_samples=10, top1_correct=3),
                                            1: EvalResult(num_samples=20, top1_correct=15)})

    assert view_top1(row) == {0: pytest.approx(0.3), 1: pytest.approx(0.75)}


def test_a_round_without_tests_is_refused_with_the_round_and_cohort_named() -> None:
    with pytest.raises(ValueError, match="round 7, cohort 2"):
        view_top1(_row(2, {0: 3, 1: 5}))
