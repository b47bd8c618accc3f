"""Executors send partial sums of their clients' updates where the fold takes them, and the model stays the same
bits as when every update travels on its own."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from fedscale_halor.aggregation.fold import MeanFold
from fedscale_halor.launch.inprocess import run_in_process
from fedscale_halor.launch.jobfile import load_config
from fedscale_halor.server.service import BoardService
from fedscale_halor.transport.messages import ClientTrain, PartialUpdate

ROOT = Path(__file__).resolve().parents[2]
DIGITS_CONF = ROOT / "benchmark" / "configs" / "digits" / "conf.yml"
pytestmark = pytest.mark.slow


def _digits(tmp_path: Path, data_dir: Path, **overrides: object):
    settings = {"log_path": str(tmp_path / "logs"), "data_dir": str(data_dir), "rounds": 2, "eval_interval": 2,
                "total_clients": 200, "num_participants": 60, "worker_ips": "127.0.0.1:[2]", **overrides}
    return load_config(DIGITS_CONF, overrides=settings)


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """What the executors send, by kind, how many clients they send in partials, and how many summed tasks they
    get."""
    counts: Counter[str] = Counter()
    submit, next_event = BoardService.submit, BoardService.next_event

    def counting_submit(self, token, executor_id, completion):  # type: ignore[no-untyped-def]
        counts[type(completion).__name__] += 1
        if isinstance(completion, PartialUpdate):
            counts["clients in partials"] += len(completion.results)
            counts["smallest partial"] = min(counts["smallest partial"] or 10**9, len(completion.results))
        return submit(self, token, executor_id, completion)

    def counting_next_event(self, token, executor_id):  # type: ignore[no-untyped-def]
        event = next_event(self, token, executor_id)
        if isinstance(event, ClientTrain):
            counts["ClientTrain"] += 1
            counts["summed tasks"] += sum(task.summed for task in event.tasks)
        return event

    monkeypatch.setattr(BoardService, "submit", counting_submit)
    monkeypatch.setattr(BoardService, "next_event", counting_next_event)
    return counts


def test_fedavg_clients_come_back_in_partial_sums_with_the_model_of_single_updates(
        tmp_path: Path, digits_data_dir: Path, messages: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Execute: the job as it runs, then with every update sent on its own
    summed = run_in_process(_digits(tmp_path, digits_data_dir, executor_threads=2), echo=False)
    counts = dict(messages)
    messages.clear()
    monkeypatch.setattr(MeanFold, "sum_rule", lambda self: None)
    single = run_in_process(_digits(tmp_path, digits_data_dir, executor_threads=2), echo=False)

    # Assert: 2 rounds x 60 clients, all summed; events of at least 5 clients (where 5 updates outweigh one
    # partial) come back as one partial each, the small ones at a round's end as single updates
    assert counts["summed tasks"] == 120
    assert counts["clients in partials"] + counts["ClientUpdate"] == 120
    assert counts["clients in partials"] > 60 and counts["smallest partial"] >= 5
    assert counts["PartialUpdate"] < 120 / 5
    assert messages["ClientUpdate"] == 120 and messages.get("PartialUpdate", 0) == 0
    assert summed.final_weights.keys() == single.final_weights.keys()
    for name, tensor in summed.final_weights.items():
        assert torch.equal(tensor, single.final_weights[name]), name
    assert [metrics.completed for metrics in summed.history] == [60, 60]


def test_a_fold_that_needs_each_update_gets_each_update(tmp_path: Path, digits_data_dir: Path,
                                                        messages: Counter[str]) -> None:
    run_in_process(_digits(tmp_path, digits_data_dir, feddc=1, feddc_alpha=0.1), echo=False)
    assert messages["ClientUpdate"] == 120
    assert messages.get("PartialUpdate", 0) == 0 and messages.get("summed tasks", 0) == 0
