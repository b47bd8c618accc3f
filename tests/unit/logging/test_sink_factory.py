"""job_sinks: which sinks a job gets from its config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging import factory
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.logging.csv_sink import CsvSink
from fedscale_halor.logging.factory import job_sinks
from fedscale_halor.logging.progress import ProgressSink
from fedscale_halor.logging.tensorboard_sink import TensorBoardSink
from fedscale_halor.logging.testing_perf import PerfHistorySink
from fedscale_halor.logging.text_sink import TextSink
from fedscale_halor.types import RoundMetrics

_LOG = logging.getLogger("test.sink_factory")


class _FakeWandb(MetricsSink):
    built: ClassVar[list[tuple[JobConfig, Path, str]]] = []

    def __init__(self, job: JobConfig, run_dir: Path, *, timestamp: str, name_parts: Sequence[str] = ()) -> None:
        _FakeWandb.built.append((job, run_dir, timestamp))

    def on_round(self, metrics: RoundMetrics) -> None: ...


@pytest.fixture
def fake_wandb(monkeypatch: pytest.MonkeyPatch) -> type[_FakeWandb]:
    _FakeWandb.built = []
    monkeypatch.setattr(factory, "WandbSink", _FakeWandb)
    return _FakeWandb


@pytest.mark.parametrize(("tensorboard", "use_wandb", "expected"), [
    (False, False, [TextSink, CsvSink, PerfHistorySink, ProgressSink]),
    (True, False, [TextSink, CsvSink, PerfHistorySink, TensorBoardSink, ProgressSink]),
    (False, True, [TextSink, CsvSink, PerfHistorySink, _FakeWandb, ProgressSink]),
    (True, True, [TextSink, CsvSink, PerfHistorySink, TensorBoardSink, _FakeWandb, ProgressSink]),
])
def test_sinks_follow_the_tensorboard_and_wandb_keys(tmp_path: Path, fake_wandb: type[_FakeWandb], tensorboard: bool,
                                                      use_wandb: bool, expected: list[type]) -> None:
    # Prepare
    job = JobConfig(tensorboard=tensorboard, use_wandb=use_wandb)

    # Execute
    sinks = job_sinks(job, tmp_path, _LOG, keep_rounds_up_to=None, timestamp="0101_000000")
    for sink in sinks:
        sink.close()

    # Assert
    assert [type(sink) for sink in sinks] == expected
    assert fake_wandb.built == ([(job, tmp_path, "0101_000000")] if use_wandb else [])
    assert (tmp_path / "tensorboard").is_dir() is tensorboard


def test_a_failing_wandb_start_closes_the_sinks_already_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a CSV sink that records its closing, and a WandB sink that cannot start
    closed: list[str] = []

    class RecordingCsv(CsvSink):
        def close(self) -> None:
            closed.append("csv")
            super().close()

    def no_wandb(*args: object, **kwargs: object) -> MetricsSink:
        raise RuntimeError("no key")

    monkeypatch.setattr(factory, "CsvSink", RecordingCsv)
    monkeypatch.setattr(factory, "WandbSink", no_wandb)

    # Execute / Assert
    with pytest.raises(RuntimeError, match="no key"):
        job_sinks(JobConfig(use_wandb=True, tensorboard=False), tmp_path, _LOG, keep_rounds_up_to=None,
                  timestamp="t")
    assert closed == ["csv"]


def test_a_resumed_job_keeps_its_earlier_rows_and_its_bar_starts_there(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: rounds 1-3 in metrics.csv; the job resumes after round 2
    (tmp_path / "metrics.csv").write_text("round,clock_s\n1,1.0\n2,2.0\n3,3.0\n", encoding="utf-8")
    started: list[tuple[int, int, logging.Logger | None]] = []

    class RecordingProgress(ProgressSink):
        def __init__(self, total_rounds: int, *, rounds_done: int = 0, logger: logging.Logger | None = None) -> None:
            started.append((total_rounds, rounds_done, logger))
            super().__init__(total_rounds, rounds_done=rounds_done, logger=logger)

    monkeypatch.setattr(factory, "ProgressSink", RecordingProgress)

    # Execute
    sinks = job_sinks(JobConfig(tensorboard=False, rounds=7), tmp_path, _LOG, keep_rounds_up_to=2, timestamp="t")
    for sink in sinks:
        sink.close()

    # Assert
    assert started == [(7, 2, _LOG)]
    rows = (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2"]
