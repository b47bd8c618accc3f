"""TensorBoard event files in the run folder (``<run>/tensorboard``): `tensorboard --logdir <log_path>` shows them.

Scalars are logged against the round, and the test accuracy also against simulated time (whole seconds of the
virtual clock), which is how time-to-accuracy is read in FedScale's and Halor's papers. With Halor on, the global
label distribution of each round is logged as one scalar per class (``halor/class_<c>``) and as a histogram over the
class indices (``halor/class_distribution``, the Histograms tab), which shows the distribution drifting over rounds.

In a job of several cohorts, cohort 0 logs under these tags and cohort c > 0 under the same tags behind
``cohort_<c>/`` (``cohort_1/test/top1``, ``cohort_1/test/top1_by_time`` on cohort 1's own clock, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.logging.scalars import CohortClocks, cohort_name, round_scalars
from fedscale_halor.types import RoundMetrics


class TensorBoardSink(MetricsSink):
    def __init__(self, folder: Path) -> None:
        # imported here: writing events is the only thing that needs TensorBoard
        from torch.utils.tensorboard import SummaryWriter

        self._writer: Any = SummaryWriter(log_dir=str(folder))
        self._clocks = CohortClocks()

    def on_round(self, metrics: RoundMetrics) -> None:
        step, cohort = metrics.round, metrics.cohort
        for tag, value in round_scalars(metrics, self._clocks.previous(cohort)).items():
            self._writer.add_scalar(cohort_name(tag, cohort), value, step)
        self._clocks.update(metrics)
        test = metrics.test
        if test is not None:
            for tag, value in (("test/top1", test.top1), ("test/top5", test.top5), ("test/loss", test.loss)):
                self._writer.add_scalar(cohort_name(tag, cohort), value, step)
                self._writer.add_scalar(cohort_name(f"{tag}_by_time", cohort), value, int(metrics.clock_s))
        if metrics.class_distribution is not None:
            self._log_distribution(metrics.class_distribution, step, cohort)
        self._writer.flush()

    def _log_distribution(self, shares: tuple[float, ...], step: int, cohort: int) -> None:
        for label, share in enumerate(shares):
            self._writer.add_scalar(cohort_name(f"halor/class_{label}", cohort), share, step)
        if not shares:
            return
        # class c is the bucket (c - 0.5, c + 0.5] holding its share, so the histogram is the distribution itself
        self._writer.add_histogram_raw(
            cohort_name("halor/class_distribution", cohort), min=0.0, max=float(len(shares) - 1), num=sum(shares),
            sum=sum(label * share for label, share in enumerate(shares)),
            sum_squares=sum(label * label * share for label, share in enumerate(shares)),
            bucket_limits=[label + 0.5 for label in range(len(shares))], bucket_counts=list(shares),
            global_step=step)

    def close(self) -> None:
        self._writer.close()
