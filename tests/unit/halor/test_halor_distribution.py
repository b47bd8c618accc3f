from __future__ import annotations

import logging

import numpy as np
import pytest

from fedscale_halor.halor.distribution import (
    DEFAULT_HISTORY,
    GlobalDistribution,
    KeptRound,
    protocol_groups,
    total_variation,
)


def test_nothing_to_resample_toward_before_the_first_update() -> None:
    distribution = GlobalDistribution(num_classes=3)
    assert distribution.current() is None
    assert distribution.history == DEFAULT_HISTORY == 5


def test_single_round_is_normalized_to_sum_one() -> None:
    distribution = GlobalDistribution(num_classes=4)
    distribution.update(1, np.array([2, 6, 0, 2]))
    current = distribution.current()
    assert current is not None
    np.testing.assert_allclose(current, [0.2, 0.6, 0.0, 0.2])
    assert current.sum() == pytest.approx(1.0)


def test_window_of_five_forgets_the_sixth_round_back() -> None:
    distribution = GlobalDistribution(num_classes=3, history=5)
    distribution.update(1, np.array([100, 0, 0]))
    for round_index in range(2, 6):
        distribution.update(round_index, np.array([0, 1, 1]))
    # Rounds 1..5: [100, 0, 0] + 4·[0, 1, 1] = [100, 4, 4], total 108.
    np.testing.assert_allclose(distribution.current(), np.array([100, 4, 4]) / 108)
    distribution.update(6, np.array([0, 1, 1]))
    # Round 1 left the window: rounds 2..6 sum to [0, 5, 5].
    np.testing.assert_allclose(distribution.current(), [0.0, 0.5, 0.5])
    assert distribution.rounds_in_window == (2, 3, 4, 5, 6)


def test_keep_leaves_the_distribution_and_the_window_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    distribution = GlobalDistribution(num_classes=2, history=2)
    distribution.update(1, np.array([1, 0]))
    distribution.update(2, np.array([0, 1]))
    before = distribution.current()
    with caplog.at_level(logging.INFO, logger="fedscale_halor.halor.distribution"):
        distribution.keep(3, "too few clients for the ring")
    np.testing.assert_array_equal(distribution.current(), before)
    assert distribution.rounds_in_window == (1, 2)
    assert distribution.kept_rounds == (KeptRound(3, "too few clients for the ring"),)
    assert "too few clients for the ring" in caplog.text
    # The kept round did not age the window: round 4 pushes out round 1 only.
    distribution.update(4, np.array([0, 1]))
    assert distribution.rounds_in_window == (2, 4)
    np.testing.assert_allclose(distribution.current(), [0.0, 1.0])


def test_keep_before_any_update_still_means_no_distribution() -> None:
    distribution = GlobalDistribution(num_classes=2)
    distribution.keep(0, "protocol failed")
    assert distribution.current() is None


def test_current_and_stored_histograms_are_independent_of_caller_arrays() -> None:
    distribution = GlobalDistribution(num_classes=2)
    histogram = np.array([3.0, 1.0])
    distribution.update(0, histogram)
    histogram[0] = 1000.0
    current = distribution.current()
    assert current is not None
    current[0] = 5.0
    np.testing.assert_allclose(distribution.current(), [0.75, 0.25])


@pytest.mark.parametrize(("histogram", "message"), [
    (np.array([1, 2]), "histogram_sum must be a vector of 3"),
    (np.array([[1, 2, 3]]), "histogram_sum must be a vector of 3"),
    (np.array([1.0, -1.0, 2.0]), "histogram_sum contains negative"),
    (np.array([1.0, np.nan, 2.0]), "histogram_sum contains NaN"),
    (np.array([1.0, np.inf, 2.0]), "histogram_sum contains NaN or infinity"),
    (np.array([0, 0, 0]), "counts no sample"),
    (np.array(["a", "b", "c"]), "histogram_sum must hold numbers"),
])
def test_bad_histograms_are_refused_by_name(histogram: np.ndarray, message: str) -> None:
    distribution = GlobalDistribution(num_classes=3)
    with pytest.raises((ValueError, TypeError), match=message):
        distribution.update(0, histogram)


