"""The selection-scale benchmark imports without running anything and measures what it names (no timings asserted)."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmark" / "perf"))

import selection_scale

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_benchmark_runs_nothing() -> None:
    probe = "import sys; sys.path.insert(0, 'benchmark/perf'); import selection_scale"
    completed = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)

    assert completed.stdout == ""


def test_measure_selection_reports_every_figure_for_a_small_population() -> None:
    figures = selection_scale.measure_selection(300, count=10, rounds=2, seed=1, warmup=3)

    assert set(figures) == {"random_ms", "oort_ms", "availability_ms", "oort_feedback_ms", "oort_register_s",
                            "availability_register_s", "oort_explored"}
    assert all(value >= 0 for value in figures.values())
    assert 10 <= figures["oort_explored"] <= 30  # three rounds of ten
