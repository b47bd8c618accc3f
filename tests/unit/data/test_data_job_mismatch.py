"""A job whose settings do not fit its data set is a ConfigError, the message the command line shows as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset


def synthetic_job(tmp_path: Path, owners: int = 0, **overrides: object) -> JobConfig:
    """12 IID clients of 20 samples over 240 synthetic samples in <tmp_path>/data/synthetic."""
    data_dir = tmp_path / "data" / "synthetic"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "synthetic.json").write_text(json.dumps(
        {"num_train": 240, "num_test": 50, "num_classes": 4, "input_shape": [1, 4, 4], "num_owners": owners}))
    values: dict[str, object] = {"data_set": "synthetic", "data_dir": "", "total_clients": 12, "partitioning": -1,
                                 "num_participants": 2, "sample_seed": 5}
    return JobConfig(**{**values, **overrides})


def refusal(job: JobConfig, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        FederatedDataset.from_job(job, working_dir=tmp_path)
    return str(raised.value)


def test_a_filter_less_above_every_client_names_the_largest_client(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, filter_less=21), tmp_path) == (
        "filter_less=21 leaves no client of synthetic: the largest of its 12 clients holds 20 samples, the smallest "
        "20; lower filter_less to at most 20")


def test_a_filter_more_below_every_client_asks_to_raise_it(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, filter_less=5, filter_more=10), tmp_path) == (
        "filter_less=5 and filter_more=10 leaves no client of synthetic: the largest of its 12 clients holds 20 "
        "samples, the smallest 20; raise filter_more to at least 20")


def test_real_clients_of_a_data_set_without_owners_is_refused_before_partitioning(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, partitioning=0), tmp_path) == (
        "partitioning 0 uses the real clients of a data set, and synthetic has none; choose a generated partition "
        "(-1 IID, 1 non-IID uniform, 2 Zipf, 3 balanced, 8 Halor's Dirichlet, 9 Dirichlet label split)")


def test_fewer_classes_than_the_data_is_a_config_error(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, num_classes=3), tmp_path) == (
        "num_classes 3 is smaller than the 4 classes of synthetic; set it to 0 to take the data set's own")


def test_used_samples_clients_larger_than_the_data_say_what_to_change(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, used_samples=-1, batch_size=500), tmp_path) == (
        "used_samples -1 gives clients of batch_size + 1 = 501 samples, more than the 240 training samples of "
        "synthetic; lower batch_size or set used_samples >= 0")


def test_a_class_filter_removing_every_class_is_a_config_error(tmp_path: Path) -> None:
    assert refusal(synthetic_job(tmp_path, partitioning=9, filter_class=4), tmp_path) == (
        "filter_class 4 removes 4 of the 4 classes from every client, which leaves a client no class; keep at least "
        "one")
