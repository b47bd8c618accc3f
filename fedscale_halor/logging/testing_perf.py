"""``testing_perf``: FedScale's pickle of evaluation history, rewritten after every evaluation.

Layout, as FedScale's aggregator writes it: {data_set, model, sample_mode, gradient_policy, task,
perf: {round: {round, clock, loss, top_1, top_5, test_len}}}, with accuracies as fractions in [0, 1].
``perf`` holds cohort 0's evaluations, the only ones of a job of one cohort, so FedScale's tools read it as ever; in
a job of several cohorts the others' go under one more key, ``cohort_perf: {cohort: {round: {the same fields}}}``,
which is absent until a cohort other than 0 is evaluated (a job of one cohort writes the same bytes as before).
The file is only ever written here (from plain dicts and numbers); it is a local artefact, never read from a network.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.simulation.traces import load_plain_data
from fedscale_halor.types import RoundMetrics


class PerfHistorySink(MetricsSink):
    def __init__(self, path: Path, job: JobConfig, keep_rounds_up_to: int | None = None) -> None:
        """``keep_rounds_up_to``: a resumed job keeps the evaluations of the rounds it does not run again."""
        self._path = path
        self._history: dict[str, Any] = {
            "data_set": job.data_set,
            "model": job.model,
            "sample_mode": job.sample_mode,
            "gradient_policy": job.gradient_policy,
            "task": job.task,
            "perf": {},
        }
        if keep_rounds_up_to is not None and path.is_file():
            earlier = load_plain_data(path)  # plain data only: the restricted unpickler
            self._history["perf"] = _up_to(earlier.get("perf", {}), keep_rounds_up_to)
            others = {int(cohort): _up_to(perf, keep_rounds_up_to)
                      for cohort, perf in (earlier.get("cohort_perf") or {}).items()}
            others = {cohort: perf for cohort, perf in others.items() if perf}
            if others:
                self._history["cohort_perf"] = others

    def on_round(self, metrics: RoundMetrics) -> None:
        test = metrics.test
        if test is None:
            return
        if metrics.cohort == 0:
            perf = self._history["perf"]
        else:
            perf = self._history.setdefault("cohort_perf", {}).setdefault(metrics.cohort, {})
        perf[metrics.round] = {
            "round": metrics.round,
            "clock": metrics.clock_s,
            "loss": test.loss,
            "top_1": test.top1,
            "top_5": test.top5,
            "test_len": test.num_samples,
        }
        partial = self._path.with_suffix(".partial")
        with partial.open("wb") as handle:
            pickle.dump(self._history, handle)
        os.replace(partial, self._path)


def _up_to(perf: dict[Any, Any], last_round: int) -> dict[int, Any]:
    return {int(key): value for key, value in perf.items() if int(key) <= last_round}
