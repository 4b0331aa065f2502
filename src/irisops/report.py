"""What the commands print: tables a person reads at the end of a job."""

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from irisops.registry import Decision, VersionRecord
    from irisops.training.pipeline import TrainingResult

# The first line of every comparison: a CI job finds its earlier comment by it.
REPORT_MARKER = "<!-- irisops report -->"


def training_summary(console: Console, result: "TrainingResult", model_name: str) -> None:
    table = Table(title=f"{model_name} v{result.version}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}")
    parity = result.parity
    table.add_row(
        "export parity",
        f"{parity.rows} rows, max |Δp| {parity.max_probability_diff:.1e}, "
        f"{parity.class_mismatches} class mismatches ({', '.join(sorted(parity.by_backend))})",
    )
    console.print(table)
    colour = "green" if result.decision.promote else "yellow"
    console.print(f"Run:      {result.run_url}", soft_wrap=True)
    console.print(f"Version:  {model_name} v{result.version} (alias challenger)")
    console.print(f"Decision: [{colour}]{result.decision.label}[/] ({result.decision.reason})")
    if result.published:
        console.print(f"Serving:  published to {result.published}")


def versions_table(
    name: str,
    versions: list["ModelVersion"],
    aliases: dict[str, str],
    metrics: dict[str, dict[str, float]],
    gate_metric: str,
    pinned: str | None = None,
) -> Table:
    """`aliases` maps alias -> version: version search results do not carry them."""
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        pin = " (pinned)" if alias == "champion" and str(number) == pinned else ""
        by_version.setdefault(str(number), []).append(alias + pin)
    table = Table(title=f"{name} versions")
    for column in ("version", "aliases", gate_metric, "f1_macro", "promotion", "run"):
        table.add_column(column)
    for version in versions:
        run_metrics = metrics.get(version.run_id or "", {})
        table.add_row(
            str(version.version),
            ", ".join(sorted(by_version.get(str(version.version), []))),
            _fmt(run_metrics.get(gate_metric)),
            _fmt(run_metrics.get("test_f1_macro")),
            version.tags.get("irisops.promotion_reason", ""),
            (version.run_id or "")[:12],
        )
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def comparison_markdown(
    name: str,
    candidate: "VersionRecord",
    champion: "VersionRecord | None",
    decision: "Decision",
    metric: str,
    run_url: str | None,
) -> str:
    """A version beside the champion, in GitHub's markdown: a job summary or a PR comment."""
    against = f"champion v{champion.version}" if champion else "no champion yet"
    lines = [REPORT_MARKER, f"### {name} v{candidate.version} against {against}", ""]
    names = [m for m in candidate.metrics if m.startswith(("test_", "cv_"))]
    names.sort(key=lambda m: (m != metric, m))
    old = champion.metrics if champion else {}
    column = f"v{champion.version}" if champion else "-"
    lines += [
        f"| metric | v{candidate.version} | {column} | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    for m in names:
        new, before = candidate.metrics[m], old.get(m)
        change = "-" if before is None else f"{new - before:+.4f}"
        lines.append(f"| {m} | {new:.4f} | {_fmt(before)} | {change} |")
    verdict = "passes" if decision.promote else "does not pass"
    lines += ["", f"**Gate** (`{metric}`, higher is better): {verdict}: {decision.reason}.", ""]
    if run_url:
        lines.append(f"**Run:** {run_url}")
    return "\n".join(lines) + "\n"
