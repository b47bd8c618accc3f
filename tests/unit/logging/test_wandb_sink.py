"""The WandB sink, run offline for real and read back from the run's ``.wandb`` file."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedscale_halor.config.schema import JobConfig
from fedscale_halor.launch.jobfile import job_with
from fedscale_halor.launch.plugins import run_name_parts
from fedscale_halor.logging.wandb_sink import WandbSink, WandbStartError, run_name
from fedscale_halor.types import EvalResult, RoundMetrics

SECRET = "some-secret-value"

# The .wandb file is LevelDB's log format behind a 7-byte W&B header; wandb no longer ships a Python reader of it.
_FILE_HEADER = struct.Struct("<4sHB")
_RECORD_HEADER = struct.Struct("<IHB")
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path: Path) -> list[object]:
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert _FILE_HEADER.unpack(data[:_FILE_HEADER.size]) == (b":W&B", 0xBEE1, 0)
    payloads: list[bytes] = []
    pending, offset = b"", _FILE_HEADER.size
    while offset + _RECORD_HEADER.size <= len(data):
        space = _BLOCK - offset % _BLOCK
        if space < _RECORD_HEADER.size:  # a block's tail too short for a record header is padding
            offset += space
            continue
        checksum, length, kind = _RECORD_HEADER.unpack(data[offset:offset + _RECORD_HEADER.size])
        if kind == 0:  # zeros: the writer's preallocated, unwritten end
            break
        payload = data[offset + _RECORD_HEADER.size:offset + _RECORD_HEADER.size + length]
        offset += _RECORD_HEADER.size + length
        assert zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum
        if kind == _FULL:
            payloads.append(payload)
        elif kind == _FIRST:
            pending = payload
        elif kind == _MIDDLE:
            pending += payload
        elif kind == _LAST:
            payloads.append(pending + payload)
            pending = b""
    return [Record.FromString(payload) for payload in payloads]


def history_by_step(records: list[object]) -> dict[int, dict[str, object]]:
    history: dict[int, dict[str, object]] = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":  # type: ignore[attr-defined]
            row = record.history  # type: ignore[attr-defined]
            history[row.step.num] = {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                     for item in row.item}
    return history


def run_record(records: list[object]) -> object:
    runs = [record.run for record in records if record.WhichOneof("record_type") == "run"]  # type: ignore[attr-defined]
    assert len(runs) == 1
    return runs[0]


@pytest.fixture
def wandb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """wandb's own folders and credentials inside tmp_path: no network, nothing in the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(home / "netrc"))
    for variable, folder in (("WANDB_DIR", "dir"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"),
                             ("WANDB_DATA_DIR", "data"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        monkeypatch.setenv(variable, str(home / folder))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    yield home
    import wandb

    # the next test sets other variables: wandb must read them afresh, and its service process must end
    wandb.teardown()


def finish_writing() -> None:
    """wandb's service can still be writing the .wandb file when run.finish() returns (offline, 1 run in 10 here):
    its teardown waits for it to end."""
    import wandb

    wandb.teardown()


def _round(index: int, clock_s: float, **extra: object) -> RoundMetrics:
    fields: dict[str, object] = {"round": index, "clock_s": clock_s, "wall_time_s": 0.25, "participants": (1, 2, 3, 4),
                                 "completed": 3, "train_loss": 0.5, "learning_rate": 0.05}
    fields.update(extra)
    return RoundMetrics(**fields)  # type: ignore[arg-type]


def test_offline_run_holds_project_name_config_and_each_rounds_metrics(
        tmp_path: Path, wandb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: offline mode with a key in the environment, which must end up nowhere on disk
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    run_dir = tmp_path / "run"
    job = job_with(data_set="cifar10", model="resnet18", use_wandb=True, wandb_tags=("sweep", "a"), halor=True,
                   rounds=3)
    # round 2: 80 of 100 right, 95 in the top 5, loss sum 60 -> top1 0.8, top5 0.95, loss 0.6
    test = EvalResult(num_samples=100, loss_sum=60.0, top1_correct=80, top5_correct=95)

    # Execute
    sink = WandbSink(job, run_dir, timestamp="0102_030405", name_parts=run_name_parts(job))
    sink.on_round(_round(1, 10.0, dropouts=1, stragglers=0, class_distribution=(0.25, 0.75)))
    sink.on_round(_round(2, 25.0, dropouts=0, stragglers=2, test=test, class_distribution=(0.5, 0.5)))
    sink.close()
    finish_writing()

    # Assert: exactly one offline run under <run>/wandb, read back record by record
    files = list((run_dir / "wandb").glob("offline-run-*/*.wandb"))
    assert len(files) == 1
    records = read_wandb_records(files[0])
    run = run_record(records)
    assert run.project == "cifar10_resnet18"  # type: ignore[attr-defined]
    assert run.display_name == "random-fedavg-iid-p10-halor-under-window-s233-0102_030405"  # type: ignore[attr-defined]
    assert sorted(run.tags) == ["a", "sweep"]  # type: ignore[attr-defined]
    config = {item.key: json.loads(item.value_json) for item in run.config.update}  # type: ignore[attr-defined]
    assert config["data_set"] == "cifar10" and config["rounds"] == 3 and config["use_wandb"] is True
    assert config["wandb_tags"] == ["sweep", "a"]
    history = history_by_step(records)
    assert sorted(history) == [1, 2]
    first, second = history[1], history[2]
    assert first["round/dropouts"] == 1 and second["round/stragglers"] == 2
    assert first["round/not_completed"] == 1  # 4 selected, 3 completed
    assert second["round/duration_s"] == pytest.approx(15.0)  # 25 - 10 on the simulated clock
    assert second["clock_s"] == pytest.approx(25.0) and second["round"] == 2
    assert first["halor/class_1"] == pytest.approx(0.75) and second["halor/class_0"] == pytest.approx(0.5)
    assert "test/top1" not in first
    assert second["test/top1"] == pytest.approx(0.8) and second["test/top5"] == pytest.approx(0.95)
    assert second["test/loss"] == pytest.approx(0.6) and second["test_by_time/top1"] == pytest.approx(0.8)
    by_time = [record.metric for record in records  # type: ignore[attr-defined]
               if record.WhichOneof("record_type") == "metric" and record.metric.glob_name == "test_by_time/*"]
    assert [metric.step_metric for metric in by_time] == ["clock_s"]
    leaks = [path for path in tmp_path.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]
    assert leaks == []


def test_cohorts_share_the_rounds_step_under_their_own_keys_and_clock(
        tmp_path: Path, wandb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: offline; cohort 1 branched after round 1, its clock apart from cohort 0's
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "run"
    half = EvalResult(num_samples=100, loss_sum=60.0, top1_correct=50, top5_correct=90)  # 0.5, loss 0.6
    most = EvalResult(num_samples=300, loss_sum=90.0, top1_correct=240, top5_correct=300)  # 0.8, loss 0.3

    # Execute
    sink = WandbSink(JobConfig(use_wandb=True, rounds=3), run_dir, timestamp="t")
    sink.on_round(_round(1, 10.0))
    sink.on_round(_round(2, 25.0, test=half))
    sink.on_round(_round(2, 30.0, test=most, cohort=1, train_loss=1.5))
    sink.on_round(_round(3, 40.0))
    sink.on_round(_round(3, 42.0, cohort=1))
    sink.close()
    finish_writing()

    # Assert: one row per round, cohort 0's plain keys beside cohort 1's prefixed ones
    records = read_wandb_records(next((run_dir / "wandb").glob("offline-run-*/*.wandb")))
    history = history_by_step(records)
    assert sorted(history) == [1, 2, 3]
    second, third = history[2], history[3]
    assert second["round"] == 2 and second["clock_s"] == pytest.approx(25.0)
    assert second["cohort_1/clock_s"] == pytest.approx(30.0)
    assert second["train/loss"] == pytest.approx(0.5) and second["cohort_1/train/loss"] == pytest.approx(1.5)
    assert second["test/top1"] == pytest.approx(0.5) and second["cohort_1/test/top1"] == pytest.approx(0.8)
    assert second["cohort_1/test_by_time/loss"] == pytest.approx(0.3)
    assert "cohort_1/round/duration_s" not in second  # its start is its parent's clock, which it does not name
    assert third["round/duration_s"] == pytest.approx(15.0)  # 40 - 25 on cohort 0's clock
    assert third["cohort_1/round/duration_s"] == pytest.approx(12.0)  # 42 - 30 on cohort 1's
    assert "cohort_1/clock_s" not in history[1]
    axes = {record.metric.glob_name: record.metric.step_metric for record in records  # type: ignore[attr-defined]
            if record.WhichOneof("record_type") == "metric" and record.metric.glob_name}
    assert axes["cohort_1/test_by_time/*"] == "cohort_1/clock_s" and axes["cohort_1/train/*"] == "round"
    assert axes["test_by_time/*"] == "clock_s"


def test_online_without_a_key_fails_at_once_naming_the_way_out(
        tmp_path: Path, wandb_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: online mode, no key in the environment and an empty netrc
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)

    # Execute / Assert
    with pytest.raises(WandbStartError, match="use_wandb") as failure:
        WandbSink(JobConfig(use_wandb=True), tmp_path / "run", timestamp="t")
    assert "no WandB API key is configured" in str(failure.value) and "WANDB_MODE=offline" in str(failure.value)
    assert not list((tmp_path / "run").rglob("*.wandb"))


def test_run_name_spells_out_the_swept_parameters() -> None:
    # Prepare
    job = job_with(sample_mode="oort", gradient_policy="fed-yogi", partitioning=9, dirichlet_alpha=0.1,
                   num_participants=20, halor=True, halor_resample="over", sample_seed=7)

    # Execute
    jobs = ((job, "0101_120000"), (JobConfig(partitioning=2, zipf_param=1.5), "x"),
            (JobConfig(partitioning=8, dirichlet_alpha=0.5), "y"), (job_with(partitioning=8, data_regulation=1), "z"),
            (job_with(async_mode=True, async_buffer=20), "a"))
    names = tuple(run_name(each, stamp, run_name_parts(each)) for each, stamp in jobs)

    # Assert
    assert names == ("oort-fed-yogi-dir0.1-p20-halor-over-window-s7-0101_120000",
                     "random-fedavg-zipf1.5-p10-nohalor-s233-x",
                     "random-fedavg-halordir0.5-p10-nohalor-s233-y",
                     "random-fedavg-halordir0.5-p10-halor-under-all-s233-z",
                     "random-fedavg-iid-p10-nohalor-async20-s233-a")
