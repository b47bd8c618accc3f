"""Bad inputs through the command line: broken job configs, damaged prepared data folders, damaged or hostile trace
files, models that do not fit the data and filters that keep no client, each under `start --in-process` of the
digits job. Each ends with its exit status and one message that names the file or key, what is wrong and what to
do, and never with a traceback; those that the config alone shows are refused before a run folder exists."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedscale_halor.cli import main
from fedscale_halor.simulation.trace_generator import (
    generate_behavior_trace,
    generate_device_capacity,
    write_traces,
)

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
# one short round of two clients on one executor thread: the cases that do train stay quick
JOB_SETTINGS = {"rounds": 1, "eval_interval": 1, "total_clients": 10, "num_participants": 2, "local_steps": 1,
                "worker_ips": "127.0.0.1:[1]"}
MODELS = ("digits_cnn, digits_mlp, femnist_cnn, mobilenet_v2, resnet18, resnet34, resnet34_speech, "
          "shufflenet_v2_x1_0, shufflenet_v2_x2_0, speech_resnet")
CAPACITY_REMEDY = ("device_conf_file must name FedScale's client_device_capacity: a pickle or JSON map from client id "
                   "to 'computation' and 'communication'; `fedscale-halor traces <folder>` writes a synthetic one")
BEHAVIOR_REMEDY = ("device_avail_file must name FedScale's client_behave_trace: a pickle or JSON map from client id to "
                   "'duration', 'active', 'inactive' and 'finish_time'; `fedscale-halor traces <folder>` writes a "
                   "synthetic one")


@dataclass(frozen=True)
class Shared:
    """What every case may start from: a prepared digits folder (with its partition cache) and valid traces."""

    data_dir: Path
    traces: Path

    @property
    def capacity(self) -> Path:
        return self.traces / "client_device_capacity"

    @property
    def behavior(self) -> Path:
        return self.traces / "client_behave_trace"


@dataclass(frozen=True)
class Case:
    """A case's extra --set arguments and its expected message; ``config`` replaces the digits job file."""

    settings: tuple[str, ...]
    message: str
    config: Path = DIGITS_CONF
    checked_before_the_run_folder: bool = True


def _settings(log_path: Path, data_dir: Path) -> list[str]:
    overrides: dict[str, Any] = {**JOB_SETTINGS, "log_path": log_path, "data_dir": data_dir}
    return [part for key, value in overrides.items() for part in ("--set", f"{key}={value}")]


def _start(config: Path, log_path: Path, data_dir: Path, extra: tuple[str, ...] = (), timestamp: str = "case") -> int:
    arguments = [part for setting in extra for part in ("--set", setting)]
    return main(["start", str(config), "--in-process", "--timestamp", timestamp, *_settings(log_path, data_dir),
                 *arguments])


def _run_log(tmp_path: Path) -> str:
    return (tmp_path / "logs" / "digits" / "case" / "aggregator.log").read_text()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """One run that prepares the digits folder and caches its partition, and a valid pair of traces."""
    root = tmp_path_factory.mktemp("corpus_data")
    traces = root / "traces"
    write_traces(traces, generate_device_capacity(20, 0), generate_behavior_trace(20, 0), formats=("pickle",))
    assert _start(DIGITS_CONF, root / "logs", root / "digits", (f"device_conf_file={traces / 'client_device_capacity'}",
                                                                f"device_avail_file={traces / 'client_behave_trace'}"),
                  timestamp="base") == 0
    return Shared(root / "digits", traces)


@dataclass(frozen=True)
class Workspace:
    """A case's own folder: ``data_dir`` is the shared one until ``own_data`` copies it for damage."""

    tmp_path: Path
    shared: Shared

    def own_data(self) -> Path:
        copy = self.tmp_path / "digits"
        if not copy.exists():
            shutil.copytree(self.shared.data_dir, copy)
        return copy

    def prepared(self, name: str) -> Path:
        return self.own_data() / "prepared" / name

    def remedy(self) -> str:
        return f"re-run `fedscale-halor prepare digits --data-dir {shlex.quote(str(self.own_data()))} --force`"

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        return path


class _RunsAShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


# ---------- the job file and its overrides ----------

def _yaml_syntax_error(space: Workspace) -> Case:
    text = DIGITS_CONF.read_text().replace("    - rounds: 60", "    - rounds: [60")
    config = space.file("conf.yml", text)
    opened = text.splitlines().index("    - rounds: [60") + 1
    return Case((), f"{config}: line {opened + 1}: invalid YAML: expected ',' or ']', but got ':' (while parsing a "
                    f"flow sequence that starts on line {opened})", config)


