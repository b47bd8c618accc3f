"""Completions sent on a background thread, in order, so that an executor trains its next client while the last
client's update is still on the wire (and the aggregator is still decoding it)."""

from __future__ import annotations

import queue
import threading

from fedscale_halor.transport.base import Transport
from fedscale_halor.transport.messages import Completion

_STOP = object()


class Outbox:
    """At most ``depth`` completions wait; ``send`` blocks beyond that, so memory stays bounded. A send that failed
    is raised again from the next ``send`` or ``flush`` in the executor's own thread."""

    def __init__(self, executor_id: str, transport: Transport, depth: int = 1) -> None:
        self._executor_id = executor_id
        self._transport = transport
        self._pending: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True, name=f"{executor_id}-outbox")
        self._thread.start()

    def send(self, completion: Completion) -> None:
        self._raise_if_failed()
        self._pending.put(completion)

    def flush(self) -> None:
        """Wait until everything handed to ``send`` has been delivered (or failed)."""
        self._pending.join()
        self._raise_if_failed()

    def close(self) -> None:
        self._pending.put(_STOP)
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            item = self._pending.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after a failure, later completions are dropped: the executor is ending
                    self._transport.submit(self._executor_id, item)  # type: ignore[arg-type]
            except BaseException as error:  # handed to the executor's thread, which decides what it means
                self._error = error
            finally:
                self._pending.task_done()
