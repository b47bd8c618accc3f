from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fedscale_halor.logging.tensorboard_sink import TensorBoardSink
from fedscale_halor.types import EvalResult, RoundMetrics


def test_rounds_are_written_as_scalars_by_round_and_test_accuracy_also_by_simulated_time(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path / "tb")
    sink.on_round(RoundMetrics(round=1, clock_s=12.5, wall_time_s=0.2, participants=(1, 2, 3), completed=2,
                               train_loss=0.9, learning_rate=0.05))
    sink.on_round(RoundMetrics(round=2, clock_s=30.0, wall_time_s=0.2, participants=(1, 2), completed=2,
                               train_loss=0.7, learning_rate=0.05,
                               test=EvalResult(num_samples=100, loss_sum=50.0, top1_correct=80, top5_correct=99)))
    sink.close()

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()

    def series(tag: str) -> list[tuple[int, float]]:
        return [(event.step, round(event.value, 6)) for event in events.Scalars(tag)]

    assert series("train/loss") == [(1, 0.9), (2, 0.7)]
    assert series("round/duration_s") == [(1, 12.5), (2, 17.5)]
    assert series("round/not_completed") == [(1, 1.0), (2, 0.0)]
    assert series("test/top1") == [(2, 0.8)]
    assert series("test/top1_by_time") == [(30, 0.8)]
    assert series("test/loss") == [(2, 0.5)]


def test_dropouts_stragglers_and_halor_class_distribution_are_logged_each_round(tmp_path: Path) -> None:
    # Prepare: Halor's distribution only from round 2 on (round 1 had no histogram sum yet)
    sink = TensorBoardSink(tmp_path / "tb")

    # Execute
    sink.on_round(RoundMetrics(round=1, clock_s=10.0, wall_time_s=0.1, participants=(1, 2, 3, 4), completed=2,
                               train_loss=0.9, learning_rate=0.05, dropouts=1, stragglers=1))
    sink.on_round(RoundMetrics(round=2, clock_s=20.0, wall_time_s=0.1, participants=(1, 2, 3), completed=3,
                               train_loss=0.8, learning_rate=0.05, class_distribution=(0.5, 0.25, 0.25)))
    sink.on_round(RoundMetrics(round=3, clock_s=30.0, wall_time_s=0.1, participants=(1, 2, 3), completed=1,
                               train_loss=0.7, learning_rate=0.05, stragglers=2, class_distribution=(0.2, 0.3, 0.5)))
    sink.close()

    # Assert
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()

    def series(tag: str) -> list[tuple[int, float]]:
        return [(event.step, round(event.value, 6)) for event in events.Scalars(tag)]

    assert series("round/dropouts") == [(1, 1.0), (2, 0.0), (3, 0.0)]
    assert series("round/stragglers") == [(1, 1.0), (2, 0.0), (3, 2.0)]
    assert series("halor/class_0") == [(2, 0.5), (3, 0.2)]
    assert series("halor/class_2") == [(2, 0.25), (3, 0.5)]
    assert "halor/class_3" not in events.Tags()["scalars"]
    assert series("train/loss") == [(1, 0.9), (2, 0.8), (3, 0.7)]  # what was logged before is still there
    histograms = events.Histograms("halor/class_distribution")
    assert [event.step for event in histograms] == [2, 3]
    last = histograms[-1].histogram_value
    assert list(last.bucket_limit) == [0.5, 1.5, 2.5]
    assert [round(count, 6) for count in last.bucket] == [0.2, 0.3, 0.5]
    assert last.sum == pytest.approx(1.3)  # mean class index: 0*0.2 + 1*0.3 + 2*0.5


def test_cohorts_beyond_the_first_log_under_their_prefix_on_their_own_clock(tmp_path: Path) -> None:
    # Prepare: cohort 1 branched after round 1; its clock runs apart from cohort 0's
    sink = TensorBoardSink(tmp_path / "tb")

    def metrics(index: int, cohort: int, clock_s: float, test: EvalResult | None = None) -> RoundMetrics:
        return RoundMetrics(round=index, clock_s=clock_s, wall_time_s=0.1, participants=(1, 2), completed=2,
                            train_loss=0.1 * index + cohort, learning_rate=0.05, test=test, cohort=cohort,
                            class_distribution=(0.25, 0.75) if cohort else None)

    # Execute: cohort 0 at 10 s, 25 s, 40 s; cohort 1 at 30 s (round 2), 42 s (round 3)
    sink.on_round(metrics(1, 0, 10.0))
    sink.on_round(metrics(2, 0, 25.0, EvalResult(num_samples=100, loss_sum=60.0, top1_correct=50, top5_correct=90)))
    sink.on_round(metrics(2, 1, 30.0, EvalResult(num_samples=300, loss_sum=90.0, top1_correct=240, top5_correct=300)))
    sink.on_round(metrics(3, 0, 40.0))
    sink.on_round(metrics(3, 1, 42.0))
    sink.close()

    # Assert
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()

    def series(tag: str) -> list[tuple[int, float]]:
        return [(event.step, round(event.value, 6)) for event in events.Scalars(tag)]

    assert series("train/loss") == [(1, 0.1), (2, 0.2), (3, 0.3)]  # cohort 0 alone under the plain tags
    assert series("cohort_1/train/loss") == [(2, 1.2), (3, 1.3)]
    assert series("round/duration_s") == [(1, 10.0), (2, 15.0), (3, 15.0)]
    assert series("cohort_1/round/duration_s") == [(3, 12.0)]  # its first round's start is its parent's: unknown
    assert series("test/top1") == [(2, 0.5)] and series("test/top1_by_time") == [(25, 0.5)]
    assert series("cohort_1/test/top1") == [(2, 0.8)] and series("cohort_1/test/top1_by_time") == [(30, 0.8)]
    assert series("cohort_1/halor/class_1") == [(2, 0.75), (3, 0.75)]
    assert "halor/class_1" not in events.Tags()["scalars"]
