from __future__ import annotations

from pathlib import Path

import pytest

from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.logging.plots import plot_time_to_accuracy, read_curve, run_labels

HEADER = "round,clock_s,wall_time_s,participants,completed,train_loss,learning_rate,test_loss,test_top1,test_top5," \
         "test_samples\n"


def _run(tmp_path: Path, name: str, sample_mode: str, rows: list[str]) -> Path:
    run_dir = tmp_path / "digits" / name
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_text(HEADER + "".join(row + "\n" for row in rows))
    cfg = config_from_mapping({"job_conf": [{"sample_mode": sample_mode}, {"log_path": str(tmp_path / name)}]},
                              None, environ={})
    dump_config(cfg, run_dir / "config.yml")
    return run_dir


def test_a_curve_holds_the_evaluated_rounds_only(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, "a", "random", ["1,10.0,0.1,5,5,1.0,0.05,,,,", "2,25.5,0.1,5,5,0.9,0.05,0.7,0.61,0.9,360"])

    assert read_curve(run_dir) == ([2], [25.5], [0.61])


def test_runs_are_labelled_by_the_settings_that_differ_between_them(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", "random", []), _run(tmp_path, "b", "oort", [])]
    alone = run_labels(runs[:1])

    assert run_labels(runs) == ["sample_mode=random", "sample_mode=oort"]  # log_path differs too, but is no parameter
    assert alone == ["digits/a"]


def test_the_plot_of_two_runs_is_a_png(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", "random", ["2,25.5,0.1,5,5,0.9,0.05,0.7,0.61,0.9,360",
                                           "4,50.0,0.1,5,5,0.5,0.05,0.4,0.88,0.99,360"]),
            _run(tmp_path, "b", "oort", ["2,20.0,0.1,5,5,0.9,0.05,0.7,0.55,0.9,360"])]

    out = plot_time_to_accuracy(runs, tmp_path / "plots" / "tta.png", target=0.85)

    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_a_folder_without_metrics_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no metrics\.csv"):
        plot_time_to_accuracy([tmp_path], tmp_path / "x.png")
