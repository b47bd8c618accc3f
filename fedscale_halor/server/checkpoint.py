"""Checkpoints of the global model: safetensors weights plus a small JSON of where the job stands.

Every file is written durably and recorded with its size and sha256 in ``state.json``, which is written last; the
previous checkpoint is kept in ``previous/`` until a new one is complete (checkpoint_store describes the layout).
A file that does not match its record is refused with what to do: resume from ``previous/`` or start afresh.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from fedscale_halor.errors import InputFileError
from fedscale_halor.plugin.round import SavedFiles
from fedscale_halor.server.checkpoint_store import (
    INCOMING_DIR,
    PREVIOUS_DIR,
    STATE_FILE,
    CorruptFileError,
    FileDigest,
    check_file,
    check_present,
    install_incoming,
    interrupted_install,
    keep_as_previous,
    remove_tree,
    seal_written_file,
    write_bytes_durably,
)
from fedscale_halor.types import Weights

MODEL_FILE = "model.safetensors"
STRATEGY_FILE = "strategy.safetensors"
CORE_FILES = (MODEL_FILE, STRATEGY_FILE)
# a checkpoint from before digests lists no files: these are the ones such a checkpoint could hold
_UNRECORDED_FORMAT_FILES = (*CORE_FILES, "halor_window.json", "halor_sizes.json")
STATE_FORMAT = 2  # 2: state.json records every file's digest; without "format", a checkpoint from before digests

_log = logging.getLogger("fedscale_halor.aggregator")
_Parsed = TypeVar("_Parsed")
_fallbacks_told: set[Path] = set()


@dataclass(frozen=True)
class CheckpointState:
    round: int
    model_version: int
    clock_s: float


@dataclass(frozen=True)
class _Source:
    """The complete checkpoint that loading reads: ``folder`` is the job's checkpoint folder or, after a write that
    a crash interrupted, its ``previous/``. ``files``: None for a checkpoint written before digests were kept."""

    root: Path
    folder: Path
    state: CheckpointState
    files: Mapping[str, FileDigest] | None

    def has(self, name: str) -> bool:
        return name in self.files if self.files is not None else (self.folder / name).is_file()

    def read(self, name: str) -> bytes:
        try:
            return check_file(self.folder / name, None if self.files is None else self.files[name])
        except CorruptFileError as error:
            raise InputFileError(error.path, error.problem, _remedy(self.root, self.folder)) from None


def save_checkpoint(folder: Path, state: CheckpointState, weights: Weights,
                    strategy_state: Weights | None = None, plugin_files: Mapping[str, bytes] | None = None) -> Path:
    """Write ``model.safetensors``, the strategy's ``strategy.safetensors`` (when it has state: a server optimizer's
    moments, FedDC's drift of every client that trained, one tensor per client and parameter), the plug-ins' files
    (Halor's window of histogram sums and its guard's resampled sizes) and ``state.json``, which records each
    file's size and sha256. The checkpoint this one replaces becomes ``previous/``, and is not touched before the
    new one is complete on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    incoming = folder / INCOMING_DIR
    remove_tree(incoming)  # what a crashed write left
    incoming.mkdir()
    try:
        files = _write_files(incoming, state, weights, strategy_state, plugin_files or {})
        record = {**asdict(state), "format": STATE_FORMAT,
                  "files": {name: digest.to_json() for name, digest in files.items()}}
        write_bytes_durably(incoming / STATE_FILE, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    except BaseException:
        remove_tree(incoming)
        raise
    latest = _complete(folder, folder)
    if latest is not None:
        kept = list(latest.files) if latest.files is not None else [
            name for name in _UNRECORDED_FORMAT_FILES if (folder / name).is_file()]
        keep_as_previous(folder, [*kept, STATE_FILE])
    else:
        kept = []
    stale = sorted({*_UNRECORDED_FORMAT_FILES, *kept} - set(files))
    install_incoming(folder, list(files), stale)
    return folder / MODEL_FILE


def _write_files(incoming: Path, state: CheckpointState, weights: Weights, strategy_state: Weights | None,
                 plugin_files: Mapping[str, bytes]) -> dict[str, FileDigest]:
    files: dict[str, FileDigest] = {}
    for name, data in sorted(plugin_files.items()):
        if name in (*CORE_FILES, STATE_FILE) or Path(name).name != name or name.startswith("."):
            raise ValueError(f"a plug-in's checkpoint file may not be named {name!r}")
        files[name] = write_bytes_durably(incoming / name, data)
    if strategy_state:
        files[STRATEGY_FILE] = _write_tensors(incoming / STRATEGY_FILE, strategy_state)
    files[MODEL_FILE] = _write_tensors(incoming / MODEL_FILE, weights, {"round": str(state.round)})
    return files


def _write_tensors(path: Path, tensors: Weights, metadata: dict[str, str] | None = None) -> FileDigest:
    temporary = path.with_name(f".{path.name}.partial")
    try:
        save_file({name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}, str(temporary),
                  metadata=metadata)
    except SafetensorError as error:  # a full disk, as the JSON files' OSError says it
        temporary.unlink(missing_ok=True)
        raise OSError(f"{path.name}: cannot write the checkpoint file ({error})") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return seal_written_file(temporary, path)


def load_strategy_state(folder: Path) -> dict[str, torch.Tensor]:
    """The strategy's saved state (server optimizer, FedDC's drifts); empty for strategies that keep none."""
    source = _files_of(folder)
    if not source.has(STRATEGY_FILE):
        return {}
    return _tensors(source, STRATEGY_FILE)


class _SavedFiles:
    """A checkpoint's plug-in files, read back as ``plugin.round.SavedFiles`` says."""

    def __init__(self, source: _Source) -> None:
        self._source = source

    def read(self, name: str, parse: Callable[[bytes], _Parsed], what: str) -> _Parsed | None:
        source = self._source
        if not source.has(name):
            return None
        data = source.read(name)  # a file that does not match its record is refused before it is parsed
        try:
            return parse(data)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputFileError(source.folder / name, f"not {what}: {error}",
                                 _remedy(source.root, source.folder)) from None


def saved_files(folder: Path) -> SavedFiles:
    """The plug-ins' files of the checkpoint in ``folder`` (none when it holds no checkpoint)."""
    return _SavedFiles(_files_of(folder))


def load_checkpoint_state(folder: Path) -> CheckpointState:
    """Where the checkpointed job stood, without reading its weights; every file the checkpoint records must be
    there with its recorded size."""
    source = _require(folder)
    if source.files is not None:
        try:
            check_present(source.files, source.folder)
        except CorruptFileError as error:
            raise InputFileError(error.path, error.problem, _remedy(source.root, source.folder)) from None
    return source.state


def load_checkpoint(folder: Path) -> tuple[CheckpointState, dict[str, torch.Tensor]]:
    source = _require(folder)
    return source.state, _tensors(source, MODEL_FILE)


def _tensors(source: _Source, name: str) -> dict[str, torch.Tensor]:
    data = source.read(name)
    try:
        return load(data)
    except SafetensorError as error:
        raise InputFileError(source.folder / name, f"not a readable safetensors file ({error})",
                             _remedy(source.root, source.folder)) from None


def _find(folder: Path) -> _Source | None:
    """The checkpoint to load from ``folder``; None when there is none."""
    if (folder / STATE_FILE).exists():
        return _parse_state(folder, folder)
    if interrupted_install(folder) and (folder / PREVIOUS_DIR / STATE_FILE).is_file():
        source = _parse_state(folder, folder / PREVIOUS_DIR)
        if folder not in _fallbacks_told:  # once, though restoring reads the checkpoint file by file
            _fallbacks_told.add(folder)
            _log.warning("%s: the last checkpoint's write was interrupted; loading the previous one (after round "
                         "%d) from %s", folder, source.state.round, source.folder)
        return source
    return None


def _files_of(folder: Path) -> _Source:
    """Where a checkpoint's optional files are read: without any state file, the folder's files as they are."""
    return _find(folder) or _Source(folder, folder, CheckpointState(0, 0, 0.0), None)


def _require(folder: Path) -> _Source:
    source = _find(folder)
    if source is None:
        problem = "missing: the checkpoint has no state file (its write never finished, or the file was removed)"
        raise InputFileError(folder / STATE_FILE, problem, _remedy(folder, folder))
    return source


def _parse_state(root: Path, folder: Path) -> _Source:
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        state = CheckpointState(int(data["round"]), int(data["model_version"]), float(data["clock_s"]))
        files = None
        if "format" in data:
            files = {str(name): FileDigest(str(entry["sha256"]), int(entry["bytes"]))
                     for name, entry in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputFileError(path, f"not a checkpoint's state ({type(error).__name__}: {error})",
                             _remedy(root, folder)) from None
    return _Source(root, folder, state, files)


def _complete(root: Path, folder: Path) -> _Source | None:
    """The checkpoint in ``folder`` when it is complete as far as its state and the files' sizes show; None when
    there is none or it is unusable."""
    if not (folder / STATE_FILE).is_file():
        return None
    try:
        source = _parse_state(root, folder)
        if source.files is not None:
            check_present(source.files, folder)
    except (InputFileError, CorruptFileError):
        return None
    return source


def _remedy(root: Path, folder: Path) -> str:
    previous = root / PREVIOUS_DIR
    kept = None if folder == previous else _complete(root, previous)
    if kept is not None:
        return (f"resume from the previous checkpoint (after round {kept.state.round}): copy it over this one with "
                f"`cp -p {shlex.quote(str(previous))}/* {shlex.quote(str(root))}/` and run the same command "
                "with --resume again, or start the run afresh without --resume")
    return "start the run afresh without --resume (no complete earlier checkpoint is kept)"
