"""The per-round scalars every dashboard shows, named the same in TensorBoard and WandB."""

from __future__ import annotations

import math

from fedscale_halor.types import RoundMetrics


def round_scalars(metrics: RoundMetrics, previous_clock_s: float) -> dict[str, float]:
    """Training and round statistics of one round; non-finite values (no client finished: no train loss) are left
    out rather than drawn as gaps or spikes."""
    scalars = {
        "train/loss": metrics.train_loss,
        "train/learning_rate": metrics.learning_rate,
        "round/participants": float(len(metrics.participants)),
        "round/completed": float(metrics.completed),
        "round/not_completed": float(len(metrics.participants) - metrics.completed),
        "round/dropouts": float(metrics.dropouts),
        "round/stragglers": float(metrics.stragglers),
        "round/duration_s": metrics.clock_s - previous_clock_s,
        "round/clock_s": metrics.clock_s,
        "round/wall_time_s": metrics.wall_time_s,
        "round/attempts": float(metrics.attempts),
        "round/shortened_clients": float(len(metrics.shortened_local_steps)),
    }
    trips = list(metrics.client_round_trip_s.values())
    if trips:
        scalars["round_trip/client_mean_s"] = sum(trips) / len(trips)
        scalars["round_trip/client_max_s"] = max(trips)
    for executor, seconds in sorted(metrics.executor_round_trip_s.items()):
        scalars[f"round_trip/{executor}_s"] = seconds
    return {tag: value for tag, value in scalars.items() if math.isfinite(value)}
