import csv
import pickle
from pathlib import Path

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import FanOutSink, MetricsSink
from fedscale_halor.logging.csv_sink import COLUMNS, CsvSink
from fedscale_halor.logging.testing_perf import PerfHistorySink
from fedscale_halor.types import EvalResult, RoundMetrics


def _metrics(round_index: int, test: EvalResult | None) -> RoundMetrics:
    return RoundMetrics(round=round_index, clock_s=12.5 * round_index, wall_time_s=0.25, participants=(1, 2, 3),
                        completed=2, train_loss=0.5, learning_rate=0.05, test=test)


def test_csv_has_one_row_per_round_with_test_columns_only_when_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    sink = CsvSink(path)

    sink.on_round(_metrics(1, None))
    sink.on_round(_metrics(2, EvalResult(num_samples=4, loss_sum=2.0, top1_correct=3, top5_correct=4)))
    sink.close()

    rows = list(csv.DictReader(path.open()))
    assert tuple(rows[0]) == COLUMNS
    assert [row["round"] for row in rows] == ["1", "2"]
    assert rows[0]["test_top1"] == ""
    assert float(rows[1]["test_top1"]) == pytest.approx(0.75)
    assert float(rows[1]["test_loss"]) == pytest.approx(0.5)
    assert rows[1]["participants"] == "3" and rows[1]["completed"] == "2"


def test_testing_perf_follows_fedscale_layout(tmp_path: Path) -> None:
    path = tmp_path / "testing_perf"
    job = JobConfig(data_set="digits", model="digits_cnn")
    sink = PerfHistorySink(path, job)

    sink.on_round(_metrics(1, None))
    sink.on_round(_metrics(5, EvalResult(num_samples=10, loss_sum=3.0, top1_correct=9, top5_correct=10)))

    with path.open("rb") as handle:
        history = pickle.load(handle)
    assert {k: history[k] for k in ("data_set", "model", "sample_mode", "gradient_policy", "task")} == {
        "data_set": "digits", "model": "digits_cnn", "sample_mode": "random", "gradient_policy": "fedavg",
        "task": "cv"}
    assert list(history["perf"]) == [5]
    assert history["perf"][5] == {"round": 5, "clock": 62.5, "loss": pytest.approx(0.3), "top_1": pytest.approx(0.9),
                                  "top_5": pytest.approx(1.0), "test_len": 10}


class _RecordingSink(MetricsSink):
    def __init__(self, name: str, log: list[str]) -> None:
        self._name, self._log = name, log

    def on_round(self, metrics: RoundMetrics) -> None:
        self._log.append(f"{self._name}:{metrics.round}")

    def close(self) -> None:
        self._log.append(f"{self._name}:closed")


def test_fan_out_forwards_in_order_and_closes_all() -> None:
    log: list[str] = []
    sink = FanOutSink([_RecordingSink("a", log), _RecordingSink("b", log)])

    sink.on_round(_metrics(1, None))
    sink.close()

    assert log == ["a:1", "b:1", "a:closed", "b:closed"]
