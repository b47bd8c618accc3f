"""Halor's exact distribution and its guard on the aggregator, against a board that answers every exchange at once.

Seven clients over three classes, in groups of three (so 3 + 4: the short tail of one client joins the group before
it). Their histograms sum to H = [20, 20, 16], so g = (20, 20, 16) / 56, and under resamples them to, by hand:
  client 0 [8, 0, 0], 1 [0, 8, 0], 2 [0, 0, 8]: a single class is its own pivot, kept whole: 8 each;
  client 3 [6, 1, 1]: pivot class 1 (g/n largest), class 0 keeps min(6, 20/20 * 1) = 1, class 2 min(1, ⌊16/20⌋) = 0: 2;
  client 4 [1, 6, 1] and client 5 [1, 1, 6]: likewise 1 + 1 + 0 = 2;
  client 6 [4, 4, 0]: pivot class 0, class 1 keeps min(4, 20/20 * 4) = 4: 8.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from fedscale_halor.halor.distribution import protocol_groups
from fedscale_halor.halor.executor_plugin import HalorClients
from fedscale_halor.halor.messages import HalorKeys, HalorSizes, LabelStats, RevealMasks
from fedscale_halor.halor.server_plugin import HalorCoordinator, HalorSettings, NoEligibleClientsError
from fedscale_halor.server.checkpoint import CheckpointState, save_checkpoint, saved_files
from fedscale_halor.server.exchange import Exchange, ExchangeOutcome
from fedscale_halor.types import ResampleTarget

HISTOGRAMS = {0: [8, 0, 0], 1: [0, 8, 0], 2: [0, 0, 8], 3: [6, 1, 1], 4: [1, 6, 1], 5: [1, 1, 6], 6: [4, 4, 0]}
CLIENTS = list(HISTOGRAMS)
EXACT = (20 / 56, 20 / 56, 16 / 56)
RESAMPLED = {0: 8, 1: 8, 2: 8, 3: 2, 4: 2, 5: 2, 6: 8}
SEED = 233


class FakeLabels:
    """Only the clients' label counts: asking for their features would fail."""

    def label_counts(self, client_id: int) -> np.ndarray:
        return np.array(HISTOGRAMS[client_id], dtype=np.int64)


class AnsweringBoard:
    """One executor that answers each question as soon as the exchange is handed out, except for silent clients."""

    def __init__(self, silent: frozenset[int] = frozenset()) -> None:
        self.asked: list[object] = []
        self._clients = HalorClients("executor_0", job_seed=5, dataset=FakeLabels())  # type: ignore[arg-type]
        self._silent = silent

    def exchange(self, exchange: Exchange, timeout_s: float) -> ExchangeOutcome:
        while (event := exchange.take("executor_0", live_executors=1)) is not None:
            self.asked.append(event)
            if isinstance(event, LabelStats):
                event = LabelStats(event.round,
                                   tuple(seat for seat in event.seats if seat.client_id not in self._silent))
            exchange.accept("executor_0", self._clients.answer(event))
        return exchange.outcome()

    def kinds(self) -> list[type]:
        return [type(event) for event in self.asked]


def _coordinator(board: AnsweringBoard, *, floor: int = 3, resample: str = "under") -> HalorCoordinator:
    return HalorCoordinator(board, HalorSettings(  # type: ignore[arg-type]
        num_classes=3, history=5, mask_bits=16, timeout_s=0.1, resample=resample, distribution="all", group_size=3,
        group_seed=SEED, guard_floor=floor))


def test_one_run_over_all_clients_gives_the_exact_sum_and_every_resampled_size() -> None:
    # Prepare
    board = AnsweringBoard()
    coordinator = _coordinator(board)

    # Execute
    coordinator.before_run(CLIENTS)
    target = coordinator.target_for_round(1, [0, 3, 6])

    # Assert: the true histogram of all clients, from one upload exchange for both rings
    assert coordinator.window() == ((0, (20, 20, 16)),)
    assert coordinator.distribution() == pytest.approx(EXACT)
    assert coordinator.resampled_sizes() == RESAMPLED
    assert target is not None and target.distribution == pytest.approx(EXACT) and target.mode == "under"
    assert board.kinds() == [HalorKeys, LabelStats, HalorSizes]  # and nothing in round 1: g is fixed
    assert coordinator.reports[0].contributors == 7


