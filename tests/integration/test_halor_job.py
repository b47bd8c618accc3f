"""Halor inside whole jobs: over real gRPC processes and over the memory transport, with every selector."""

import json
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.cli import main
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.halor.messages import HALOR_CODECS, MaskedHistograms, RevealedMasks
from fedscale_halor.halor.resampling import target_counts
from fedscale_halor.halor.server_plugin import saved_sizes, saved_window
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientUpdate, Completion, Envelope, PartialUpdate
from fedscale_halor.types import TrainResult

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def _halor_digits(tmp_path: Path, data_dir: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0, "rounds": 3,
                "eval_interval": 3, "total_clients": 30, "num_participants": 6, "local_steps": 3,
                "partitioning": 9, "dirichlet_alpha": 0.1, "halor": True, "halor_history": 1,
                "worker_ips": "127.0.0.1:[2]", **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[Completion]:
    """Every completion the aggregator's board receives, as decoded from the wire."""
    completions: list[Completion] = []
    original = WorkBoard.submit

    def recording_submit(board: WorkBoard, executor_id: str, completion: Completion) -> None:
        completions.append(completion)
        original(board, executor_id, completion)

    monkeypatch.setattr(WorkBoard, "submit", recording_submit)
    return completions


@pytest.mark.slow
def test_over_grpc_the_aggregator_gets_exact_sums_and_never_a_histogram(tmp_path: Path, digits_data_dir: Path,
                                                                         received: list[Completion]) -> None:
    # Prepare
    cfg = _halor_digits(tmp_path, digits_data_dir)

    # Execute: executors in their own processes, over gRPC
    outcome = run_local(cfg, timestamp="halor", echo=False)

    # Assert: each round's distribution is the normalized sum of the sampled clients' histograms (history 1)
    dataset = FederatedDataset.from_job(cfg.job)
    histograms = {client: dataset.label_counts(client) for client in dataset.client_ids}
    assert len(outcome.history) == 3
    for metrics in outcome.history:
        expected = np.sum([histograms[client] for client in metrics.participants], axis=0)
        assert metrics.class_distribution == pytest.approx(tuple(expected / expected.sum()))
    # ... and no masked word vector it received equals any client's histogram
    payloads = PayloadRegistry(HALOR_CODECS)
    answers = [payloads.unwrap(completion) for completion in received if isinstance(completion, Envelope)]
    vectors = [upload.words for answer in answers if isinstance(answer, MaskedHistograms) for upload in answer.uploads]
    vectors += [mask.words for answer in answers if isinstance(answer, RevealedMasks) for mask in answer.masks]
    assert len(vectors) >= 18  # 6 uploads in each of 3 rounds
    clear = {tuple(int(count) for count in histogram) for histogram in histograms.values()}
    assert not clear & set(vectors)
    log = (outcome.run_dir / "aggregator.log").read_text()
    assert "Halor sum over 6 of 6 sampled clients" in log


def _write_traces(folder: Path) -> Path:
    assert main(["traces", str(folder), "--clients", "30", "--seed", "0"]) == 0
    return folder


@pytest.mark.parametrize("selection", [
    {"sample_mode": "random"},
    {"sample_mode": "oort"},
    {"sample_mode": "random", "avail_priority": 1, "stale_update": 1},  # REFL
], ids=["random", "oort", "refl"])
@pytest.mark.parametrize("mode", ["under", "over"])
def test_every_selector_trains_on_the_resampled_counts(tmp_path: Path, digits_data_dir: Path,
                                                      received: list[Completion], selection: dict[str, object],
                                                      mode: str) -> None:
    # Prepare: device traces drive the virtual clock, as Oort and REFL need
    traces = _write_traces(tmp_path / "traces")
    cfg = _halor_digits(tmp_path, digits_data_dir, halor_resample=mode, rounds=3, worker_ips="127.0.0.1:[2]",
                        device_conf_file=str(traces / "client_device_capacity"),
                        device_avail_file=str(traces / "client_behave_trace"), **selection)

    # Execute
    outcome = run_in_process(cfg, echo=False)

    # Assert: from round 2 on, every client trained on exactly the counts its rule gives for the distribution the
    # round before the training (round r trains with the distribution computed at the start of round r)
    dataset = FederatedDataset.from_job(cfg.job)
    distribution = {metrics.round: metrics.class_distribution for metrics in outcome.history}
    assert all(distribution[round_index] is not None for round_index in distribution)
    updates = _trained(received)
    assert updates
    for result in updates:
        wanted = target_counts(dataset.label_counts(result.client_id), np.array(distribution[result.round]), mode)
        assert result.num_samples == int(wanted.sum()), (result.client_id, result.round)


def _trained(received: list[Completion]) -> list[TrainResult]:
    """Every client's result, sent on its own or in a partial sum."""
    return [*(completion.result for completion in received if isinstance(completion, ClientUpdate)),
            *(result for completion in received if isinstance(completion, PartialUpdate)
              for result in completion.results)]


def _true_histogram(dataset: FederatedDataset) -> np.ndarray:
    return np.sum([dataset.label_counts(client) for client in dataset.client_ids], axis=0)


def test_the_exact_distribution_is_the_true_histogram_of_all_clients_and_survives_a_resume(tmp_path: Path) -> None:
    # Prepare: 25 long-tailed synthetic clients in rings of 10 (10, 10 and 5), two executors on the memory transport
    data = tmp_path / "data"
    data.mkdir()
    (data / "synthetic.json").write_text(json.dumps({"num_train": 600, "num_test": 40, "input_shape": [1, 4, 4],
                                                     "class_zipf": 1.0}))
    settings = {"log_path": str(tmp_path / "logs"), "data_set": "synthetic", "data_dir": str(data),
                "model": "digits_mlp", "total_clients": 25, "num_participants": 5, "partitioning": 9,
                "dirichlet_alpha": 0.3, "rounds": 2, "eval_interval": 2, "local_steps": 2, "halor": True,
                "halor_distribution": "all", "halor_group_size": 10, "filter_less": 4, "worker_ips": "127.0.0.1:[2]",
                "ps_port": 0}
    cfg = load_config(DIGITS_CONF, overrides=settings)
    dataset = FederatedDataset.from_job(cfg.job)
    truth = _true_histogram(dataset)

    # Execute: two rounds, then two more resumed from the checkpoint of round 2
    first = run_in_process(cfg, timestamp="exact", echo=False)
    checkpoint = first.run_dir / "checkpoint"
    sizes = saved_sizes(checkpoint)
    resumed = run_in_process(load_config(DIGITS_CONF, overrides={**settings, "rounds": 4}), timestamp="exact",
                             echo=False, resume=True)

    # Assert: one protocol run, whose sum is the true histogram; every round resamples toward it
    assert saved_window(checkpoint) == [(0, [int(count) for count in truth])]
    for metrics in (*first.history, *resumed.history):
        assert metrics.class_distribution == pytest.approx(tuple(truth / truth.sum()))
    assert [metrics.round for metrics in resumed.history] == [3, 4]
    log = (first.run_dir / "aggregator.log").read_text()
    assert log.count("Halor exact distribution: sum over 25 of 25 clients in 3 groups") == 1
    # every client answered the size question once, and the resumed run went by the same sizes
    assert sorted(sizes) == sorted(dataset.client_ids)
    assert {client: size for client, size in saved_sizes(checkpoint).items() if client in sizes} == sizes


def test_data_regulation_trains_every_selected_client_on_at_least_filter_less_samples(
        tmp_path: Path, digits_data_dir: Path, received: list[Completion]) -> None:
    # Prepare: digits at Dirichlet 0.1 over 30 clients. Under the exact distribution, 20 of the 28 clients that keep
    # filter_less=8 raw samples resample to fewer than 8 (17 of them to 1-3): Halor's guard leaves them out of selection
    cfg = _halor_digits(tmp_path, digits_data_dir, halor=False, data_regulation=1, filter_less=8, rounds=3)
    dataset = FederatedDataset.from_job(cfg.job)
    truth = _true_histogram(dataset)
    resampled = {client: int(target_counts(dataset.label_counts(client), truth / truth.sum(), "under").sum())
                 for client in dataset.client_ids}
    assert sum(size < 8 for size in resampled.values()) > len(resampled) // 2  # the guard has work to do

    # Execute
    outcome = run_in_process(cfg, echo=False)

    # Assert: each trained client trained on its resampled size, never below filter_less
    updates = _trained(received)
    assert len(updates) == 3 * 6
    assert all(result.num_samples == resampled[result.client_id] >= 8 for result in updates)
    log = (outcome.run_dir / "aggregator.log").read_text()
    assert "Halor (data_regulation: 1): exact distribution over all clients" in log
    assert f"Halor's guard: {sum(size >= 8 for size in resampled.values())} of {len(resampled)} clients" in log
