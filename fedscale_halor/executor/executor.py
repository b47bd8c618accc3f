"""An executor: one process (or thread) that simulates many clients, one after another or, with training lanes,
several at once.

It registers with the aggregator, then pulls events until told to shut down. It holds one copy of the global model
per version and trains whichever clients it is handed; data is memory-mapped, so any executor can train any client.
Updates of tasks marked ``summed`` go into one partial sum per event (partials.py), the others are sent one by one.
A client's training or a test shard's evaluation that raises is reported as a failure (task_errors.py says which are
fatal to the job) and the executor carries on.

An aggregator that is briefly unreachable is waited for by the transport (up to the job's reconnect_timeout), and
the executor carries on where it was. An aggregator that was restarted (a resumed job) does not know the executor:
its poll is refused as unknown, so the executor finishes and drops the work of the old aggregator, registers again
and forgets its model version, so that it trains only on the model the new aggregator sends.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fedscale_halor.client.base import Trainer
from fedscale_halor.client.evaluation import evaluate
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.lanes import TrainingLanes
from fedscale_halor.executor.outbox import Outbox
from fedscale_halor.executor.partials import PartialSums
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.executor.task_errors import describe, is_transient
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.transport.base import AggregatorGoneError, Transport
from fedscale_halor.transport.messages import (
    ClientFailure,
    ClientTrain,
    ClientUpdate,
    Completion,
    Envelope,
    EvalFailure,
    EvalOutcome,
    Event,
    ExecutorInfo,
    Heartbeat,
    Idle,
    ModelTest,
    RegisterReply,
    Shutdown,
    UpdateModel,
)
from fedscale_halor.types import TrainTask, Weights

_log = logging.getLogger("fedscale_halor.executor")


class RegistrationRefusedError(RuntimeError):
    pass


class _ForgettingSubmits(Transport):
    """The outbox's view of the transport: a completion refused because the aggregator does not know this executor
    belongs to an aggregator that was restarted since; it is dropped, not fatal (the new one hands out its own
    work, and the executor registers again at its next poll)."""

    def __init__(self, executor_id: str, transport: Transport) -> None:
        self._executor_id = executor_id
        self._transport = transport

    def register(self, info: ExecutorInfo) -> RegisterReply:
        return self._transport.register(info)

    def next_event(self, executor_id: str) -> Event:
        return self._transport.next_event(executor_id)

    def submit(self, executor_id: str, completion: Completion) -> None:
        try:
            self._transport.submit(executor_id, completion)
        except KeyError as error:
            _log.info("executor %s: a %s was dropped: the aggregator does not know this executor (%s)",
                      self._executor_id, type(completion).__name__, error)


@dataclass(frozen=True)
class ExecutorParts:
    model: torch.nn.Module
    dataset: FederatedDataset
    trainer: Trainer
    test_batch_size: int
    device: str = "cpu"
    heartbeat_s: float = 10.0
    # the job's plug-ins' executor sides, and the codecs of their messages
    plugins: tuple[ExecutorPlugin, ...] = ()
    payloads: PayloadRegistry | None = None
    # replicas of ``model``: with them the executor trains 1 + len(lane_models) clients at once (see lanes.py)
    lane_models: tuple[torch.nn.Module, ...] = ()


class Executor:
    def __init__(self, executor_id: str, transport: Transport, parts: ExecutorParts) -> None:
        self._id = executor_id
        self._transport = transport
        self._parts = parts
        # cohort -> (version, weights): the latest model of each cohort the aggregator has sent
        self._models: dict[int, tuple[int, Weights]] = {}
        self._training_cohort = 0  # whose model the lanes train on
        self._handlers: dict[type, Callable[[Event], bool]] = {
            UpdateModel: self._on_update_model,
            ClientTrain: self._on_client_train,
            ModelTest: self._on_model_test,
            Idle: self._on_idle,
            Shutdown: self._on_shutdown,
            Envelope: self._on_plugin_event,
        }
        self._payloads = parts.payloads or PayloadRegistry()
        self._answerers: dict[type, ExecutorPlugin] = {}
        for plugin in parts.plugins:
            for question in plugin.questions:
                if question in self._answerers:
                    raise ValueError(f"two plug-ins answer {question.__name__}")
                self._answerers[question] = plugin
        self.clients_trained = 0
        self._count_lock = threading.Lock()
        self._outbox: Outbox  # one per run(), where its thread lives
        self._partials: PartialSums  # one per run(), sending through the outbox
        self._lanes: TrainingLanes | None = None  # one per run(), with the outbox

    def run(self) -> None:
        """Serve the aggregator until it says shut down, or until it has been lost for longer than the transport
        waits for it."""
        self._register()
        stop_heartbeat = threading.Event()
        heartbeat = threading.Thread(target=self._send_heartbeats, args=(stop_heartbeat,), daemon=True,
                                     name=f"{self._id}-heartbeat")
        heartbeat.start()
        # each lane may hand over its update without waiting for the previous one to be on the wire
        self._outbox = Outbox(self._id, _ForgettingSubmits(self._id, self._transport),
                              depth=1 + len(self._parts.lane_models))
        self._partials = PartialSums(self._id, self._outbox.send)
        if self._parts.lane_models:
            self._lanes = TrainingLanes([self._parts.model, *self._parts.lane_models], self._train_one, self._id)
        try:
            keep_going = True
            while keep_going:
                if self._lanes is not None:
                    self._lanes.wait_for_room()
                event = self._next_event()
                if self._lanes is not None and not isinstance(event, ClientTrain | Idle):
                    self._lanes.drain()  # a new model, an evaluation or the end must not overlap training
                keep_going = self._handlers[type(event)](event)
            self._outbox.flush()
        except AggregatorGoneError as error:
            _log.error("executor %s: the aggregator is gone, giving up (%s); exiting", self._id, error)
        finally:
            if self._lanes is not None:
                self._lanes.close()
                self._lanes = None
            self._outbox.close()
            stop_heartbeat.set()
            heartbeat.join()

    def _register(self) -> None:
        reply = self._transport.register(ExecutorInfo(self._id, socket.gethostname(), self._parts.device))
        if not reply.accepted:
            raise RegistrationRefusedError(f"executor {self._id}: aggregator refused registration: {reply.reason}")

    def _next_event(self) -> Event:
        try:
            return self._transport.next_event(self._id)
        except KeyError as error:  # only an aggregator with a new board says so: it was restarted
            _log.warning("executor %s: the aggregator does not know this executor (%s); it was restarted: "
                         "registering again", self._id, error)
        if self._lanes is not None:
            self._lanes.drain()  # the old aggregator's clients; their updates are dropped with the outbox's
        self._outbox.flush()
        self._register()
        self._models.clear()  # a resumed aggregator may number its models as the old one did, with other weights
        return self._transport.next_event(self._id)

    def _send_heartbeats(self, stop: threading.Event) -> None:
        """Keep the aggregator from declaring this executor dead while one long client trains."""
        while not stop.wait(self._parts.heartbeat_s):
            try:
                self._transport.submit(self._id, Heartbeat())
            except Exception as error:  # the main loop notices a lost aggregator and ends the executor
                _log.debug("executor %s: heartbeat not delivered: %s", self._id, error)

    def _on_update_model(self, event: Event) -> bool:
        assert isinstance(event, UpdateModel)
        self._models[event.cohort] = (event.version, event.weights)
        return True

    def _on_client_train(self, event: Event) -> bool:
        assert isinstance(event, ClientTrain)
        held = self._models.get(event.cohort, (-1, {}))[0]
        if event.model_version != held:
            raise RuntimeError(f"executor {self._id}: asked to train on model version {event.model_version} of "
                               f"cohort {event.cohort} but holds version {held}")
        if event.cohort != self._training_cohort:
            if self._lanes is not None:
                self._lanes.drain()  # the lanes read the cohort's model: another cohort's clients finish first
            self._training_cohort = event.cohort
        hints = tuple(self._payloads.unwrap(hint) for hint in event.hints)
        self._partials.start(event, self._weights_of(event.cohort))
        if self._lanes is not None:
            self._lanes.submit([(task, hints) for task in event.tasks])
            return True
        for task in event.tasks:
            self._train_one(self._parts.model, task, hints)
        return True

    def _train_one(self, model: torch.nn.Module, task: TrainTask, hints: Sequence[object]) -> None:
        try:
            data = self._parts.dataset.client_data(task.client_id, self._training_positions(task, hints))
            result = self._parts.trainer.train(model, self._weights_of(self._training_cohort), data, task)
        except Exception as error:  # reported, not raised: the aggregator decides whether the job goes on
            _log.exception("executor %s: client %d failed in round %d", self._id, task.client_id, task.round)
            self._outbox.send(ClientFailure(task.round, task.client_id, describe(error), fatal=not is_transient(error)))
            if self._partials.takes(task):
                self._partials.failed(task)
            return
        with self._count_lock:
            self.clients_trained += 1
        if self._partials.takes(task):
            self._partials.add(task, result)
        else:
            self._outbox.send(ClientUpdate(result))

    def _on_model_test(self, event: Event) -> bool:
        assert isinstance(event, ModelTest)
        try:
            features, labels = self._parts.dataset.test_shard(event.shard_index, event.shard_count, event.view)
            with self._all_threads_for_one_task():
                result = evaluate(self._parts.model, self._weights_of(event.cohort), features, labels,
                                  self._parts.test_batch_size, self._parts.device)
        except Exception as error:  # reported, not raised: dying here left the job waiting out the executor timeout
            _log.exception("executor %s: evaluating test shard %d (view %d) of round %d failed", self._id,
                           event.shard_index, event.view, event.round)
            self._outbox.send(EvalFailure(event.round, event.model_version, event.shard_index, describe(error),
                                          fatal=not is_transient(error), view=event.view))
            return True
        self._outbox.send(EvalOutcome(event.round, event.model_version, event.shard_index, result, event.view))
        return True

    def _weights_of(self, cohort: int) -> Weights:
        return self._models.get(cohort, (-1, {}))[1]

    @contextlib.contextmanager
    def _all_threads_for_one_task(self) -> Iterator[None]:
        """While the lanes are idle, one task may use every lane's thread (torch's thread count is per process)."""
        lanes = 1 + len(self._parts.lane_models)
        if lanes == 1:
            yield
            return
        torch.set_num_threads(lanes)
        try:
            yield
        finally:
            torch.set_num_threads(1)

    def _training_positions(self, task: TrainTask, hints: Sequence[object]) -> np.ndarray | None:
        chosen = [positions for plugin in self._parts.plugins
                  if (positions := plugin.training_positions(task, hints)) is not None]
        if len(chosen) > 1:
            raise RuntimeError(f"{len(chosen)} plug-ins choose the samples of client {task.client_id}")
        return chosen[0] if chosen else None

    def _on_plugin_event(self, event: Event) -> bool:
        assert isinstance(event, Envelope)
        question = self._payloads.unwrap(event)
        plugin = self._answerers.get(type(question))
        if plugin is None:
            raise RuntimeError(f"executor {self._id}: no plug-in answers {type(question).__name__} "
                               f"(payload kind {event.kind!r})")
        self._outbox.send(self._payloads.wrap(plugin.answer(question)))
        return True

    def _on_idle(self, event: Event) -> bool:
        assert isinstance(event, Idle)
        if event.wait_s > 0:
            time.sleep(event.wait_s)
        return True

    def _on_shutdown(self, event: Event) -> bool:
        assert isinstance(event, Shutdown)
        _log.info("executor %s: shutting down (%s)", self._id, event.reason)
        return False
