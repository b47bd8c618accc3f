import logging
from pathlib import Path

from fedscale_halor.launch.rundir import attach_log_file, create_run_dir, detach_log_file


def test_run_dir_layout_and_unique_even_for_the_same_timestamp(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path, "digits", "1125_101010")
    second = create_run_dir(tmp_path, "digits", "1125_101010")

    assert first == tmp_path.resolve() / "digits" / "1125_101010"
    assert second == tmp_path.resolve() / "digits" / "1125_101010_1"
    assert first.is_dir() and second.is_dir()


def test_log_file_receives_records_until_detached(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.log"
    handler = attach_log_file("fedscale_halor.test_rundir", path, echo=False)

    logging.getLogger("fedscale_halor.test_rundir").info("round 1 done")
    detach_log_file("fedscale_halor.test_rundir", handler)
    logging.getLogger("fedscale_halor.test_rundir").info("after detach")

    text = path.read_text()
    assert "round 1 done" in text
    assert "after detach" not in text
