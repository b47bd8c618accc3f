"""Halor's window of histogram sums in a checkpoint: written with the model, read back, refused when malformed."""

from pathlib import Path

import pytest
import torch

from fedscale_halor.server.checkpoint import HALOR_FILE, CheckpointState, load_halor_window, save_checkpoint


def test_the_window_round_trips_and_a_job_without_halor_has_none(tmp_path: Path) -> None:
    # Prepare
    window = ((3, (5, 0, 7)), (4, (1, 2, 3)))

    # Execute
    save_checkpoint(tmp_path / "with", CheckpointState(4, 4, 10.0), {"w": torch.zeros(2)}, halor_window=window)
    save_checkpoint(tmp_path / "without", CheckpointState(4, 4, 10.0), {"w": torch.zeros(2)})

    # Assert
    assert load_halor_window(tmp_path / "with") == [(3, [5, 0, 7]), (4, [1, 2, 3])]
    assert load_halor_window(tmp_path / "without") == []


def test_a_malformed_window_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / HALOR_FILE).write_text('[{"round": 3}]')

    with pytest.raises(ValueError, match=f"{tmp_path / HALOR_FILE}: not a window of Halor histogram sums"):
        load_halor_window(tmp_path)
