"""The performance harness measures what it says: a child's memory is seen by the tree sampler."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmark" / "perf"))

from harness import GIB, Measured, TreeMemory, run_measured


def test_the_peak_memory_of_a_grandchild_is_counted_in_the_tree() -> None:
    # a child that starts a grandchild holding 300 MiB for a second
    grandchild = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(1)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"

    peak = run_measured([sys.executable, "-c", child])

    assert peak.peak_rss_bytes > 300 * 2**20
    assert 300 * 2**20 < peak.peak_pss_bytes < GIB


def test_the_median_round_leaves_the_first_round_out() -> None:
    measured = Measured((9.0, 1.0, 3.0, 2.0), TreeMemory(0, 0), {})

    assert measured.median_round_s() == 2.0
