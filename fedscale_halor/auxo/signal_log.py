"""The clients' signals of chosen rounds (``signal_rounds``), saved in the run folder for a picture of the cohorts.

``<run>/auxo_signals/round_<r>.safetensors`` holds the signals Auxo observed in global round ``r``: every cohort's
reporting clients, in ascending client id. Its tensors: ``clients`` (int64 ids), ``cohorts`` (int64: each client's
cohort after the round's reassignments) and ``signals`` (a float16 matrix, one row per client, as
``signals.client_signal`` reduces the update). A file takes clients x signal length x 2 bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

SIGNALS_FOLDER = "auxo_signals"
_FILE_NAME = re.compile(r"round_(\d+)\.safetensors")


@dataclass(frozen=True)
class RoundSignals:
    round: int
    clients: np.ndarray  # int64, ascending
    cohorts: np.ndarray  # int64, the cohort of each client
    signals: np.ndarray  # float16, (clients, signal length)


def signal_file(folder: Path, round_index: int) -> Path:
    return folder / f"round_{round_index}.safetensors"


def write_round_signals(folder: Path, round_index: int, signals: Mapping[int, np.ndarray],
                        cohorts: Mapping[int, int]) -> Path:
    """Save ``signals`` (client -> its signal) with each client's cohort from ``cohorts``.

    Written to a temporary name and moved into place, so that a reader never meets half a file."""
    clients = sorted(signals)
    path = signal_file(folder, round_index)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file({"clients": np.asarray(clients, dtype=np.int64),
               "cohorts": np.asarray([cohorts[client] for client in clients], dtype=np.int64),
               "signals": np.stack([np.asarray(signals[client], dtype=np.float16) for client in clients])},
              str(partial))
    os.replace(partial, path)
    return path


def read_round_signals(path: Path) -> RoundSignals:
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path}: not a round's signals (expected round_<r>.safetensors)")
    tensors = load_file(str(path))
    missing = {"clients", "cohorts", "signals"} - set(tensors)
    if missing:
        raise ValueError(f"{path}: no {', '.join(sorted(missing))} tensor")
    clients, cohorts, signals = tensors["clients"], tensors["cohorts"], tensors["signals"]
    if signals.ndim != 2 or not len(clients) == len(cohorts) == signals.shape[0]:
        raise ValueError(f"{path}: {len(clients)} clients, {len(cohorts)} cohorts and signals of shape "
                         f"{signals.shape} do not match")
    return RoundSignals(int(match.group(1)), clients, cohorts, signals)


def saved_signal_files(run_dir: Path) -> list[Path]:
    """The run's saved rounds, in round order."""
    folder = run_dir / SIGNALS_FOLDER
    found = [(int(match.group(1)), path) for path in folder.glob("round_*.safetensors")
             if (match := _FILE_NAME.fullmatch(path.name))] if folder.is_dir() else []
    return [path for _, path in sorted(found)]
