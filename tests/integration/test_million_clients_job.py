"""A job over a million registered clients runs on the columnar path: partition, registration, Oort's selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import config_from_mapping

CLIENTS = 1_000_000


@pytest.mark.slow
def test_a_million_client_job_selects_distinct_clients_from_all_of_them(tmp_path: Path) -> None:
    # Prepare: two samples of four features per client, Oort's selection, 50 clients per round
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "synthetic.json").write_text(json.dumps({"num_train": 2 * CLIENTS, "num_test": 100,
                                                         "input_shape": [4], "num_classes": 4}))
    cfg = config_from_mapping({"ps_ip": "127.0.0.1", "worker_ips": ["127.0.0.1:[1]"], "job_conf": [
        {"job_name": "million"}, {"data_set": "synthetic"}, {"data_dir": str(data_dir)}, {"model": "digits_mlp"},
        {"total_clients": CLIENTS}, {"partitioning": -1}, {"num_participants": 50}, {"rounds": 3},
        {"local_steps": 1}, {"batch_size": 2}, {"eval_interval": 3}, {"save_checkpoint": False},
        {"log_path": str(tmp_path / "logs")}, {"sample_mode": "oort"}]}, None)

    # Execute
    outcome = run_in_process(cfg, echo=False)

    # Assert: every round trained 50 distinct clients, drawn from the whole million
    assert [metrics.round for metrics in outcome.history] == [1, 2, 3]
    chosen = [set(metrics.participants) for metrics in outcome.history]
    assert all(len(clients) == 50 == metrics.completed for clients, metrics in zip(chosen, outcome.history,
                                                                                     strict=True))
    assert all(0 <= client < CLIENTS for clients in chosen for client in clients)
    assert max(client for clients in chosen for client in clients) > CLIENTS // 2
    final = outcome.history[-1].test
    assert final is not None and final.num_samples == 100
