"""Why a job stops before its last round; the CLI turns these into a message and a non-zero exit status."""

from __future__ import annotations


class JobFailedError(RuntimeError):
    """The job cannot go on: no executor registered in time, or every executor is gone."""


class NoExecutorsError(JobFailedError):
    """No executor registered within the register timeout."""
