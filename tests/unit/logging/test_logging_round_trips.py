"""Round trips, attempts and straggler balancing reach metrics.csv and the dashboards' scalars."""

import csv
from pathlib import Path

from fedscale_halor.logging.csv_sink import CsvSink
from fedscale_halor.logging.scalars import round_scalars
from fedscale_halor.types import RoundMetrics

METRICS = RoundMetrics(round=1, clock_s=3.0, wall_time_s=0.5, participants=(1, 2, 3), completed=3, train_loss=0.5,
                       learning_rate=0.1, attempts=2, client_round_trip_s={1: 0.5, 2: 1.5, 3: 1.0},
                       executor_round_trip_s={"executor_0": 1.5, "executor_1": 1.25}, shortened_local_steps={3: 4})


def test_metrics_csv_carries_attempts_round_trips_and_shortened_clients(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "metrics.csv")
    sink.on_round(METRICS)
    sink.close()

    row = next(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert row["attempts"] == "2"
    assert row["client_round_trip_mean_s"] == "1.0000" and row["client_round_trip_max_s"] == "1.5000"
    assert row["executor_round_trip_max_s"] == "1.5000" and row["shortened_clients"] == "1"


def test_dashboards_get_every_executors_round_trip() -> None:
    scalars = round_scalars(METRICS, previous_clock_s=1.0)

    assert scalars["round_trip/executor_0_s"] == 1.5 and scalars["round_trip/executor_1_s"] == 1.25
    assert scalars["round_trip/client_mean_s"] == 1.0 and scalars["round_trip/client_max_s"] == 1.5
    assert scalars["round/attempts"] == 2.0 and scalars["round/shortened_clients"] == 1.0
