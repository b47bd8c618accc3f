"""Every case of the golden matrix (golden_runs.py) ends with the model recorded in golden_digests.json: a change
to the round loop, the protocol or a feature's plumbing must leave every feature's numbers as they were."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from golden_runs import CASES, GOLDEN_FILE, SAME_MODEL, platform, run_case

GOLDEN: dict[str, Any] = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))


def test_the_recording_covers_every_case_and_its_equal_models_agree() -> None:
    assert sorted(GOLDEN["cases"]) == sorted(CASES)
    for group in SAME_MODEL:
        assert len({GOLDEN["cases"][name]["sha256"] for name in group}) == 1, group


@pytest.mark.parametrize("name", list(CASES))
def test_a_golden_case_ends_with_its_recorded_model(name: str, tmp_path: Path, digits_data_dir: Path) -> None:
    expected = GOLDEN["cases"][name]

    got = run_case(name, tmp_path, digits_data_dir)

    if platform() == GOLDEN["platform"]:
        assert got["sha256"] == expected["sha256"], (
            f"{name}: the final model changed (recorded on this torch build and CPU capability: the digest must "
            "match; re-record with golden_runs.py --record only for a change meant to alter models)")
    else:  # other floating-point kernels: the same numbers up to rounding in the last bits
        assert got["stats"].keys() == expected["stats"].keys()
        for tensor, stats in expected["stats"].items():
            for key in ("sum", "norm"):
                assert math.isclose(got["stats"][tensor][key], stats[key], rel_tol=1e-4, abs_tol=1e-6), (
                    f"{name}: {tensor} {key} (compared by statistics: recorded on {GOLDEN['platform']}, "
                    f"running on {platform()})")
