"""Pictures of the clients' saved signals: the two-dimensional projection, the colours and shapes, the purity."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from fedscale_halor.auxo.signal_log import SIGNALS_FOLDER, read_round_signals, write_round_signals
from fedscale_halor.cli import main
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch.jobfile import config_from_mapping
from fedscale_halor.logging.signal_plots import draw_signals, plot_signals, projected, purity

# Two clusters, left and right, of two clients each: clients 0 and 2 in cohort 0 at (3, 1) and (3, -1), clients 4
# and 5 in cohort 1 at (-3, 1) and (-3, -1). Their mean is 0; each has length sqrt(10).
SIGNALS = {0: np.array([3.0, 1.0]), 2: np.array([3.0, -1.0]), 4: np.array([-3.0, 1.0]), 5: np.array([-3.0, -1.0])}
COHORTS = {0: 0, 2: 0, 4: 1, 5: 1}
X, Y = 3 / math.sqrt(10), 1 / math.sqrt(10)


def _run(tmp_path: Path, label_groups: int) -> Path:
    run_dir = tmp_path / "auxo" / "run"
    write_round_signals(run_dir / SIGNALS_FOLDER, 3, SIGNALS, COHORTS)
    cfg = config_from_mapping({"job_conf": [{"label_groups": label_groups}]}, None, environ={})
    dump_config(cfg, run_dir / "config.yml")
    return run_dir


def test_the_projection_puts_the_two_clusters_on_either_side_of_the_first_axis(tmp_path: Path) -> None:
    # Prepare: with 2 label groups, clients 0, 2 and 4 are in group 0 and client 5 in group 1
    saved = read_round_signals(_run(tmp_path, 2) / SIGNALS_FOLDER / "round_3.safetensors")

    # Execute
    picture = projected(saved, label_groups=2)

    # Assert: unit-length signals, x spread 9/10 of the variance, y 1/10; client 0 on the positive side of both
    # axes; cohort 0 holds group 0 twice, cohort 1 one of each: purity (2 + 1) / 4
    assert picture.clients == (0, 2, 4, 5) and picture.cohorts == (0, 0, 1, 1)
    assert picture.coordinates == pytest.approx(np.array([[X, Y], [X, -Y], [-X, Y], [-X, -Y]]))
    assert picture.explained == pytest.approx((0.9, 0.1))
    assert picture.groups == (0, 0, 0, 1)
    assert picture.purity == pytest.approx(0.75)


def test_each_cohort_gets_its_colour_and_each_group_its_marker(tmp_path: Path) -> None:
    # Prepare
    saved = read_round_signals(_run(tmp_path, 2) / SIGNALS_FOLDER / "round_3.safetensors")

    # Execute
    figure = draw_signals(projected(saved, label_groups=2))
    axes = figure.axes[0]
    drawn = [(collection.get_label(), np.asarray(collection.get_offsets()), tuple(collection.get_facecolor()[0]))
             for collection in axes.collections]
    title = axes.get_title()
    plt.close(figure)

    # Assert: tab10's first colour for cohort 0, its second for cohort 1
    first, second = to_rgba("tab:blue", 0.8), to_rgba("tab:orange", 0.8)
    assert [label for label, _, _ in drawn] == ["cohort 0, group 0", "cohort 1, group 0", "cohort 1, group 1"]
    assert drawn[0][1] == pytest.approx(np.array([[X, Y], [X, -Y]])) and drawn[0][2] == pytest.approx(first)
    assert drawn[1][1] == pytest.approx(np.array([[-X, Y]])) and drawn[1][2] == pytest.approx(second)
    assert drawn[2][1] == pytest.approx(np.array([[-X, -Y]])) and drawn[2][2] == pytest.approx(second)
    assert title == "round 3: 4 clients' signals, purity 0.750"


def test_without_label_groups_there_is_one_scatter_per_cohort_and_no_purity(tmp_path: Path) -> None:
    # Prepare
    saved = read_round_signals(_run(tmp_path, 1) / SIGNALS_FOLDER / "round_3.safetensors")

    # Execute
    picture = projected(saved)
    figure = draw_signals(picture)
    labels = [collection.get_label() for collection in figure.axes[0].collections]
    title = figure.axes[0].get_title()
    plt.close(figure)

    # Assert
    assert picture.groups is None and picture.purity is None
    assert labels == ["cohort 0", "cohort 1"]
    assert title == "round 3: 4 clients' signals"


def test_purity_is_the_share_of_clients_in_their_cohorts_majority_group() -> None:
    # cohort 0: groups 0, 0, 1 (2 in the majority); cohort 1: group 1, 1 (2): 4 of 5
    assert purity((0, 0, 0, 1, 1), (0, 0, 1, 1, 1)) == pytest.approx(0.8)
    assert purity((), ()) == 0.0


def test_the_plot_command_writes_a_png_beside_each_saved_round(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    run_dir = _run(tmp_path, 2)

    # Execute
    code = main(["plot", str(run_dir), "--signals"])

    # Assert
    picture = run_dir / SIGNALS_FOLDER / "round_3.png"
    assert code == 0 and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {picture}\n"
    assert plot_signals(run_dir) == [picture]


def test_a_run_without_saved_signals_is_one_line_naming_signal_rounds(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    code = main(["plot", str(tmp_path), "--signals"])

    # Assert
    assert code == 2 and "signal_rounds" in capsys.readouterr().err
