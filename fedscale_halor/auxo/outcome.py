"""How well a round's cohorts fit the planted label groups, from the round's metrics (one row per cohort)."""

from __future__ import annotations

from collections.abc import Sequence

from fedscale_halor.types import RoundMetrics


def view_top1(metrics: RoundMetrics) -> dict[int, float]:
    """Top-1 of the cohort's model on each test view its members hold (one view: the cohort's plain result)."""
    if metrics.view_tests:
        return {view: result.top1 for view, result in metrics.view_tests.items()}
    if metrics.test is None or len(metrics.view_members) != 1:
        raise ValueError(f"round {metrics.round}, cohort {metrics.cohort}: no test result per view")
    return {view: metrics.test.top1 for view in metrics.view_members}


def cohort_purity(rows: Sequence[RoundMetrics]) -> float:
    """The share of clients in their cohort's majority group (the view most of its members hold)."""
    majority = sum(max(metrics.view_members.values()) for metrics in rows)
    return majority / sum(sum(metrics.view_members.values()) for metrics in rows)
