from __future__ import annotations

import numpy as np
import pytest

from fedscale_halor.halor.resampling import RESAMPLING_MODES, resample_positions, target_counts
from fedscale_halor.seeding import numpy_rng

COUNTS = np.array([10, 5, 0, 2])
GLOBAL = np.array([0.1, 0.4, 0.3, 0.2])


def labels_with_counts(counts: np.ndarray, seed: int = 0) -> np.ndarray:
    """A client's labels holding ``counts`` of each class, in a shuffled order as real partitions are."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(labels)


# --- target_counts -----------------------------------------------------------------------------------------------


def test_under_keeps_the_pivot_whole_and_scales_the_rest() -> None:
    # g / n over the client's classes {0, 1, 3}: 0.1/10 = 0.01, 0.4/5 = 0.08, 0.2/2 = 0.1 → pivot class 3, t_3 = 2.
    # t_0 = min(10, floor(0.1/0.2 · 2)) = min(10, 1) = 1; t_1 = min(5, floor(0.4/0.2 · 2)) = min(5, 4) = 4;
    # class 2 is absent from the client, t_2 = 0.
    targets = target_counts(COUNTS, GLOBAL, "under")
    np.testing.assert_array_equal(targets, [1, 4, 0, 2])
    assert targets.dtype == np.int64


def test_under_counts_float_noise_as_whole() -> None:
    # g / n: 0.1/1 = 0.1 and 0.3/3 = 0.1 (0.0999… in floats) → pivot class 0 kept whole, t_0 = 1.
    # t_1 = floor(0.3/0.1 · 1) = floor(3) = 3, although 0.3/0.1 is 2.9999999999999996 in floats.
    np.testing.assert_array_equal(target_counts(np.array([1, 3]), np.array([0.1, 0.3]), "under"), [1, 3])


def test_under_pivot_ties_give_the_same_counts() -> None:
    # g / n: 0.5/8 = 0.0625, 0.25/4 = 0.0625, 0.25/6 ≈ 0.0417 → pivot class 0 (first of the tie), t_0 = 8.
    # t_1 = floor(0.25/0.5 · 8) = 4 (= n_1, as the tie implies); t_2 = floor(0.25/0.5 · 8) = 4.
    np.testing.assert_array_equal(target_counts(np.array([8, 4, 6]), np.array([0.5, 0.25, 0.25]), "under"),
                                  [8, 4, 4])


def test_under_drops_classes_the_global_distribution_lacks() -> None:
    # g / n: 0.5/3, 0/3, 0.5/3 → pivot class 0, t_0 = 3; t_1 = floor(0/0.5 · 3) = 0; t_2 = floor(0.5/0.5 · 3) = 3.
    np.testing.assert_array_equal(target_counts(np.array([3, 3, 3]), np.array([0.5, 0.0, 0.5]), "under"), [3, 0, 3])


def test_under_floors_down_to_zero_but_never_empties_the_client() -> None:
    # g / n: 0.01/100 = 0.0001, 0.99/1 = 0.99 → pivot class 1, t_1 = 1; t_0 = floor(0.01/0.99 · 1) = 0.
    np.testing.assert_array_equal(target_counts(np.array([100, 1]), np.array([0.01, 0.99]), "under"), [0, 1])


def test_over_keeps_the_size_with_largest_remainders() -> None:
    # N = 17 over classes {0, 1, 3}, g restricted [0.1, 0.4, 0.2] / 0.7 = [1/7, 4/7, 2/7].
    # Quotas 17/7 = 2.4286, 68/7 = 9.7143, 34/7 = 4.8571 → floors 2, 9, 4 (sum 15), 2 samples left.
    # Largest remainders: class 3 (0.8571), class 1 (0.7143) → [2, 10, 0, 5].
    targets = target_counts(COUNTS, GLOBAL, "over")
    np.testing.assert_array_equal(targets, [2, 10, 0, 5])
    assert targets.sum() == COUNTS.sum()
    assert targets.dtype == np.int64


def test_over_breaks_remainder_ties_by_class_order() -> None:
    # N = 5, g = [0.5, 0.5]: quotas 2.5, 2.5 → floors 2, 2, one left, equal remainders → class 0.
    np.testing.assert_array_equal(target_counts(np.array([4, 1]), np.array([0.5, 0.5]), "over"), [3, 2])
    # N = 3, g = [0.5, 0.25, 0.25]: quotas 1.5, 0.75, 0.75 → floors 1, 0, 0, two left → classes 1 and 2.
    np.testing.assert_array_equal(target_counts(np.array([1, 1, 1]), np.array([0.5, 0.25, 0.25]), "over"),
                                  [1, 1, 1])


def test_over_gives_nothing_to_classes_without_global_weight() -> None:
    # N = 10 over {0, 1, 2}, g restricted [0.6, 0, 0.4] → quotas 6, 0, 4.
    np.testing.assert_array_equal(target_counts(np.array([4, 4, 2]), np.array([0.6, 0.0, 0.4]), "over"), [6, 0, 4])


def test_off_returns_the_clients_own_counts() -> None:
    targets = target_counts(COUNTS, GLOBAL, "off")
    np.testing.assert_array_equal(targets, COUNTS)
    assert targets is not COUNTS


@pytest.mark.parametrize("mode", ["under", "over"])
def test_global_distribution_silent_on_the_clients_classes_falls_back_to_own_counts(mode: str) -> None:
    np.testing.assert_array_equal(target_counts(np.array([0, 4, 2]), np.array([1.0, 0.0, 0.0]), mode), [0, 4, 2])


@pytest.mark.parametrize("mode", RESAMPLING_MODES)
def test_single_class_client_keeps_all_its_samples(mode: str) -> None:
    np.testing.assert_array_equal(target_counts(np.array([0, 7, 0]), np.array([0.3, 0.3, 0.4]), mode), [0, 7, 0])


@pytest.mark.parametrize("mode", RESAMPLING_MODES)
def test_client_without_data_gets_nothing(mode: str) -> None:
    np.testing.assert_array_equal(target_counts(np.array([0, 0, 0]), np.array([0.3, 0.3, 0.4]), mode), [0, 0, 0])


def test_whole_float_counts_are_accepted() -> None:
    np.testing.assert_array_equal(target_counts(np.array([10.0, 5.0, 0.0, 2.0]), GLOBAL, "under"), [1, 4, 0, 2])


@pytest.mark.parametrize(("counts", "distribution", "mode", "message"), [
    (COUNTS, np.array([0.1, np.nan, 0.3, 0.2]), "under", "global_distribution contains NaN"),
    (COUNTS, np.array([0.1, -0.4, 0.3, 0.2]), "over", "global_distribution contains negative"),
    (COUNTS, np.array([0.0, 0.0, 0.0, 0.0]), "under", "global_distribution has no mass"),
    (COUNTS, np.array([0.5, 0.5]), "under", "global_distribution must be a vector of 4"),
    (np.array([10, -5, 0, 2]), GLOBAL, "under", "class_counts contains negative"),
    (np.array([10.0, np.nan, 0.0, 2.0]), GLOBAL, "over", "class_counts contains NaN"),
    (np.array([10.5, 5.0, 0.0, 2.0]), GLOBAL, "over", "class_counts must hold whole numbers"),
    (np.array([[10, 5, 0, 2]]), GLOBAL, "under", "class_counts must be a vector"),
    (COUNTS, GLOBAL, "sideways", "mode must be one of under, over, off"),
])
def test_bad_target_inputs_are_refused_by_name(counts: np.ndarray, distribution: np.ndarray, mode: str,
                                               message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_counts(counts, distribution, mode)


def test_targets_follow_their_rules_on_random_clients() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        counts = rng.integers(0, 40, size=6) * rng.integers(0, 2, size=6)
        distribution = rng.dirichlet(np.full(6, 0.5)) * rng.integers(0, 2, size=6)
        if distribution.sum() == 0:
            continue
        has_weight = (counts > 0) & (distribution > 0)
        under = target_counts(counts, distribution, "under")
        over = target_counts(counts, distribution, "over")
        assert np.all(under <= counts)
        assert np.all(under[counts == 0] == 0) and np.all(over[counts == 0] == 0)
        assert over.sum() == counts.sum()
        if has_weight.any():
            assert np.all(under[~has_weight] == 0) and np.all(over[~has_weight] == 0)
            assert np.any((under == counts) & has_weight), "the pivot class is kept whole"
        if counts.sum() > 0:
            assert under.sum() > 0


# --- resample_positions ------------------------------------------------------------------------------------------


def test_under_positions_realize_the_targets_without_repeats() -> None:
    labels = labels_with_counts(COUNTS)
    targets = target_counts(COUNTS, GLOBAL, "under")
    positions = resample_positions(labels, targets, "under", np.random.default_rng(1))
    np.testing.assert_array_equal(np.bincount(labels[positions], minlength=4), [1, 4, 0, 2])
    assert positions.dtype == np.int64
    assert np.all((positions >= 0) & (positions < labels.size))
    assert np.unique(positions).size == positions.size
    assert np.all(np.diff(positions) > 0), "ascending"


def test_over_repeats_only_classes_that_need_more_than_they_have() -> None:
    labels = labels_with_counts(COUNTS)
    targets = target_counts(COUNTS, GLOBAL, "over")  # [2, 10, 0, 5] from [10, 5, 0, 2]
    positions = resample_positions(labels, targets, "over", np.random.default_rng(1))
    np.testing.assert_array_equal(np.bincount(labels[positions], minlength=4), [2, 10, 0, 5])
    assert np.all((positions >= 0) & (positions < labels.size))
    assert np.all(np.diff(positions) >= 0), "ascending, repeats adjacent"
    class_0 = positions[labels[positions] == 0]
    assert np.unique(class_0).size == class_0.size, "2 of 10 needs no repeat"
    assert np.unique(positions[labels[positions] == 1]).size < 10, "10 from 5 must repeat"


def test_over_without_shortfall_draws_without_replacement() -> None:
    labels = labels_with_counts(np.array([6, 6]))
    positions = resample_positions(labels, np.array([4, 6]), "over", np.random.default_rng(3))
    assert np.unique(positions).size == 10


def test_off_returns_every_position_in_order() -> None:
    labels = labels_with_counts(COUNTS)
    positions = resample_positions(labels, COUNTS, "off", np.random.default_rng(0))
    np.testing.assert_array_equal(positions, np.arange(17))


def test_same_seed_same_positions_other_seed_other_positions() -> None:
    counts = np.array([120, 80])
    labels = labels_with_counts(counts)
    targets = np.array([60, 40])

    def draw(round_index: int) -> np.ndarray:
        return resample_positions(labels, targets, "under", numpy_rng(11, round_index, "resample", 4))

    np.testing.assert_array_equal(draw(2), draw(2))
    assert not np.array_equal(draw(2), draw(3))


def test_single_class_client_under_and_over() -> None:
    labels = np.array([1, 1, 1])
    for mode in ("under", "over"):
        targets = target_counts(np.bincount(labels, minlength=3), np.array([0.2, 0.2, 0.6]), mode)
        positions = resample_positions(labels, targets, mode, np.random.default_rng(0))
        np.testing.assert_array_equal(positions, [0, 1, 2])


@pytest.mark.parametrize("mode", RESAMPLING_MODES)
def test_tiny_client_still_gets_a_sample(mode: str) -> None:
    labels = np.array([2])
    targets = target_counts(np.bincount(labels, minlength=3), np.array([0.9, 0.05, 0.05]), mode)
    np.testing.assert_array_equal(resample_positions(labels, targets, mode, np.random.default_rng(0)), [0])


def test_client_without_data_gets_no_positions() -> None:
    positions = resample_positions(np.zeros(0, dtype=np.int64), np.zeros(3, dtype=np.int64), "under",
                                   np.random.default_rng(0))
    assert positions.size == 0 and positions.dtype == np.int64


@pytest.mark.parametrize("mode", RESAMPLING_MODES)
def test_resampled_clients_are_never_empty(mode: str) -> None:
    rng = np.random.default_rng(5)
    for _ in range(100):
        counts = rng.integers(0, 6, size=5) * rng.integers(0, 2, size=5)
        if counts.sum() == 0:
            continue
        labels = labels_with_counts(counts)
        targets = target_counts(counts, rng.dirichlet(np.full(5, 0.3)), mode)
        positions = resample_positions(labels, targets, mode, rng)
        assert positions.size > 0
        np.testing.assert_array_equal(np.bincount(labels[positions], minlength=5), targets)


@pytest.mark.parametrize(("labels", "targets", "mode", "message"), [
    (np.array([0, 0, 1]), np.array([3, 1]), "under", "exceeds the client's class counts"),
    (np.array([0, 0, 1]), np.array([1, 1, 1]), "over", r"asks for classes \[2\]"),
    (np.array([0, 0, 1]), np.array([1, 1]), "off", "must equal the client's class counts"),
    (np.array([0, 3, 1]), np.array([1, 1]), "under", "labels_of_client holds label 3"),
    (np.array([0, -1, 1]), np.array([1, 1]), "under", "labels_of_client contains negative"),
    (np.array([0, 0, 1]), np.array([1, -1]), "under", "targets contains negative"),
    (np.array([0.0, np.nan]), np.array([1, 1]), "under", "labels_of_client contains NaN"),
    (np.array([0, 0, 1]), np.array([1, 1]), "both", "mode must be one of"),
])
def test_bad_position_inputs_are_refused_by_name(labels: np.ndarray, targets: np.ndarray, mode: str,
                                                 message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resample_positions(labels, targets, mode, np.random.default_rng(0))
