"""Bad launch conditions through the command line: `start` on a port another program holds ends with exit status 2
and one line that names the port, the host and what to do, before anything is trained, without a traceback and
without gRPC's own error lines."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fedscale_halor.cli import main
from fedscale_halor.config.serialize import dump_config
from fedscale_halor.launch import aggregator_main
from fedscale_halor.launch.jobfile import load_config

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = str(ROOT / "benchmark" / "configs" / "digits" / "conf.yml")


def test_start_on_a_port_in_use_names_the_port_and_what_to_do(tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    # Prepare: another program listening on every address of a port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = {"ps_port": port, "log_path": tmp_path / "logs", "data_dir": tmp_path / "digits", "rounds": 1}

        # Execute
        status = main(["start", DIGITS_CONF, "--timestamp", "taken",
                       *[part for key, value in settings.items() for part in ("--set", f"{key}={value}")]])

    # Assert
    out, err = capfd.readouterr()
    assert status == 2
    assert err == (f"fedscale-halor: port {port} on 0.0.0.0 is already in use (by another job or program): stop it "
                   "(see `fedscale-halor status`, then `fedscale-halor stop <job_name> <timestamp>` or "
                   "`bash kill_exps.sh <dataset> <timestamp>`) or set ps_port to a free port (0 picks one)\n")
    assert "Traceback" not in out + err
    assert "add_port" not in out + err and "Failed to bind" not in out + err  # gRPC's lines
    assert not (tmp_path / "digits").exists()  # the check came before the data was prepared
    assert not (tmp_path / "logs").exists()  # and before a run folder was opened


def test_a_submitted_aggregator_on_a_port_in_use_logs_the_message_and_exits_2(tmp_path: Path) -> None:
    # Prepare: the resolved config a submitted aggregator reads, and its token
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = load_config(DIGITS_CONF, overrides={"ps_port": port, "log_path": str(tmp_path / "logs"),
                                                  "data_dir": str(tmp_path / "digits")})
        config_path = dump_config(cfg, tmp_path / "config.yml")
        token_file = tmp_path / "token"
        token_file.write_text("secret")

        # Execute
        status = aggregator_main.main(["--config", str(config_path), "--timestamp", "taken",
                                       "--token-file", str(token_file)])

    # Assert
    log = (tmp_path / "logs" / cfg.job.job_name / "taken" / "aggregator.log").read_text()
    assert status == 2
    assert f"job digits cannot run: port {port} on 0.0.0.0 is already in use" in log
    assert "Traceback" not in log