def test_the_guard_keeps_the_clients_that_resample_to_filter_less_and_logs_a_short_round(
        caplog: pytest.LogCaptureFixture) -> None:
    coordinator = _coordinator(AnsweringBoard(), floor=3)
    coordinator.before_run(CLIENTS)
    caplog.clear()  # the one-shot step logs at INFO when an earlier test left the logger at that level

    with caplog.at_level(logging.WARNING, logger="fedscale_halor.aggregator"):
        enough = coordinator.eligible(1, CLIENTS, 4)
        short = coordinator.eligible(2, [0, 1, 3, 4, 5], 3)

    assert enough == [0, 1, 2, 6]
    assert short == [0, 1]
    assert caplog.messages == ["round 2: Halor's guard leaves 2 of 5 candidate clients (resampled size >= "
                               "filter_less=3); the round needs 3"]


def test_the_job_stops_when_the_guard_leaves_no_client() -> None:
    # Prepare: the largest resampled size is 8
    coordinator = _coordinator(AnsweringBoard(), floor=9)
    coordinator.before_run(CLIENTS)

    # Execute / Assert
    with pytest.raises(NoEligibleClientsError, match="each of the 7 clients resamples to fewer than filter_less=9"):
        coordinator.eligible(1, CLIENTS, 2)


def test_a_group_without_a_sum_is_left_out_and_a_dropout_is_recovered(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare: two of the three clients of the first group are silent (one survivor: no sum); one client of the
    # second group is silent (three survivors: their sum is recovered)
    first, second = protocol_groups(CLIENTS, 3, SEED)
    silent = frozenset({first[0], first[1], second[0]})
    board = AnsweringBoard(silent)
    coordinator = _coordinator(board)

    # Execute
    with caplog.at_level(logging.WARNING, logger="fedscale_halor.aggregator"):
        coordinator.before_run(CLIENTS)

    # Assert: g is the exact distribution of the second group's three survivors
    survivors = np.sum([HISTOGRAMS[client] for client in second[1:]], axis=0)
    assert coordinator.window() == ((0, tuple(int(count) for count in survivors)),)
    assert coordinator.reports[0].contributors == 3
    assert RevealMasks in board.kinds()
    assert "Halor exact distribution: group 1 of 2 (3 clients) formed no sum and is left out" in caplog.text


def test_no_size_is_asked_without_a_guard_or_without_resampling() -> None:
    for floor, resample in ((0, "under"), (3, "off")):
        board = AnsweringBoard()
        coordinator = _coordinator(board, floor=floor, resample=resample)

        coordinator.before_run(CLIENTS)

        assert HalorSizes not in board.kinds()
        assert coordinator.resampled_sizes() == {}
        assert coordinator.distribution() == pytest.approx(EXACT)


def test_a_resumed_job_keeps_the_exact_distribution_and_the_sizes_without_running_anything(tmp_path: Path) -> None:
    # Prepare: a first run, checkpointed as the aggregator does
    first = _coordinator(AnsweringBoard())
    first.before_run(CLIENTS)
    save_checkpoint(tmp_path, CheckpointState(4, 4, 0.0), {"w": torch.zeros(1)}, plugin_files=first.save())

    # Execute: a resumed run with a fresh board
    board = AnsweringBoard()
    resumed = _coordinator(board)
    resumed.restore(saved_files(tmp_path))
    resumed.before_run(CLIENTS)

    # Assert
    assert board.asked == []
    assert resumed.distribution() == pytest.approx(EXACT)
    assert resumed.resampled_sizes() == RESAMPLED
    assert resumed.eligible(5, CLIENTS, 4) == first.eligible(5, CLIENTS, 4) == [0, 1, 2, 6]
    assert resumed.target_for_round(5, [0, 1, 2]) == ResampleTarget(first.distribution(), "under")  # type: ignore[arg-type]
