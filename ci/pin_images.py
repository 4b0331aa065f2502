"""`pin_images.py TAG IMAGE@DIGEST ...`: pin the Kubernetes manifests to a release's images.

The release step after images.yml has pushed a version: it writes the pushed repository,
the version tag and the digest into every `images:` entry of deploy/k8s/base and
deploy/kserve, replacing the placeholder digests, so the manifests committed for that
release pull exactly those bytes. Each IMAGE is `ghcr.io/<owner>/<repo>/<api|trainer>`
with `@sha256:<digest>`, as the release notes list them. The files are edited in place,
comments and all; nothing else in them changes.
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KUSTOMIZATIONS = [
    REPO / "deploy" / "k8s" / "base" / "kustomization.yaml",
    REPO / "deploy" / "kserve" / "kustomization.yaml",
]
REFERENCE = re.compile(
    r"^(?P<name>[a-z0-9./_-]+/(?P<target>api|trainer))@(?P<digest>sha256:[0-9a-f]{64})$"
)
ENTRY = re.compile(
    r"(?P<head>- name: irisops-(?P<target>api|trainer)\n(?P<indent>[ ]+))newName: \S+\n"
    r"[ ]+newTag: \S+\n[ ]+digest: \S+"
)


def pinned(text: str, tag: str, images: dict[str, re.Match[str]]) -> str:
    def replace(entry: re.Match[str]) -> str:
        image = images.get(entry["target"])
        if image is None:
            raise SystemExit(f"error: no {entry['target']} image given; pass both api and trainer")
        indent = entry["indent"]
        return (
            f"{entry['head']}newName: {image['name']}\n"
            f"{indent}newTag: {tag}\n{indent}digest: {image['digest']}"
        )

    return ENTRY.sub(replace, text)


def main(tag: str, references: list[str]) -> None:
    if not re.fullmatch(r"v?\d+\.\d+\.\d+", tag):
        raise SystemExit(f"error: {tag!r} is not a version tag like v1.2.3")
    images = {}
    for reference in references:
        match = REFERENCE.match(reference)
        if match is None:
            raise SystemExit(
                f"error: {reference!r} is not <registry>/<repo>/<api|trainer>@sha256:<digest>"
            )
        images[match["target"]] = match
    # All or nothing: every file is pinned in memory before any is written.
    texts = {
        path: pinned(path.read_text(), tag.removeprefix("v"), images) for path in KUSTOMIZATIONS
    }
    for path, text in texts.items():
        path.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
