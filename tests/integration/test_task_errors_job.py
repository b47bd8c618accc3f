"""A whole job in one process whose evaluation or training raises a data error: it stops at once with the executor's
error as its reason, well before the executor timeout could have ended it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from fedscale_halor.cli import main
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.local import run_local
from fedscale_halor.server.errors import ExecutorTaskError
from fedscale_halor.types import ClientData

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
# the executor timeout's defaults (60 s, orphans 120 s) are what ended such a job before
PROMPT_S = 30.0


def _settings(tmp_path: Path, data_dir: Path, **overrides: object) -> dict[str, object]:
    return {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "rounds": 2, "eval_interval": 1,
            "total_clients": 20, "num_participants": 4, "local_steps": 2, **overrides}


def _labels_out_of_range(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Digits has 10 classes; the labels of ``where`` ("test" or "train") become 12 and more."""
    if where == "test":
        original_shard = FederatedDataset.test_shard

        def test_shard(self: FederatedDataset, index: int, count: int,
                       view: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
            features, labels = original_shard(self, index, count, view)
            return features, labels + 12

        monkeypatch.setattr(FederatedDataset, "test_shard", test_shard)
    else:
        original_data = FederatedDataset.client_data

        def client_data(self: FederatedDataset, client_id: int, positions: object = None) -> ClientData:
            data = original_data(self, client_id, positions)  # type: ignore[arg-type]
            return ClientData(data.client_id, data.features, data.labels + 12)

        monkeypatch.setattr(FederatedDataset, "client_data", client_data)


def test_a_job_whose_test_labels_are_out_of_range_stops_at_its_first_evaluation(
        tmp_path: Path, digits_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    _labels_out_of_range(monkeypatch, "test")
    cfg = load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir))

    # Execute
    started = time.monotonic()
    with pytest.raises(ExecutorTaskError) as failure:
        run_in_process(cfg, timestamp="eval", echo=False)
    took_s = time.monotonic() - started

    # Assert: the reason names the executor, the task and the original error; round 2 never ran
    assert took_s < PROMPT_S
    message = str(failure.value)
    assert "failed evaluating round 1: IndexError: Target" in message and "is out of bounds." in message
    assert message.startswith("executor executor_")
    log = (tmp_path / "logs" / "digits" / "eval" / "aggregator.log").read_text()
    assert "round 2/2" not in log


def test_a_job_whose_training_labels_are_out_of_range_stops_in_its_first_round(
        tmp_path: Path, digits_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: with the default quorum and round_retries, dropping failed clients would run the round three times
    _labels_out_of_range(monkeypatch, "train")
    cfg = load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir))

    # Execute
    started = time.monotonic()
    with pytest.raises(ExecutorTaskError, match=r"failed training client \d+ in round 1: IndexError: Target \d+ is "
                                                r"out of bounds\.") as failure:
        run_in_process(cfg, timestamp="train", echo=False)

    # Assert
    assert time.monotonic() - started < PROMPT_S
    assert "attempts" not in str(failure.value)  # not the quorum's verdict after retries


def test_a_resumed_job_with_another_model_stops_with_the_shape_error(tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: a checkpoint of digits_cnn, resumed with digits_mlp against the resume check's advice
    run_in_process(load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir, rounds=1)),
                   timestamp="resumed", echo=False)
    other = load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir, model="digits_mlp"))

    # Execute
    started = time.monotonic()
    with pytest.raises(ExecutorTaskError, match=r"training client \d+ in round 2: ValueError: ") as failure:
        run_in_process(other, timestamp="resumed", echo=False, resume=True, force_config=True)

    # Assert
    assert time.monotonic() - started < PROMPT_S
    assert "the global weights do not fit the model: Error(s) in loading state_dict" in str(failure.value)


def test_the_command_line_reports_the_executors_error_and_exits_1(
        tmp_path: Path, digits_data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _labels_out_of_range(monkeypatch, "test")

    status = main(["start", str(DIGITS_CONF), "--in-process", "--timestamp", "cli",
                   *[argument for key, value in _settings(tmp_path, digits_data_dir).items()
                     for argument in ("--set", f"{key}={value}")]])

    assert status == 1
    err = capsys.readouterr().err
    assert "the job failed: executor executor_" in err and "failed evaluating round 1: IndexError: Target" in err


def test_over_grpc_an_executor_process_reports_the_error_and_the_job_stops_at_once(tmp_path: Path,
                                                                                   digits_data_dir: Path) -> None:
    # Prepare: a checkpoint of digits_cnn, resumed by executor processes with digits_mlp
    run_in_process(load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir, rounds=1)),
                   timestamp="grpc", echo=False)
    other = load_config(DIGITS_CONF, overrides=_settings(tmp_path, digits_data_dir, model="digits_mlp", ps_port=0,
                                                         worker_ips="127.0.0.1:[2]"))

    # Execute
    started = time.monotonic()
    with pytest.raises(ExecutorTaskError, match=r"training client \d+ in round 2: ValueError: .*do not fit"):
        run_local(other, timestamp="grpc", echo=False, resume=True, force_config=True)

    # Assert: prompt, and the reason came over the wire from an executor process (not from its death)
    assert time.monotonic() - started < PROMPT_S
    run_dir = tmp_path / "logs" / "digits" / "grpc"
    assert "failed training client" in (run_dir / "aggregator.log").read_text()
    executor_logs = [(run_dir / f"executor_{rank}.log").read_text() for rank in (0, 1)]
    assert any("failed in round 2" in log for log in executor_logs)