def _yaml_not_a_mapping(space: Workspace) -> Case:
    config = space.file("conf.yml", "- job_name: digits\n- rounds: 1\n")
    return Case((), f"{config}: expected a mapping of config keys at the top level, got a list", config)


def _unknown_key_in_file(space: Workspace) -> Case:
    config = space.file("conf.yml", DIGITS_CONF.read_text().replace("- learning_rate: 0.05", "- learnig_rate: 0.05"))
    return Case((), f"{config}: job_conf.learnig_rate: unknown key; did you mean 'learning_rate'?", config)


def _override(setting: str, message: str, *, before_the_run_folder: bool = True) -> Callable[[Workspace], Case]:
    """A case of one --set argument; a message that starts with ':' follows the job file's name."""
    text = f"{DIGITS_CONF}{message}" if message.startswith(":") else message
    return lambda space: Case((setting,), text, checked_before_the_run_folder=before_the_run_folder)


# ---------- the prepared data folder ----------

def _missing_array(space: Workspace) -> Case:
    path = space.prepared("train_x.npy")
    path.unlink()
    return Case((), f"{path}: missing; {space.remedy()}", checked_before_the_run_folder=False)


def _truncated_array(space: Workspace) -> Case:
    path = space.prepared("train_x.npy")
    path.write_bytes(path.read_bytes()[:1000])
    return Case((), f"{path}: truncated: 1000 bytes, but its header describes 92096 (shape (1437, 1, 8, 8), uint8); "
                    f"{space.remedy()}", checked_before_the_run_folder=False)


def _empty_array(space: Workspace) -> Case:
    path = space.prepared("test_y.npy")
    path.write_bytes(b"")
    return Case((), f"{path}: empty (0 bytes); {space.remedy()}", checked_before_the_run_folder=False)


def _object_array(space: Workspace) -> Case:
    # loading it would unpickle its second element, which runs a shell command
    path = space.prepared("train_y.npy")
    np.save(path, np.array([1, _RunsAShellCommand(space.tmp_path / "pwned")], dtype=object), allow_pickle=True)
    return Case((), f"{path}: holds Python objects (dtype object), not numbers; it is refused unread; "
                    f"{space.remedy()}", checked_before_the_run_folder=False)


def _array_of_wrong_shape(space: Workspace) -> Case:
    path = space.prepared("test_y.npy")
    np.save(path, np.zeros(5, dtype=np.int64))
    return Case((), f"{path}: holds an array of shape (5,), expected (360,) (from meta.json); {space.remedy()}",
                checked_before_the_run_folder=False)


def _flipped_byte(space: Workspace) -> Case:
    path = space.prepared("train_x.npy")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    recorded = json.loads(space.prepared("meta.json").read_text())["sha256"]["train_x.npy"]
    actual = hashlib.sha256(data).hexdigest()
    return Case((), f"{path}: its contents changed since prepare wrote it (sha256 {actual[:16]}..., meta.json "
                    f"records {recorded[:16]}...); {space.remedy()}", checked_before_the_run_folder=False)


def _corrupt_meta(space: Workspace) -> Case:
    path = space.prepared("meta.json")
    path.write_text('{"format_version": 1, "name": ')
    return Case((), f"{path}: not valid JSON (Expecting value: line 1 column 31 (char 30)); {space.remedy()}",
                checked_before_the_run_folder=False)


def _meta_without_classes(space: Workspace) -> Case:
    path = space.prepared("meta.json")
    meta = json.loads(path.read_text())
    del meta["num_classes"]
    path.write_text(json.dumps(meta))
    return Case((), f"{path}: key 'num_classes' is missing (expected an integer >= 1); {space.remedy()}",
                checked_before_the_run_folder=False)


def _label_out_of_range(space: Workspace) -> Case:
    path = space.prepared("train_y.npy")
    labels = np.load(path)
    labels[[3, 40]] = [12, -1]
    np.save(path, labels)
    return Case((), f"{path}: label 12 at row 3 is outside [0, 10) for 10 classes (meta.json's num_classes) (2 labels "
                    f"in all); {space.remedy()}", checked_before_the_run_folder=False)


# ---------- trace files ----------

RUNS_CODE = (f"refused to load the global {os.system.__module__}.system: trace files may hold only dicts, lists, "
             "numbers and strings")


