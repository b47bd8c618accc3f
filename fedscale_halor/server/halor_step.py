"""Halor's pre-round step on the aggregator (docs/halor.md): ring-masked histogram sum, then the global distribution.

Per round, after selection and before training: ask the executors for the public keys of sampled clients not seen
before; seat the round's ring and collect the masked histograms (clients silent past ``timeout_s`` count as dropped);
ask the dropouts' ring neighbours for the masks that recover the sum; add the sum to the global distribution, or keep
the previous distribution and log why. The aggregator only forwards seats and adds masked words: the first clear
value it holds is a sum over at least three clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedscale_halor.halor.distribution import GlobalDistribution
from fedscale_halor.halor.ring import MINIMUM_RING_SIZE
from fedscale_halor.halor.session import HalorSessionError, ServerMaskingRound
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.exchange import Exchange
from fedscale_halor.transport.messages import (
    HalorKeys,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.types import ResampleTarget

_log = logging.getLogger("fedscale_halor.aggregator")

PUBLIC_KEY_BYTES = 32


@dataclass(frozen=True)
class HalorSettings:
    num_classes: int
    history: int
    mask_bits: int
    timeout_s: float
    resample: str  # under | over | off


@dataclass(frozen=True)
class HalorRoundReport:
    """What one pre-round step did, for logs and benchmarks."""

    round: int
    ring_size: int
    contributors: int
    seconds: float
    kept_reason: str = ""  # why the distribution did not change, when it did not


class HalorCoordinator:
    def __init__(self, board: WorkBoard, settings: HalorSettings) -> None:
        self._board = board
        self._settings = settings
        self._distribution = GlobalDistribution(settings.num_classes, settings.history)
        self._public_keys: dict[int, bytes] = {}
        self.reports: list[HalorRoundReport] = []

    def distribution(self) -> tuple[float, ...] | None:
        current = self._distribution.current()
        return None if current is None else tuple(float(share) for share in current)

    def window(self) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """The sums behind the distribution, for the checkpoint: only sums the protocol gave the aggregator."""
        return self._distribution.window()

    def restore(self, window: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Continue from a checkpoint's window; public keys are fetched again as clients come back."""
        self._distribution = GlobalDistribution(self._settings.num_classes, self._settings.history)
        for round_index, histogram_sum in window:
            self._distribution.update(round_index, np.array(histogram_sum, dtype=np.int64))

    def before_round(self, round_index: int, sampled: Sequence[int]) -> ResampleTarget | None:
        """Run the step for the round's sampled clients; returns what the selected clients resample toward."""
        started = time.perf_counter()
        masking = self._masking_round(round_index, sorted(sampled))
        if not masking.is_over:
            self._collect(masking)
        outcome = masking.result()
        if outcome.histogram_sum is None:
            self._distribution.keep(round_index, outcome.reason)
        else:
            self._distribution.update(round_index, np.array(outcome.histogram_sum, dtype=np.int64))
        report = HalorRoundReport(round_index, len(sampled), len(outcome.contributors), time.perf_counter() - started,
                                  kept_reason=outcome.reason)
        self.reports.append(report)
        current = self.distribution()
        _log.info("round %d: Halor sum over %d of %d sampled clients in %.3f s; global label distribution %s",
                  round_index, report.contributors, report.ring_size, report.seconds,
                  "none yet" if current is None else "[" + " ".join(f"{share:.3f}" for share in current) + "]")
        if current is None or self._settings.resample == "off":
            return None
        return ResampleTarget(current, self._settings.resample)

    def _masking_round(self, round_index: int, sampled: list[int]) -> ServerMaskingRound:
        settings = self._settings
        if len(sampled) >= MINIMUM_RING_SIZE:
            self._fetch_public_keys(round_index, [client for client in sampled if client not in self._public_keys])
            missing = [client for client in sampled if client not in self._public_keys]
            if missing:  # a client with no key cannot be seated; the ring goes on without it
                _log.warning("round %d: no public key for clients %s; they sit this step out", round_index, missing)
                sampled = [client for client in sampled if client in self._public_keys]
        keys = {client: self._public_keys[client] for client in sampled if client in self._public_keys}
        return ServerMaskingRound(round_index, sampled, keys, settings.num_classes, settings.mask_bits)

    def _fetch_public_keys(self, round_index: int, clients: list[int]) -> None:
        if not clients:
            return
        outcome = self._board.exchange(
            Exchange(PublicKeys, round_index, {client: client for client in clients},
                     lambda round_, ids: HalorKeys(round_, tuple(ids))),
            self._settings.timeout_s)
        for client, key in outcome.answers.items():
            if isinstance(key, bytes) and len(key) == PUBLIC_KEY_BYTES:
                self._public_keys[client] = key
            else:
                _log.warning("round %d: client %d sent a malformed public key; ignored", round_index, client)

    def _collect(self, masking: ServerMaskingRound) -> None:
        round_index, timeout_s = masking.round_index, self._settings.timeout_s
        uploads = self._board.exchange(
            Exchange(MaskedHistograms, round_index, masking.seats(),
                     lambda round_, seats: LabelStats(round_, tuple(seats))),
            timeout_s)
        _accept_each(uploads.answers, masking.accept_upload, round_index, "upload")
        dropped = sorted({*uploads.declined, *uploads.unanswered})
        if dropped:
            _log.info("round %d: no masked histogram from clients %s; recovering the sum without them", round_index,
                      dropped)
        requests = masking.close_uploads()
        if masking.is_over:
            return
        reveals = self._board.exchange(
            Exchange(RevealedMasks, round_index, {request.client_id: request for request in requests},
                     lambda round_, asked: RevealMasks(round_, tuple(asked)),
                     route={request.client_id: uploads.answered_by[request.client_id] for request in requests}),
            timeout_s)
        _accept_each(reveals.answers, masking.accept_reveal, round_index, "mask")
        if not masking.is_over:
            masking.abandon(f"round {round_index}: the recovery masks of clients "
                            f"{[request.client_id for request in masking.outstanding_requests]} never came; the round "
                            "keeps the previous distribution")


def _accept_each(answers: Mapping[int, Any], accept: Callable[[Any], None], round_index: int, what: str) -> None:
    """Hand each client's answer to the session in client order; a refused one is logged and left out."""
    for client in sorted(answers):
        try:
            accept(answers[client])
        except HalorSessionError as error:
            _log.warning("round %d: %s of client %d refused: %s", round_index, what, client, error)
