"""Weights & Biases: one WandB run per job, in project ``wandb_project`` (default ``<data_set>_<model>``).

The run logs the same per-round metrics as the TensorBoard sink, stepped by the round. The test metrics are also
logged under ``test_by_time/`` against ``clock_s`` (the simulated clock), so the WandB UI plots time-to-accuracy.
The run's files go to ``<run folder>/wandb``; with ``WANDB_MODE=offline`` nothing leaves the machine and
``wandb sync <run folder>/wandb/offline-run-*`` uploads the run later.

In a job of several cohorts, cohort 0 logs under these keys and cohort c > 0 under the same keys behind
``cohort_<c>/`` (``cohort_1/train/loss``, ``cohort_1/test/top1``), with its own clock as ``cohort_<c>/clock_s``, the
x-axis of its ``cohort_<c>/test_by_time/*``. The cohorts of one round share the round's step (and ``round``).

The API key comes only from the environment (``WANDB_API_KEY``) or the user's ``wandb login``: it is never read
from the job's config, and never written to the run config, the logs or any file of the run folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedscale_halor.config.schema import DeploymentConfig, ExperimentConfig, JobConfig
from fedscale_halor.config.serialize import config_to_dict
from fedscale_halor.logging.base import MetricsSink
from fedscale_halor.logging.scalars import CohortClocks, cohort_name, round_scalars
from fedscale_halor.types import RoundMetrics

_ONLINE_MODES = frozenset({"online", "run", "shared"})
_PARTITIONS = {-1: "iid", 0: "real", 1: "noniid", 2: "zipf", 3: "balanced", 8: "halordir", 9: "dir"}


class WandbStartError(RuntimeError):
    """WandB could not start a run (no credentials, no network, a bad entity or project)."""


def project_name(job: JobConfig) -> str:
    return job.wandb_project or f"{job.data_set}_{job.model}"


def run_name(job: JobConfig, timestamp: str, feature_parts: Sequence[str] = ()) -> str:
    """The parameters a sweep usually varies, so runs are told apart in the WandB tables at a glance;
    ``feature_parts``: what the job's plug-ins add (``PluginFactory.run_name_part``), in their order."""
    partition = _PARTITIONS.get(job.partitioning, f"part{job.partitioning}")
    if job.partitioning in (8, 9):
        partition += f"{job.dirichlet_alpha:g}"
    elif job.partitioning == 2:
        partition += f"{job.zipf_param:g}"
    parts = [job.sample_mode, job.gradient_policy, partition, f"p{job.num_participants}", *feature_parts,
             f"s{job.sample_seed}", timestamp]
    return "-".join(parts)


def job_settings(job: JobConfig) -> dict[str, object]:
    """The job's keys as one flat mapping, through the same writer as config.yml, so secrets stay redacted."""
    dumped = config_to_dict(ExperimentConfig(deployment=DeploymentConfig(), job=job))
    settings: dict[str, object] = {}
    for entry in dumped["job_conf"]:  # type: ignore[union-attr]
        settings.update(entry)
    return settings


class WandbSink(MetricsSink):
    def __init__(self, job: JobConfig, run_dir: Path, *, timestamp: str, name_parts: Sequence[str] = ()) -> None:
        try:
            # imported here: only jobs with use_wandb pay for importing wandb
            import wandb
        except ImportError as exc:
            raise WandbStartError("use_wandb is true but the wandb package is not installed "
                                  "(pip install wandb, or set use_wandb: false)") from exc
        self._wandb: Any = wandb
        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        # no prompt for a key and no capture of the terminal: a job must fail, not wait for typing, when the key
        # is missing, and its console output already goes to aggregator.log
        settings = wandb.Settings(console="off")
        _require_credentials(wandb)
        try:
            self._run: Any = wandb.init(
                project=project_name(job), entity=job.wandb_entity or None, tags=list(job.wandb_tags) or None,
                name=run_name(job, timestamp, name_parts), dir=str(run_dir), config=job_settings(job),
                settings=settings, reinit="finish_previous",
            )
        except Exception as exc:
            raise WandbStartError(_advice(f"wandb could not start a run: {exc}")) from exc
        self._run.define_metric("round")
        self._clocks = CohortClocks()
        self._defined: set[int] = set()
        self._define_cohort(0)

    def _define_cohort(self, cohort: int) -> None:
        """The x-axes of a cohort's keys; cohorts are branched mid-job, so each is defined at its first round."""
        self._defined.add(cohort)
        self._run.define_metric(cohort_name("clock_s", cohort))
        for pattern in ("train/*", "round/*", "test/*", "halor/*"):
            self._run.define_metric(cohort_name(pattern, cohort), step_metric="round")
        self._run.define_metric(cohort_name("test_by_time/*", cohort), step_metric=cohort_name("clock_s", cohort))

    def on_round(self, metrics: RoundMetrics) -> None:
        if metrics.cohort not in self._defined:
            self._define_cohort(metrics.cohort)
        # the cohorts of a round log at the same step: WandB merges their keys into the round's row
        self._run.log(round_record(metrics, self._clocks.previous(metrics.cohort)), step=metrics.round)
        self._clocks.update(metrics)

    def close(self) -> None:
        self._run.finish()


def round_record(metrics: RoundMetrics, previous_clock_s: float | None) -> dict[str, float]:
    """One round as WandB history values, under its cohort's names (``round`` is the job's, shared); non-finite
    ones (no client finished) are left out, as in TensorBoard. ``previous_clock_s``: the cohort's clock at its
    previous round (None: unknown, no duration)."""
    values: dict[str, float] = {"clock_s": metrics.clock_s, **round_scalars(metrics, previous_clock_s)}
    test = metrics.test
    if test is not None:
        for name, value in (("top1", test.top1), ("top5", test.top5), ("loss", test.loss)):
            values[f"test/{name}"] = value
            values[f"test_by_time/{name}"] = value
    for label, share in enumerate(metrics.class_distribution or ()):
        values[f"halor/class_{label}"] = share
    record = {"round": float(metrics.round)}
    record.update({cohort_name(key, metrics.cohort): value for key, value in values.items() if math.isfinite(value)})
    return record


def _require_credentials(wandb: Any) -> None:
    """Online runs need a key already configured; wandb.init would otherwise ask for one at a terminal."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower() or wandb.setup().settings.mode
    if mode not in _ONLINE_MODES:
        return
    try:
        found = wandb.login(prompt=False, verify=False)
    except Exception as exc:
        raise WandbStartError(_advice(f"wandb login failed: {exc}")) from exc
    if not found:
        raise WandbStartError(_advice("use_wandb is true but no WandB API key is configured"))


def _advice(problem: str) -> str:
    return (f"{problem}. Set WANDB_API_KEY in the environment (or run `wandb login`), or run with WANDB_MODE=offline "
            f"to write the run under the run folder and sync it later, or set use_wandb: false.")
