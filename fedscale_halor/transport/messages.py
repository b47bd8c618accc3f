"""What the aggregator and its executors say to each other, as plain frozen dataclasses.

Transports convert these to and from their wire format (the gRPC transport in its serde module); orchestration code
never sees a wire type. A plug-in's messages travel in an ``Envelope``: the protocol itself names no feature.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedscale_halor.aggregation.partial import SumRule
from fedscale_halor.types import EvalResult, TrainResult, TrainTask, Weights


@dataclass(frozen=True)
class ExecutorInfo:
    executor_id: str
    host: str
    device: str


@dataclass(frozen=True)
class RegisterReply:
    accepted: bool
    reason: str = ""


@dataclass(frozen=True)
class Envelope:
    """A plug-in's message, as an event, a completion or a task hint: its kind names the codec that reads the body
    (plugin/payloads.py); transports carry it as it is."""

    kind: str
    body: bytes


# Events: the aggregator's answer to an executor's poll.
@dataclass(frozen=True)
class UpdateModel:
    version: int
    weights: Weights
    cohort: int = 0  # whose model: executors keep the latest version of each cohort's


@dataclass(frozen=True)
class ClientTrain:
    round: int
    model_version: int
    tasks: tuple[TrainTask, ...]
    hints: tuple[Envelope, ...] = ()  # plug-ins' words for every task of the event (Halor: what to resample toward)
    cohort: int = 0  # the cohort whose model ``model_version`` is
    sum_rule: SumRule | None = None  # how the updates of the ``summed`` tasks are added up; set when any is


@dataclass(frozen=True)
class ModelTest:
    round: int
    model_version: int
    shard_index: int
    shard_count: int
    cohort: int = 0
    view: int = 0  # which test view (a planted label group's labels) the shard is of


@dataclass(frozen=True)
class Idle:
    """Nothing to do yet; poll again after ``wait_s``."""

    wait_s: float


@dataclass(frozen=True)
class Shutdown:
    reason: str


Event = UpdateModel | ClientTrain | ModelTest | Idle | Shutdown | Envelope


# Completions: what an executor reports.
@dataclass(frozen=True)
class ClientUpdate:
    result: TrainResult


@dataclass(frozen=True)
class PartialUpdate:
    """The ``summed`` clients of one ``ClientTrain`` event that trained: their results without weights, and the
    exact sum of their updates by the event's rule (``RunningWeightedMean.state_dict``: plain tensors). Clients of
    the event that failed were reported apart, as ``ClientFailure``s."""

    round: int
    model_version: int
    results: tuple[TrainResult, ...]
    sums: Weights


@dataclass(frozen=True)
class ClientFailure:
    """A client whose training raised; the aggregator counts it as dropped instead of waiting for it, or, when
    ``fatal`` (the error would recur on any executor: see executor/task_errors.py), stops the job with it."""

    round: int
    client_id: int
    error: str  # the exception's type and message
    fatal: bool = False


@dataclass(frozen=True)
class EvalOutcome:
    round: int
    model_version: int
    shard_index: int
    result: EvalResult
    view: int = 0


@dataclass(frozen=True)
class EvalFailure:
    """A test shard whose evaluation raised: ``fatal`` stops the job, else the shard is handed out again (a few
    times at most)."""

    round: int
    model_version: int
    shard_index: int
    error: str  # the exception's type and message
    fatal: bool = False
    view: int = 0


@dataclass(frozen=True)
class Heartbeat:
    """Sent while an executor is busy, so a long local training is not mistaken for a dead executor."""


Completion = ClientUpdate | PartialUpdate | ClientFailure | EvalOutcome | EvalFailure | Heartbeat | Envelope
