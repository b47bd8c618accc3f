"""An Auxo job on digits with signal_rounds: each listed round leaves its reporting clients' signals, with their
cohorts as the round ended, in the run folder; fedscale-halor plot --signals draws them."""

from __future__ import annotations

import json
from pathlib import Path

from fedscale_halor.auxo.signal_log import SIGNALS_FOLDER, read_round_signals, saved_signal_files
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.logging.signal_plots import plot_signals

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"


def test_a_listed_rounds_signals_name_its_reporting_clients_and_their_cohorts(
        tmp_path: Path, digits_data_dir: Path) -> None:
    # Prepare: cohort 0 splits at its second clustering, round 3 (round 1's updates are never clustered)
    cfg = load_config(DIGITS_CONF, overrides={
        "log_path": str(tmp_path / "logs"), "data_dir": str(digits_data_dir), "auxo": True, "rounds": 3,
        "eval_interval": 3, "total_clients": 30, "num_participants": 10, "local_steps": 2, "split_round": [2],
        "label_groups": 2, "save_checkpoint": True, "signal_rounds": [1, 3]})

    # Execute
    outcome = run_in_process(cfg, timestamp="signals", echo=False)

    # Assert: a file for rounds 1 and 3, none for round 2; each holds the round's participants (every selected
    # client reports without device traces)
    folder = outcome.run_dir / SIGNALS_FOLDER
    assert saved_signal_files(outcome.run_dir) == [folder / "round_1.safetensors", folder / "round_3.safetensors"]
    participants = {metrics.round: sorted(metrics.participants) for metrics in outcome.history}
    first, third = (read_round_signals(folder / f"round_{round_index}.safetensors") for round_index in (1, 3))
    assert first.clients.tolist() == participants[1] and len(participants[1]) == 10
    assert first.cohorts.tolist() == [0] * 10
    assert third.clients.tolist() == participants[3]
    # round 3's cohorts are those after its split, as the checkpoint taken at its end records them
    record = json.loads((outcome.run_dir / "checkpoint" / "cohorts.json").read_text())
    cohort_of = {client: entry["index"] for entry in record["cohorts"] for client in entry["members"]}
    assert set(third.cohorts.tolist()) == {0, 1}
    assert third.cohorts.tolist() == [cohort_of[client] for client in third.clients.tolist()]
    assert third.signals.shape[0] == 10 and third.signals.shape[1] > 0

    # Execute / Assert: the pictures
    assert plot_signals(outcome.run_dir) == [folder / "round_1.png", folder / "round_3.png"]
