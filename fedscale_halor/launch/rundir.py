"""A run's log folder, <log_path>/<job_name>/<timestamp>/, and the job's log files inside it."""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def new_timestamp() -> str:
    return time.strftime("%m%d_%H%M%S")


def create_run_dir(log_path: str | Path, job_name: str, timestamp: str | None = None,
                   taken: Callable[[str], bool] | None = None) -> Path:
    """Create the run's folder; a taken timestamp gets a numeric suffix (``_1``, ``_2``, ...), so two runs never
    share a folder. Creating a folder is atomic, so this holds for runs started in parallel too. ``taken`` names
    further timestamps to pass over (e.g. those a jobs index still records)."""
    parent = Path(log_path).expanduser().resolve() / job_name
    parent.mkdir(parents=True, exist_ok=True)
    stem = timestamp or new_timestamp()
    for stamp in itertools.chain([stem], (f"{stem}_{suffix}" for suffix in itertools.count(1))):
        if taken is not None and taken(stamp):
            continue
        try:
            (parent / stamp).mkdir()
        except FileExistsError:
            continue
        return parent / stamp
    raise AssertionError("unreachable: the candidate names never end")


def open_run_dir(log_path: str | Path, job_name: str, timestamp: str | None, *, resume: bool = False) -> Path:
    """A new run folder, or with ``resume`` the existing folder of ``timestamp``, which must hold a checkpoint folder
    (loading the checkpoint says what is wrong with the files in it)."""
    if not resume:
        return create_run_dir(log_path, job_name, timestamp)
    if not timestamp:
        raise ValueError("resuming a run needs its timestamp (--timestamp)")
    run_dir = Path(log_path).expanduser().resolve() / job_name / timestamp
    if not (run_dir / "checkpoint").is_dir():
        raise FileNotFoundError(f"no checkpoint to resume from in {run_dir / 'checkpoint'}")
    return run_dir


def attach_log_file(logger_name: str, path: Path, *, echo: bool) -> tuple[logging.Handler, ...]:
    """Send a logger's records to ``path`` (and to stdout when ``echo``); returns the handlers it added, for
    ``detach_log_file``."""
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)
    added: list[logging.Handler] = [handler]
    if echo and not any(getattr(h, "_fedscale_echo", False) for h in logger.handlers):
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        console._fedscale_echo = True  # type: ignore[attr-defined]
        logger.addHandler(console)
        added.append(console)
    return tuple(added)


def detach_log_file(logger_name: str, handlers: tuple[logging.Handler, ...]) -> None:
    """Remove what ``attach_log_file`` added: a console handler left behind would keep writing to the stdout of
    its day, which may be closed by the time the next job of the process logs."""
    logger = logging.getLogger(logger_name)
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
