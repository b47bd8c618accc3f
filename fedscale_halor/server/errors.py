"""Why a job stops before its last round; the CLI turns these into a message and a non-zero exit status."""

from __future__ import annotations


class JobFailedError(RuntimeError):
    """The job cannot go on: no executor registered in time, every executor is gone, or no client is left to select."""


class NoExecutorsError(JobFailedError):
    """No executor registered within the register timeout."""


class ExecutorTaskError(JobFailedError):
    """An executor's training or evaluation raised an error that would recur on any executor (a data or programming
    error; see executor/task_errors.py), or a transient one that kept recurring."""
