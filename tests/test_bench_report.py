"""bench/results/latest.md is what bench/report.py renders from the recorded runs."""

from dataclasses import asdict

from bench import report


def test_latest_md_is_the_newest_run_rendered_with_every_recorded_run() -> None:
    runs = report.recorded()
    newest = dict(runs[-1][1])
    newest["targets"] = [asdict(t) for t in report.targets(newest)]
    latest = (report.RESULTS / "latest.md").read_text()
    assert report.markdown(newest, runs) == latest, "render it again: python -m bench.report"
    history = latest.split("### Every recorded run", 1)[1]
    rows = [line for line in history.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + len(runs), "a header, its alignment row, and one row per run"
