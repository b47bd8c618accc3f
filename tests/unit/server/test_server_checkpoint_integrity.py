"""A checkpoint survives a crash or a full disk during its write, and every corrupt file is refused with its path,
what is wrong with it and what to do."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fedscale_halor.errors import InputFileError
from fedscale_halor.halor.server_plugin import SIZES_FILE as HALOR_SIZES_FILE
from fedscale_halor.halor.server_plugin import WINDOW_FILE as HALOR_FILE
from fedscale_halor.halor.server_plugin import saved_sizes as load_halor_sizes
from fedscale_halor.halor.server_plugin import saved_window as load_halor_window
from fedscale_halor.server.checkpoint import (
    STRATEGY_FILE,
    CheckpointState,
    load_checkpoint,
    load_checkpoint_state,
    load_strategy_state,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[3]
AFRESH = "start the run afresh without --resume (no complete earlier checkpoint is kept)"


def _remedy(folder: Path, round_index: int = 1) -> str:
    return (f"resume from the previous checkpoint (after round {round_index}): copy it over this one with "
            f"`cp -p {folder / 'previous'}/* {folder}/` and run the same command with --resume again, or start the "
            "run afresh without --resume")


def _weights(round_index: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64,), float(round_index)), "b": torch.arange(4, dtype=torch.float64) * round_index}


# what Halor's plug-in writes for a window of one sum and one client's resampled size
HALOR_FILES = {HALOR_FILE: b'[{"round": 2, "histogram_sum": [1, 2]}]',
               HALOR_SIZES_FILE: b'{"resampled_sizes": {"7": 30}}'}


def _save(folder: Path, round_index: int, **extra: object) -> None:
    save_checkpoint(folder, CheckpointState(round_index, round_index, 1.5 * round_index), _weights(round_index),
                    {"moment.w": torch.full((3,), float(round_index))}, **extra)


def _two_checkpoints(folder: Path, **extra: object) -> Path:
    _save(folder, 1, **extra)
    _save(folder, 2, **extra)
    return folder


def _assert_round(folder: Path, round_index: int) -> None:
    state, weights = load_checkpoint(folder)
    assert state == CheckpointState(round_index, round_index, 1.5 * round_index)
    assert weights.keys() == _weights(round_index).keys()
    assert all(torch.equal(weights[name], tensor) for name, tensor in _weights(round_index).items())
    assert torch.equal(load_strategy_state(folder)["moment.w"], torch.full((3,), float(round_index)))


def _message(call: object, *args: object) -> str:
    with pytest.raises(InputFileError) as raised:
        call(*args)  # type: ignore[operator]
    return str(raised.value)


def test_the_latest_checkpoint_stays_in_place_and_the_one_before_is_kept_in_previous(tmp_path: Path) -> None:
    # Prepare
    folder = tmp_path / "checkpoint"

    # Execute
    _two_checkpoints(folder, plugin_files=HALOR_FILES)

    # Assert
    _assert_round(folder, 2)
    _assert_round(folder / "previous", 1)
    assert sorted(path.name for path in folder.iterdir()) == [
        HALOR_SIZES_FILE, HALOR_FILE, "model.safetensors", "previous", "state.json", STRATEGY_FILE]
    recorded = json.loads((folder / "state.json").read_text())["files"]
    assert sorted(recorded) == [HALOR_SIZES_FILE, HALOR_FILE, "model.safetensors", STRATEGY_FILE]
    model = (folder / "model.safetensors").read_bytes()
    assert recorded["model.safetensors"]["bytes"] == len(model)
    assert len(recorded["model.safetensors"]["sha256"]) == 64


def test_a_truncated_model_names_the_file_and_the_previous_checkpoint(tmp_path: Path) -> None:
    # Prepare
    folder = _two_checkpoints(tmp_path / "checkpoint")
    model = folder / "model.safetensors"
    size = model.stat().st_size
    model.write_bytes(model.read_bytes()[:100])

    # Execute
    messages = {_message(load_checkpoint_state, folder), _message(load_checkpoint, folder)}

    # Assert
    assert messages == {f"{model}: truncated: 100 bytes where state.json records {size}; {_remedy(folder)}"}


def test_a_changed_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    # Prepare
    folder = _two_checkpoints(tmp_path / "checkpoint")
    model = folder / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))

    # Execute
    message = _message(load_checkpoint, folder)

    # Assert
    prefix, suffix = message.split("... differs from the ")
    assert prefix.startswith(f"{model}: corrupt: its sha256 ")
    assert suffix.endswith(f"... that state.json records; {_remedy(folder)}")


@pytest.mark.parametrize("text, problem", [
    ("{\"round\": 2, \"model_", "not a checkpoint's state (JSONDecodeError: Unterminated string starting at: "
                               "line 1 column 14 (char 13))"),
    ("[]", "not a checkpoint's state (TypeError: expected a JSON object, got list)"),
    ('{"round": 2}', "not a checkpoint's state (KeyError: 'model_version')"),
], ids=["truncated", "a-list", "no-model-version"])
def test_a_corrupt_state_file_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    # Prepare
    folder = _two_checkpoints(tmp_path / "checkpoint")
    (folder / "state.json").write_text(text)

    # Execute
    message = _message(load_checkpoint_state, folder)

    # Assert
    assert message == f"{folder / 'state.json'}: {problem}; {_remedy(folder)}"


def test_a_missing_state_file_without_an_earlier_checkpoint_says_to_start_afresh(tmp_path: Path) -> None:
    # Prepare
    folder = tmp_path / "checkpoint"
    _save(folder, 1)
    (folder / "state.json").unlink()

    # Execute
    message = _message(load_checkpoint, folder)

    # Assert
    assert message == (f"{folder / 'state.json'}: missing: the checkpoint has no state file (its write never "
                       f"finished, or the file was removed); {AFRESH}")


def test_a_strategy_file_that_state_json_lists_must_be_there(tmp_path: Path) -> None:
    # Prepare
    folder = _two_checkpoints(tmp_path / "checkpoint")
    (folder / STRATEGY_FILE).unlink()

    # Execute
    messages = {_message(load_checkpoint_state, folder), _message(load_strategy_state, folder)}

    # Assert
    assert messages == {f"{folder / STRATEGY_FILE}: missing, though state.json lists it; {_remedy(folder)}"}


def test_corrupt_halor_files_are_refused(tmp_path: Path) -> None:
    # Prepare: one checked against its digest, one from before digests were kept (nothing to check it against)
    folder = _two_checkpoints(tmp_path / "checkpoint", plugin_files=HALOR_FILES)
    (folder / HALOR_FILE).write_text('[{"round": 2, "histogram_sum": [1, 3]}]')
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "state.json").write_text('{"round": 2, "model_version": 2, "clock_s": 3.0}')
    (legacy / HALOR_SIZES_FILE).write_text('{"resampled_sizes": [1, 2]}')

    # Execute
    window = _message(load_halor_window, folder)
    sizes = _message(load_halor_sizes, legacy)

    # Assert
    assert window.startswith(f"{folder / HALOR_FILE}: corrupt: its sha256 ")
    assert window.endswith(f"that state.json records; {_remedy(folder)}")
    assert sizes == (f"{legacy / HALOR_SIZES_FILE}: not a map of Halor's resampled sizes: 'list' object has no "
                     f"attribute 'items'; {AFRESH}")


def test_a_checkpoint_from_before_digests_still_loads(tmp_path: Path) -> None:
    # Prepare: the layout written before state.json recorded the files
    folder = tmp_path / "checkpoint"
    _save(folder, 3)
    (folder / "state.json").write_text('{"round": 3, "model_version": 3, "clock_s": 4.5}')

    # Execute, Assert
    _assert_round(folder, 3)
    _save(folder, 4)
    _assert_round(folder, 4)
    _assert_round(folder / "previous", 3)


def test_the_remedys_command_resumes_from_the_previous_checkpoint(tmp_path: Path) -> None:
    # Prepare
    folder = _two_checkpoints(tmp_path / "with space" / "checkpoint")
    (folder / "model.safetensors").write_bytes(b"")
    command = _message(load_checkpoint, folder).split("`")[1]

    # Execute
    subprocess.run(["bash", "-c", command], check=True)

    # Assert
    _assert_round(folder, 1)


_STEPS = ("replace", "unlink", "link", "rmdir", "mkdir", "fsync")


def _crash_at(step: int, folder: Path) -> int:
    """Save round 2 over round 1 in a forked child that dies at its ``step``-th file-system call; the exit status
    is 0 when the save finished before that step."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        count = 0

        def dying(original):
            def call(*args, **kwargs):
                nonlocal count
                count += 1
                if count == step:
                    os._exit(9)
                return original(*args, **kwargs)
            return call

        for name in _STEPS:
            setattr(os, name, dying(getattr(os, name)))
        try:
            _save(folder, 2)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_crash_at_any_step_of_a_write_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    # Prepare, Execute: a crash before each file-system call of the write in turn, until the write gets through
    outcomes = []
    for step in range(1, 200):
        folder = tmp_path / f"crash-{step}" / "checkpoint"
        _save(folder, 1)
        exit_code = _crash_at(step, folder)
        assert exit_code in (0, 9)
        state = load_checkpoint_state(folder)

        # Assert: the round before, or the new one, always whole; and the next write goes through
        _assert_round(folder, state.round)
        outcomes.append(state.round)
        _save(folder, 3)
        _assert_round(folder, 3)
        _assert_round(folder / "previous", 2 if state.round == 2 else 1)
        assert not (folder / ".incoming").exists()
        if exit_code == 0:
            break
    assert outcomes[0] == 1 and outcomes[-1] == 2 and len(outcomes) > 10
    assert outcomes == sorted(outcomes)


_FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    import torch
    from fedscale_halor.server.checkpoint import CheckpointState, save_checkpoint
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        save_checkpoint(Path(sys.argv[1]), CheckpointState(2, 2, 3.0), {"w": torch.full((4096,), 2.0)})
    except Exception as error:
        print(type(error).__name__, error)
        sys.exit(3)
""")


def test_a_write_that_runs_out_of_file_size_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    # Prepare
    folder = tmp_path / "checkpoint"
    _save(folder, 1)
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}

    # Execute: `ulimit -f` in a child process
    child = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, str(folder)], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)

    # Assert
    assert child.returncode == 3, child.stderr
    assert child.stdout.startswith("OSError model.safetensors: cannot write the checkpoint file (")
    assert "File too large" in child.stdout
    _assert_round(folder, 1)
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before
    assert sorted(path.name for path in folder.iterdir()) == ["model.safetensors", "state.json", STRATEGY_FILE]


def test_an_interrupted_install_loads_the_previous_checkpoint(tmp_path: Path) -> None:
    # Prepare: the latest state.json removed, the new checkpoint still waiting in .incoming
    folder = _two_checkpoints(tmp_path / "checkpoint")
    incoming = folder / ".incoming"
    incoming.mkdir()
    shutil.copy(folder / "state.json", incoming / "state.json")
    (folder / "state.json").unlink()

    # Execute, Assert
    assert load_checkpoint_state(folder) == CheckpointState(1, 1, 1.5)
    _assert_round(folder, 1)