def _trace(availability: bool, content: Callable[[Workspace], bytes] | None, problem: str
           ) -> Callable[[Workspace], Case]:
    """A case of one trace file (``content`` None: absent); an availability trace comes with a valid capacity one."""
    def build(space: Workspace) -> Case:
        path = space.tmp_path / ("client_behave_trace" if availability else "client_device_capacity")
        if content is not None:
            path.write_bytes(content(space))
        if availability:
            return Case((f"device_conf_file={space.shared.capacity}", f"device_avail_file={path}"),
                        f"{path}: {problem}; {BEHAVIOR_REMEDY}")
        return Case((f"device_conf_file={path}",), f"{path}: {problem}; {CAPACITY_REMEDY}")

    return build


def _hostile_pickle(space: Workspace) -> bytes:
    return pickle.dumps({1: _RunsAShellCommand(space.tmp_path / "pwned")})


# ---------- the model against the data, and the partition's filters ----------

def _synthetic(space: Workspace, shape: list[int]) -> Path:
    folder = space.tmp_path / "synthetic"
    folder.mkdir()
    (folder / "synthetic.json").write_text(json.dumps({"input_shape": shape, "num_train": 200, "num_test": 50}))
    return folder


def _image_model_on_feature_vectors(space: Workspace) -> Case:
    folder = _synthetic(space, [64])
    return Case(("data_set=synthetic", f"data_dir={folder}"),
                "model 'digits_cnn' does not fit synthetic (samples of shape (64,), 10 classes): it needs a "
                "per-sample input shape (channels, height, width) of positive sizes, got (64,); choose a model for "
                "these samples (job_conf.model) or another data_set", checked_before_the_run_folder=False)


def _model_for_larger_images(space: Workspace) -> Case:
    folder = _synthetic(space, [1, 2, 2])
    return Case(("data_set=synthetic", f"data_dir={folder}", "model=femnist_cnn"),
                "model 'femnist_cnn' does not fit synthetic (samples of shape (1, 2, 2), 10 classes): it needs inputs "
                "of at least 4x4 pixels, got (1, 2, 2); choose a model for these samples (job_conf.model) or another "
                "data_set", checked_before_the_run_folder=False)


