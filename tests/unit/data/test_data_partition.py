from __future__ import annotations

import numpy as np
import pytest

from fedscale_halor.data.partition import (
    BALANCED,
    DIRICHLET_LABEL_SPLIT,
    IID,
    NON_IID_UNIFORM,
    REAL_CLIENTS,
    ZIPF,
    even_sizes,
    fill_empty_clients,
    filter_clients,
    group_by_client,
    partition_indices,
)

GENERATED_SCHEMES = (IID, NON_IID_UNIFORM, ZIPF, BALANCED, DIRICHLET_LABEL_SPLIT)


def balanced_labels(num_classes: int, per_class: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def distinct_labels(labels: np.ndarray, partitions: list[np.ndarray]) -> np.ndarray:
    return np.array([len(np.unique(labels[part])) for part in partitions])


def max_class_share(labels: np.ndarray, partitions: list[np.ndarray]) -> np.ndarray:
    return np.array([np.bincount(labels[part]).max() / len(part) for part in partitions])


def test_even_sizes_puts_the_remainder_first() -> None:
    assert even_sizes(10, 4).tolist() == [3, 3, 2, 2]
    assert even_sizes(2, 4).tolist() == [1, 1, 0, 0]


def test_group_by_client_skips_unassigned_samples_and_sorts() -> None:
    groups = group_by_client(np.array([1, -1, 0, 1, 2]), num_clients=4)

    assert [group.tolist() for group in groups] == [[2], [0, 3], [4], []]


def test_fill_empty_clients_takes_from_the_largest_client() -> None:
    assignment = np.array([0, 0, 0, 0, 1, -1])

    filled = fill_empty_clients(assignment, num_clients=4, rng=np.random.default_rng(0))

    assert np.bincount(filled[filled >= 0], minlength=4).tolist() == [2, 1, 1, 1]
    assert filled[4] == 1 and filled[5] == -1


@pytest.mark.parametrize("scheme", GENERATED_SCHEMES)
def test_no_sample_goes_to_two_clients_and_every_client_gets_one(scheme: int) -> None:
    labels = balanced_labels(num_classes=10, per_class=30)

    partitions = partition_indices(labels, 25, scheme, seed=7, dirichlet_alpha=0.05)

    assert len(partitions) == 25
    flat = np.concatenate(partitions)
    assert len(flat) == len(np.unique(flat))
    assert flat.min() >= 0 and flat.max() < len(labels)
    assert min(len(part) for part in partitions) >= 1
    assert all(np.all(np.diff(part) > 0) for part in partitions)


@pytest.mark.parametrize("scheme", [IID, ZIPF, BALANCED, DIRICHLET_LABEL_SPLIT])
def test_schemes_other_than_non_iid_use_every_sample(scheme: int) -> None:
    labels = balanced_labels(num_classes=10, per_class=30)

    partitions = partition_indices(labels, 12, scheme, seed=3)

    assert sorted(np.concatenate(partitions).tolist()) == list(range(len(labels)))


@pytest.mark.parametrize("scheme", GENERATED_SCHEMES)
def test_same_seed_same_partition_other_seed_different(scheme: int) -> None:
    labels = balanced_labels(num_classes=10, per_class=40)

    first = partition_indices(labels, 20, scheme, seed=11)
    again = partition_indices(labels, 20, scheme, seed=11)
    other = partition_indices(labels, 20, scheme, seed=12)

    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_iid_sizes_differ_by_at_most_one() -> None:
    labels = balanced_labels(num_classes=10, per_class=11)[:103]

    sizes = [len(part) for part in partition_indices(labels, 10, IID, seed=0)]

    assert sorted(sizes) == [10] * 7 + [11] * 3


def test_fewer_samples_than_clients_leaves_the_surplus_clients_empty() -> None:
    labels = np.array([0, 1, 2])

    sizes = [len(part) for part in partition_indices(labels, 5, IID, seed=0)]

    assert sorted(sizes) == [0, 0, 1, 1, 1]


def test_dirichlet_with_small_alpha_is_far_more_skewed_than_iid() -> None:
    labels = balanced_labels(num_classes=10, per_class=200)

    iid = [partition_indices(labels, 20, IID, seed=seed) for seed in range(5)]
    skewed = [partition_indices(labels, 20, DIRICHLET_LABEL_SPLIT, seed=seed, dirichlet_alpha=0.1) for seed in range(5)]

    # IID clients of 100 samples see (nearly) all 10 labels with a top share near 0.15;
    # Dir(0.1) concentrates each client on a few labels (about 4.5, top share about 0.65).
    assert np.mean([distinct_labels(labels, partitions).mean() for partitions in iid]) >= 9.5
    assert np.mean([distinct_labels(labels, partitions).mean() for partitions in skewed]) <= 6.5
    assert np.mean([max_class_share(labels, partitions).mean() for partitions in iid]) < 0.25
    assert np.mean([max_class_share(labels, partitions).mean() for partitions in skewed]) > 0.45


def test_dirichlet_with_large_alpha_is_close_to_iid() -> None:
    labels = balanced_labels(num_classes=10, per_class=200)

    partitions = partition_indices(labels, 10, DIRICHLET_LABEL_SPLIT, seed=2, dirichlet_alpha=1000.0)

    sizes = np.array([len(part) for part in partitions])
    assert np.all(np.abs(sizes - 200) <= 20)
    assert max_class_share(labels, partitions).max() < 0.15


def test_zipf_sizes_decrease_in_expectation() -> None:
    labels = balanced_labels(num_classes=10, per_class=100)
    num_clients, exponent = 10, 1.95

    mean_sizes = np.mean([[len(part) for part in partition_indices(labels, num_clients, ZIPF, seed=seed,
                                                                     zipf_param=exponent)]
                          for seed in range(40)], axis=0)

    weights = np.arange(1, num_clients + 1) ** -exponent
    expected_first = 1 + (len(labels) - num_clients) * weights[0] / weights.sum()
    assert np.all(np.diff(mean_sizes[:5]) < 0)
    assert mean_sizes[0] == pytest.approx(expected_first, rel=0.05)
    assert mean_sizes[0] > 10 * mean_sizes[-1]


def test_balanced_clients_have_equal_sizes_and_few_labels() -> None:
    labels = balanced_labels(num_classes=10, per_class=100)

    partitions = partition_indices(labels, 20, BALANCED, seed=1, shards_per_client=2)

    assert {len(part) for part in partitions} == {50}
    # Each 25-sample shard of label-sorted data spans at most two labels.
    assert distinct_labels(labels, partitions).max() <= 4
    assert distinct_labels(labels, partitions).mean() < 3.5


def test_non_iid_uniform_gives_each_client_its_classes_in_equal_sizes() -> None:
    labels = balanced_labels(num_classes=10, per_class=100)

    partitions = partition_indices(labels, 20, NON_IID_UNIFORM, seed=4, classes_per_client=2)

    # 20 clients x 2 classes = 4 clients per class, each taking 100 / 4 = 25 of it.
    assert {len(part) for part in partitions} == {50}
    assert distinct_labels(labels, partitions).tolist() == [2] * 20
    assert sorted(np.concatenate(partitions).tolist()) == list(range(1000))


def test_real_mapping_follows_owners_and_ignores_num_clients() -> None:
    labels = np.array([0, 1, 0, 1, 0])
    owners = np.array([2, 0, 2, 1, 0])

    partitions = partition_indices(labels, 99, REAL_CLIENTS, seed=0, owners=owners)

    assert [part.tolist() for part in partitions] == [[1, 4], [3], [0, 2]]


def test_real_mapping_without_owners_is_an_error() -> None:
    with pytest.raises(ValueError, match="owners"):
        partition_indices(np.array([0, 1]), 2, REAL_CLIENTS, seed=0)


def test_unknown_scheme_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="unknown partition scheme 7"):
        partition_indices(np.array([0, 1]), 2, 7, seed=0)


def test_filter_clients_keeps_original_ids() -> None:
    partitions = [np.arange(size) for size in (0, 3, 5, 10)]

    kept = filter_clients(partitions, filter_less=3, filter_more=5)
    unbounded = filter_clients(partitions, filter_less=1, filter_more=0)

    assert sorted(kept) == [1, 2]
    assert np.array_equal(kept[2], np.arange(5))
    assert sorted(unbounded) == [1, 2, 3]
