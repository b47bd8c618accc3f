import contextlib
import io
import logging
from pathlib import Path

import pytest

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


def test_a_job_echoing_to_the_console_leaves_no_handler_on_a_stdout_that_has_gone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: one job echoes to the stdout of its day, which is then closed (as a test's captured stdout is)
    name = "fedscale_halor.test_rundir_echo"
    first_stdout = io.StringIO()
    with contextlib.redirect_stdout(first_stdout):
        handlers = attach_log_file(name, tmp_path / "first.log", echo=True)
        logging.getLogger(name).info("first job")
        detach_log_file(name, handlers)
    first_stdout.close()

    # Execute: the process's next job, with its own stdout
    second = attach_log_file(name, tmp_path / "second.log", echo=True)
    logging.getLogger(name).info("second job")
    detach_log_file(name, second)

    # Assert: no "--- Logging error ---" from a handler still holding the closed stream
    captured = capsys.readouterr()
    assert "second job" in captured.out
    assert "Logging error" not in captured.err
    assert logging.getLogger(name).handlers == []
