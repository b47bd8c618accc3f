"""Auxo on the round pipeline: clients' model updates become signals, a reward table learns the clients' cohorts,
and a cohort splits at Auxo's split rounds (docs/auxo.md).

Each client's signal is its update, old weights minus new, reduced as Auxo reduces it (signals.py). After every
cohort's committed round, its reporting clients' signals go to the reward table (reward_table.py), which may split
the cohort in two and reassigns clients; the cohorts follow the table's assignment. Each cohort gets an even share
of the participants (shares.py, Auxo's resource manager).

In the rounds ``signal_rounds`` lists, the signals of every cohort's reporting clients are saved with the clients'
cohorts (signal_log.py). The plug-in sees each cohort's round, not the end of the global round, so it rewrites the
round's file after each cohort's round with all the round's signals so far and everyone's latest cohort: after the
last cohort's round the file holds the whole round, as it ended.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fedscale_halor.auxo.reward_table import RewardTable
from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.shares import cohort_participants
from fedscale_halor.auxo.signal_log import write_round_signals
from fedscale_halor.auxo.signals import client_signal
from fedscale_halor.plugin.cohorts import CohortLayout, CohortPlugin
from fedscale_halor.plugin.round import SavedFiles
from fedscale_halor.types import TrainResult, Weights

_log = logging.getLogger("fedscale_halor.aggregator")
TABLE_FILE = "auxo_reward_table.json"


class AuxoCohorts(CohortPlugin):
    checkpoint_files = (TABLE_FILE,)
    takes_updates = True  # each client's update is its clustering signal

    def __init__(self, client_ids: Sequence[int], settings: AuxoSettings, *, num_participants: int,
                 seed: int, signals_folder: Path | None = None) -> None:
        """``signals_folder``: where the signals of ``settings.signal_rounds`` go; None: nowhere."""
        # the table numbers clients 0..N-1; the job's ids may have gaps (clients filtered out)
        self._client_ids = tuple(sorted(client_ids))
        self._position = {client: position for position, client in enumerate(self._client_ids)}
        self._settings = settings
        self._table = RewardTable(len(self._client_ids), settings,
                                  train_ratio=num_participants / max(1, len(self._client_ids)), seed=seed)
        self._signals: dict[tuple[int, int], np.ndarray] = {}  # (cohort, client) -> its latest signal
        self._rounds: dict[int, int] = {0: 0}  # cohort -> its completed rounds (a new cohort inherits its parent's)
        self._signals_folder = signals_folder if settings.signal_rounds else None
        self._saved_round = 0  # the listed round whose signals ``_saved_signals`` holds
        self._saved_signals: dict[int, np.ndarray] = {}  # client -> its signal of that round

    def participants(self, round_index: int, cohort: int, cohort_sizes: Sequence[int], total: int) -> int:
        return cohort_participants(total, len(cohort_sizes))

    def take_update(self, round_index: int, cohort: int, base_weights: Weights, result: TrainResult) -> None:
        if result.weights:
            # the model's own tensor order, as the update has it (a model read back from a checkpoint is sorted by
            # name), so that "the last layers" are the same tensors before and after a resume
            base = {name: base_weights[name] for name in result.weights}
            self._signals[cohort, result.client_id] = client_signal(base, result.weights, self._settings.grad_ratio)

    def after_cohort_round(self, round_index: int, cohort: int, members: Sequence[Sequence[int]],
                           results: Sequence[TrainResult]) -> CohortLayout | None:
        self._rounds[cohort] = self._rounds.get(cohort, 0) + 1
        reported = sorted(result.client_id for result in results if (cohort, result.client_id) in self._signals)
        signals = [self._signals.pop((cohort, client)) for client in reported]
        self._signals = {key: value for key, value in self._signals.items() if key[0] != cohort}
        layout = self._clustered(round_index, cohort, reported, signals)
        self._save_signals(round_index, dict(zip(reported, signals, strict=True)),
                           members if layout is None else layout.members)
        if layout is None or [tuple(clients) for clients in members] == list(layout.members):
            return None
        return layout

    def _clustered(self, round_index: int, cohort: int, reported: Sequence[int],
                   signals: Sequence[np.ndarray]) -> CohortLayout | None:
        """The layout after the reward table saw the cohort's signals; None when they are not clustered."""
        if not self._settings.clustering_due(self._rounds[cohort]) or not reported:
            return None
        before = self._table.cohort_count
        split = self._table.observe(cohort, [self._position[client] for client in reported], np.stack(signals))
        layout = self._layout(before, cohort)
        if split:
            self._rounds[self._table.cohort_count - 1] = self._rounds[cohort]
            _log.info("round %d: auxo: cohort %d splits; cohort sizes %s", round_index, cohort,
                      [len(clients) for clients in layout.members])
        return layout

    def _save_signals(self, round_index: int, signals: Mapping[int, np.ndarray],
                      members: Sequence[Sequence[int]]) -> None:
        if self._signals_folder is None or round_index not in self._settings.signal_rounds:
            return
        if round_index != self._saved_round:
            self._saved_round, self._saved_signals = round_index, {}
        self._saved_signals.update(signals)
        if not self._saved_signals:
            return
        cohort_of = {client: index for index, clients in enumerate(members) for client in clients}
        write_round_signals(self._signals_folder, round_index, self._saved_signals, cohort_of)

    def _layout(self, previous_count: int, parent: int) -> CohortLayout:
        assignment = self._table.assignment()
        members = tuple(tuple(client for client, position in self._position.items() if assignment[position] == index)
                        for index in range(self._table.cohort_count))
        return CohortLayout(members=members, parents={index: parent
                                                      for index in range(previous_count, len(members))})

    def save(self) -> Mapping[str, bytes]:
        return {TABLE_FILE: (json.dumps({"table": self._table.state_dict(),
                                         "rounds": {str(c): n for c, n in self._rounds.items()}}) + "\n").encode()}

    def restore(self, files: SavedFiles) -> None:
        saved = files.read(TABLE_FILE, json.loads, "Auxo's reward table (JSON)")
        if saved is None:
            return
        self._table.load_state_dict(saved["table"])
        self._rounds = {int(cohort): int(count) for cohort, count in saved["rounds"].items()}
