"""The aggregator's Halor step against hand-written fake executors on threads, through a real work board."""

import logging
import threading
from collections.abc import Callable

import numpy as np
import pytest

from fedscale_halor.halor.executor_plugin import HalorClients
from fedscale_halor.halor.messages import (
    HALOR_CODECS,
    HalorKeys,
    LabelStats,
    MaskedHistograms,
    RevealedMasks,
    RevealMasks,
)
from fedscale_halor.halor.ring import ring_order
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorSettings
from fedscale_halor.halor.session import MaskedUpload
from fedscale_halor.plugin.payloads import PayloadRegistry
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.transport.messages import Envelope, Shutdown
from fedscale_halor.types import ResampleTarget

HALOR_PAYLOADS = PayloadRegistry(HALOR_CODECS)


class FakeLabels:
    """Only what the clients' side of the protocol reads: each client's label counts."""

    def __init__(self, histograms: dict[int, list[int]]) -> None:
        self._histograms = histograms

    def label_counts(self, client_id: int) -> np.ndarray:
        return np.array(self._histograms[client_id], dtype=np.int64)


class FakeExecutor:
    """Answers Halor's questions as a real executor does, except for the clients it is told to keep silent."""

    def __init__(self, executor_id: str, board: WorkBoard, histograms: dict[int, list[int]], *,
                 silent_uploads: frozenset[int] = frozenset(), silent_reveals: bool = False) -> None:
        self.executor_id = executor_id
        self.events: list[object] = []
        self.sent: list[object] = []
        self._board = board
        self._clients = HalorClients(executor_id, job_seed=5, dataset=FakeLabels(histograms))  # type: ignore[arg-type]
        self._silent_uploads = silent_uploads
        self._silent_reveals = silent_reveals
        board.add_executor(executor_id)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            polled = self._board.next_event(self.executor_id)
            if isinstance(polled, Shutdown):
                return
            event = HALOR_PAYLOADS.unwrap(polled) if isinstance(polled, Envelope) else polled
            answer: object | None = None
            if isinstance(event, HalorKeys):
                answer = self._clients.public_keys(event)
            elif isinstance(event, LabelStats):
                seats = tuple(seat for seat in event.seats if seat.client_id not in self._silent_uploads)
                answer = self._clients.masked_histograms(LabelStats(event.round, seats))
            elif isinstance(event, RevealMasks) and not self._silent_reveals:
                answer = self._clients.revealed_masks(event)
            if answer is not None:
                self.events.append(event)
                self.sent.append(answer)
                self._board.submit(self.executor_id, HALOR_PAYLOADS.wrap(answer))

    def join(self) -> None:
        self._thread.join(timeout=5)


def _run(histograms: dict[int, list[int]], sampled: list[int], make_executors: Callable[[WorkBoard], list],
         *, resample: str = "under", rounds: int = 1, num_classes: int | None = None,
         ) -> tuple[HalorCoordinator, list[ResampleTarget | None], list[FakeExecutor]]:
    board = WorkBoard(long_poll_s=0.05, payloads=HALOR_PAYLOADS)
    executors = make_executors(board)
    classes = num_classes or len(next(iter(histograms.values())))
    coordinator = HalorCoordinator(board, HalorSettings(num_classes=classes, history=5, mask_bits=16,
                                                        timeout_s=0.5, resample=resample))
    targets = [coordinator.target_for_round(round_index, sampled) for round_index in range(1, rounds + 1)]
    board.shutdown("test over")
    for executor in executors:
        executor.join()
    return coordinator, targets, executors


def test_three_clients_give_the_exact_normalized_sum() -> None:
    # Prepare: sum = [2+1+0, 0+3+5] = [3, 8]
    histograms = {1: [2, 0], 2: [1, 3], 3: [0, 5]}

    # Execute
    coordinator, targets, _ = _run(histograms, [1, 2, 3], lambda board: [FakeExecutor("a", board, histograms)])

    # Assert
    assert targets == [ResampleTarget((3 / 11, 8 / 11), "under")]
    assert coordinator.reports[0].contributors == 3


def test_public_keys_are_fetched_once_and_cached_across_rounds() -> None:
    histograms = {1: [2, 0], 2: [1, 3], 3: [0, 5]}

    _, targets, executors = _run(histograms, [1, 2, 3], lambda board: [FakeExecutor("a", board, histograms)],
                                 rounds=2)

    asked_for_keys = [event for event in executors[0].events if isinstance(event, HalorKeys)]
    assert len(asked_for_keys) == 1
    assert targets[1] == ResampleTarget((6 / 22, 16 / 22), "under")  # two equal rounds in the window


