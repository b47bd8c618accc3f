from __future__ import annotations

from pathlib import Path

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
