"""An executor process: `python -m fedscale_halor.launch.executor_main --config C --rank R --address HOST:PORT`.

The job token comes from a file (--token-file) or from the environment (FEDSCALE_HALOR_TOKEN), never from the
command line, where `ps` would show it to every user of the host.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fedscale_halor.config.schema import ExperimentConfig
from fedscale_halor.launch.assembly import build_executor
from fedscale_halor.launch.hosts import executor_slots
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.process_tuning import tune_process_for_training
from fedscale_halor.transport.base import AuthenticationError
from fedscale_halor.transport.grpc_client import GrpcTransport
from fedscale_halor.transport.tls import client_tls_from_settings

TOKEN_VARIABLE = "FEDSCALE_HALOR_TOKEN"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fedscale_halor.launch.executor_main")
    parser.add_argument("--config", required=True, help="the job's resolved config file")
    parser.add_argument("--rank", type=int, required=True, help="this executor's rank among the job's slots")
    parser.add_argument("--address", required=True, help="the aggregator, host:port")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of the executor (default: the job's executor_threads)")
    parser.add_argument("--token-file", help=f"file holding the job token (default: ${TOKEN_VARIABLE})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    try:
        token = read_token(args.token_file)
    except OSError as error:
        print(f"executor: cannot read the token file {args.token_file}: {error}", file=sys.stderr)
        return 2
    return serve_executor(load_config(args.config), args.rank, args.address, token, args.threads)


def serve_executor(cfg: ExperimentConfig, rank: int, address: str, token: str, threads: int | None = None, *,
                   gpu_index: int | None = None) -> int:
    """Run executor ``rank`` of the job against the aggregator at ``address`` until it shuts down; the exit status.
    ``gpu_index``: the GPU to use instead of the slot's (a scheduler gave the process its own)."""
    tune_process_for_training()
    slots = executor_slots(cfg.deployment.worker_ips)
    if not 0 <= rank < len(slots):
        print(f"executor: rank {rank} is not among the job's {len(slots)} slots", file=sys.stderr)
        return 2
    slot = slots[rank] if gpu_index is None else dataclasses.replace(slots[rank], gpu_index=gpu_index)
    tls = client_tls_from_settings(cfg.job.tls_ca_file, cfg.job.tls_cert_file)
    transport = GrpcTransport(address, token, chunk_bytes=int(cfg.job.message_chunk_mb * 2**20), tls=tls,
                              connect_timeout_s=cfg.job.register_timeout, reconnect_window_s=cfg.job.reconnect_timeout,
                              shared_memory=cfg.job.shared_memory)
    try:
        build_executor(cfg, slot, transport, threads=threads).run()
    except AuthenticationError as error:
        logging.getLogger("fedscale_halor.executor").error("executor_%d refused: %s", rank, error)
        return 3
    finally:
        transport.close()
    return 0


def read_token(token_file: str | None) -> str:
    """The job token: the content of ``token_file`` when given (whitespace around it dropped), else the environment
    variable."""
    if token_file:
        return Path(token_file).expanduser().read_text(encoding="utf-8").strip()
    return os.environ.get(TOKEN_VARIABLE, "")


if __name__ == "__main__":
    sys.exit(main())
