"""The differencing attack on Halor's per-round sums, over a whole 150-round job in one process.

Each round the aggregator learns which clients contributed and the sum of their histograms, and a client's histogram
never changes. Stacking the rounds gives a linear system M·H = S (M: who contributed each round, H: the histograms,
S: the sums) that least squares solves as soon as M has full rank. Without noise that recovers every histogram
exactly; with halor_noise (the defaults: ε 8 over the run at δ 1e-5) it recovers none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.halor.distribution import total_variation
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorRoundReport
from fedscale_halor.launch.inprocess import JobOutcome, run_in_process
from fedscale_halor.launch.jobfile import load_config

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
ROUNDS = 150


@dataclass(frozen=True)
class Learned:
    """What one job's aggregator learned, and the truth it is measured against."""

    outcome: JobOutcome
    reports: tuple[HalorRoundReport, ...]
    client_ids: tuple[int, ...]
    histograms: np.ndarray  # the clients' true histograms, one row per client


def _run(folder: Path, noise: bool) -> Learned:
    data = folder / "data"
    data.mkdir(parents=True)
    # 2000 synthetic samples of 4x4 features: 100 clients of about 20 samples, 10 classes
    (data / "synthetic.json").write_text(json.dumps({"num_train": 2000, "num_test": 50, "input_shape": [1, 4, 4]}))
    cfg = load_config(DIGITS_CONF, overrides={
        "log_path": str(folder / "logs"), "data_set": "synthetic", "data_dir": str(data), "model": "digits_mlp",
        "total_clients": 100, "num_participants": 10, "rounds": ROUNDS, "eval_interval": ROUNDS, "local_steps": 1,
        "partitioning": 9, "dirichlet_alpha": 0.5, "halor": True, "halor_resample": "over", "halor_noise": noise,
        "save_checkpoint": False, "tensorboard": False, "worker_ips": "127.0.0.1:[1]"})
    coordinators: list[HalorCoordinator] = []
    original = HalorCoordinator.__init__

    def recording_init(self: HalorCoordinator, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        coordinators.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HalorCoordinator, "__init__", recording_init)
        outcome = run_in_process(cfg, timestamp="noise" if noise else "exact", echo=False)
    dataset = FederatedDataset.from_job(cfg.job)
    ids = tuple(dataset.client_ids)
    return Learned(outcome, tuple(coordinators[0].reports), ids,
                   np.array([dataset.label_counts(client) for client in ids], dtype=np.int64))


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> Learned:
    return _run(tmp_path_factory.mktemp("exact"), noise=False)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Learned:
    return _run(tmp_path_factory.mktemp("noisy"), noise=True)


def _attack(learned: Learned, rounds: int) -> np.ndarray:
    """The aggregator's least-squares estimate of every client's histogram from the first ``rounds`` rounds."""
    position = {client: index for index, client in enumerate(learned.client_ids)}
    reports = [report for report in learned.reports[:rounds] if report.histogram_sum is not None]
    membership = np.zeros((len(reports), len(position)))
    for row, report in enumerate(reports):
        membership[row, [position[client] for client in report.contributor_ids]] = 1.0
    sums = np.array([report.histogram_sum for report in reports], dtype=np.float64)
    estimate, *_ = np.linalg.lstsq(membership, sums, rcond=None)
    return estimate


def _recovered_share(estimate: np.ndarray, histograms: np.ndarray) -> float:
    return float(np.mean(np.all(np.rint(estimate).astype(np.int64) == histograms, axis=1)))


def test_without_noise_the_rounds_sums_give_away_every_histogram(exact: Learned) -> None:
    assert len(exact.reports) == ROUNDS and all(len(report.contributor_ids) == 10 for report in exact.reports)

    # 80 rounds: fewer equations than the 100 unknown histograms; 150: far more, every histogram comes out
    assert _recovered_share(_attack(exact, 80), exact.histograms) == 0.0
    estimate = _attack(exact, ROUNDS)
    assert _recovered_share(estimate, exact.histograms) == 1.0
    assert np.abs(estimate - exact.histograms).max() < 1e-6


def test_with_noise_the_attack_recovers_no_histogram(noisy: Learned) -> None:
    estimate = _attack(noisy, ROUNDS)

    assert _recovered_share(estimate, noisy.histograms) == 0.0
    mean_absolute_error = float(np.abs(estimate - noisy.histograms).mean())  # per client and class
    assert mean_absolute_error > 2.0  # about 4 samples per class, for clients of about 20 samples in 10 classes
    # the run's budget: a client in every round would have spent the target, the most exposed one spent far less
    spent = noisy.reports[-1].privacy
    assert spent is not None
    assert spent.run_epsilon == pytest.approx(8.0, abs=1e-3)
    assert spent.client_epsilon < 4.0
    log = (noisy.outcome.run_dir / "aggregator.log").read_text()
    assert log.count("Halor privacy: Skellam noise of variance 123.8 per class over 10 contributors") == ROUNDS


def test_the_noise_is_all_that_changes_and_the_distribution_stays_close(exact: Learned, noisy: Learned) -> None:
    # the same clients every round (random selection does not depend on the sums) ...
    assert [report.contributor_ids for report in exact.reports] == [report.contributor_ids for report in noisy.reports]
    differences = np.array([np.subtract(noisy_report.histogram_sum, exact_report.histogram_sum)
                            for exact_report, noisy_report in zip(exact.reports, noisy.reports, strict=True)])
    # ... and each sum is off by Skellam noise of variance 123.8 per class (standard deviation 11.1)
    assert np.abs(differences.mean()) < 1.0
    assert differences.std() == pytest.approx(11.1, rel=0.1)
    distance = np.mean([
        total_variation(np.array(noisy_round.class_distribution), np.array(exact_round.class_distribution))
        for exact_round, noisy_round in zip(exact.outcome.history, noisy.outcome.history, strict=True)])
    assert 0.0 < distance < 0.15
