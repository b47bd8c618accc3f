"""The sinks of a job, as its config asks for them; one place, so every runner logs the same way."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.logging.csv_sink import CsvSink
from fedscale_halor.logging.progress import ProgressSink
from fedscale_halor.logging.tensorboard_sink import TensorBoardSink
from fedscale_halor.logging.testing_perf import PerfHistorySink
from fedscale_halor.logging.text_sink import TextSink
from fedscale_halor.logging.wandb_sink import WandbSink


def job_sinks(job: JobConfig, run_dir: Path, logger: logging.Logger, *, keep_rounds_up_to: int | None,
              timestamp: str, name_parts: Sequence[str] = ()) -> list[MetricsSink]:
    """``keep_rounds_up_to``: the round a resumed job restarts after (None for a new run); its earlier history is
    kept and the progress bar starts there. ``timestamp`` names the run (its folder's name); ``name_parts``: what
    the job's plug-ins add to the WandB run name."""
    sinks: list[MetricsSink] = [
        TextSink(logger, job.rounds),
        CsvSink(run_dir / "metrics.csv", keep_rounds_up_to=keep_rounds_up_to),
        PerfHistorySink(run_dir / "testing_perf", job, keep_rounds_up_to=keep_rounds_up_to),
    ]
    # both import their library only when built, so a job without them never loads it
    if job.tensorboard:
        sinks.append(TensorBoardSink(run_dir / "tensorboard"))
    if job.use_wandb:
        try:
            sinks.append(WandbSink(job, run_dir, timestamp=timestamp, name_parts=name_parts))
        except Exception:
            # the job stops here: release the files the other sinks already opened
            for sink in sinks:
                sink.close()
            raise
    sinks.append(ProgressSink(job.rounds, rounds_done=keep_rounds_up_to or 0, logger=logger))
    return sinks
