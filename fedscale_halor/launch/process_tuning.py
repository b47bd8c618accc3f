"""Process-wide settings that make local training cheaper; every process that trains or aggregates applies them.

- glibc's malloc returns large freed blocks to the kernel (munmap, or trimming the heap), so each new 26 MB
  gradient or weight copy page-faults its memory in again, zero-filled. A training process allocates and frees such
  blocks several times per SGD step; keeping them in the heap made the reference workload's local training 12-14%
  faster here. The cost is that memory a process has freed is not handed back until it exits.
- Denormal floats are flushed to zero: a handful of tiny gradients otherwise drop the CPU onto its slow path.

Flushing changes results slightly, so every process that computes weights flushes: executors, the aggregator and
the in-process runner; the same seed then gives the same model whatever the transport or the number of executors.
Only training processes keep freed blocks (the aggregator's memory is worth more than its few allocations).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

import torch

_log = logging.getLogger("fedscale_halor")

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# blocks up to this size come from the heap, and up to this much freed memory stays at the heap's top
HEAP_BLOCK_LIMIT_BYTES = 64 * 2**20


def flush_denormals() -> None:
    torch.set_flush_denormal(True)


def tune_process_for_training() -> None:
    flush_denormals()
    if not sys.platform.startswith("linux"):
        return
    library = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(library or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): its allocator is left as it is
        return
    if not (mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT_BYTES) and mallopt(_M_TRIM_THRESHOLD, HEAP_BLOCK_LIMIT_BYTES)):
        _log.debug("malloc refused the heap thresholds; large blocks stay memory-mapped")
