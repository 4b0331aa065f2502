"""What each image installs, read from this virtualenv: closure, size, and an import guard.

The Dockerfile installs `irisops` into the api image and `irisops[train,server]` into the
trainer image, both from constraints.txt, the same pins this virtualenv was built from. So
the installed distributions' metadata tells, without building anything:

- which distributions each image gets (the requirement closure, markers evaluated);
- how much they weigh (the files each distribution's RECORD lists, as installed here);
- and, by refusing imports of any file that only other distributions own, how a local
  process behaves inside that image (`image_site`). The compose tests run every service
  under its image's guard, so a service needing a package its image lacks fails here.

`python -m tests.deploy.images` prints the size report quoted in docs/compose.md.
"""

import json
import os
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import Distribution, distribution, distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = "irisops"
# Dockerfile stage -> the extras its virtualenv installs (tests/deploy/test_static.py
# checks the Dockerfile says the same).
IMAGE_EXTRAS: dict[str, tuple[str, ...]] = {"api": (), "trainer": ("train", "server")}


@cache
def _distribution(name: str) -> Distribution:
    return distribution(name)


def closure(extras: tuple[str, ...], root: str = PROJECT) -> frozenset[str]:
    """Canonical names of every distribution `pip install root[extras]` pulls in."""
    visited: set[tuple[str, tuple[str, ...]]] = set()
    pending = [(canonicalize_name(root), extras)]
    while pending:
        name, wanted = pending.pop()
        if (name, wanted) in visited:
            continue
        visited.add((name, wanted))
        for line in _distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *wanted)
            ):
                extras_of = tuple(sorted(requirement.extras))
                pending.append((canonicalize_name(requirement.name), extras_of))
    return frozenset(name for name, _ in visited)


def files_of(names: frozenset[str]) -> set[Path]:
    """The installed files of these distributions, as absolute paths."""
    found: set[Path] = set()
    for name in names:
        for file in _distribution(name).files or []:
            # Lexically normalised ("../../bin/irisops"), as PathFinder reports origins.
            found.add(Path(os.path.normpath(file.locate())))
    return found


def size_of(names: frozenset[str]) -> int:
    return sum(path.stat().st_size for path in files_of(names) if path.is_file())


def installed() -> frozenset[str]:
    return frozenset(canonicalize_name(d.metadata["Name"]) for d in distributions())


@dataclass(frozen=True)
class Image:
    target: str
    packages: frozenset[str]
    size: int


def image(target: str) -> Image:
    packages = closure(IMAGE_EXTRAS[target])
    return Image(target, packages, size_of(packages))


# The guard, written as sitecustomize.py: Python imports it at start-up from PYTHONPATH.
# It takes the place of PathFinder, so a hidden module is simply not found: `import x`
# raises ModuleNotFoundError and `importlib.util.find_spec(x)` is None, as in the image
# (MLflow probes optional packages that way). Distribution metadata is filtered the same.
GUARD = '''"""Written by tests/deploy/images.py: imports behave as in the {target} image."""
import importlib.machinery
import json
import re
import sys

with open({listing!r}) as _listing:
    _HIDDEN = json.load(_listing)
_FILES = frozenset(_HIDDEN["files"])
_DISTRIBUTIONS = frozenset(_HIDDEN["distributions"])


class _ImageGuard(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        spec = super().find_spec(fullname, path, target)
        return None if spec is not None and spec.origin in _FILES else spec

    @classmethod
    def find_distributions(cls, *args, **kwargs):
        for found in super().find_distributions(*args, **kwargs):
            name = re.sub(r"[-_.]+", "-", found.metadata["Name"] or "").lower()
            if name not in _DISTRIBUTIONS:
                yield found


sys.meta_path[:] = [
    _ImageGuard if finder is importlib.machinery.PathFinder else finder
    for finder in sys.meta_path
]
'''


def image_site(target: str, directory: Path) -> Path:
    """A directory for PYTHONPATH whose sitecustomize hides what the image does not install.

    Hidden: the distributions outside the image's closure, and every file only they own
    (a file an installed distribution shares, like mlflow's with mlflow-skinny, stays).
    """
    inside = closure(IMAGE_EXTRAS[target])
    outside = installed() - inside
    hidden = {
        "files": sorted(str(path) for path in files_of(outside) - files_of(inside)),
        "distributions": sorted(outside),
    }
    directory.mkdir(parents=True, exist_ok=True)
    listing = directory / "hidden.json"
    listing.write_text(json.dumps(hidden))
    (directory / "sitecustomize.py").write_text(GUARD.format(target=target, listing=str(listing)))
    return directory


def report() -> str:
    images = [image(target) for target in IMAGE_EXTRAS]
    lines = [f"{'image':<8} {'distributions':>13} {'site-packages MB':>16}"]
    lines += [f"{i.target:<8} {len(i.packages):>13} {i.size / 1e6:>16.1f}" for i in images]
    api = images[0]
    heaviest = sorted(api.packages, key=lambda name: -size_of(frozenset([name])))[:8]
    lines.append(
        "api's heaviest: "
        + ", ".join(f"{name} {size_of(frozenset([name])) / 1e6:.1f}" for name in heaviest)
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(report() + "\n")
