"""Halor inside whole jobs: over real gRPC processes and over the memory transport, with every selector."""

from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.cli import main
from fedscale_halor.config.loader import load_config
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.halor.resampling import target_counts
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.local import run_local
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import ClientUpdate, Completion, MaskedHistograms, RevealedMasks

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def _halor_digits(tmp_path: Path, data_dir: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "ps_port": 0, "rounds": 3,
                "eval_interval": 3, "total_clients": 30, "num_participants": 6, "local_steps": 3,
                "partitioning": 8, "dirichlet_alpha": 0.1, "halor": True, "halor_history": 1,
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
    vectors = [upload.words for completion in received if isinstance(completion, MaskedHistograms)
               for upload in completion.uploads]
    vectors += [mask.words for completion in received if isinstance(completion, RevealedMasks)
                for mask in completion.masks]
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
    updates = [completion.result for completion in received if isinstance(completion, ClientUpdate)]
    assert updates
    for result in updates:
        wanted = target_counts(dataset.label_counts(result.client_id), np.array(distribution[result.round]), mode)
        assert result.num_samples == int(wanted.sum()), (result.client_id, result.round)
