"""Bad inputs through the command line: corrupt checkpoints under `start --resume`, corrupt job records under
`status`, `stop` and `kill`, unreachable hosts under `submit`. Each ends with its exit status and one message that
names the file or host, what is wrong and what to do, and never with a traceback."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.launch.records import JobRecord, ProcessRecord, save_record

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = str(ROOT / "benchmark" / "configs" / "digits" / "conf.yml")
# a short job with every checkpoint file: a server optimizer's state and Halor's window and sizes
JOB_SETTINGS = {"rounds": 2, "eval_interval": 1, "total_clients": 20, "num_participants": 4, "local_steps": 2,
                "gradient_policy": "fed-yogi", "halor": True, "halor_history": 1}
AFRESH = "start the run afresh without --resume (no complete earlier checkpoint is kept)"


@dataclass(frozen=True)
class BaseRun:
    log_path: Path
    settings: list[str]  # --set arguments of the job

    def copy(self, timestamp: str) -> Path:
        """A copy of the finished run under ``timestamp``; returns its checkpoint folder."""
        run_dir = self.log_path / "digits" / timestamp
        shutil.copytree(self.log_path / "digits" / "base", run_dir)
        return run_dir / "checkpoint"

    def resume(self, timestamp: str) -> int:
        return main(["start", DIGITS_CONF, "--in-process", "--timestamp", timestamp, "--resume", *self.settings])


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> BaseRun:
    """One finished two-round run, checkpointed after each round: its checkpoint and the previous one."""
    root = tmp_path_factory.mktemp("corpus")
    overrides = {**JOB_SETTINGS, "log_path": root / "logs", "data_dir": root / "digits"}
    run = BaseRun((root / "logs").resolve(), [part for key, value in overrides.items()
                                              for part in ("--set", f"{key}={value}")])
    assert main(["start", DIGITS_CONF, "--in-process", "--timestamp", "base", *run.settings]) == 0
    return run


def _previous(folder: Path) -> str:
    return (f"resume from the previous checkpoint (after round 1): copy it over this one with "
            f"`cp -p {folder / 'previous'}/* {folder}/` and run the same command with --resume again, or start the "
            "run afresh without --resume")


def _recorded(folder: Path, name: str) -> dict[str, object]:
    return json.loads((folder / "state.json").read_text())["files"][name]


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _to_legacy(folder: Path) -> None:
    """The state.json written before it recorded the files' digests."""
    (folder / "state.json").write_text(json.dumps({key: value for key, value in json.loads(
        (folder / "state.json").read_text()).items() if key in ("round", "model_version", "clock_s")}))


def _truncated_model(folder: Path) -> str:
    size = _recorded(folder, "model.safetensors")["bytes"]
    _truncate(folder / "model.safetensors", 100)
    return f"{folder / 'model.safetensors'}: truncated: 100 bytes where state.json records {size}; {_previous(folder)}"


def _flipped_model_byte(folder: Path) -> str:
    model = folder / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    actual, recorded = hashlib.sha256(data).hexdigest(), _recorded(folder, "model.safetensors")["sha256"]
    return (f"{model}: corrupt: its sha256 {actual[:16]}... differs from the {str(recorded)[:16]}... that state.json "
            f"records; {_previous(folder)}")


def _truncated_state(folder: Path) -> str:
    (folder / "state.json").write_text('{"clock_s": 2.4, "files": {')
    return (f"{folder / 'state.json'}: not a checkpoint's state (JSONDecodeError: Expecting property name enclosed "
            f"in double quotes: line 1 column 28 (char 27)); {_previous(folder)}")


def _empty_state(folder: Path) -> str:
    (folder / "state.json").write_text("")
    return (f"{folder / 'state.json'}: not a checkpoint's state (JSONDecodeError: Expecting value: line 1 column 1 "
            f"(char 0)); {_previous(folder)}")


def _state_without_round(folder: Path) -> str:
    (folder / "state.json").write_text('{"model_version": 2, "clock_s": 2.4}')
    return f"{folder / 'state.json'}: not a checkpoint's state (KeyError: 'round'); {_previous(folder)}"


def _missing_state(folder: Path) -> str:
    (folder / "state.json").unlink()
    return (f"{folder / 'state.json'}: missing: the checkpoint has no state file (its write never finished, or the "
            f"file was removed); {_previous(folder)}")


