"""The release workflow's notes: a tag's CHANGELOG section and the images pushed for it."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "ci" / "release_notes.py"
CHANGELOG = "# Changelog\n\n## v1.1.0\n\n- newer\n\n## v1.0.0 - 2026-01-01\n\n- first\n"


def notes(*args: str, changelog: str = CHANGELOG) -> subprocess.CompletedProcess[str]:
    code = (
        "import runpy, sys; namespace = runpy.run_path(sys.argv[1]); "
        "sys.stdout.write(namespace['notes'](sys.stdin.read(), sys.argv[2], sys.argv[3:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(SCRIPT), *args],
        input=changelog,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_notes_are_the_tags_section_and_the_pushed_images() -> None:
    result = notes("v1.0.0", "ghcr.io/o/r/api@sha256:aa", "ghcr.io/o/r/trainer@sha256:bb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "- first\n\n### Images\n\n"
        "- `ghcr.io/o/r/api@sha256:aa`\n- `ghcr.io/o/r/trainer@sha256:bb`\n"
    )


def test_a_section_ends_at_the_next_version() -> None:
    assert notes("v1.1.0").stdout.startswith("- newer\n\n### Images")


def test_a_tag_without_a_section_is_refused_in_one_line() -> None:
    result = notes("v9.9.9")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: CHANGELOG.md has no section `## v9.9.9`; add one, then tag again"
    )


@pytest.mark.parametrize("tag", ["v0.1.0"])
def test_the_projects_own_changelog_describes_its_released_tags(tag: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), tag], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_make_release_without_a_tag_is_a_usage_error() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "release"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "usage: make release TAG=" in result.stdout
