from __future__ import annotations

import numpy as np
import pytest

from fedscale_halor.data.label_shares import (
    draw_label_shares,
    halor_label_counts,
    remove_client_classes,
    removed_class_count,
    samples_per_client,
)
from fedscale_halor.data.partition import (
    DIRICHLET_LABEL_SPLIT,
    HALOR_DIRICHLET,
    IID,
    REAL_CLIENTS,
    partition_indices,
    partition_rng,
)

# With alpha this large every share is 1/C to within about 0.001, so floor(S / C) is exact for the S used below.
NEAR_UNIFORM = 1e6


def class_counts(labels: np.ndarray, partitions: list[np.ndarray], num_classes: int) -> np.ndarray:
    return np.array([np.bincount(labels[part], minlength=num_classes) for part in partitions])


def four_classes(per_class: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(4), per_class))


def test_label_counts_are_the_floor_of_the_share_capped_by_the_class() -> None:
    # Prepare
    shares = np.array([[0.5, 0.25, 0.25], [0.1, 0.9, 0.0]])

    # Execute
    counts = halor_label_counts(shares, per_client=8, pool_sizes=np.array([3, 10, 10]))

    # Assert: 8 * 0.5 = 4 is capped at class 0's 3 samples; 8 * 0.1 = 0.8 rounds down to nothing
    assert counts.tolist() == [[3, 2, 2], [0, 7, 0]]


def test_every_client_holds_used_samples_up_to_the_floor() -> None:
    # Prepare: 4 classes of 30 samples, shares of about 1/4 each
    labels = four_classes()

    # Execute
    partitions = partition_indices(labels, 5, HALOR_DIRICHLET, seed=1, dirichlet_alpha=NEAR_UNIFORM,
                                   samples_per_client=22)

    # Assert: floor(22 / 4) = 5 of each class, so 20 of the 22 asked for
    assert class_counts(labels, partitions, 4).tolist() == [[5, 5, 5, 5]] * 5
    assert all(np.all(np.diff(part) > 0) for part in partitions)


def test_clients_draw_from_the_whole_pool_so_a_small_class_is_shared_not_exhausted() -> None:
    # Prepare: class 0 has 3 samples, the others 30; each client wants floor(42 / 4) = 10 per class
    labels = np.concatenate([np.zeros(3, dtype=np.int64), np.repeat(np.arange(1, 4), 30)])

    # Execute
    partitions = partition_indices(labels, 6, HALOR_DIRICHLET, seed=2, dirichlet_alpha=NEAR_UNIFORM,
                                   samples_per_client=42)

    # Assert: every client gets all 3 samples of class 0 (capped), 10 of the others: 33 each, 198 held of 93
    assert class_counts(labels, partitions, 4).tolist() == [[3, 10, 10, 10]] * 6
    assert all(part[:3].tolist() == [0, 1, 2] for part in partitions)
    assert sum(len(part) for part in partitions) == 198


def test_label_counts_follow_the_clients_dirichlet_draws() -> None:
    # Prepare
    labels = np.random.default_rng(3).integers(0, 6, size=600)
    pool_sizes = np.bincount(labels, minlength=6)
    shares = draw_label_shares(12, 6, 0.3, 0, partition_rng(9, HALOR_DIRICHLET))

    # Execute
    partitions = partition_indices(labels, 12, HALOR_DIRICHLET, seed=9, dirichlet_alpha=0.3, samples_per_client=50)

    # Assert
    assert np.array_equal(class_counts(labels, partitions, 6), halor_label_counts(shares, 50, pool_sizes))
    assert np.allclose(shares.sum(axis=1), 1.0)


def test_small_alpha_skews_clients_yet_keeps_their_sizes_close() -> None:
    # Prepare
    labels = np.repeat(np.arange(10), 500)

    # Execute
    partitions = partition_indices(labels, 40, HALOR_DIRICHLET, seed=4, dirichlet_alpha=0.1, samples_per_client=100)

    # Assert: each client loses under one sample per class to the floor; Dir(0.1) puts most of a client on a class
    sizes = np.array([len(part) for part in partitions])
    assert np.all((sizes > 90) & (sizes <= 100))
    top_share = class_counts(labels, partitions, 10).max(axis=1) / sizes
    assert top_share.mean() > 0.45


def test_halor_partition_is_fixed_by_the_seed() -> None:
    # Prepare
    labels = four_classes(per_class=50)

    # Execute
    first, again, other = (partition_indices(labels, 8, HALOR_DIRICHLET, seed=seed, samples_per_client=30)
                           for seed in (5, 5, 6))

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_samples_per_client_zero_splits_the_training_set_evenly() -> None:
    # Prepare
    labels = four_classes()

    # Execute: 120 samples over 4 clients make 30 per client, floor(30 / 4) = 7 per class
    partitions = partition_indices(labels, 4, HALOR_DIRICHLET, seed=1, dirichlet_alpha=NEAR_UNIFORM)

    # Assert
    assert class_counts(labels, partitions, 4).tolist() == [[7, 7, 7, 7]] * 4


