"""Time-to-accuracy lines of a run of several cohorts: one per cohort and their overall line, weighted by the cohorts'
clients (by their test samples in files without member counts)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.logging.csv_sink import COLUMNS
from fedscale_halor.logging.plots import draw_time_to_accuracy, overall_curve, read_curve, run_curves


def _row(round_index: int, cohort: int, clock_s: float, top1: float | None = None, samples: int = 0,
         members: int | None = None, columns: tuple[str, ...] = COLUMNS) -> str:
    """A metrics.csv row in ``columns``; ``top1`` None: the round was not evaluated; ``members`` None: no count."""
    cells = dict.fromkeys(COLUMNS, "")
    cells.update({"round": str(round_index), "clock_s": f"{clock_s:.4f}", "cohort": str(cohort)})
    if top1 is not None:
        cells.update({"test_top1": f"{top1:.6f}", "test_samples": str(samples)})
    if members is not None:
        cells["members"] = str(members)
    return ",".join(cells[column] for column in columns)


def _run(tmp_path: Path, name: str, sample_mode: str, header: str, rows: list[str]) -> Path:
    run_dir = tmp_path / "digits" / name
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_text(header + "\n" + "".join(row + "\n" for row in rows))
    cfg = config_from_mapping({"job_conf": [{"sample_mode": sample_mode}]}, None, environ={})
    dump_config(cfg, run_dir / "config.yml")
    return run_dir


# no member counts, as a file written before the column: round 1: cohort 0 alone (0.6 on 200); round 2: 0.5 on 100
# and 0.8 on 300; round 3: cohort 0 not evaluated; round 4: 0.7 on 100 and 0.9 on 300
COHORT_ROWS = [_row(1, 0, 10.0, 0.6, 200), _row(2, 0, 20.0, 0.5, 100), _row(2, 1, 24.0, 0.8, 300),
               _row(3, 0, 30.0), _row(3, 1, 34.0, 0.85, 300), _row(4, 0, 40.0, 0.7, 100), _row(4, 1, 44.0, 0.9, 300)]


def test_the_overall_line_weights_each_cohort_by_its_members(tmp_path: Path) -> None:
    # Prepare: round 2: 0.5 for 30 clients (on 100 samples) and 0.8 for 10 clients (on 300 samples); round 4: 0.7
    # for 25 clients and 0.9 for 15; round 3 not evaluated
    rows = [_row(2, 0, 20.0, 0.5, 100, members=30), _row(2, 1, 24.0, 0.8, 300, members=10),
            _row(3, 0, 30.0), _row(3, 1, 34.0), _row(4, 0, 40.0, 0.7, 100, members=25),
            _row(4, 1, 44.0, 0.9, 300, members=15)]
    run_dir = _run(tmp_path, "a", "random", ",".join(COLUMNS), rows)

    # Execute
    overall = overall_curve(run_dir, "a")

    # Assert: round 2: (0.5 * 30 + 0.8 * 10) / 40 = 0.575, not the sample-weighted 0.725; round 4:
    # (0.7 * 25 + 0.9 * 15) / 40 = 0.775
    assert overall.rounds == (2, 4)
    assert overall.clock_s == (24.0, 44.0)
    assert overall.top1 == pytest.approx((0.575, 0.775))


def test_a_round_with_a_row_without_members_is_weighted_by_test_samples(tmp_path: Path) -> None:
    # Prepare: round 2 as an older file wrote it (no count); round 4 counted, except cohort 1's row (count 0)
    rows = [_row(2, 0, 20.0, 0.5, 100), _row(2, 1, 24.0, 0.8, 300),
            _row(4, 0, 40.0, 0.7, 100, members=25), _row(4, 1, 44.0, 0.9, 300, members=0)]
    run_dir = _run(tmp_path, "a", "random", ",".join(COLUMNS), rows)

    # Execute
    overall = overall_curve(run_dir, "a")

    # Assert: both rounds by samples, all rows of a round alike: (0.5 * 100 + 0.8 * 300) / 400 = 0.725,
    # (0.7 * 100 + 0.9 * 300) / 400 = 0.85
    assert overall.top1 == pytest.approx((0.725, 0.85))


def test_the_overall_line_of_a_file_without_the_members_column_weights_by_test_samples(tmp_path: Path) -> None:
    # Prepare
    old_columns = COLUMNS[:-1]
    run_dir = _run(tmp_path, "a", "random", ",".join(old_columns),
                   [row.rsplit(",", 1)[0] for row in COHORT_ROWS])

    # Execute
    overall = overall_curve(run_dir, "a")

    # Assert: round 1 is cohort 0's alone; round 2: (0.5 * 100 + 0.8 * 300) / 400 = 0.725; round 3 left out (a
    # cohort that ran was not evaluated); round 4: (0.7 * 100 + 0.9 * 300) / 400 = 0.85; at the later clock
    assert overall.label == "a overall"
    assert overall.rounds == (1, 2, 4)
    assert overall.clock_s == (10.0, 24.0, 44.0)
    assert overall.top1 == pytest.approx((0.6, 0.725, 0.85))


def test_a_run_of_two_cohorts_draws_each_cohort_and_the_overall_line(tmp_path: Path) -> None:
    # Prepare: beside it, a run of one cohort written before the cohort and members columns existed
    without_cohorts = COLUMNS[:-2]
    runs = [_run(tmp_path, "a", "random", ",".join(COLUMNS), COHORT_ROWS),
            _run(tmp_path, "b", "oort", ",".join(without_cohorts),
                 [_row(2, 0, 20.0, 0.55, 360, columns=without_cohorts)])]

    # Execute
    curves = run_curves(runs)
    figure = draw_time_to_accuracy(curves, target=0.85)
    by_time = figure.axes[1]
    drawn = [line for line in by_time.get_lines() if not line.get_label().startswith("_")]  # not the target line
    legend = [text.get_text() for text in by_time.get_legend().get_texts()]
    plt.close(figure)

    # Assert
    labels = ["sample_mode=random cohort 0", "sample_mode=random cohort 1", "sample_mode=random overall",
              "sample_mode=oort"]
    assert [curve.label for curve in curves] == labels
    assert curves[1].rounds == (2, 3, 4) and curves[1].top1 == (0.8, 0.85, 0.9)
    assert curves[3].clock_s == (20.0,) and curves[3].top1 == (0.55,)
    assert [line.get_label() for line in drawn] == labels
    assert list(drawn[2].get_xdata()) == [10.0, 24.0, 44.0]
    assert legend == labels


def test_a_run_of_one_cohort_draws_its_one_line_labelled_by_the_run(tmp_path: Path) -> None:
    # Prepare
    run_dir = _run(tmp_path, "a", "random", ",".join(COLUMNS), [_row(1, 0, 10.0), _row(2, 0, 25.5, 0.61, 360)])

    # Execute
    curves = run_curves([run_dir])

    # Assert
    assert [(curve.label, curve.rounds, curve.clock_s, curve.top1) for curve in curves] == [
        ("digits/a", (2,), (25.5,), (0.61,))]
    assert read_curve(run_dir, cohort=1) == ([], [], [])
