"""The local stack's log files: each child's output, size-bounded by rotation.

`irisops up` can run for weeks on a laptop or a small server; its children's output
goes through a pipe to a thread that writes `<name>.log` and, past `max_bytes`,
renames it `<name>.log.1` (and `.1` to `.2`, ...), keeping `backups` of them. So the
logs never take more than about (backups + 1) x max_bytes per child.
"""

import threading
from pathlib import Path
from typing import IO, BinaryIO


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO = path.open("ab")

    def follow(self, stream: IO[bytes]) -> threading.Thread:
        """Copy `stream` here, line by line, in a thread that ends with the stream."""
        thread = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        thread.start()
        return thread

    def _copy(self, stream: IO[bytes]) -> None:
        with stream:
            for line in iter(stream.readline, b""):
                self._file.write(line)
                self._file.flush()
                if self._file.tell() >= self.max_bytes:
                    self._rotate()
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")
