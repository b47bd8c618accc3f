"""The launchers' error kinds, in a module light enough for the command line to import before it needs them."""

from __future__ import annotations


class LaunchError(RuntimeError):
    """A job could not be started, found or stopped; the message names the host, file or job concerned."""
