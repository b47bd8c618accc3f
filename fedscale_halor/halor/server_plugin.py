"""Halor's plug-in on the aggregator (docs/halor.md): ring-masked histogram sums, the global distribution, the guard.

With halor_distribution window, per round, after selection and before training: ask the executors for the public
keys of sampled clients not seen before; seat the round's ring and collect the masked histograms (clients silent past
``timeout_s`` count as dropped); ask the dropouts' ring neighbours for the masks that recover the sum; add the sum to
the global distribution, or keep the previous distribution and log why. With halor_distribution all, the same
protocol runs once, before round 1, over every client in groups (each group its own ring, all groups at once), and
the groups' sums give the exact distribution for the whole run. The aggregator only forwards seats and adds masked
words: the first clear value it holds is a sum over at least three clients.

The guard leaves out of selection the clients whose resampled size is below filter_less, as Halor's client manager
does; it learns the sizes from the training results and, under the exact distribution, by asking every client once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fedscale_halor.halor.distribution import GlobalDistribution, protocol_groups
from fedscale_halor.halor.guard import ResampledSizeGuard
from fedscale_halor.halor.messages import (
    HalorKeys,
    HalorSizes,
    LabelStats,
    MaskedHistograms,
    PublicKeys,
    ResampledSizes,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.halor.privacy import NoiseSettings
from fedscale_halor.halor.privacy_ledger import PrivacyLedger, PrivacySpent
from fedscale_halor.halor.ring import MINIMUM_RING_SIZE
from fedscale_halor.halor.session import HalorSessionError, ServerMaskingRound
from fedscale_halor.plugin.round import RoundPlugin, SavedFiles
from fedscale_halor.selection.base import ClientIds
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.checkpoint import saved_files
from fedscale_halor.server.errors import JobFailedError
from fedscale_halor.server.exchange import Exchange
from fedscale_halor.types import ResampleTarget, RoundMetrics, TrainResult

_log = logging.getLogger("fedscale_halor.aggregator")

PUBLIC_KEY_BYTES = 32
WINDOW_FILE = "halor_window.json"  # the checkpoint's histogram sums behind the distribution
SIZES_FILE = "halor_sizes.json"  # the checkpoint's resampled sizes the guard knows
WINDOW_WHAT, SIZES_WHAT = "a window of Halor histogram sums", "a map of Halor's resampled sizes"
EXACT_ROUND = 0  # the round index of the exact distribution's one protocol run: before round 1, never again


class NoEligibleClientsError(JobFailedError):
    """Halor's guard left no client to select: every client's resampled size is below filter_less."""


@dataclass(frozen=True)
class HalorSettings:
    num_classes: int
    history: int
    mask_bits: int
    timeout_s: float
    resample: str  # under | over | off
    distribution: str = "window"  # window: the last rounds' sampled clients; all: every client, once, before round 1
    group_size: int = 100  # all: clients per ring
    group_seed: int = 0  # all: the job seed the groups follow from
    guard_floor: int = 0  # selection leaves out clients whose resampled size is below this; 0: no guard
    noise: NoiseSettings | None = None  # window: Skellam noise in every histogram, sums signed; None: exact sums


@dataclass(frozen=True)
class HalorRoundReport:
    """What one pre-round step did, for logs and benchmarks."""

    round: int
    ring_size: int
    contributors: int
    seconds: float
    kept_reason: str = ""  # why the distribution did not change, when it did not
    # what the aggregator learned: who contributed and their (noisy, with noise on) sum; None when no sum formed
    contributor_ids: tuple[int, ...] = ()
    histogram_sum: tuple[int, ...] | None = None
    privacy: PrivacySpent | None = None  # the budget after this round, with noise on


class HalorCoordinator(RoundPlugin):
    checkpoint_files = (WINDOW_FILE, SIZES_FILE)

    def __init__(self, board: WorkBoard, settings: HalorSettings) -> None:
        self._board = board
        self._settings = settings
        self._distribution = GlobalDistribution(settings.num_classes, settings.history)
        self._public_keys: dict[int, bytes] = {}
        self.reports: list[HalorRoundReport] = []
        self._privacy = None if settings.noise is None else PrivacyLedger(settings.noise)
        self._schedule = SCHEDULES[settings.distribution]
        self._guard = ResampledSizeGuard(settings.guard_floor)
        self._population: tuple[int, ...] = ()
        self._resumed = False

    def distribution(self) -> tuple[float, ...] | None:
        current = self._distribution.current()
        return None if current is None else tuple(float(share) for share in current)

    def privacy_spent(self) -> PrivacySpent | None:
        """The privacy budget after the latest noisy sum (None without noise, or before the first sum)."""
        return None if self._privacy is None else self._privacy.latest

    def window(self) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """The sums behind the distribution, for the checkpoint: only sums the protocol gave the aggregator."""
        return self._distribution.window()

    def resampled_sizes(self) -> dict[int, int]:
        """The guard's known resampled sizes, for the checkpoint."""
        return self._guard.sizes()

    def restore_window(self, window: Sequence[tuple[int, Sequence[int]]],
                resampled_sizes: Mapping[int, int] | None = None) -> None:
        """Continue from a checkpoint's window and the guard's sizes; public keys are fetched again as clients come
        back. Under the exact distribution the window holds the exact sum, so the protocol does not run again."""
        self._distribution = GlobalDistribution(self._settings.num_classes, self._settings.history)
        for round_index, histogram_sum in window:
            self._distribution.update(round_index, np.array(histogram_sum, dtype=np.int64),
                                      signed=self._settings.noise is not None)
        self._guard = ResampledSizeGuard(self._settings.guard_floor, resampled_sizes)
        self._resumed = True

    def before_run(self, client_ids: Sequence[int]) -> None:
        """Before round 1 (once per job; a resumed job keeps what its checkpoint says): the exact distribution and
        every client's resampled size, when the job asks for them."""
        self._population = tuple(sorted(client_ids))
        if not self._resumed:
            self._schedule.before_run(self, self._population)

    def before_round(self, round_index: int, sampled: Sequence[int]) -> tuple[object, ...]:
        target = self.target_for_round(round_index, sampled)
        return () if target is None else (target,)

    def target_for_round(self, round_index: int, sampled: Sequence[int]) -> ResampleTarget | None:
        """Run the round's part of the step; returns what the selected clients resample toward."""
        self._schedule.before_round(self, round_index, sampled)
        return self._target()

    def after_round(self, round_index: int, results: Sequence[TrainResult]) -> None:
        """Each trained client's size is its resampled size: what the guard goes by from now on."""
        for result in results:
            self._guard.record(result.client_id, result.num_samples)

    def eligible(self, round_index: int, candidates: ClientIds, needed: int) -> ClientIds:
        """The candidates selection may pick under the guard (all of them without it). Logs when fewer remain than
        the round needs; stops the job when the guard leaves no client at all."""
        guard = self._guard
        if not guard.active:
            return candidates
        admitted = guard.admitted(candidates.tolist() if isinstance(candidates, np.ndarray) else candidates)
        # the whole population is scanned only when no candidate is left, not every round
        if not admitted and not guard.admitted(self._population):
            raise NoEligibleClientsError(
                f"round {round_index}: Halor's guard leaves no client to select: each of the {len(self._population)} "
                f"clients resamples to fewer than filter_less={guard.floor} samples; lower filter_less, or resample "
                "with halor_resample over")
        if len(admitted) < min(needed, len(candidates)):
            _log.warning("round %d: Halor's guard leaves %d of %d candidate clients (resampled size >= filter_less=%d)"
                         "; the round needs %d", round_index, len(admitted), len(candidates), guard.floor, needed)
        return admitted

    def round_metrics(self, metrics: RoundMetrics) -> RoundMetrics:
        return replace(metrics, class_distribution=self.distribution())

    def save(self) -> Mapping[str, bytes]:
        window = [{"round": round_index, "histogram_sum": list(counts)} for round_index, counts in self.window()]
        sizes = {str(client): int(size) for client, size in sorted(self.resampled_sizes().items())}
        return {WINDOW_FILE: json.dumps(window).encode(), SIZES_FILE: json.dumps({"resampled_sizes": sizes}).encode()}

    def restore(self, files: SavedFiles) -> None:
        window = files.read(WINDOW_FILE, _parse_window, WINDOW_WHAT) or []
        sizes = files.read(SIZES_FILE, _parse_sizes, SIZES_WHAT) or {}
        self.restore_window(window, sizes)

    def _target(self) -> ResampleTarget | None:
        current = self.distribution()
        if current is None or self._settings.resample == "off":
            return None
        return ResampleTarget(current, self._settings.resample)

    def _sum_of_round(self, round_index: int, sampled: Sequence[int]) -> None:
        """halor_distribution window: the round's sampled clients run the ring, and their sum joins the window."""
        started = time.perf_counter()
        masking = self._masking_round(round_index, sorted(sampled))
        self._collect([masking])
        outcome = masking.result()
        spent = None
        if outcome.histogram_sum is None:
            self._distribution.keep(round_index, outcome.reason)
        else:
            self._distribution.update(round_index, np.array(outcome.histogram_sum, dtype=np.int64),
                                      signed=masking.signed)
            if self._privacy is not None:  # each contributor's noise share is variance / ring size
                spent = self._privacy.record(round_index, outcome.contributors, len(masking.ring))
        report = HalorRoundReport(round_index, len(sampled), len(outcome.contributors), time.perf_counter() - started,
                                  kept_reason=outcome.reason, contributor_ids=outcome.contributors,
                                  histogram_sum=outcome.histogram_sum, privacy=spent)
        self.reports.append(report)
        current = self.distribution()
        _log.info("round %d: Halor sum over %d of %d sampled clients in %.3f s; global label distribution %s",
                  round_index, report.contributors, report.ring_size, report.seconds,
                  _shares(current))
        if spent is not None:
            _log.info("round %d: Halor privacy: %s", round_index, spent.describe())

    def _sum_over_all(self, client_ids: Sequence[int]) -> None:
        """halor_distribution all: one run of the protocol over every client, in groups, before round 1. A group that
        forms no sum is left out, so g is then the exact distribution of the clients in the other groups."""
        settings, started = self._settings, time.perf_counter()
        groups = protocol_groups(client_ids, settings.group_size, settings.group_seed)
        self._fetch_public_keys(EXACT_ROUND, [client for client in client_ids if client not in self._public_keys])
        rings = [self._seated_ring(EXACT_ROUND, list(group)) for group in groups]
        self._collect(rings)
        total = np.zeros(settings.num_classes, dtype=np.int64)
        contributors, left_out = 0, 0
        for index, ring in enumerate(rings, start=1):
            outcome = ring.result()
            if outcome.histogram_sum is None:
                left_out += len(groups[index - 1])
                _log.warning("Halor exact distribution: group %d of %d (%d clients) formed no sum and is left out: %s",
                             index, len(groups), len(groups[index - 1]), outcome.reason)
                continue
            total += np.array(outcome.histogram_sum, dtype=np.int64)
            contributors += len(outcome.contributors)
        reason = "" if total.sum() > 0 else "no group of the exact distribution formed a sum"
        if reason:
            self._distribution.keep(EXACT_ROUND, reason)
        else:
            self._distribution.update(EXACT_ROUND, total)
        report = HalorRoundReport(EXACT_ROUND, len(client_ids), contributors, time.perf_counter() - started,
                                  kept_reason=reason)
        self.reports.append(report)
        _log.info("Halor exact distribution: sum over %d of %d clients in %d groups (%d clients in groups left out) in "
                  "%.3f s; global label distribution, fixed for the run: %s", contributors, len(client_ids),
                  len(groups), left_out, report.seconds, _shares(self.distribution()))
        self._ask_resampled_sizes(client_ids)

    def _ask_resampled_sizes(self, client_ids: Sequence[int]) -> None:
        """The guard, under a distribution fixed for the run: each client's resampled size, asked once."""
        target = self._target()
        if target is None or not self._guard.active:
            return
        outcome = self._board.exchange(
            Exchange(ResampledSizes, EXACT_ROUND, {client: client for client in client_ids},
                     lambda round_, ids: HalorSizes(round_, target, tuple(ids))),
            self._settings.timeout_s)
        for client, size in sorted(outcome.answers.items()):
            try:
                self._guard.record(client, size)
            except ValueError as error:
                _log.warning("Halor's guard: the size of client %d is ignored: %s", client, error)
        unknown = sorted({*outcome.declined, *outcome.unanswered})
        if unknown:
            _log.warning("Halor's guard: no resampled size for clients %s; they stay selectable until they train",
                         unknown)
        _log.info("Halor's guard: %d of %d clients resample to at least filter_less=%d samples",
                  len(self._guard.admitted(client_ids)), len(client_ids), self._guard.floor)

    def _masking_round(self, round_index: int, sampled: list[int]) -> ServerMaskingRound:
        if len(sampled) >= MINIMUM_RING_SIZE:
            self._fetch_public_keys(round_index, [client for client in sampled if client not in self._public_keys])
        return self._seated_ring(round_index, sampled)

    def _seated_ring(self, round_index: int, sampled: list[int]) -> ServerMaskingRound:
        settings = self._settings
        if len(sampled) >= MINIMUM_RING_SIZE:
            missing = [client for client in sampled if client not in self._public_keys]
            if missing:  # a client with no key cannot be seated; the ring goes on without it
                _log.warning("round %d: no public key for clients %s; they sit this step out", round_index, missing)
                sampled = [client for client in sampled if client in self._public_keys]
        keys = {client: self._public_keys[client] for client in sampled if client in self._public_keys}
        return ServerMaskingRound(round_index, sampled, keys, settings.num_classes, settings.mask_bits,
                                  signed=settings.noise is not None)

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

    def _collect(self, maskings: Sequence[ServerMaskingRound]) -> None:
        """Uploads, then recovery masks, for rings of one round index (each client sits in one ring): one exchange
        for all the rings' uploads and one for all their masks, so many rings cost no more waiting than one."""
        rings = [masking for masking in maskings if not masking.is_over]
        if not rings:
            return
        round_index, timeout_s = rings[0].round_index, self._settings.timeout_s
        ring_of = {client: masking for masking in rings for client in masking.ring}
        uploads = self._board.exchange(
            Exchange(MaskedHistograms, round_index, {client: seat for masking in rings
                                                     for client, seat in masking.seats().items()},
                     lambda round_, seats: LabelStats(round_, tuple(seats))),
            timeout_s)
        _accept_each(uploads.answers, lambda upload: ring_of[upload.client_id].accept_upload(upload), round_index,
                     "upload")
        dropped = sorted({*uploads.declined, *uploads.unanswered})
        if dropped:
            _log.info("round %d: no masked histogram from clients %s; recovering the sum without them", round_index,
                      dropped)
        requests = [request for masking in rings for request in masking.close_uploads()]
        rings = [masking for masking in rings if not masking.is_over]
        if not rings:
            return
        reveals = self._board.exchange(
            Exchange(RevealedMasks, round_index, {request.client_id: request for request in requests},
                     lambda round_, asked: RevealMasks(round_, tuple(asked)),
                     route={request.client_id: uploads.answered_by[request.client_id] for request in requests}),
            timeout_s)
        _accept_each(reveals.answers, lambda mask: ring_of[mask.client_id].accept_reveal(mask), round_index, "mask")
        for masking in rings:
            if not masking.is_over:
                masking.abandon(f"round {round_index}: the recovery masks of clients "
                                f"{[request.client_id for request in masking.outstanding_requests]} never came; no "
                                "sum is formed")


