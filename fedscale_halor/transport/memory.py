"""A transport that calls the aggregator's service in the same process: a whole federated job without a network."""

from __future__ import annotations

from fedscale_halor.transport.base import AggregatorService, Transport
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply


class InMemoryTransport(Transport):
    def __init__(self, service: AggregatorService, token: str) -> None:
        self._service = service
        self._token = token

    def register(self, info: ExecutorInfo) -> RegisterReply:
        return self._service.register(self._token, info)

    def next_event(self, executor_id: str) -> Event:
        return self._service.next_event(self._token, executor_id)

    def submit(self, executor_id: str, completion: Completion) -> None:
        self._service.submit(self._token, executor_id, completion)