# Ring positions of the silent clients: a run in the middle, a run wrapping past K-1, a single client, and two runs
# around one survivor, whose upload is then discarded (it would have to reveal both its masks).
@pytest.mark.parametrize(("silent_positions", "discarded_positions"), [
    ((4, 5), ()), ((9, 0), ()), ((7,), ()), ((1, 3), (2,)),
])
def test_ten_clients_with_dropouts_sum_the_survivors_exactly(silent_positions: tuple[int, ...],
                                                             discarded_positions: tuple[int, ...]) -> None:
    # Prepare: 10 clients over 35 classes, on two executors; the silent clients never upload
    rng = np.random.default_rng(3)
    histograms = {client: rng.integers(0, 20, size=35).tolist() for client in range(10)}
    ring = ring_order(1, list(range(10)))
    silent = frozenset(ring[position] for position in silent_positions)

    # Execute
    coordinator, targets, executors = _run(histograms, list(range(10)), lambda board: [
        FakeExecutor("a", board, histograms, silent_uploads=silent),
        FakeExecutor("b", board, histograms, silent_uploads=silent)])

    # Assert: the sum over exactly the contributors
    contributors = [client for position, client in enumerate(ring)
                    if position not in silent_positions and position not in discarded_positions]
    expected = np.sum([histograms[client] for client in contributors], axis=0)
    assert targets[0] is not None
    np.testing.assert_allclose(targets[0].distribution, expected / expected.sum())
    assert coordinator.reports[0].contributors == len(contributors)
    # every reveal went back to the executor that uploaded for that client
    uploaded_by = {upload.client_id: executor.executor_id for executor in executors for answer in executor.sent
                   if isinstance(answer, MaskedHistograms) for upload in answer.uploads}
    reveals = [(executor.executor_id, request.client_id) for executor in executors for event in executor.events
               if isinstance(event, RevealMasks) for request in event.requests]
    assert len(reveals) == 2  # each case leaves one run of missing positions: the masks at its two ends
    assert all(uploaded_by[client] == executor_id for executor_id, client in reveals)


def test_two_sampled_clients_keep_the_previous_distribution_and_say_why(caplog: pytest.LogCaptureFixture) -> None:
    histograms = {1: [2, 0], 2: [1, 3]}

    with caplog.at_level(logging.INFO):
        coordinator, targets, executors = _run(histograms, [1, 2],
                                               lambda board: [FakeExecutor("a", board, histograms)])

    assert targets == [None]
    assert executors[0].events == []  # nobody was asked anything: with K = 2 each could subtract itself
    assert "at least 3" in coordinator.reports[0].kept_reason
    assert "at least 3" in caplog.text


def test_recovery_masks_that_never_come_abandon_the_round() -> None:
    # Prepare: client 2 stays silent, and nobody answers the reveal requests
    histograms = {client: [client, 1] for client in range(1, 6)}

    # Execute
    coordinator, targets, _ = _run(histograms, [1, 2, 3, 4, 5], lambda board: [
        FakeExecutor("a", board, histograms, silent_uploads=frozenset({2}), silent_reveals=True)])

    # Assert
    assert targets == [None]
    assert "never came" in coordinator.reports[0].kept_reason


def test_resample_off_runs_the_protocol_but_asks_for_no_resampling() -> None:
    histograms = {1: [2, 0], 2: [1, 3], 3: [0, 5]}

    coordinator, targets, _ = _run(histograms, [1, 2, 3], lambda board: [FakeExecutor("a", board, histograms)],
                                   resample="off")

    assert targets == [None]
    assert coordinator.distribution() == pytest.approx((3 / 11, 8 / 11))


def test_no_upload_the_aggregator_receives_is_a_histogram() -> None:
    histograms = {client: [client % 3, 2 * client, 1] for client in range(8)}

    _, _, executors = _run(histograms, list(range(8)), lambda board: [FakeExecutor("a", board, histograms)])

    words = [upload.words for answer in executors[0].sent if isinstance(answer, MaskedHistograms)
             for upload in answer.uploads]
    assert len(words) == 8
    assert not {tuple(histogram) for histogram in histograms.values()} & set(words)
    assert all(isinstance(upload, MaskedUpload) for answer in executors[0].sent
               if isinstance(answer, MaskedHistograms) for upload in answer.uploads)
    assert not any(isinstance(answer, RevealedMasks) for answer in executors[0].sent)  # no dropout, no reveal
