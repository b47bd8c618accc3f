"""The partial sums an executor keeps of the clients it trains, one per ``ClientTrain`` event.

Tasks marked ``summed`` are not sent one by one: each trained update is checked against the model it trained from
(as the aggregator checks a single update) and added to its event's ``PartialSummer``; once every summed task of the
event has trained or failed, one ``PartialUpdate`` carries the sum and the clients' statistics. A failed or unfit
client is reported on its own as a ``ClientFailure`` and stays out of the sum. Lanes add from their own threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fedscale_halor.aggregation.partial import PartialSummer
from fedscale_halor.aggregation.update_check import update_mismatch
from fedscale_halor.transport.messages import ClientFailure, ClientTrain, Completion, PartialUpdate
from fedscale_halor.types import TrainResult, TrainTask, Weights

_log = logging.getLogger("fedscale_halor.executor")

# Partial sums pay where an update's trip costs more than its bytes: small models. A large model's update costs
# mostly its bytes and its exact add, wherever that runs, while its partial (four times the update, held as
# accumulator, state and encoding at once) costs an executor about twelve times the model's memory: the reference
# workload's 26 MB CNN trained slower and took 0.6 GiB more with partials than with single updates.
SUMMED_MODEL_BYTES = 4 * 2**20


@dataclass
class _EventSum:
    round: int
    model_version: int
    reference: Weights
    summer: PartialSummer
    waiting: int  # summed tasks not yet trained or failed


class PartialSums:
    def __init__(self, executor_id: str, send: Callable[[Completion], None],
                 fewest_clients: Callable[[Weights], int | None] | None = None) -> None:
        """``fewest_clients(model)``: the fewest summed clients an event needs for a partial (else each update is
        sent on its own; None: never); by default ``clients_worth_summing``."""
        self._executor_id = executor_id
        self._send = send
        self._fewest_clients = fewest_clients or clients_worth_summing
        self._lock = threading.Lock()
        self._of_client: dict[int, _EventSum] = {}

    def start(self, event: ClientTrain, reference: Weights) -> None:
        """The event's summed tasks will come to ``add`` or ``failed``; ``reference``: the model they train from.
        An event of so few clients that their updates are smaller than one partial sends them one by one."""
        summed = [task.client_id for task in event.tasks if task.summed]
        if not summed:
            return
        if event.sum_rule is None:
            raise ValueError(f"executor {self._executor_id}: round {event.round} sums clients {summed[:5]} but its "
                             "event carries no sum rule")
        fewest = self._fewest_clients(reference)
        if fewest is None or len(summed) < fewest:
            return
        entry = _EventSum(event.round, event.model_version, reference, PartialSummer(reference, event.sum_rule),
                          len(summed))
        with self._lock:
            for client in summed:
                self._of_client[client] = entry

    def takes(self, task: TrainTask) -> bool:
        """Whether the task's outcome goes to ``add`` or ``failed`` (else its update is sent on its own)."""
        with self._lock:
            return task.summed and task.client_id in self._of_client

    def add(self, task: TrainTask, result: TrainResult) -> None:
        """A summed task trained: its update joins the event's sum, unless it does not fit the model."""
        with self._lock:
            entry = self._of_client.pop(task.client_id)
            problem = update_mismatch(result, entry.reference, entry.model_version)
            if problem is None:
                try:
                    entry.summer.add(result)
                except ValueError as error:
                    problem = str(error)
            done = self._settle(entry)
        if problem is not None:
            _log.warning("executor %s: round %d: client %d: its update does not fit the global model: %s; counted "
                         "as failed", self._executor_id, task.round, task.client_id, problem)
            self._send(ClientFailure(task.round, task.client_id, f"its update from {self._executor_id} does not fit "
                                                                 f"the global model: {problem}"))
        if done is not None:
            self._send(done)

    def failed(self, task: TrainTask) -> None:
        """A summed task failed (its failure was reported apart)."""
        with self._lock:
            done = self._settle(self._of_client.pop(task.client_id))
        if done is not None:
            self._send(done)

    def _settle(self, entry: _EventSum) -> PartialUpdate | None:
        entry.waiting -= 1
        if entry.waiting > 0 or not entry.summer.results:
            return None
        return PartialUpdate(entry.round, entry.model_version, entry.summer.results, entry.summer.state_dict())


def clients_worth_summing(model: Weights) -> int | None:
    """The fewest clients whose updates take more bytes than one partial sum of them: a partial holds two int64
    limbs per element of a floating tensor (real and imaginary parts apart), so 5 for float32 models, 9 for half
    precision. None for a model whose update exceeds ``SUMMED_MODEL_BYTES``: its updates are sent one by one."""
    update = sum(tensor.numel() * tensor.element_size() for tensor in model.values())
    if update > SUMMED_MODEL_BYTES:
        return None
    partial = sum(tensor.numel() * (2 if tensor.is_complex() else 1) * 16
                  if tensor.is_floating_point() or tensor.is_complex() else tensor.numel() * tensor.element_size()
                  for tensor in model.values())
    return partial // update + 1 if update else 1
