"""Halor's checkpoint files: written by its plug-in with the model, read back, refused when malformed."""

from pathlib import Path

import pytest
import torch

from fedscale_halor.halor.server_plugin import WINDOW_FILE, HalorCoordinator, HalorSettings, saved_window
from fedscale_halor.server.board import WorkBoard
from fedscale_halor.server.checkpoint import CheckpointState, save_checkpoint, saved_files


def _coordinator() -> HalorCoordinator:
    return HalorCoordinator(WorkBoard(), HalorSettings(num_classes=3, history=5, mask_bits=16, timeout_s=0.1,
                                                       resample="under"))


def test_the_window_round_trips_through_the_plugins_files_and_a_job_without_halor_has_none(tmp_path: Path) -> None:
    # Prepare: a window of two sums, as the protocol would have given them
    first = _coordinator()
    first.restore_window(((3, (5, 0, 7)), (4, (1, 2, 3))), {8: 12})

    # Execute
    save_checkpoint(tmp_path / "with", CheckpointState(4, 4, 10.0), {"w": torch.zeros(2)}, plugin_files=first.save())
    save_checkpoint(tmp_path / "without", CheckpointState(4, 4, 10.0), {"w": torch.zeros(2)})
    resumed = _coordinator()
    resumed.restore(saved_files(tmp_path / "with"))

    # Assert
    assert saved_window(tmp_path / "with") == [(3, [5, 0, 7]), (4, [1, 2, 3])]
    assert saved_window(tmp_path / "without") == []
    assert resumed.window() == first.window() and resumed.resampled_sizes() == {8: 12}
    assert resumed.distribution() == pytest.approx((6 / 18, 2 / 18, 10 / 18))


def test_a_malformed_window_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / WINDOW_FILE).write_text('[{"round": 3}]')

    with pytest.raises(ValueError, match=f"{tmp_path / WINDOW_FILE}: not a window of Halor histogram sums"):
        saved_window(tmp_path)


@pytest.mark.parametrize("name", ["model.safetensors", "state.json", "../escape.json", ".incoming"])
def test_a_plugin_may_not_write_over_the_checkpoints_own_files(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="a plug-in's checkpoint file may not be named"):
        save_checkpoint(tmp_path, CheckpointState(1, 1, 0.0), {"w": torch.zeros(1)}, plugin_files={name: b"{}"})
