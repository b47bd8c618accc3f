"""The seam between orchestration and the wire.

Executors start every call (a pull model, as FedScale): they register, then poll for their next event and submit
completions. ``AggregatorService`` is what the aggregator side implements; a ``Transport`` is the executor's channel
to it. The in-memory transport calls the service directly; the gRPC transport carries the same calls over the network.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply


class AuthenticationError(PermissionError):
    """An executor presented a missing or wrong job token."""


class AggregatorGoneError(ConnectionError):
    """The aggregator stopped answering after it had been reached: the job is over for this executor."""


class AggregatorService(ABC):
    """The aggregator's side of the protocol; every call carries the job token."""

    @abstractmethod
    def register(self, token: str, info: ExecutorInfo) -> RegisterReply: ...

    @abstractmethod
    def next_event(self, token: str, executor_id: str) -> Event: ...

    @abstractmethod
    def submit(self, token: str, executor_id: str, completion: Completion) -> None: ...

    @abstractmethod
    def attend(self, token: str, executor_id: str) -> None:
        """A registered executor opens the connection it holds for as long as it runs (raises as ``next_event``
        does for a wrong token or an unknown executor)."""

    @abstractmethod
    def hung_up(self, executor_id: str) -> None:
        """The connection that ``attend`` opened has broken: the executor was killed, or its host or its network
        went away, unless it attends again soon."""


class Transport(ABC):
    """An executor's channel to the aggregator."""

    @abstractmethod
    def register(self, info: ExecutorInfo) -> RegisterReply: ...

    @abstractmethod
    def next_event(self, executor_id: str) -> Event: ...

    @abstractmethod
    def submit(self, executor_id: str, completion: Completion) -> None: ...

    def close(self) -> None:  # noqa: B027
        """Release the channel; transports without resources need nothing."""
