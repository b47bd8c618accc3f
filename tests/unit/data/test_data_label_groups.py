"""Planted label groups: clients of group g (client id mod label_groups) see every label shifted by
g * (num_classes // label_groups), in training, in their label counts and in their test view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data_federated import synthetic_job

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.data.federated import FederatedDataset, group_label_maps


def test_the_label_maps_shift_each_group_by_its_share_of_the_classes() -> None:
    # 4 classes in 2 groups: group 1 adds 2 modulo 4; in 3 groups, 4 // 3 = 1 per group
    assert [m.tolist() for m in group_label_maps(2, 4)] == [[0, 1, 2, 3], [2, 3, 0, 1]]
    assert [m.tolist() for m in group_label_maps(3, 4)] == [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1]]
    assert [m.tolist() for m in group_label_maps(1, 4)] == [[0, 1, 2, 3]]


def test_odd_clients_train_and_are_tested_on_shifted_labels(tmp_path: Path) -> None:
    # Prepare
    plain = FederatedDataset.from_job(synthetic_job(tmp_path), working_dir=tmp_path)
    grouped = FederatedDataset.from_job(synthetic_job(tmp_path, label_groups=2), working_dir=tmp_path)

    # Assert: even clients unchanged, odd ones shifted by 2 (mod 4), test views likewise
    for client in (2, 3):
        raw = plain.client_labels(client)
        expected = raw if client % 2 == 0 else (raw + 2) % 4
        assert grouped.client_labels(client).tolist() == expected.tolist()
        assert grouped.client_data(client).labels.tolist() == expected.tolist()
        assert grouped.label_counts(client).tolist() == np.bincount(expected, minlength=4).tolist()
    assert (grouped.test_views, grouped.test_view(3), grouped.test_view(4)) == ((0, 1), 1, 0)
    raw_test = plain.test_shard(0, 1)[1]
    assert grouped.test_shard(0, 1, view=0)[1].tolist() == raw_test.tolist()
    assert grouped.test_shard(0, 1, view=1)[1].tolist() == ((raw_test + 2) % 4).tolist()
    expected_counts = sum(np.bincount(grouped.client_labels(client), minlength=4) for client in grouped.client_ids)
    assert grouped.partition_label_counts.tolist() == expected_counts.tolist()


def test_more_groups_than_classes_and_an_unknown_view_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"label_groups 5: expected 1 to num_classes \(4\)"):
        FederatedDataset.from_job(synthetic_job(tmp_path, label_groups=5), working_dir=tmp_path)
    grouped = FederatedDataset.from_job(synthetic_job(tmp_path, label_groups=2), working_dir=tmp_path)
    with pytest.raises(ValueError, match="test view 2 of synthetic: it has 2 views"):
        grouped.test_shard(0, 1, view=2)
