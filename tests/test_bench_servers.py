"""bench/servers.py: the peak memory of a server's process tree, sampled without disturbing it."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from bench import servers

MIB = 2**20
# Waits 0.3 s, then starts a child that holds 200 MiB, as a server's worker would (`; true`
# keeps the shell as its parent, so the child is the one `pkill -P` stops).
LATE_CHILD = (
    f"sleep 0.3; {sys.executable} -c "
    "\"import time; ballast = b'x' * (200 * 2**20); time.sleep(30)\"; true"
)


def test_the_tree_is_walked_once_a_second_while_its_memory_is_read_every_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks: list[int] = []
    walk = servers.process_tree

    def counted(pid: int) -> list[psutil.Process]:
        walks.append(pid)
        return walk(pid)

    monkeypatch.setattr(servers, "process_tree", counted)
    monkeypatch.setattr(servers, "RSS_SAMPLE", 0.01)
    before = psutil.Process().memory_info().rss
    memory = servers.TreeMemory(os.getpid())
    memory.start()
    try:
        time.sleep(0.1)
        ballast = b"x" * (64 * MIB)  # grows after the first walk: only a sample sees it
        time.sleep(0.3)
    finally:
        memory.stop()
    assert len(ballast) == 64 * MIB
    assert walks == [os.getpid()]
    assert memory.peak_bytes >= before + 60 * MIB


def test_a_child_started_after_a_walk_is_counted_from_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(servers, "RSS_SAMPLE", 0.01)
    monkeypatch.setattr(servers, "TREE_WALK", 0.1)
    shell = subprocess.Popen(["/bin/sh", "-c", LATE_CHILD])
    memory = servers.TreeMemory(shell.pid)
    memory.start()
    try:
        deadline = time.monotonic() + 10
        while memory.peak_bytes < 200 * MIB and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        memory.stop()
        subprocess.run(["pkill", "-P", str(shell.pid)], check=False)
        shell.wait()
    assert memory.peak_bytes >= 200 * MIB
