"""Ports for the jobs an integration test starts."""

from __future__ import annotations

import random
from pathlib import Path

from fedscale_halor.launch.sweep import port_is_free


def free_port_run(count: int = 1) -> int:
    """A port p such that p .. p + count - 1 are all free now, below the kernel's ephemeral range: a port in that
    range that is free now may be taken by an outgoing connection (an ssh session, a gRPC channel) before the job
    binds it, and a job (the second aggregator of a sweep, say) then finds its port in use."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        ephemeral_low = 32768  # Linux's default
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randrange(20000, ephemeral_low - count)
        if all(port_is_free(port + offset) for offset in range(count)):
            return port
    raise RuntimeError("no run of free ports")
