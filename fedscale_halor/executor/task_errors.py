"""How an executor reports a task (a client's training, a test shard's evaluation) that raised.

The executor never dies of such an error: it sends it back as a failure completion (the exception's type and
message) and keeps serving until it is told to shut down. Whether the job can go on is decided here, by the type:

- transient: the process ran out of memory (``MemoryError``, ``torch.OutOfMemoryError``, which CUDA's out-of-memory
  error is). The same task may succeed later or on another executor, so it is retried by the usual means: a failed
  client counts against the round's quorum (and the round is run again if short of it), a test shard is handed out
  again, a few times at most.
- fatal: everything else. An ``IndexError`` from labels out of the model's range, a ``RuntimeError`` from weights of
  another shape, a ``ValueError`` or ``KeyError`` would fail again on any executor; retrying only delays the job's
  end, so the aggregator stops the job at once with the error.
"""

from __future__ import annotations

import torch

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (MemoryError, torch.OutOfMemoryError)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def describe(error: BaseException) -> str:
    """``IndexError: Target 12 is out of bounds.``: what a user needs to recognise the error in the job's reason."""
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
