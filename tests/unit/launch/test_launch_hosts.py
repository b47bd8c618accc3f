import pytest

from fedscale_halor.launch.hosts import ExecutorSlot, executor_slots, is_local_host


def test_slots_are_ranked_by_entry_then_gpu() -> None:
    slots = executor_slots(["127.0.0.1:[2,1]", "gpu-box:[0,3]"])

    assert slots == [
        ExecutorSlot(0, "127.0.0.1", 0), ExecutorSlot(1, "127.0.0.1", 0), ExecutorSlot(2, "127.0.0.1", 1),
        ExecutorSlot(3, "gpu-box", 1), ExecutorSlot(4, "gpu-box", 1), ExecutorSlot(5, "gpu-box", 1),
    ]


@pytest.mark.parametrize("entry", ["127.0.0.1", "host:[a]", ":[1]"])
def test_malformed_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="worker_ips entry"):
        executor_slots([entry])


def test_all_zero_counts_leave_no_executor() -> None:
    with pytest.raises(ValueError, match="no executor slot"):
        executor_slots(["127.0.0.1:[0]"])


def test_local_hosts() -> None:
    assert is_local_host("localhost") and is_local_host("127.0.0.1")
    assert not is_local_host("gpu-box")
