"""The aggregator process of a submitted job: `python core/aggregator.py --config C --timestamp T --token-file F`.

Runs only the aggregator role: serves gRPC on 0.0.0.0:ps_port and waits for the executors of every worker_ips slot,
which are started on their own hosts. The job token comes from --token-file or from the environment
(FEDSCALE_HALOR_TOKEN), never from the command line, where `ps` would show it to every user of the host.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from fedscale_halor.config.errors import ConfigError
from fedscale_halor.config.schema import ExperimentConfig, JobConfig
from fedscale_halor.errors import InputFileError
from fedscale_halor.launch.errors import LaunchError
from fedscale_halor.launch.executor_main import TOKEN_VARIABLE, read_token
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.launch.rundir import attach_log_file, detach_log_file
from fedscale_halor.launch.serving import serve_aggregator
from fedscale_halor.server.errors import JobFailedError

_log = logging.getLogger("fedscale_halor.aggregator")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fedscale_halor.launch.aggregator_main")
    parser.add_argument("--config", required=True, help="the job's resolved config file")
    parser.add_argument("--timestamp", required=True, help="the run: logs go to <log_path>/<job_name>/<timestamp>/")
    parser.add_argument("--token-file", help=f"file holding the job token (default: ${TOKEN_VARIABLE})")
    args = parser.parse_args(argv)
    try:
        token = read_token(args.token_file)
        cfg = load_config(args.config)
    except (OSError, ConfigError) as error:
        print(f"aggregator: {error}", file=sys.stderr)
        return 2
    if not token:
        print(f"aggregator: no job token: give --token-file or set ${TOKEN_VARIABLE}", file=sys.stderr)
        return 2
    run_dir = run_dir_of(cfg.job, args.timestamp)
    # under `submit` stdout is the log file already; echoing there would write every line twice
    handler = attach_log_file("fedscale_halor", run_dir / "aggregator.log", echo=sys.stdout.isatty())
    stop_on_sigterm()
    return serve_to_exit_status(cfg, run_dir, token, handler)


def serve_to_exit_status(cfg: ExperimentConfig, run_dir: Path, token: str, handler: logging.Handler,
                         **options: Any) -> int:
    """``serve_aggregator`` with its outcome as the process's exit status (0 done, 1 failed, 2 cannot run, or the
    stopping signal's), the log file ``handler`` detached at the end; ``options`` go to ``serve_aggregator``."""
    try:
        serve_aggregator(cfg, run_dir, token, **options)
    except JobFailedError as error:
        _log.error("job %s failed: %s", cfg.job.job_name, error)
        return 1
    except (LaunchError, InputFileError, ConfigError) as error:
        # a user's mistake gets its message in the log, not a traceback
        _log.error("job %s cannot run: %s", cfg.job.job_name, error)
        return 2
    except SystemExit as stop:
        _log.warning("job %s stopped by a signal", cfg.job.job_name)
        return int(stop.code or 1)
    finally:
        detach_log_file("fedscale_halor", handler)
    return 0


def run_dir_of(job: JobConfig, timestamp: str) -> Path:
    """The run folder the launcher chose; created when this host does not have it yet."""
    run_dir = Path(job.log_path).expanduser().resolve() / job.job_name / timestamp
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def stop_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM (what `fedscale-halor stop` sends) into SystemExit, so cleanup code runs: the server stops, the
    executors are told to shut down, logs are flushed. Returns what puts the previous handler back; outside the main
    thread, where Python allows no handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def raise_system_exit(signal_number: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signal_number)

    previous = signal.signal(signal.SIGTERM, raise_system_exit)
    return lambda: signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
