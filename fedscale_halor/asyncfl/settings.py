"""The job-file keys of asynchronous buffered aggregation (its plug-in's settings), with FedScale's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fedscale_halor.settings import knob

ASYNC_AGGREGATOR_ENTRY = "async_aggregator.py"


@dataclass(frozen=True)
class AsyncConfig:
    async_mode: bool = knob(False, "asynchronous buffered aggregation (FedBuff); also on when aggregator_entry "
                                   "names FedScale's async_aggregator.py; needs device_conf_file")
    arrival_interval: float = knob(3.0, "async: simulated seconds between two clients' check-ins",
                                   range=(0.0, None))
    async_buffer: int = knob(10, "async: updates aggregated into each new model version", range=(1, None))
    max_concurrency: int = knob(10, "async: most clients training at once; a client checking in beyond it is "
                                    "skipped", range=(1, None))
    max_staleness: int = knob(5, "async: an update more than this many versions old is dropped", range=(0, None))

    @staticmethod
    def implied_by(deployment: object) -> Mapping[str, object]:
        """FedScale's async job files choose the mode by their aggregator: ``async_mode`` follows from it."""
        entry = str(getattr(deployment, "aggregator_entry", ""))
        return {"async_mode": True} if entry.replace("\\", "/").rsplit("/", 1)[-1] == ASYNC_AGGREGATOR_ENTRY else {}