def _accept_each(answers: Mapping[int, Any], accept: Callable[[Any], None], round_index: int, what: str) -> None:
    """Hand each client's answer to the session in client order; a refused one is logged and left out."""
    for client in sorted(answers):
        try:
            accept(answers[client])
        except HalorSessionError as error:
            _log.warning("round %d: %s of client %d refused: %s", round_index, what, client, error)


def _parse_window(data: bytes) -> list[tuple[int, list[int]]]:
    return [(int(entry["round"]), [int(count) for count in entry["histogram_sum"]]) for entry in json.loads(data)]


def _parse_sizes(data: bytes) -> dict[int, int]:
    entries = json.loads(data)["resampled_sizes"]
    return {int(client): int(size) for client, size in entries.items()}


def saved_window(folder: Path) -> list[tuple[int, list[int]]]:
    """The window of histogram sums in the checkpoint in ``folder``; empty when it has none."""
    return saved_files(folder).read(WINDOW_FILE, _parse_window, WINDOW_WHAT) or []


def saved_sizes(folder: Path) -> dict[int, int]:
    """The guard's resampled sizes in the checkpoint in ``folder``; empty when it has none."""
    return saved_files(folder).read(SIZES_FILE, _parse_sizes, SIZES_WHAT) or {}


def _shares(distribution: tuple[float, ...] | None) -> str:
    return "none yet" if distribution is None else "[" + " ".join(f"{share:.3f}" for share in distribution) + "]"


class _Schedule(Protocol):
    """When the protocol runs: the part of the step before round 1 and the part before each round."""

    def before_run(self, step: HalorCoordinator, client_ids: Sequence[int]) -> None: ...

    def before_round(self, step: HalorCoordinator, round_index: int, sampled: Sequence[int]) -> None: ...


class _EveryRound:
    """halor_distribution window: each round's sampled clients run the ring; nothing happens before round 1."""

    def before_run(self, step: HalorCoordinator, client_ids: Sequence[int]) -> None:
        return None

    def before_round(self, step: HalorCoordinator, round_index: int, sampled: Sequence[int]) -> None:
        step._sum_of_round(round_index, sampled)


class _OnceOverAll:
    """halor_distribution all: every client runs the ring once, before round 1; the rounds run no protocol."""

    def before_run(self, step: HalorCoordinator, client_ids: Sequence[int]) -> None:
        step._sum_over_all(client_ids)

    def before_round(self, step: HalorCoordinator, round_index: int, sampled: Sequence[int]) -> None:
        return None


SCHEDULES: dict[str, _Schedule] = {"window": _EveryRound(), "all": _OnceOverAll()}