def _missing_strategy(folder: Path) -> str:
    (folder / "strategy.safetensors").unlink()
    return f"{folder / 'strategy.safetensors'}: missing, though state.json lists it; {_previous(folder)}"


def _changed_strategy(folder: Path) -> str:
    strategy = folder / "strategy.safetensors"
    size = strategy.stat().st_size
    strategy.write_bytes(strategy.read_bytes() + b"\0")
    return f"{strategy}: {size + 1} bytes where state.json records {size}; {_previous(folder)}"


def _truncated_halor_window(folder: Path) -> str:
    size = _recorded(folder, "halor_window.json")["bytes"]
    _truncate(folder / "halor_window.json", 5)
    return f"{folder / 'halor_window.json'}: truncated: 5 bytes where state.json records {size}; {_previous(folder)}"


def _corrupt_legacy_halor_sizes(folder: Path) -> str:
    _to_legacy(folder)
    (folder / "halor_sizes.json").write_text('{"resampled_sizes": [')
    return (f"{folder / 'halor_sizes.json'}: not a map of Halor's resampled sizes: Expecting value: line 1 column 22 "
            f"(char 21); {_previous(folder)}")


def _truncated_legacy_model(folder: Path) -> str:
    _to_legacy(folder)
    _truncate(folder / "model.safetensors", 100)
    return (f"{folder / 'model.safetensors'}: not a readable safetensors file (Error while deserializing: invalid "
            f"header length); {_previous(folder)}")


def _both_checkpoints_broken(folder: Path) -> str:
    size = _recorded(folder, "model.safetensors")["bytes"]
    _truncate(folder / "model.safetensors", 100)
    (folder / "previous" / "state.json").unlink()
    return f"{folder / 'model.safetensors'}: truncated: 100 bytes where state.json records {size}; {AFRESH}"


def _broken_first_checkpoint(folder: Path) -> str:
    shutil.rmtree(folder / "previous")
    (folder / "state.json").write_text("[]")
    return f"{folder / 'state.json'}: not a checkpoint's state (TypeError: expected a JSON object, got list); {AFRESH}"


