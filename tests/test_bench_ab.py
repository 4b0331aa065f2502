"""bench/ab.py: the CPU it charges a server, and ratios taken pair by pair."""

import subprocess
import sys
import time

import pytest

from bench import ab

# Spins for 0.4 s of CPU, then stays alive as a server would.
SPIN = (
    "import time\nend = time.process_time() + 0.4\n"
    "while time.process_time() < end: pass\ntime.sleep(30)"
)


def test_a_servers_cpu_counts_the_processes_its_command_started() -> None:
    shell = subprocess.Popen(["/bin/sh", "-c", f'{sys.executable} -c "{SPIN}"; true'])
    try:
        time.sleep(1.5)
        user, system = ab.tree_cpu(shell.pid)
    finally:
        subprocess.run(["pkill", "-P", str(shell.pid)], check=False)
        shell.wait()
    assert user + system >= 0.3


def run(requests_per_s: float, cpu_us: float) -> ab.Run:
    return ab.Run(requests_per_s, user_us=cpu_us, system_us=0.0)


def test_ratios_are_taken_within_each_pair_then_the_median() -> None:
    # The machine drifts between pairs: per pair the second side needs 2x, 3x, 1.5x the
    # CPU; the ratio of the medians (30 / 10 = 3x) would take the drift for the change.
    before = [run(1000, 1), run(100, 10), run(10, 100)]
    after = [run(500, 2), run(33, 30), run(7, 150)]
    ratio = ab.summary({"before": before, "after": after})["ratio"]["after / before"]
    assert ratio["cpu_us"]["median"] == pytest.approx(2.0)
    assert ratio["requests_per_s"]["median"] == pytest.approx(0.5)
