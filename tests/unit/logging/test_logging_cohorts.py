"""metrics.csv, testing_perf, the text line and the progress bar in a job of several cohorts."""

from __future__ import annotations

import csv
import io
import logging
import pickle
from pathlib import Path

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.csv_sink import COLUMNS, CsvSink
from fedscale_halor.logging.progress import ProgressSink
from fedscale_halor.logging.testing_perf import PerfHistorySink
from fedscale_halor.logging.text_sink import TextSink
from fedscale_halor.simulation.traces import load_plain_data
from fedscale_halor.types import EvalResult, RoundMetrics

# cohort 0: 50 of 100 right (top1 0.5), cohort 1: 240 of 300 (top1 0.8)
HALF = EvalResult(num_samples=100, loss_sum=60.0, top1_correct=50, top5_correct=90)
MOST = EvalResult(num_samples=300, loss_sum=90.0, top1_correct=240, top5_correct=300)


def _metrics(round_index: int, cohort: int, test: EvalResult | None = None, members: int = 0) -> RoundMetrics:
    return RoundMetrics(round=round_index, clock_s=10.0 * round_index + cohort, wall_time_s=0.25,
                        participants=(1, 2, 3), completed=2, train_loss=0.5, learning_rate=0.05, test=test,
                        cohort=cohort, members=members)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_rows_name_their_cohort_and_its_members_in_the_last_columns(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "metrics.csv"
    sink = CsvSink(path)

    # Execute: round 1 is cohort 0's alone, unevaluated; round 2 both cohorts', evaluated with 30 and 10 clients
    for metrics in (_metrics(1, 0), _metrics(2, 0, HALF, members=30), _metrics(2, 1, MOST, members=10)):
        sink.on_round(metrics)
    sink.close()

    # Assert
    rows = _rows(path)
    assert COLUMNS[-2:] == ("cohort", "members") and tuple(rows[0]) == COLUMNS
    assert [row["members"] for row in rows] == ["", "30", "10"]
    assert [(row["round"], row["cohort"]) for row in rows] == [("1", "0"), ("2", "0"), ("2", "1")]
    assert [row["test_top1"] for row in rows] == ["", "0.500000", "0.800000"]
    assert rows[2]["clock_s"] == "21.0000"  # cohort 1's own clock: 10 * 2 + 1


def test_csv_resume_keeps_every_cohorts_rows_up_to_the_round(tmp_path: Path) -> None:
    # Prepare: a run of rounds 1-3, rounds 2 and 3 with two cohorts
    path = tmp_path / "metrics.csv"
    first = CsvSink(path)
    for metrics in (_metrics(1, 0), _metrics(2, 0), _metrics(2, 1), _metrics(3, 0), _metrics(3, 1)):
        first.on_round(metrics)
    first.close()

    # Execute: resumed after round 2, it runs round 3 again for cohort 1 only
    resumed = CsvSink(path, keep_rounds_up_to=2)
    resumed.on_round(_metrics(3, 1))
    resumed.close()

    # Assert
    assert [(row["round"], row["cohort"]) for row in _rows(path)] == [("1", "0"), ("2", "0"), ("2", "1"), ("3", "1")]


def test_csv_resume_of_a_file_without_the_cohort_column_keeps_its_rows_as_cohort_0(tmp_path: Path) -> None:
    # Prepare: a file written before the cohort and members columns existed (its columns but the last two)
    path = tmp_path / "metrics.csv"
    old_columns = COLUMNS[:-2]
    row = ["1", "10.0000", "0.2500", "3", "2", "0.500000", "0.05", "", "", "", "", "1", "", "", "", "0"]
    path.write_text(",".join(old_columns) + "\n" + ",".join(row) + "\n")

    # Execute
    CsvSink(path, keep_rounds_up_to=1).close()

    # Assert: the same cells, then cohort 0 and no member count
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines == [list(COLUMNS), [*row, "0", ""]]


def test_csv_resume_of_a_file_without_the_members_column_appends_counted_rows(tmp_path: Path) -> None:
    # Prepare: rounds 1 and 2 written before the members column existed, round 2 evaluated for two cohorts
    path = tmp_path / "metrics.csv"
    old = CsvSink(path)
    for metrics in (_metrics(1, 0), _metrics(2, 0, HALF), _metrics(2, 1, MOST)):
        old.on_round(metrics)
    old.close()
    with path.open(newline="") as handle:
        old_lines = [line[:-1] for line in csv.reader(handle)]
    path.write_text("".join(",".join(line) + "\n" for line in old_lines))

    # Execute: resumed after round 2, round 3 evaluated with 25 clients
    resumed = CsvSink(path, keep_rounds_up_to=2)
    resumed.on_round(_metrics(3, 0, HALF, members=25))
    resumed.close()

    # Assert: one header in today's columns; the old rows without a count, the new one with its count
    rows = _rows(path)
    assert path.read_text().count("round,clock_s") == 1
    assert [(row["round"], row["cohort"], row["members"]) for row in rows] == [
        ("1", "0", ""), ("2", "0", ""), ("2", "1", ""), ("3", "0", "25")]


def test_testing_perf_keeps_cohort_0_in_perf_and_the_others_under_cohort_perf(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "testing_perf"
    sink = PerfHistorySink(path, JobConfig(data_set="digits", model="digits_cnn"))

    # Execute
    sink.on_round(_metrics(2, 0, HALF))
    sink.on_round(_metrics(2, 1, MOST))

    # Assert: read back with the restricted unpickler, as the sink does on resume
    history = load_plain_data(path)
    assert history["perf"] == {2: {"round": 2, "clock": 20.0, "loss": pytest.approx(0.6), "top_1": 0.5,
                                   "top_5": 0.9, "test_len": 100}}
    assert history["cohort_perf"] == {1: {2: {"round": 2, "clock": 21.0, "loss": pytest.approx(0.3),
                                              "top_1": 0.8, "top_5": 1.0, "test_len": 300}}}


def test_testing_perf_of_a_plain_job_has_no_cohort_key(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "testing_perf"
    sink = PerfHistorySink(path, JobConfig())

    # Execute
    sink.on_round(_metrics(1, 0, HALF))

    # Assert
    with path.open("rb") as handle:
        history = pickle.load(handle)
    assert sorted(history) == ["data_set", "gradient_policy", "model", "perf", "sample_mode", "task"]


def test_testing_perf_resume_keeps_every_cohorts_evaluations_up_to_the_round(tmp_path: Path) -> None:
    # Prepare: both cohorts evaluated in rounds 2 and 4; cohort 2 only in round 4
    path = tmp_path / "testing_perf"
    job = JobConfig()
    first = PerfHistorySink(path, job)
    for metrics in (_metrics(2, 0, HALF), _metrics(2, 1, MOST), _metrics(4, 0, HALF), _metrics(4, 1, MOST),
                    _metrics(4, 2, MOST)):
        first.on_round(metrics)

    # Execute: resumed after round 3, round 4 evaluated again for cohort 0
    resumed = PerfHistorySink(path, job, keep_rounds_up_to=3)
    resumed.on_round(_metrics(4, 0, MOST))

    # Assert: cohort 2 had nothing up to round 3, so it is gone
    history = load_plain_data(path)
    assert sorted(history["perf"]) == [2, 4] and history["perf"][4]["test_len"] == 300
    assert {cohort: sorted(perf) for cohort, perf in history["cohort_perf"].items()} == {1: [2]}


def test_text_lines_name_the_cohort_once_the_job_has_several(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    logger = logging.getLogger("test.logging.cohorts")
    sink = TextSink(logger, total_rounds=4)

    # Execute: cohort 1 is branched after round 1
    with caplog.at_level(logging.INFO, logger=logger.name):
        for metrics in (_metrics(1, 0), _metrics(2, 0), _metrics(2, 1, MOST), _metrics(3, 0)):
            sink.on_round(metrics)

    # Assert
    heads = [record.getMessage().split(":")[0] for record in caplog.records]
    assert heads == ["round 1/4", "round 2/4", "round 2/4 cohort 1", "round 3/4 cohort 0"]
    assert caplog.records[2].getMessage() == (
        "round 2/4 cohort 1: 2/3 clients, train loss 0.5000, lr 0.05, clock 21.0 s, wall 0.25 s"
        " | test top-1 0.8000, top-5 1.0000, loss 0.3000 on 300 samples")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _last_frame(stream: io.StringIO) -> str:
    return [frame for frame in stream.getvalue().replace("\n", "\r").split("\r") if frame.strip()][-1]


def test_the_progress_bar_shows_the_cohort_and_its_own_latest_accuracy() -> None:
    # Prepare
    stream = _Terminal()
    sink = ProgressSink(5, stream=stream)

    # Execute / Assert: a plain round shows no cohort; then cohort 1's round shows its 0.8, cohort 0's its 0.5
    sink.on_round(_metrics(1, 0, HALF))
    assert "cohort" not in _last_frame(stream)
    sink.on_round(_metrics(2, 1, MOST))
    assert "cohort=1" in _last_frame(stream) and "top1=0.8000" in _last_frame(stream)
    sink.on_round(_metrics(3, 0))
    last = _last_frame(stream)
    sink.close()
    assert "3/5" in last and "cohort=0" in last and "top1=0.5000" in last
