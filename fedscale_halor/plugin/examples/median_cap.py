"""An example plug-in, complete in one file (docs/architecture.md walks through it): before each round the sampled
clients report their sample counts, and every client of the round then trains on at most the median count.

It shows each part a feature has: its settings (a frozen dataclass), its messages (a question, an answer and a
task hint, each with a payload codec), its aggregator side (a pre-round exchange through the work board and a hint
for the round's tasks) and its executor side (answering the question, choosing the samples a client trains on).
Run it with ``plugins: ["fedscale_halor.plugin.examples.median_cap:MedianCapFactory"]`` in a job file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.plugin.factory import ExecutorSide, PluginFactory, ServerSide
from fedscale_halor.plugin.payloads import DataclassCodec, PayloadCodec
from fedscale_halor.plugin.round import RoundPlugin
from fedscale_halor.seeding import numpy_rng
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.exchange import Exchange
from fedscale_halor.settings import knob
from fedscale_halor.types import TrainResult, TrainTask

_log = logging.getLogger("fedscale_halor.aggregator")


@dataclass(frozen=True)
class MedianCapSettings:
    """The plug-in's job-file key; the config layer checks it by its range, as it checks the core's keys."""

    median_cap_timeout: float = knob(30.0, "median_cap: seconds the round waits for the sampled clients' sizes; "
                                           "clients that do not answer are left out", range=(0.1, None))


# messages ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SizeQuestion:
    round: int
    client_ids: tuple[int, ...]


@dataclass(frozen=True)
class SizeAnswer:
    round: int
    sizes: tuple[tuple[int, int], ...]  # (client id, training samples)
    declined: tuple[int, ...] = ()

    def by_client(self) -> dict[int, int]:
        return dict(self.sizes)


@dataclass(frozen=True)
class SampleCap:
    """The hint every task of the round carries: train on at most this many samples."""

    max_samples: int


CODECS: tuple[PayloadCodec[Any], ...] = (
    DataclassCodec("median_cap.question", SizeQuestion),
    DataclassCodec("median_cap.answer", SizeAnswer),
    DataclassCodec("median_cap.cap", SampleCap),
)


# the aggregator's side --------------------------------------------------------------------------------------------
class MedianCapRound(RoundPlugin):
    def __init__(self, board: WorkBoard, settings: MedianCapSettings) -> None:
        self._board = board
        self._settings = settings

    def before_round(self, round_index: int, sampled: Sequence[int]) -> tuple[object, ...]:
        exchange = Exchange(SizeAnswer, round_index, {client: client for client in sampled},
                            lambda round_, clients: SizeQuestion(round_, tuple(clients)))
        sizes = self._board.exchange(exchange, self._settings.median_cap_timeout).answers
        if not sizes:
            return ()
        cap = int(np.median(sorted(sizes.values())))
        _log.info("round %d: median cap: %d clients report %s samples; each trains on at most %d", round_index,
                  len(sizes), sorted(sizes.values()), cap)
        return (SampleCap(cap),)

    def after_round(self, round_index: int, results: Sequence[TrainResult]) -> None:
        _log.info("round %d: median cap: trained on %s samples", round_index,
                  [result.num_samples for result in sorted(results, key=lambda result: result.client_id)])


# the executors' side ----------------------------------------------------------------------------------------------
class MedianCapClients(ExecutorPlugin):
    questions = (SizeQuestion,)

    def __init__(self, dataset: FederatedDataset) -> None:
        self._dataset = dataset

    def answer(self, question: object) -> SizeAnswer:
        assert isinstance(question, SizeQuestion)
        return SizeAnswer(question.round, tuple((client, self._dataset.num_samples(client))
                                                for client in question.client_ids))

    def training_positions(self, task: TrainTask, hints: Sequence[object]) -> np.ndarray | None:
        caps = [hint.max_samples for hint in hints if isinstance(hint, SampleCap)]
        size = self._dataset.num_samples(task.client_id)
        if not caps or size <= caps[0]:
            return None
        # seeded by the task, as every random choice: the same samples on whichever executor trains the client
        rng = numpy_rng(task.seed, task.round, "median-cap", task.client_id)
        return np.sort(rng.choice(size, size=caps[0], replace=False))


class MedianCapFactory(PluginFactory):
    name = "median_cap"
    settings = MedianCapSettings

    def codecs(self) -> Sequence[PayloadCodec[Any]]:
        return CODECS

    def round_plugin(self, job: JobConfig, server: ServerSide) -> RoundPlugin:
        return MedianCapRound(server.board, job.plugin_settings.get(MedianCapSettings))

    def executor_plugin(self, job: JobConfig, executor: ExecutorSide) -> ExecutorPlugin:
        return MedianCapClients(executor.dataset)
