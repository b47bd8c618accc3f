from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.data import partition_cache
from fedscale_halor.data.partition import (
    DIRICHLET_LABEL_SPLIT,
    HALOR_DIRICHLET,
    IID,
    NON_IID_UNIFORM,
    REAL_CLIENTS,
    partition_indices,
)
from fedscale_halor.data.partition_cache import (
    cache_path,
    cached_partition,
    load_partition,
    partition_key,
    save_partition,
)
from fedscale_halor.data.store import PreparedDataset, open_dataset


@pytest.fixture
def dataset(synthetic_dir: Callable[..., Path]) -> PreparedDataset:
    return open_dataset("synthetic", synthetic_dir(num_train=200, num_test=20, num_owners=6))


def refuse_to_partition(*args: object, **kwargs: object) -> list[np.ndarray]:
    raise AssertionError("the partition should have come from the cache")


def test_key_changes_with_what_the_partition_depends_on(dataset: PreparedDataset) -> None:
    base = partition_key(dataset, 10, DIRICHLET_LABEL_SPLIT, 1, 0.5, 1.95)

    assert partition_key(dataset, 10, DIRICHLET_LABEL_SPLIT, 1, 0.5, 1.95) == base
    assert partition_key(dataset, 11, DIRICHLET_LABEL_SPLIT, 1, 0.5, 1.95) != base
    assert partition_key(dataset, 10, DIRICHLET_LABEL_SPLIT, 2, 0.5, 1.95) != base
    assert partition_key(dataset, 10, DIRICHLET_LABEL_SPLIT, 1, 0.1, 1.95) != base
    assert partition_key(dataset, 10, IID, 1, 0.5, 1.95) != base


def test_key_ignores_values_the_scheme_does_not_use(dataset: PreparedDataset) -> None:
    assert partition_key(dataset, 10, IID, 1, 0.5, 1.95) == partition_key(dataset, 10, IID, 1, 0.1, 3.0)
    assert partition_key(dataset, 10, REAL_CLIENTS, 1, 0.5, 1.95) == partition_key(dataset, 99, REAL_CLIENTS, 7,
                                                                                    0.5, 1.95)


def test_key_covers_halor_settings_and_class_filters(dataset: PreparedDataset) -> None:
    # Prepare
    def key(scheme: int, **settings: int) -> str:
        return partition_key(dataset, 10, scheme, 1, 0.5, 1.95, **settings)

    base = key(HALOR_DIRICHLET, num_classes=4, samples_per_client=30, removed_classes=1)

    # Assert: each setting Halor's scheme reads changes the key
    assert key(HALOR_DIRICHLET, num_classes=4, samples_per_client=30, removed_classes=1) == base
    assert key(HALOR_DIRICHLET, num_classes=4, samples_per_client=31, removed_classes=1) != base
    assert key(HALOR_DIRICHLET, num_classes=5, samples_per_client=30, removed_classes=1) != base
    assert key(HALOR_DIRICHLET, num_classes=4, samples_per_client=30, removed_classes=2) != base
    assert partition_key(dataset, 10, HALOR_DIRICHLET, 1, 0.1, 1.95, num_classes=4, samples_per_client=30,
                         removed_classes=1) != base
    # 0 samples per client means the 200 training samples split over 10 clients: the same partition as 20
    assert key(HALOR_DIRICHLET, samples_per_client=0) == key(HALOR_DIRICHLET, samples_per_client=20)
    # ... and the schemes that ignore a setting do not duplicate their file for it
    assert key(DIRICHLET_LABEL_SPLIT, samples_per_client=30) == key(DIRICHLET_LABEL_SPLIT, samples_per_client=5)
    assert key(NON_IID_UNIFORM, removed_classes=2, num_classes=4) != key(NON_IID_UNIFORM)
    assert key(IID, removed_classes=2, num_classes=4) == key(IID)


