"""`requirements.py PYPROJECT [EXTRA ...]`: irisops's dependencies, or its extras', one a line.

The image build installs these before the irisops wheel exists, so the layer holding them
is rebuilt when pyproject.toml or constraints.txt change, not on every source change.
"""

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"error: no extra {', '.join(unknown)} in {pyproject}")
    if extras:
        return [line for extra in extras for line in optional[extra]]
    return list(project["dependencies"])


if __name__ == "__main__":
    print("\n".join(requirements(Path(sys.argv[1]), sys.argv[2:])))
