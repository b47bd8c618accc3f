"""Halor's, REFL's and Oort's job files, as published, run a short job on small data in their data sets' formats.

Each test copies the file's exact text (tests/unit/config/fixtures/upstream/) into its folder, sets the environment
as that system's run script exports it, writes small raw data in the real on-disk format and FedScale-format device
traces where the file points, and runs two rounds in process. Only the scale is overridden (rounds, clients,
participants), where the run reads and writes (Oort's fixed data_dir, log_path, use_wandb) and, for REFL's file,
filter_less, which the small CIFAR-10 folder cannot meet; every other key that decides how clients train is the
file's.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fedscale_halor.config import ExperimentConfig
from fedscale_halor.launch.inprocess import JobOutcome, run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.simulation.trace_generator import (
    generate_behavior_trace,
    generate_device_capacity,
    write_traces,
)

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "unit" / "data"))
sys.path.insert(0, str(TESTS / "unit" / "config"))
from data_format_writers import write_cifar, write_idx, write_speech  # noqa: E402
from test_config_upstream_files import (  # noqa: E402
    FIXTURES,
    HALOR_PATHS,
    HALOR_SCRIPTS,
    OORT_ENVIRONMENT,
    REFL_MAIN_LOOP,
    REFL_PATHS,
)

pytestmark = pytest.mark.slow


def _copy(fixture: str, folder: Path) -> Path:
    path = folder / Path(fixture).name
    shutil.copyfile(FIXTURES / fixture, path)
    return path


def _traces(folder: Path, clients: int) -> None:
    write_traces(folder, generate_device_capacity(clients, seed=0), generate_behavior_trace(clients, seed=0))


def _run(cfg: ExperimentConfig) -> JobOutcome:
    outcome = run_in_process(cfg, timestamp="upstream", echo=False)
    assert [metrics.round for metrics in outcome.history] == [1, 2]
    assert outcome.history[-1].test is not None and outcome.history[-1].test.num_samples > 0
    return outcome


def _write_fashion_mnist(data_dir: Path, train: int, test: int) -> None:
    rng = np.random.default_rng(0)
    data_dir.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("t10k", test)):
        labels = (np.arange(count) % 10).astype(np.uint8)
        # each class a different brightness, so the labels carry signal
        images = (labels[:, None, None] * 20 + rng.integers(0, 40, size=(count, 28, 28))).astype(np.uint8)
        write_idx(data_dir / f"{split}-images-idx3-ubyte", images)
        write_idx(data_dir / f"{split}-labels-idx1-ubyte", labels)


def test_halor_fashion_mnist_file_runs_halor_with_its_own_choices_and_feddc(tmp_path: Path) -> None:
    # Prepare: Halor's run_exps_FedAvg.sh environment, its paths under tmp_path
    main_path = tmp_path / "Halor"
    data_dir = main_path / "data" / "fashion_mnist"
    _write_fashion_mnist(data_dir, train=1200, test=100)
    _traces(main_path / "dataset" / "data" / "device_info", clients=20)
    environ = {**HALOR_PATHS, **HALOR_SCRIPTS["FedAvg"], "MAIN_PATH": str(main_path), "DATA_PATH": str(data_dir),
               "DATASET": "fashion_mnist"}
    path = _copy("halor/fashion_mnist/conf_exp.yml", tmp_path)

    # Execute
    cfg = load_config(path, environ=environ, overrides={
        "rounds": 2, "total_clients": 20, "num_participants": 4, "log_path": str(tmp_path / "logs"),
        "use_wandb": False})
    outcome = _run(cfg)

    # Assert: Halor's data regulation ran (its exact distribution over all 20 clients, once) and FedDC kept drifts
    job = cfg.job
    assert (job.value_of("data_regulation"), job.feddc, job.partitioning, job.filter_less) == (1, 1, 8, 17)
    log = (outcome.run_dir / "aggregator.log").read_text(encoding="utf-8")
    assert "Halor exact distribution: sum over" in log
    assert "Halor's guard" in log
    assert outcome.history[-1].class_distribution is not None
    assert (outcome.run_dir / "checkpoint" / "strategy.safetensors").exists()


def test_refl_cifar10_file_runs_yogi_with_stale_updates_over_all_of_its_clients(tmp_path: Path) -> None:
    # Prepare: REFL's run_exps.sh main loop with availability priority off (its other listed choice) and 4 workers;
    # CLIENTS=0 means all of the data set's clients, which for a generated partition is total_worker; the writer
    # makes at most 85 distinct images, so the file's filter_less of 21 samples per client is lowered
    main_path = tmp_path / "REFL"
    data_dir = main_path / "dataset" / "data" / "cifar10"
    write_cifar(data_dir / "cifar-10-batches-py", images_per_batch=16, test_images=4)
    _traces(main_path / "dataset" / "data" / "device_info", clients=10)
    environ = {**REFL_PATHS, **REFL_MAIN_LOOP, "AVAILPRIO": "0", "WORKERS": "4", "MAIN_PATH": str(main_path),
               "DATA_PATH": str(data_dir), "DATASET": "cifar10"}
    path = _copy("refl/cifar10/conf_exp.yml", tmp_path)

    # Execute
    cfg = load_config(path, environ=environ, overrides={"rounds": 2, "log_path": str(tmp_path / "logs"),
                                                        "use_wandb": False, "filter_less": 0})
    outcome = _run(cfg)

    # Assert
    job = cfg.job
    assert (job.total_clients, job.gradient_policy, job.value_of("stale_update")) == (0, "fed-yogi", -1)
    assert len(outcome.history[0].participants) >= 1
    log = (outcome.run_dir / "aggregator.log").read_text(encoding="utf-8")
    assert "4 clients" in log


def test_oort_speech_file_runs_oort_selection_with_yogi(tmp_path: Path) -> None:
    # Prepare: Oort's file reads $HOME for its device profile; the data set is speech commands' own layout
    home = tmp_path / "home"
    data_dir = write_speech(tmp_path / "google_speech")
    _traces(home / "Kuiper" / "data" / "device_info", clients=4)
    (home / "Kuiper" / "data" / "device_info" / "client_device_capacity").rename(
        home / "Kuiper" / "data" / "device_info" / "client_profile.pkl")
    path = _copy("oort/speech/conf.yml", tmp_path)

    # Execute
    cfg = load_config(path, environ={**OORT_ENVIRONMENT, "HOME": str(home)}, overrides={
        "rounds": 2, "num_participants": 2, "total_clients": 2, "data_dir": str(data_dir),
        "log_path": str(tmp_path / "logs")})
    outcome = _run(cfg)

    # Assert
    assert (cfg.job.sample_mode, cfg.job.gradient_policy, cfg.job.model) == ("oort", "fed-yogi", "resnet34")
    assert all(len(metrics.participants) >= 1 for metrics in outcome.history)