def test_used_samples_rule() -> None:
    assert samples_per_client(25, num_samples=103, num_clients=10, batch_size=9) == 25
    assert samples_per_client(0, num_samples=103, num_clients=10, batch_size=9) == 10
    assert samples_per_client(-1, num_samples=103, num_clients=10, batch_size=9) == 10
    with pytest.raises(ValueError, match=r"^used_samples 0 splits the 5 training samples evenly over total_clients"):
        samples_per_client(0, num_samples=5, num_clients=10, batch_size=9)


def test_removed_class_count_follows_refl() -> None:
    assert removed_class_count(0, 0.0, 10) == 0
    assert removed_class_count(2, 0.0, 10) == 2
    assert removed_class_count(3, 0.5, 10) == 3  # filter_class wins over the ratio
    assert removed_class_count(0, 0.7, 10) == 3  # keeps 70 %
    assert removed_class_count(0, 0.75, 10) == 2  # round(2.5) is 2: it keeps 8 of 10
    assert removed_class_count(0, 1.0, 10) == 0  # Halor's configs set 1: keep every class
    with pytest.raises(ValueError, match=r"^filter_class 10 removes 10 of the 10 classes"):
        removed_class_count(10, 0.0, 10)
    with pytest.raises(ValueError, match=r"^filter_class_ratio 0.04 removes 10 of the 10 classes"):
        removed_class_count(0, 0.04, 10)


def test_remove_client_classes_drops_exactly_the_removed_classes() -> None:
    # Prepare
    labels = np.array([0, 1, 2, 0, 1, 2])
    partitions = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    kept = np.array([[True, False, True], [False, True, True]])

    # Execute
    filtered = remove_client_classes(partitions, labels, kept)

    # Assert
    assert [part.tolist() for part in filtered] == [[0, 2], [4, 5]]


def test_halor_filter_zeroes_shares_before_the_draw_so_clients_keep_their_size() -> None:
    # Prepare
    labels = four_classes()

    # Execute: 2 of 4 classes removed per client, the other two get floor(23 / 2) = 11 each
    partitions = partition_indices(labels, 6, HALOR_DIRICHLET, seed=3, dirichlet_alpha=NEAR_UNIFORM,
                                   samples_per_client=23, removed_classes=2)

    # Assert
    counts = class_counts(labels, partitions, 4)
    assert [sorted(row.tolist()) for row in counts] == [[0, 0, 11, 11]] * 6
    assert len({tuple(np.flatnonzero(row)) for row in counts}) > 1  # the removed classes differ between clients


def test_filter_on_a_finished_split_removes_whole_classes_from_each_client() -> None:
    # Prepare
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(5), 40))
    unfiltered = partition_indices(labels, 6, DIRICHLET_LABEL_SPLIT, seed=8, dirichlet_alpha=5.0)

    # Execute
    filtered = partition_indices(labels, 6, DIRICHLET_LABEL_SPLIT, seed=8, dirichlet_alpha=5.0, removed_classes=2)

    # Assert: the split is the same; each client keeps every sample of at most 3 classes and none of the others
    for before, after in zip(unfiltered, filtered, strict=True):
        kept_classes = np.unique(labels[after])
        assert len(kept_classes) <= 3
        assert np.array_equal(after, before[np.isin(labels[before], kept_classes)])


@pytest.mark.parametrize("scheme", [IID, REAL_CLIENTS])
def test_schemes_without_class_filters_refuse_one(scheme: int) -> None:
    labels = four_classes()

    with pytest.raises(ValueError, match="takes no class filter"):
        partition_indices(labels, 4, scheme, seed=0, owners=np.zeros(len(labels), dtype=np.int64),
                          removed_classes=1)


def test_removing_every_class_is_refused() -> None:
    with pytest.raises(ValueError, match="removing 4 of 4 classes"):
        partition_indices(four_classes(), 4, HALOR_DIRICHLET, seed=0, removed_classes=4)


def test_num_classes_widens_the_shares_to_absent_classes() -> None:
    # Prepare: only classes 0-3 occur, but the shares span 8 classes, so about half the quota has no samples
    labels = four_classes()

    # Execute
    partitions = partition_indices(labels, 5, HALOR_DIRICHLET, seed=1, dirichlet_alpha=NEAR_UNIFORM,
                                   samples_per_client=44, num_classes=8)

    # Assert: floor(44 / 8) = 5 per present class
    assert class_counts(labels, partitions, 4).tolist() == [[5, 5, 5, 5]] * 5
