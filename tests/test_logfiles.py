"""The local stack's logs stay bounded: rotated by size, a fixed number kept."""

import os
from pathlib import Path

from irisops.logfiles import RotatingLog


def test_output_is_rotated_past_the_size_and_only_the_backups_are_kept(tmp_path: Path) -> None:
    read, write = os.pipe()
    log = RotatingLog(tmp_path / "api.log", max_bytes=10_000, backups=2)
    follower = log.follow(os.fdopen(read, "rb"))
    line = b"x" * 99 + b"\n"
    with os.fdopen(write, "wb") as child:
        for _ in range(1_000):  # 100 kB through a log bounded at about 30 kB
            child.write(line)
    follower.join(timeout=10)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["api.log", "api.log.1", "api.log.2"]
    assert all((tmp_path / name).stat().st_size <= 10_000 + len(line) for name in files)
    total = sum((tmp_path / name).stat().st_size for name in files)
    assert total < 100_000 and (tmp_path / "api.log.2").read_bytes().endswith(line)


def test_the_last_lines_are_in_the_current_file(tmp_path: Path) -> None:
    read, write = os.pipe()
    log = RotatingLog(tmp_path / "api.log", max_bytes=1_000_000, backups=1)
    follower = log.follow(os.fdopen(read, "rb"))
    with os.fdopen(write, "wb") as child:
        child.write(b"started\nserving v1\n")
    follower.join(timeout=10)
    assert (tmp_path / "api.log").read_bytes() == b"started\nserving v1\n"
