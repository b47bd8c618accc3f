"""The example plug-in (docs/architecture.md) in real jobs: a pre-round exchange, a task hint and the executors'
choice of samples, in one process and over gRPC with forked executors, which end with the same model."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.launch.plugins import load_factory
from fedscale_halor.plugin.examples.median_cap import MedianCapFactory

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
SPEC = "fedscale_halor.plugin.examples.median_cap:MedianCapFactory"
CAP_LINE = re.compile(r"round (\d+): median cap: (\d+) clients report \[([\d, ]+)\] samples; each trains on at most "
                      r"(\d+)")
TRAINED_LINE = re.compile(r"round (\d+): median cap: trained on \[([\d, ]+)\] samples")


def _digits(tmp_path: Path, data_dir: Path, **overrides: object):
    # Zipf partitioning: clients of very different sizes, so the cap binds for half of them
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "rounds": 3, "eval_interval": 3,
                "total_clients": 30, "num_participants": 6, "local_steps": 3, "partitioning": 2,
                "plugins": [SPEC], **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


def _numbers(text: str) -> list[int]:
    return [int(number) for number in text.split(",")]


def test_each_round_caps_its_clients_at_the_median_of_their_reported_sizes(tmp_path: Path,
                                                                            digits_data_dir: Path) -> None:
    # Prepare
    cfg = _digits(tmp_path, digits_data_dir)
    dataset = FederatedDataset.from_job(cfg.job)
    sizes = {client: dataset.num_samples(client) for client in dataset.client_ids}

    # Execute
    outcome = run_in_process(cfg, timestamp="capped", echo=False)

    # Assert: the cap is the median of the sampled clients' own sizes, and each trained on min(size, cap)
    log = (outcome.run_dir / "aggregator.log").read_text()
    caps = {int(match[1]): (int(match[2]), _numbers(match[3]), int(match[4])) for match in CAP_LINE.finditer(log)}
    trained = {int(match[1]): _numbers(match[2]) for match in TRAINED_LINE.finditer(log)}
    assert sorted(caps) == sorted(trained) == [1, 2, 3]
    for metrics in outcome.history:
        reported = sorted(sizes[client] for client in metrics.participants)
        count, logged_sizes, cap = caps[metrics.round]
        assert (count, logged_sizes) == (6, reported)
        assert cap == int(np.median(reported))
        assert trained[metrics.round] == [min(sizes[client], cap) for client in metrics.participants]
    assert any(min(sizes[client] for client in metrics.participants) < max(sizes[client] for client in
               metrics.participants) for metrics in outcome.history)  # the cap had something to do


@pytest.mark.slow
def test_forked_executors_over_grpc_train_the_same_capped_model_as_one_process(tmp_path: Path,
                                                                               digits_data_dir: Path) -> None:
    in_process = run_in_process(_digits(tmp_path / "one", digits_data_dir), echo=False)
    forked = run_local(_digits(tmp_path / "grpc", digits_data_dir, worker_ips="127.0.0.1:[2]"), echo=False)

    assert in_process.final_weights.keys() == forked.final_weights.keys()
    assert all(torch.equal(in_process.final_weights[name], forked.final_weights[name])
               for name in in_process.final_weights)


def test_a_plugin_is_named_by_its_factory_and_a_wrong_name_is_refused_with_the_key(tmp_path: Path,
                                                                                     digits_data_dir: Path) -> None:
    assert isinstance(load_factory(SPEC), MedianCapFactory)
    with pytest.raises(ConfigError, match=r"job_conf.plugins: 'no_such_package.module:Factory': cannot import "
                                          r"no_such_package.module"):
        load_factory("no_such_package.module:Factory")
    with pytest.raises(ConfigError, match=r"job_conf.plugins: 'fedscale_halor.seeding:numpy_rng': "
                                          r"fedscale_halor.seeding has no PluginFactory named numpy_rng"):
        load_factory("fedscale_halor.seeding:numpy_rng")
    with pytest.raises(ConfigError, match="plugins"):
        _digits(tmp_path, digits_data_dir, plugins=["not a factory name"])
