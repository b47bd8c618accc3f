"""Training lanes: an executor with several CPU threads trains that many clients at once, one thread each.

On a CPU, small clients parallelize poorly inside one training step: two torch threads on one step of the reference
workload's CNN (batch 20) do 20% less work per second than two clients trained side by side on one thread each,
and the two threads of one step stall whenever another process takes a core. A single-threaded client also trains
to the same weights whatever the number of lanes or executors.

The executor's own thread keeps talking to the aggregator: it queues clients for the lanes, asks for more while
fewer are waiting than there are lanes, and waits for the lanes to go idle before anything that must not overlap
training (a new model, an evaluation, Halor's questions, the end).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from torch import nn

from fedscale_halor.types import TrainTask

# one client's task, and the plug-ins' hints of its round
LaneWork = tuple[TrainTask, Sequence[object]]
# (the lane's model, the work) -> None; raising ends the executor (per-client failures are the callback's to report)
TrainOne = Callable[[nn.Module, TrainTask, Sequence[object]], None]


class TrainingLanes:
    def __init__(self, models: Sequence[nn.Module], train_one: TrainOne, name: str) -> None:
        self._train_one = train_one
        self._changed = threading.Condition()
        self._queue: deque[LaneWork] = deque()
        self._busy = 0
        self._closing = False
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._serve, args=(model,), daemon=True, name=f"{name}-lane{index}")
                         for index, model in enumerate(models)]
        for thread in self._threads:
            thread.start()

    @property
    def count(self) -> int:
        return len(self._threads)

    def submit(self, work: Sequence[LaneWork]) -> None:
        with self._changed:
            self._raise_if_failed()
            self._queue.extend(work)
            self._changed.notify_all()

    def wait_for_room(self) -> None:
        """Until fewer clients wait than there are lanes: time to ask the aggregator for more."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._queue) < self.count or self._error is not None)
            self._raise_if_failed()

    def drain(self) -> None:
        """Until every queued client is trained and every lane is idle."""
        with self._changed:
            self._changed.wait_for(lambda: (not self._queue and not self._busy) or self._error is not None)
            self._raise_if_failed()

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._queue.clear()
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _serve(self, model: nn.Module) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closing)
                if self._closing:
                    return
                task, hints = self._queue.popleft()
                self._busy += 1
                self._changed.notify_all()  # room for more: the executor's thread may ask for the next clients
            try:
                self._train_one(model, task, hints)
            except BaseException as error:  # handed to the executor's thread, which ends the executor
                with self._changed:
                    self._error = error
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()
