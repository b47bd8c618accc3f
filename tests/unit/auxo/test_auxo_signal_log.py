"""The saved signals of signal_rounds: the file's round trip, and what the plug-in writes into it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fedscale_halor.auxo.plugin import AuxoCohorts
from fedscale_halor.auxo.settings import AuxoSettings
from fedscale_halor.auxo.signal_log import (
    read_round_signals,
    saved_signal_files,
    signal_file,
    write_round_signals,
)
from fedscale_halor.types import TrainResult


def test_a_rounds_signals_come_back_in_client_order_with_their_cohorts(tmp_path: Path) -> None:
    # Prepare: clients given out of order
    folder = tmp_path / "auxo_signals"
    signals = {7: np.array([0.5, -1.0, 2.0]), 3: np.array([1.0, 0.25, -4.0])}

    # Execute
    path = write_round_signals(folder, 12, signals, {3: 1, 7: 0, 9: 1})
    saved = read_round_signals(path)

    # Assert
    assert path == folder / "round_12.safetensors" and not list(folder.glob("*.partial"))
    assert saved.round == 12
    assert saved.clients.dtype == np.int64 and saved.clients.tolist() == [3, 7]
    assert saved.cohorts.dtype == np.int64 and saved.cohorts.tolist() == [1, 0]
    assert saved.signals.dtype == np.float16
    assert saved.signals.tolist() == [[1.0, 0.25, -4.0], [0.5, -1.0, 2.0]]


def test_the_saved_rounds_are_listed_in_round_order(tmp_path: Path) -> None:
    # Prepare: round 10 would sort before round 2 by name
    folder = tmp_path / "auxo_signals"
    for round_index in (10, 2):
        write_round_signals(folder, round_index, {1: np.ones(2)}, {1: 0})
    (folder / "round_2.png").write_bytes(b"")

    # Execute
    files = saved_signal_files(tmp_path)

    # Assert
    assert files == [signal_file(folder, 2), signal_file(folder, 10)]
    assert saved_signal_files(tmp_path / "elsewhere") == []


def test_a_file_not_named_by_its_round_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = write_round_signals(tmp_path, 1, {1: np.ones(2)}, {1: 0})
    renamed = path.rename(tmp_path / "signals.safetensors")

    # Execute / Assert
    with pytest.raises(ValueError, match="round_<r>"):
        read_round_signals(renamed)


def _update(client: int, round_index: int, delta: float) -> TrainResult:
    """An update that moves every one of the model's 4 values by ``-delta``: its signal, old - new, is ``delta``."""
    weights = {"layer": torch.full((4,), -delta)}
    return TrainResult(client_id=client, round=round_index, model_version=round_index - 1, weights=weights,
                       num_samples=10, num_steps=1, loss_mean=0.5, loss_square_mean=0.25, wall_time_s=0.1)


def test_the_plug_in_saves_every_cohorts_reporting_clients_of_a_listed_round(tmp_path: Path) -> None:
    # Prepare: cohorts 0 = clients 0-3 and 1 = clients 4-7; rounds 1 and 3 listed; grad_ratio 2 keeps 2 values;
    # nothing clustered before round 10, so the cohorts stay as they are
    folder = tmp_path / "auxo_signals"
    plugin = AuxoCohorts(range(8), AuxoSettings(signal_rounds=(1, 3), start_round=10), num_participants=4, seed=0,
                         signals_folder=folder)
    members = ((0, 1, 2, 3), (4, 5, 6, 7))
    base = {"layer": torch.zeros(4)}

    # Execute: in rounds 1 and 2 cohort 0's clients 2 and 1 report, and cohort 1's 5; round 2 is not listed
    for round_index in (1, 2):
        for cohort, clients in ((0, (2, 1)), (1, (5,))):
            results = [_update(client, round_index, client / 4) for client in clients]
            for result in results:
                plugin.take_update(round_index, cohort, base, result)
            plugin.after_cohort_round(round_index, cohort, members, results)

    # Assert: after cohort 1's round the file holds both cohorts' reporting clients
    assert saved_signal_files(tmp_path) == [folder / "round_1.safetensors"]
    saved = read_round_signals(folder / "round_1.safetensors")
    assert saved.clients.tolist() == [1, 2, 5]
    assert saved.cohorts.tolist() == [0, 0, 1]
    assert saved.signals.tolist() == [[0.25, 0.25], [0.5, 0.5], [1.25, 1.25]]


def test_the_plug_in_of_a_job_without_signal_rounds_writes_nothing(tmp_path: Path) -> None:
    # Prepare
    plugin = AuxoCohorts(range(4), AuxoSettings(), num_participants=2, seed=0, signals_folder=tmp_path)
    result = _update(1, 1, 0.5)

    # Execute
    plugin.take_update(1, 0, {"layer": torch.zeros(4)}, result)
    plugin.after_cohort_round(1, 0, ((0, 1, 2, 3),), [result])

    # Assert
    assert list(tmp_path.iterdir()) == []
