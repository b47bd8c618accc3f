"""Completions sent on a background thread, in order, so that an executor trains its next clients while earlier
updates are still on the wire (and the aggregator is still decoding them).

With a tiny model an update is sent in about the time a client trains; an executor that waited for each update
before handing over the next spent most of a many-client round waiting. So completions queue up to a byte budget:
small updates never make training wait, and large ones (a ResNet's 45 MB) still keep memory bounded.
"""

from __future__ import annotations

import threading
from collections import deque

from fedscale_halor.transport.base import Transport
from fedscale_halor.transport.messages import ClientUpdate, Completion, PartialUpdate

# what waiting completions may hold in all; one completion always waits, however large
DEFAULT_BUDGET_BYTES = 64 * 2**20


def completion_bytes(completion: Completion) -> int:
    """The tensor bytes a completion holds (what queuing it costs); other completions are a few bytes."""
    if isinstance(completion, ClientUpdate):
        tensors = completion.result.weights.values()
    elif isinstance(completion, PartialUpdate):
        tensors = completion.sums.values()
    else:
        return 0
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


class Outbox:
    """Waiting completions hold at most ``budget_bytes`` of tensors (and at least ``depth`` completions may wait
    whatever their size); ``send`` blocks beyond that. A send that failed is raised again from the next ``send``
    or ``flush`` in the executor's own thread."""

    def __init__(self, executor_id: str, transport: Transport, depth: int = 1,
                 budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._executor_id = executor_id
        self._transport = transport
        self._depth = max(1, depth)
        self._budget_bytes = budget_bytes
        self._pending: deque[tuple[Completion, int]] = deque()
        self._pending_bytes = 0
        self._in_flight = False
        self._closing = False
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True, name=f"{executor_id}-outbox")
        self._thread.start()

    def send(self, completion: Completion) -> None:
        self._raise_if_failed()
        size = completion_bytes(completion)
        with self._changed:
            self._changed.wait_for(lambda: self._has_room(size))
            self._pending.append((completion, size))
            self._pending_bytes += size
            self._changed.notify_all()

    def flush(self) -> None:
        """Wait until everything handed to ``send`` has been delivered (or failed)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending and not self._in_flight)
        self._raise_if_failed()

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def _has_room(self, size: int) -> bool:
        waiting = len(self._pending)
        return waiting < self._depth or self._pending_bytes + size <= self._budget_bytes or self._error is not None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                completion, size = self._pending.popleft()
                self._in_flight = True
            try:
                if self._error is None:  # after a failure, later completions are dropped: the executor is ending
                    self._transport.submit(self._executor_id, completion)
            except BaseException as error:  # handed to the executor's thread, which decides what it means
                self._error = error
            finally:
                with self._changed:
                    self._pending_bytes -= size
                    self._in_flight = False
                    self._changed.notify_all()