def test_halor_partition_is_cached_with_its_settings(dataset: PreparedDataset,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    first = cached_partition(dataset, 8, HALOR_DIRICHLET, 3, num_classes=4, samples_per_client=25, removed_classes=1)
    monkeypatch.setattr(partition_cache, "partition_indices", refuse_to_partition)

    # Execute
    second = cached_partition(dataset, 8, HALOR_DIRICHLET, 3, num_classes=4, samples_per_client=25,
                              removed_classes=1)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    with pytest.raises(AssertionError, match="from the cache"):
        cached_partition(dataset, 8, HALOR_DIRICHLET, 3, num_classes=4, samples_per_client=25, removed_classes=2)


def test_save_and_load_round_trip_keeps_empty_clients(tmp_path: Path) -> None:
    partitions = [np.array([4, 7]), np.array([], dtype=np.int64), np.array([0])]

    save_partition(tmp_path / "p.npz", partitions)
    loaded = load_partition(tmp_path / "p.npz")

    assert loaded is not None
    assert [part.tolist() for part in loaded] == [[4, 7], [], [0]]
    assert [path.name for path in tmp_path.iterdir()] == ["p.npz"]


def test_second_request_is_served_from_the_cache(dataset: PreparedDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cached_partition(dataset, 8, DIRICHLET_LABEL_SPLIT, 3, dirichlet_alpha=0.3)
    monkeypatch.setattr(partition_cache, "partition_indices", refuse_to_partition)

    second = cached_partition(dataset, 8, DIRICHLET_LABEL_SPLIT, 3, dirichlet_alpha=0.3)

    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    expected = partition_indices(np.asarray(dataset.train_labels), 8, DIRICHLET_LABEL_SPLIT, 3, dirichlet_alpha=0.3)
    assert all(np.array_equal(a, b) for a, b in zip(first, expected, strict=True))


def test_corrupt_cache_file_is_recomputed(dataset: PreparedDataset) -> None:
    path = cache_path(dataset, partition_key(dataset, 5, IID, 0, 0.5, 1.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a zip file")

    partitions = cached_partition(dataset, 5, IID, 0)

    assert sum(len(part) for part in partitions) == 200
    reloaded = load_partition(path)
    assert reloaded is not None and len(reloaded) == 5


def test_real_clients_follow_the_prepared_owners(dataset: PreparedDataset) -> None:
    partitions = cached_partition(dataset, 1, REAL_CLIENTS, 0)

    owners = np.asarray(dataset.train_owners)
    for client, part in enumerate(partitions):
        assert np.all(owners[part] == client)
    assert sum(len(part) for part in partitions) == 200


def test_a_truncated_cache_is_computed_again_with_a_warning(dataset: PreparedDataset,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    first = cached_partition(dataset, 5, IID, 0)
    path = cache_path(dataset, partition_key(dataset, 5, IID, 0, 0.5, 1.95))
    path.write_bytes(path.read_bytes()[:100])

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.data.partition_cache"):
        again = cached_partition(dataset, 5, IID, 0)

    # Assert
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert caplog.messages == [f"partition cache {path}: unreadable (BadZipFile: File is not a zip file); "
                               f"computing the partition again"]
    assert load_partition(path, dataset.num_train) is not None


@pytest.mark.parametrize(("flat", "offsets", "problem"), [
    ([0, 1, 200], [0, 2, 3], "it names rows outside the 200 training samples"),
    ([0, 1, 2], [0, 2, 1, 3], "its offsets do not split its 3 rows into clients"),
    ([0, 1, 2], [0, 2], "its offsets do not split its 3 rows into clients"),
])
def test_a_cache_of_impossible_rows_is_computed_again(dataset: PreparedDataset, caplog: pytest.LogCaptureFixture,
                                                      flat: list[int], offsets: list[int], problem: str) -> None:
    # Prepare
    path = cache_path(dataset, partition_key(dataset, 5, IID, 0, 0.5, 1.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, flat=np.array(flat, dtype=np.int64), offsets=np.array(offsets, dtype=np.int64))

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.data.partition_cache"):
        partitions = cached_partition(dataset, 5, IID, 0)

    # Assert
    assert sum(len(part) for part in partitions) == 200
    assert caplog.messages == [f"partition cache {path}: {problem}; computing the partition again"]
