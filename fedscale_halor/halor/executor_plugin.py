"""Halor's plug-in on an executor: the simulated clients' key pairs, masked histograms, recovery masks and
resampling.

Each client's key pair is derived inside the executor from the job seed and the client id (simulation only), so any
executor can play any client in the key and upload steps. A round's reveal request goes back to the executor that
uploaded for the client, which holds the client's masks of the round and refuses to reveal a second one. Resampled
sizes, for Halor's guard, come from a client's labels alone, by the same rule its training data is drawn with.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Sequence

import numpy as np

from fedscale_halor.data.federated import FederatedDataset
from fedscale_halor.executor.plugin import ExecutorPlugin
from fedscale_halor.halor.messages import (
    HalorAnswer,
    HalorKeys,
    HalorQuestion,
    HalorSizes,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    ResampledSizes,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.halor.resampling import resample_positions, target_counts
from fedscale_halor.halor.ring import HalorProtocolError
from fedscale_halor.halor.session import ClientMaskingSession, HalorSessionError, MaskedUpload, RevealedMask
from fedscale_halor.seeding import numpy_rng
from fedscale_halor.types import ClientData, ResampleTarget, TrainTask

_log = logging.getLogger("fedscale_halor.executor")


class HalorClients(ExecutorPlugin):
    """``noise_variance`` > 0: every client adds its share of Skellam noise of that variance per class of a full
    ring's sum (halor_noise; the aggregator derives the same setting from the job config and accounts for it)."""

    questions = (HalorKeys, LabelStats, RevealMasks, HalorSizes)

    def __init__(self, executor_id: str, job_seed: int, dataset: FederatedDataset,
                 noise_variance: float = 0.0) -> None:
        self._executor_id = executor_id
        self._job_seed = job_seed
        self._dataset = dataset
        self._noise_variance = noise_variance
        self._sessions: dict[int, ClientMaskingSession] = {}

    def _session(self, client_id: int) -> ClientMaskingSession:
        session = self._sessions.get(client_id)
        if session is None:
            session = self._sessions[client_id] = ClientMaskingSession(self._job_seed, client_id,
                                                                       noise_variance=self._noise_variance)
        return session

    def answer(self, question: object) -> HalorAnswer:
        """The answer to one of the pre-round step's questions."""
        event = typing.cast(HalorQuestion, question)
        if isinstance(event, HalorKeys):
            return self.public_keys(event)
        if isinstance(event, LabelStats):
            return self.masked_histograms(event)
        if isinstance(event, HalorSizes):
            return self.resampled_sizes(event)
        return self.revealed_masks(event)

    def training_positions(self, task: TrainTask, hints: Sequence[object]) -> np.ndarray | None:
        targets = [hint for hint in hints if isinstance(hint, ResampleTarget)]
        return resampled_positions(self._dataset, task, targets[0]) if targets else None

    def public_keys(self, event: HalorKeys) -> PublicKeys:
        return PublicKeys(event.round, tuple((client, self._session(client).public_key) for client in event.client_ids))

    def masked_histograms(self, event: LabelStats) -> MaskedHistograms:
        uploads: list[MaskedUpload] = []
        declined: list[int] = []
        for seat in event.seats:
            try:
                histogram = self._dataset.label_counts(seat.client_id)
                uploads.append(self._session(seat.client_id).upload(seat, histogram))
            except (HalorProtocolError, KeyError) as error:
                _log.warning("executor %s: client %d cannot upload in round %d: %s", self._executor_id,
                             seat.client_id, event.round, error)
                declined.append(seat.client_id)
        return MaskedHistograms(event.round, tuple(uploads), tuple(declined))

    def revealed_masks(self, event: RevealMasks) -> RevealedMasks:
        masks: list[RevealedMask] = []
        declined: list[int] = []
        for request in event.requests:
            session = self._sessions.get(request.client_id)
            try:
                if session is None:
                    raise HalorSessionError(f"client {request.client_id} never uploaded on this executor")
                masks.append(session.reveal(event.round, request.link_index))
            except HalorProtocolError as error:
                _log.warning("executor %s: client %d declines to reveal link %d of round %d: %s", self._executor_id,
                             request.client_id, request.link_index, event.round, error)
                declined.append(request.client_id)
        return RevealedMasks(event.round, tuple(masks), tuple(declined))

    def resampled_sizes(self, event: HalorSizes) -> ResampledSizes:
        """How many samples each client trains on under the target; only the clients' labels are read."""
        sizes: list[tuple[int, int]] = []
        declined: list[int] = []
        for client_id in event.client_ids:
            try:
                counts = class_targets(self._dataset.label_counts(client_id), event.target)
                sizes.append((client_id, int(counts.sum())))
            except (KeyError, ValueError, TypeError) as error:
                _log.warning("executor %s: no resampled size for client %d: %s", self._executor_id, client_id, error)
                declined.append(client_id)
        return ResampledSizes(event.round, tuple(sizes), tuple(declined))


def class_targets(class_counts: np.ndarray, target: ResampleTarget) -> np.ndarray:
    """Per-class counts a client with ``class_counts`` trains on when it resamples toward ``target``."""
    return target_counts(np.asarray(class_counts), np.asarray(target.distribution), target.mode)


def resampled_positions(dataset: FederatedDataset, task: TrainTask, target: ResampleTarget) -> np.ndarray:
    """The positions of the samples the client trains on when it resamples toward ``target``.

    The draw is seeded from the task's seed, so it changes every time the client is selected and is the same on
    whichever executor trains the client.
    """
    labels = dataset.client_labels(task.client_id)
    targets = class_targets(np.bincount(labels, minlength=len(target.distribution)), target)
    rng = numpy_rng(task.seed, task.round, "halor-resample", task.client_id)
    return resample_positions(labels, targets, target.mode, rng)


def training_data(dataset: FederatedDataset, task: TrainTask, resample: ResampleTarget | None) -> ClientData:
    """The client's data for the task: resampled toward Halor's distribution when the round carries one."""
    if resample is None:
        return dataset.client_data(task.client_id)
    return dataset.client_data(task.client_id, resampled_positions(dataset, task, resample))