CHECKPOINT_CASES: dict[str, Callable[[Path], str]] = {
    "checkpoint-model-truncated": _truncated_model,
    "checkpoint-model-byte-flipped": _flipped_model_byte,
    "checkpoint-state-json-truncated": _truncated_state,
    "checkpoint-state-json-empty": _empty_state,
    "checkpoint-state-json-without-round": _state_without_round,
    "checkpoint-state-json-missing": _missing_state,
    "checkpoint-strategy-file-missing": _missing_strategy,
    "checkpoint-strategy-file-grown": _changed_strategy,
    "checkpoint-halor-window-truncated": _truncated_halor_window,
    "checkpoint-legacy-halor-sizes-corrupt": _corrupt_legacy_halor_sizes,
    "checkpoint-legacy-model-truncated": _truncated_legacy_model,
    "checkpoint-and-previous-broken": _both_checkpoints_broken,
    "checkpoint-first-state-json-a-list": _broken_first_checkpoint,
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES), ids=list(CHECKPOINT_CASES))
def test_a_corrupt_checkpoint_stops_resume_with_one_message(base_run: BaseRun, case: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    expected = CHECKPOINT_CASES[case](base_run.copy(case))
    capsys.readouterr()

    # Execute
    status = base_run.resume(case)

    # Assert
    err = capsys.readouterr().err
    assert status == 2
    assert err.splitlines()[-1] == f"fedscale-halor: {expected}"
    assert "Traceback" not in err


def test_an_interrupted_checkpoint_write_resumes_from_the_previous_checkpoint(
        base_run: BaseRun, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: the crash came after the latest state.json was removed, the new one still waiting in .incoming
    folder = base_run.copy("checkpoint-install-interrupted")
    (folder / ".incoming").mkdir()
    (folder / "state.json").rename(folder / ".incoming" / "state.json")
    capsys.readouterr()

    # Execute
    status = base_run.resume("checkpoint-install-interrupted")

    # Assert
    err = capsys.readouterr().err
    assert status == 0
    log = (folder.parent / "aggregator.log").read_text()
    assert (f"WARNING fedscale_halor.aggregator: {folder}: the last checkpoint's write was interrupted; loading the "
            f"previous one (after round 1) from {folder / 'previous'}") in log
    assert "Traceback" not in err
    assert json.loads((folder / "state.json").read_text())["round"] == 2 and not (folder / ".incoming").exists()


INDEX_REMEDY = ("copy the run's own copy (<log_path>/digits/0101_000000/job.json) over it, or delete it once the "
                "run's processes are known to be gone")
RECORD_CASES = {  # id: (command, the index record's text, its problem, exit status)
    "record-truncated-under-status": (["status"], '{"job_name": "digi',
                                      "not a valid job record (JSONDecodeError: Unterminated string starting at: "
                                      "line 1 column 14 (char 13))", 0),
    "record-empty-under-stop": (["stop", "digits"], "", "not a valid job record (ValueError: the file is empty)", 2),
    "record-a-list-under-kill": (["kill", "all"], "[]",
                                 "not a valid job record (TypeError: expected a JSON object, got list)", 2),
    "record-pid-1-under-stop-timestamp": (
        ["stop", "digits", "0101_000000"],
        '{"job_name": "digits", "timestamp": "0101_000000", "run_dir": "/nowhere", "launcher": "submit", '
        '"processes": [{"role": "aggregator", "rank": -1, "host": "localhost", "pid": 1}]}',
        "not a valid job record (ValueError: invalid pid 1)", 2),
}


@pytest.mark.parametrize("case", list(RECORD_CASES), ids=list(RECORD_CASES))
def test_a_corrupt_job_record_is_named_by_the_command_that_reads_it(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a stopped cifar10 run that reads fine, and the broken record of a digits run
    command, text, problem, expected_status = RECORD_CASES[case]
    jobs = tmp_path / "jobs"
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(jobs))
    save_record(JobRecord("cifar10", "0202_000000", str(tmp_path / "gone"), launcher="submit", status="stopped",
                          processes=(ProcessRecord("aggregator", -1, "node-a", 4242),)))
    index = jobs / "digits" / "0101_000000.json"
    index.parent.mkdir(parents=True)
    index.write_text(text)
    message = f"{index}: {problem}; {INDEX_REMEDY}"

    # Execute
    status = main(command)

    # Assert
    captured = capsys.readouterr()
    assert status == expected_status
    if command == ["status"]:  # the other runs still show
        assert "-             cifar10         0202_000000       stopped         -       -  node-a" in captured.out
        assert captured.out.splitlines()[-2:] == ["unreadable job records:", f"  {message}"]
    else:
        assert captured.err.splitlines() == [f"fedscale-halor: {message}"]
    assert "Traceback" not in captured.err


HOST_CASES = {  # id: (--set arguments, the unreachable host and its roles)
    "submit-worker-does-not-resolve": (["worker_ips=no-such-host.invalid:[1];127.0.0.1:[1]"],
                                       "no-such-host.invalid (worker_ips)"),
    "submit-ps-ip-does-not-resolve": (["ps_ip=no-such-host.invalid", "worker_ips=127.0.0.1:[2]"],
                                      "no-such-host.invalid (ps_ip)"),
    "submit-ps-ip-and-worker-do-not-resolve": (["ps_ip=no-such-host.invalid", "worker_ips=no-such-host.invalid:[1]"],
                                               "no-such-host.invalid (ps_ip and worker_ips)"),
}


@pytest.mark.parametrize("case", list(HOST_CASES), ids=list(HOST_CASES))
def test_an_unreachable_host_is_named_before_submit_starts_anything(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    settings, named = HOST_CASES[case]
    monkeypatch.setenv("FEDSCALE_HALOR_JOBS_DIR", str(tmp_path / "jobs"))
    arguments = [part for setting in [*settings, f"log_path={tmp_path / 'logs'}"] for part in ("--set", setting)]

    # Execute
    status = main(["submit", DIGITS_CONF, *arguments])

    # Assert: ssh's own words, whatever this machine's resolver says after them
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert status == 2
    assert line.startswith(f"fedscale-halor: job digits not submitted, nothing was started: {named} cannot be "
                           "reached: ssh: Could not resolve hostname no-such-host.invalid: ")
    assert line.endswith(" no-such-host.invalid true` works from this machine without a prompt")
    assert "Traceback" not in err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "jobs").exists()
