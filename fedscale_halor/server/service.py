"""The aggregator's protocol endpoint: checks the job token, then hands calls to the work board."""

from __future__ import annotations

import hmac
import logging

from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.base import AggregatorService, AuthenticationError
from fedscale_halor.transport.messages import Completion, Event, ExecutorInfo, RegisterReply

_log = logging.getLogger("fedscale_halor.aggregator")


class BoardService(AggregatorService):
    def __init__(self, board: WorkBoard, token: str) -> None:
        if not token:
            raise ValueError("a job token is required")
        self._board = board
        self._token = token

    def _authenticate(self, token: str, who: str) -> None:
        if not hmac.compare_digest(token.encode(), self._token.encode()):
            _log.warning("refused %s: missing or wrong job token", who)
            raise AuthenticationError(f"{who}: missing or wrong job token")

    def register(self, token: str, info: ExecutorInfo) -> RegisterReply:
        self._authenticate(token, f"executor {info.executor_id} on {info.host}")
        self._board.add_executor(info.executor_id)
        _log.info("executor %s registered from %s (device %s)", info.executor_id, info.host, info.device)
        return RegisterReply(accepted=True)

    def next_event(self, token: str, executor_id: str) -> Event:
        self._authenticate(token, f"executor {executor_id}")
        return self._board.next_event(executor_id)

    def submit(self, token: str, executor_id: str, completion: Completion) -> None:
        self._authenticate(token, f"executor {executor_id}")
        self._board.submit(executor_id, completion)

    def attend(self, token: str, executor_id: str) -> None:
        self._authenticate(token, f"executor {executor_id}")
        self._board.attend(executor_id)

    def hung_up(self, executor_id: str) -> None:
        self._board.executor_hung_up(executor_id)
