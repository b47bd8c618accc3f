import logging

import pytest

from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.base import AuthenticationError
from fedscale_halor.transport.memory import InMemoryTransport
from fedscale_halor.transport.messages import ExecutorInfo, Idle


def test_executor_with_the_job_token_registers_and_polls() -> None:
    board = WorkBoard(long_poll_s=0.0)
    transport = InMemoryTransport(BoardService(board, "s3cret"), "s3cret")

    reply = transport.register(ExecutorInfo("executor_0", "host", "cpu"))
    event = transport.next_event("executor_0")

    assert reply.accepted
    assert board.executor_count == 1
    assert isinstance(event, Idle)


@pytest.mark.parametrize("presented", ["", "wrong", "s3cret-but-longer"])
def test_wrong_or_missing_token_is_refused_and_logged(presented: str, caplog: pytest.LogCaptureFixture) -> None:
    board = WorkBoard(long_poll_s=0.0)
    transport = InMemoryTransport(BoardService(board, "s3cret"), presented)

    with caplog.at_level(logging.WARNING, logger="fedscale_halor.aggregator"), \
            pytest.raises(AuthenticationError, match="executor_9"):
        transport.register(ExecutorInfo("executor_9", "intruder", "cpu"))

    assert board.executor_count == 0
    assert any("refused executor executor_9" in record.getMessage() for record in caplog.records)


def test_service_requires_a_token() -> None:
    with pytest.raises(ValueError, match="token"):
        BoardService(WorkBoard(), "")
