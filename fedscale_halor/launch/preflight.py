"""Checks of a job's names and local input files, run by `start` before it creates a run folder or any process.

What needs the data set (its shape, classes and clients) is checked where the data set is opened, before the first
round; what is here needs only the config, and fails in a moment instead of after a prepare or a fork.
"""

from __future__ import annotations

from fedscale_halor.config.errors import config_error
from fedscale_halor.config.loader import source_label
from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.models.registry import MODEL_BUILDERS, unknown_model_message
from fedscale_halor.simulation.traces import read_behavior_trace, read_device_capacity


def check_before_start(cfg: ExperimentConfig) -> None:
    """Raise ConfigError for a model name the registry lacks, TraceError (an InputFileError) for a trace file that
    the aggregator could not use. The traces are read in full, as the aggregator reads them: a truncated or hostile
    file is refused here rather than after the executors started."""
    job = cfg.job
    if job.model not in MODEL_BUILDERS:
        raise config_error(source_label(cfg.source), "job_conf.model", unknown_model_message(job.model))
    if job.device_conf_file:
        read_device_capacity(job.device_conf_file)
    if job.device_avail_file:
        read_behavior_trace(job.device_avail_file)
