"""The sweep that SharedFolder.create runs: folders of dead aggregators go, those of live ones (or of owners this
process cannot judge) stay. Every parent folder is under ``tmp_path``, never /dev/shm; a dead owner is a real
process that has exited."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedscale_halor.transport.shared_memory import (
    NONCE_FILE,
    PARENT_VARIABLE,
    UNOWNED_MAX_AGE_S,
    FolderOwner,
    SharedFolder,
    default_parent,
    sweep_stale_folders,
)

# a child that makes a folder and ends without removing it, as a killed aggregator does
_LEAVE_A_FOLDER = ("import sys; from fedscale_halor.transport.shared_memory import SharedFolder; "
                   "print(SharedFolder.create(sys.argv[1]).path, flush=True)")


def _left_by_exited_process(parent: Path) -> tuple[Path, int]:
    """A folder made by a process that has exited (and been reaped), and that process's pid."""
    child = subprocess.run([sys.executable, "-c", _LEAVE_A_FOLDER, str(parent)], capture_output=True, text=True,
                           check=True, timeout=60)
    path = Path(child.stdout.strip())
    owner = FolderOwner.from_name(path.name)
    assert owner is not None and path.is_dir()
    return path, owner.pid


def _folder(parent: Path, name: str, age_s: float = 0.0) -> Path:
    path = parent / name
    path.mkdir(mode=0o700)
    (path / NONCE_FILE).write_text("0" * 32)
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
    return path


def _names(parent: Path) -> list[str]:
    return sorted(entry.name for entry in parent.iterdir())


def test_the_name_of_a_new_folder_records_this_process_as_its_live_owner(tmp_path: Path) -> None:
    folder = SharedFolder.create(str(tmp_path))

    assert folder is not None
    owner = FolderOwner.from_name(folder.path.name)
    assert owner == FolderOwner.of_this_process()
    assert owner.pid == os.getpid() and owner.start_time > 0 and owner.pid_namespace > 0
    assert owner.is_alive() is True


def test_the_next_create_removes_the_folder_of_an_exited_process_and_logs_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    stale, pid = _left_by_exited_process(tmp_path)

    # Execute
    with caplog.at_level(logging.INFO, logger="fedscale_halor.transport"):
        fresh = SharedFolder.create(str(tmp_path))

    # Assert: only the new folder is left, and one line names the old one and its pid
    assert fresh is not None
    assert _names(tmp_path) == [fresh.path.name]
    lines = [record.getMessage() for record in caplog.records if "stale" in record.getMessage()]
    assert lines == [f"removed the stale shared-memory folder {stale}: its aggregator, pid {pid}, is dead"]


def test_the_folder_of_a_dead_but_unreaped_process_is_removed(tmp_path: Path) -> None:
    # a killed aggregator stays a zombie until its parent waits for it; it is dead all the same
    child = subprocess.Popen([sys.executable, "-c", _LEAVE_A_FOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        stale = Path(child.stdout.readline().strip())
        deadline = time.monotonic() + 60
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.01)

        assert sweep_stale_folders(tmp_path) == [stale]
    finally:
        child.communicate(timeout=60)


def test_the_folders_of_live_processes_stay(tmp_path: Path) -> None:
    # Prepare: this process's folder and one of a child that is still running
    mine = SharedFolder.create(str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", _LEAVE_A_FOLDER + "; sys.stdin.read()", str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and mine is not None
        theirs = Path(child.stdout.readline().strip())

        # Execute
        removed = sweep_stale_folders(tmp_path)

        # Assert
        assert removed == []
        assert _names(tmp_path) == sorted([mine.path.name, theirs.name])
    finally:
        child.communicate(input="", timeout=60)


def test_a_live_process_that_reuses_a_dead_owners_pid_does_not_keep_its_folder(tmp_path: Path) -> None:
    # this process's pid, but a start time it never had: the folder's owner had that pid before
    me = FolderOwner.of_this_process()
    stale = _folder(tmp_path, FolderOwner(me.pid, me.start_time - 1, me.pid_namespace).prefix() + "abcd1234")

    assert sweep_stale_folders(tmp_path) == [stale]


def test_a_folder_of_another_pid_namespace_stays_even_when_its_pid_is_dead_here(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _, pid = _left_by_exited_process(elsewhere)
    me = FolderOwner.of_this_process()
    foreign = _folder(tmp_path, FolderOwner(pid, 1, me.pid_namespace + 1).prefix() + "abcd1234", age_s=10**6)

    assert sweep_stale_folders(tmp_path) == []
    assert foreign.is_dir()


@pytest.mark.parametrize(("age_s", "kept"), [(0.0, True), (UNOWNED_MAX_AGE_S - 60, True),
                                             (UNOWNED_MAX_AGE_S + 60, False)], ids=["new", "59-min", "61-min"])
def test_an_older_versions_folder_without_an_owner_goes_only_after_an_hour(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, age_s: float, kept: bool) -> None:
    old = _folder(tmp_path, "fedscale_halor_k3x9_q2a", age_s=age_s)  # as mkdtemp named them

    with caplog.at_level(logging.INFO, logger="fedscale_halor.transport"):
        removed = sweep_stale_folders(tmp_path)

    assert old.is_dir() == kept
    assert removed == ([] if kept else [old])
    if not kept:
        assert f"removed the stale shared-memory folder {old}: it records no owner and was last modified 1.0 h ago" \
            in caplog.text


def test_links_files_and_other_names_are_never_touched(tmp_path: Path) -> None:
    # Prepare: a dead owner's folder kept elsewhere, reached by a link whose name looks like a stale folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target, pid = _left_by_exited_process(elsewhere)
    me = FolderOwner.of_this_process()
    dead_name = FolderOwner(pid, 1, me.pid_namespace).prefix()
    (tmp_path / (dead_name + "link")).symlink_to(target, target_is_directory=True)
    (tmp_path / (dead_name + "file")).write_text("not a folder")
    _folder(tmp_path, "other_" + dead_name + "x", age_s=10**6)
    before = _names(tmp_path)

    # Execute
    removed = sweep_stale_folders(tmp_path)

    # Assert
    assert removed == []
    assert _names(tmp_path) == before
    assert target.is_dir()


def test_the_parent_comes_from_the_environment_at_each_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(PARENT_VARIABLE, raising=False)
    assert default_parent() == "/dev/shm"

    monkeypatch.setenv(PARENT_VARIABLE, str(tmp_path))

    assert default_parent() == str(tmp_path)
