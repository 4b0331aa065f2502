"""The Prometheus alert rules: valid, and each one fires exactly when it should.

promtool (from Debian's prometheus package; `make test` installs it) checks the
rules and runs their unit tests (deploy/prometheus/alerts.test.yml). No Docker.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import unavailable

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = {
    "IrisopsInputDrift",
    "IrisopsHighErrorRate",
    "IrisopsNoModelLoaded",
    "IrisopsModelReloadFailing",
    "IrisopsInferenceLogDropping",
}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        unavailable(
            "promtool is not installed (`make test` installs Debian's prometheus)", "skipped"
        )
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd)


def test_the_rules_and_the_config_that_loads_them_are_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_every_alert_is_unit_tested_and_passes() -> None:
    tests = (PROMETHEUS / "alerts.test.yml").read_text()
    assert all(f"alertname: {alert}" in tests for alert in ALERTS)
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("rule", "broken"),
    [("irisops_drift_psi > 0.2", "irisops_drift_psi > 0.9"), ("for: 5m", "for: 1m")],
    ids=["threshold", "duration"],
)
def test_a_changed_rule_fails_its_unit_tests(tmp_path: Path, rule: str, broken: str) -> None:
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    assert rule in alerts
    (tmp_path / "alerts.yml").write_text(alerts.replace(rule, broken, 1))
    shutil.copy(PROMETHEUS / "alerts.test.yml", tmp_path)
    assert promtool("test", "rules", "alerts.test.yml", cwd=tmp_path).returncode != 0
