"""`release_notes.py TAG [IMAGE@DIGEST ...]`: a release's notes, from CHANGELOG.md.

The section headed `## TAG` (up to the next `## `), then the images pushed for it, so a
release names exactly what was built. A tag without a section is an error: a release
should never go out undescribed.
"""

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def section(changelog: str, tag: str) -> str:
    match = re.search(rf"^## {re.escape(tag)}\b.*?\n(.*?)(?=^## |\Z)", changelog, re.M | re.S)
    if match is None:
        raise SystemExit(f"error: CHANGELOG.md has no section `## {tag}`; add one, then tag again")
    return match[1].strip()


def notes(changelog: str, tag: str, images: list[str]) -> str:
    pushed = "\n".join(f"- `{image}`" for image in images)
    return f"{section(changelog, tag)}\n\n### Images\n\n{pushed or '- none'}\n"


if __name__ == "__main__":
    sys.stdout.write(notes(CHANGELOG.read_text(), sys.argv[1], sys.argv[2:]))