CASES: dict[str, Callable[[Workspace], Case]] = {
    "yaml-syntax-error": _yaml_syntax_error,
    "yaml-top-level-a-list": _yaml_not_a_mapping,
    "unknown-key-in-the-file": _unknown_key_in_file,
    "unknown-key-overridden": _override(
        "num_particpants=3", ": override num_particpants: unknown key; did you mean 'num_participants'?"),
    "wrong-type": _override("rounds=ten", ": override job_conf.rounds: expected an integer >= 1, got 'ten'"),
    "more-participants-than-clients": _override(
        "num_participants=12", ": job_conf.num_participants: expected at most total_clients (10) clients per round, "
                               "got 12"),
    "negative-learning-rate": _override(
        "learning_rate=-0.05", ": override job_conf.learning_rate: expected a number >= 0.0, got '-0.05'"),
    "quorum-above-one": _override("quorum=1.5", ": override job_conf.quorum: expected a number in [0.0, 1.0], got "
                                                "'1.5'"),
    "quorum-zero": _override("quorum=0", ": job_conf.quorum: expected a number in (0.0, 1.0]: a quorum of 0 commits a "
                                         "round in which every client failed, got 0.0"),
    "nan-override": _override(
        "learning_rate=nan", ": override job_conf.learning_rate: expected a number >= 0.0, got 'nan'"),
    "array-missing": _missing_array,
    "array-truncated": _truncated_array,
    "array-empty": _empty_array,
    "array-of-objects": _object_array,
    "array-of-wrong-shape": _array_of_wrong_shape,
    "array-byte-flipped": _flipped_byte,
    "meta-json-corrupt": _corrupt_meta,
    "meta-json-without-num-classes": _meta_without_classes,
    "labels-out-of-range": _label_out_of_range,
    "capacity-trace-missing": _trace(False, None, "cannot read the trace file (No such file or directory)"),
    "availability-trace-missing": _trace(True, None, "cannot read the trace file (No such file or directory)"),
    "capacity-trace-truncated": _trace(
        False, lambda space: space.shared.capacity.read_bytes()[:40],
        "neither JSON nor a readable pickle (UnpicklingError: pickle data was truncated)"),
    "capacity-trace-runs-code": _trace(False, _hostile_pickle, RUNS_CODE),
    "availability-trace-runs-code": _trace(True, _hostile_pickle, RUNS_CODE),
    "capacity-trace-a-list": _trace(
        False, lambda space: pickle.dumps([{"computation": 3.0, "communication": 900.0}]),
        "expected a mapping from client id to entry, found a list"),
    "capacity-entry-without-keys": _trace(
        False, lambda space: pickle.dumps({1: {"computation": 3.0, "communication": 900.0}, 2: {"computation": 3.0}}),
        "client 2: missing key(s) 'communication'"),
    "availability-entry-without-keys": _trace(
        True, lambda space: pickle.dumps({1: {"active": [0.0], "model": "Pixel"}}),
        "client 1: missing key(s) 'duration', 'inactive', 'finish_time'"),
    "capacity-trace-json-corrupt": _trace(
        False, lambda space: b'{"1": {"computation": 3.0, ',
        "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 28 (char 27))"),
    "model-unknown": _override(
        "model=resnet1", f": job_conf.model: unknown model 'resnet1' (known models: {MODELS}); did you mean "
                         "'resnet18'?"),
    "num-classes-below-the-data": _override(
        "num_classes=5", "num_classes 5 is smaller than the 10 classes of digits; set it to 0 to take the data set's "
                         "own", before_the_run_folder=False),
    "image-model-on-feature-vectors": _image_model_on_feature_vectors,
    "model-for-larger-images": _model_for_larger_images,
    "filter-less-keeps-no-client": _override(
        "filter_less=100000", "filter_less=100000 leaves no client of digits: the largest of its 10 clients holds 262 "
                              "samples, the smallest 41; lower filter_less to at most 262",
        before_the_run_folder=False),
    "real-clients-of-digits": _override(
        "partitioning=0", "partitioning 0 uses the real clients of a data set, and digits has none; choose a "
                          "generated partition (-1 IID, 1 non-IID uniform, 2 Zipf, 3 balanced, 8 Halor's Dirichlet, 9 "
                          "Dirichlet label split)", before_the_run_folder=False),
    "class-filter-removes-every-class": _override(
        "filter_class=10", "filter_class 10 removes 10 of the 10 classes from every client, which leaves a client no "
                           "class; keep at least one", before_the_run_folder=False),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_bad_input_stops_start_with_one_message_before_training(
        shared: Shared, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    space = Workspace(tmp_path, shared)
    expected = CASES[case](space)
    data_dir = space.own_data() if (tmp_path / "digits").exists() else shared.data_dir
    capsys.readouterr()

    # Execute
    status = _start(expected.config, tmp_path / "logs", data_dir, expected.settings)

    # Assert
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.splitlines() == [f"fedscale-halor: {expected.message}"]
    assert "Traceback" not in captured.err
    assert "final test accuracy" not in captured.out
    assert not (tmp_path / "pwned").exists()
    if expected.checked_before_the_run_folder:
        assert not (tmp_path / "logs").exists()
    else:  # stopped while the job was assembled: no client trained
        assert "round 1/1" not in _run_log(tmp_path)


def test_a_corrupt_partition_cache_is_logged_and_computed_again(
        shared: Shared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    space = Workspace(tmp_path, shared)
    (cache,) = (space.own_data() / "prepared" / "partitions").glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:50])
    capsys.readouterr()

    # Execute
    status = _start(DIGITS_CONF, tmp_path / "logs", space.own_data())

    # Assert
    captured = capsys.readouterr()
    log = _run_log(tmp_path)
    assert status == 0
    assert (f"WARNING fedscale_halor.data.partition_cache: partition cache {cache}: unreadable (BadZipFile: File is "
            "not a zip file); computing the partition again") in log
    assert "Traceback" not in captured.err
    assert np.load(cache)["offsets"][-1] > 0  # written again, whole


def test_a_prepared_folder_without_meta_json_is_prepared_again(
        shared: Shared, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: what a prepare killed before its last write leaves
    space = Workspace(tmp_path, shared)
    space.prepared("meta.json").unlink()
    capsys.readouterr()

    # Execute
    status = _start(DIGITS_CONF, tmp_path / "logs", space.own_data())

    # Assert
    captured = capsys.readouterr()
    assert status == 0
    assert (f"INFO fedscale_halor.data.prepare: preparing digits from {space.own_data()} into "
            f"{space.own_data() / 'prepared'}\n") in _run_log(tmp_path)
    assert "Traceback" not in captured.err
    assert json.loads(space.prepared("meta.json").read_text())["num_train"] == 1437
