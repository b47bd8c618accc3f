"""Prints docs/configuration.md: the core's keys and those of the built-in plug-ins, which only launch/ knows."""

from __future__ import annotations

from fedscale_halor.config.reference import render_config_reference
from fedscale_halor.launch.plugins import BUILT_IN


def built_in_reference() -> str:
    return render_config_reference(tuple((factory.name, factory.settings) for factory in BUILT_IN
                                         if factory.settings is not None))


if __name__ == "__main__":
    print(built_in_reference(), end="")
