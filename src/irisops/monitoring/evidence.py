"""A challenger's live evidence, read from a running API's `GET /monitoring`.

`irisops promote --evidence` shows it before moving the alias and records it on
the version as tags, so the registry keeps what the decision was based on.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from irisops.config import Settings


class NoEvidence(Exception):
    """The API cannot be read, or holds nothing about the version."""


@dataclass(frozen=True)
class Evidence:
    version: str
    rows: int
    agreement: float
    mean_probability_gap: float
    live_accuracy: float | None
    labelled_rows: int

    def lines(self) -> list[str]:
        accuracy = (
            "no feedback yet"
            if self.live_accuracy is None
            else f"{self.live_accuracy:.1%} over {self.labelled_rows:,} labelled rows"
        )
        return [
            f"v{self.version} in shadow: {self.rows:,} live rows scored",
            f"  agreement with the champion: {self.agreement:.1%}",
            f"  mean probability gap: {self.mean_probability_gap:.4f}",
            f"  live accuracy: {accuracy}",
        ]

    def tags(self) -> dict[str, str]:
        tags = {
            "irisops.evidence.at": datetime.now(UTC).isoformat(timespec="seconds"),
            "irisops.evidence.shadow_rows": str(self.rows),
            "irisops.evidence.agreement": f"{self.agreement:.6f}",
            "irisops.evidence.mean_probability_gap": f"{self.mean_probability_gap:.6f}",
        }
        if self.live_accuracy is not None:
            tags["irisops.evidence.live_accuracy"] = f"{self.live_accuracy:.6f}"
            tags["irisops.evidence.labelled_rows"] = str(self.labelled_rows)
        return tags


def api_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api_host in {"0.0.0.0", "::"} else settings.api_host
    return f"http://{host}:{settings.api_port}"


def live_evidence(settings: Settings, version: str) -> Evidence:
    url = f"{api_url(settings)}/monitoring"
    key = settings.api_key
    headers = {} if key is None else {"X-API-Key": key.get_secret_value()}
    try:
        response = httpx.get(url, headers=headers, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise NoEvidence(f"cannot read {url}: {exc}") from None
    body = response.json()
    shadow = (body.get("shadow") or {}).get("versions", {}).get(version)
    if not shadow or not shadow["rows"]:
        raise NoEvidence(
            f"the API at {api_url(settings)} has scored no live rows with v{version}: "
            f"serve with IRISOPS_SHADOW=true while v{version} is the challenger"
        )
    judged = [f for f in body.get("feedback", []) if f["role"] == "challenger"]
    labelled = next((f for f in judged if f["model_version"] == version), None)
    return Evidence(
        version=version,
        rows=shadow["rows"],
        agreement=shadow["agreement"],
        mean_probability_gap=shadow["mean_probability_gap"],
        live_accuracy=None if labelled is None else labelled["accuracy"],
        labelled_rows=0 if labelled is None else labelled["rows"],
    )
