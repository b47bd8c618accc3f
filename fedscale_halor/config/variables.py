"""``$VAR`` / ``${VAR}`` expansion of config strings, with the home variables FedScale-style files rely on."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from fedscale_halor.config.errors import config_error

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")

# Job files written for FedScale say $FEDSCALE_HOME; ours say $FEDSCALE_HALOR_HOME. Both mean this checkout
# unless the user points them elsewhere, so a fresh clone runs its shipped configs without any setup.
HOME_VARIABLES: tuple[str, ...] = ("FEDSCALE_HALOR_HOME", "FEDSCALE_HOME")


def repository_root() -> Path:
    """The folder that holds the ``fedscale_halor`` package."""
    return Path(__file__).resolve().parent.parent.parent


def environment_with_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a config may use: ``environ`` (the process environment by default) plus the home defaults."""
    variables = dict(os.environ if environ is None else environ)
    for name in HOME_VARIABLES:
        variables.setdefault(name, str(repository_root()))
    return variables


def expand_variables(text: str, variables: Mapping[str, str], source_label: str, key_path: str) -> str:
    """Replace every ``$NAME`` and ``${NAME}``; an unset name is a ConfigError naming the file, key and variable.

    A ``$`` that does not start a name (``$5``, a lone ``$``) is left as it is.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in variables:
            raise config_error(source_label, key_path, f"environment variable ${name} is not set")
        return variables[name]

    return _VARIABLE.sub(replace, text)


def expand_user(text: str) -> str:
    """``~`` and ``~user`` at the start of a path, as a shell would."""
    return os.path.expanduser(text)