def test_rounds_must_move_forward() -> None:
    distribution = GlobalDistribution(num_classes=2)
    distribution.update(3, np.array([1, 1]))
    with pytest.raises(ValueError, match="round_index 3"):
        distribution.update(3, np.array([1, 1]))
    with pytest.raises(ValueError, match="round_index 2"):
        distribution.keep(2, "late")


@pytest.mark.parametrize(("num_classes", "history", "message"), [(0, 5, "num_classes"), (3, 0, "history")])
def test_constructor_arguments_are_checked(num_classes: int, history: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GlobalDistribution(num_classes=num_classes, history=history)


def test_total_variation_by_hand() -> None:
    # ½(|0.5 − 0| + |0.5 − 0.5| + |0 − 0.5|) = 0.5
    assert total_variation(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])) == pytest.approx(0.5)
    assert total_variation(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0
    assert total_variation(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    # Counts are normalized first: [1, 3] is [0.25, 0.75].
    assert total_variation(np.array([1, 3]), np.array([0.25, 0.75])) == pytest.approx(0.0)


def test_window_converges_to_the_true_distribution() -> None:
    true_counts = np.array([50, 30, 20])
    rng = np.random.default_rng(0)
    distribution = GlobalDistribution(num_classes=3, history=5)
    for round_index in range(5):
        distribution.update(round_index, rng.multinomial(200, true_counts / true_counts.sum()))
    current = distribution.current()
    assert current is not None
    assert total_variation(current, true_counts) < 0.05


@pytest.mark.parametrize(("p", "q", "message"), [
    (np.array([0.5, 0.5]), np.array([1.0, 0.0, 0.0]), "p and q must be vectors of the same length"),
    (np.array([np.nan, 1.0]), np.array([0.5, 0.5]), "p contains NaN"),
    (np.array([0.5, 0.5]), np.array([-0.5, 1.5]), "q contains negative"),
    (np.array([0.0, 0.0]), np.array([0.5, 0.5]), "p has no mass"),
])
def test_total_variation_refuses_bad_input(p: np.ndarray, q: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        total_variation(p, q)


@pytest.mark.parametrize(("clients", "group_size", "sizes"), [
    (12, 4, [4, 4, 4]),  # even split
    (10, 3, [3, 3, 4]),  # a tail of 1 joins the group before it
    (11, 3, [3, 3, 5]),  # a tail of 2 as well: a ring needs 3
    (13, 5, [5, 5, 3]),  # a tail of 3 is a ring of its own
    (7, 100, [7]),  # fewer clients than a group: one group
])
def test_groups_cover_every_client_once_and_fold_a_short_tail(clients: int, group_size: int,
                                                              sizes: list[int]) -> None:
    ids = [3 * client + 1 for client in range(clients)]  # ids need not be contiguous

    groups = protocol_groups(ids, group_size, seed=233)

    assert [len(group) for group in groups] == sizes
    assert sorted(client for group in groups for client in group) == ids
    assert all(list(group) == sorted(group) for group in groups)


def test_groups_follow_from_the_seed_alone() -> None:
    ids = list(range(30))

    first = protocol_groups(ids, 10, seed=5)

    assert protocol_groups(list(reversed(ids)), 10, seed=5) == first  # the order the ids come in does not matter
    assert protocol_groups(ids, 10, seed=6) != first
    assert first != (tuple(range(10)), tuple(range(10, 20)), tuple(range(20, 30)))  # shuffled, not cut in order


def test_fewer_than_three_clients_make_one_group_that_cannot_form_a_ring() -> None:
    assert protocol_groups([4, 9], 3, seed=0) == ((4, 9),)
    assert protocol_groups([], 3, seed=0) == ()


@pytest.mark.parametrize(("ids", "group_size", "message"), [
    ([1, 2, 3], 2, "group_size must be at least 3"),
    ([1, 1, 2], 3, "distinct"),
])
def test_groups_refuse_bad_arguments(ids: list[int], group_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        protocol_groups(ids, group_size, seed=0)
