"""Executor slots from FedScale's ``worker_ips`` entries: 'host:[n_gpu0, n_gpu1, ...]'."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ENTRY = re.compile(r"^\s*(?P<host>[^:\s\[\]]+)\s*:\s*\[(?P<counts>[\d,\s]*)\]\s*$")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ExecutorSlot:
    """One executor process: its global rank, the host it runs on, and the GPU index it uses when it has one."""

    rank: int
    host: str
    gpu_index: int


def executor_slots(worker_ips: Sequence[str]) -> list[ExecutorSlot]:
    """Ranks in order of the entries, then of GPUs: '127.0.0.1:[2,1]' is ranks 0, 1 on GPU 0 and rank 2 on GPU 1."""
    slots: list[ExecutorSlot] = []
    for entry in worker_ips:
        match = _ENTRY.match(entry)
        if match is None:
            raise ValueError(f"worker_ips entry {entry!r}: expected 'host:[n_gpu0,n_gpu1,...]'")
        counts = [int(part) for part in match["counts"].split(",") if part.strip()]
        for gpu_index, count in enumerate(counts):
            for _ in range(count):
                slots.append(ExecutorSlot(len(slots), match["host"], gpu_index))
    if not slots:
        raise ValueError("worker_ips: no executor slot (every count is 0)")
    return slots


def is_local_host(host: str) -> bool:
    return host in _LOCAL_HOSTS
