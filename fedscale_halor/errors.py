"""The error of a user's file that cannot be used: the command line prints its message, never a traceback."""

from __future__ import annotations

from pathlib import Path


class InputFileError(ValueError):
    """A file the job reads is missing, truncated, corrupt or inconsistent; the message names the file, what is wrong
    and what to do about it."""

    def __init__(self, path: Path | str, problem: str, remedy: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"{path}: {problem}" + (f"; {remedy}" if remedy else ""))
