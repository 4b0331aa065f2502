"""The `irisops` command: thin wrappers over the modules that do the work.

Heavy imports (MLflow, scikit-learn, uvicorn) happen inside each command, so
`irisops serve` never loads the training stack and `--help` answers at once.
"""

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer
from rich.console import Console

from irisops.config import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

app = typer.Typer(
    help="irisops: train an Iris RandomForest, track it in MLflow, serve the champion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


DEBUG = "IRISOPS_DEBUG"
CONNECTION_FAILURES = ("Max retries exceeded", "Connection refused", "ConnectionError")


def fail(message: str) -> typer.Exit:
    # soft_wrap: one line even when stderr is not a terminal (CI, docker logs).
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(1)


def explain(exc: Exception) -> str:
    """One line a person can act on, for errors no command anticipated."""
    text = str(exc).strip()
    if "error code 401" in text or "error code 403" in text:
        return (
            "the MLflow tracking server refused the credentials: set MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD to a user it knows"
        )
    if any(marker in text for marker in CONNECTION_FAILURES):
        uri = os.environ.get("MLFLOW_TRACKING_URI") or Settings().tracking_uri
        return (
            f"the MLflow tracking server at {uri} stopped answering; "
            "check that it runs and try again"
        )
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no details'}"


def main() -> None:
    """The console script: unexpected errors print one line (the traceback with --debug)."""
    try:
        app(prog_name="irisops")
    except Exception as exc:
        if os.environ.get(DEBUG):
            raise
        raise SystemExit(fail(f"{explain(exc)} (--debug shows the traceback)").exit_code) from None


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """irisops: train an Iris RandomForest, track it in MLflow, serve the champion."""
    if debug:
        os.environ[DEBUG] = "1"  # inherited by the children of `irisops up`


class MaxFeatures(StrEnum):
    sqrt = "sqrt"
    log2 = "log2"
    all = "all"


class Criterion(StrEnum):
    gini = "gini"
    entropy = "entropy"
    log_loss = "log_loss"


@app.command()
def tracking() -> None:
    """Run the MLflow tracking server (SQLite + proxied artifacts under IRISOPS_HOME)."""
    from irisops.tracking import (
        TrackingMisconfigured,
        prepare_state,
        server_command,
        server_environment,
    )

    settings = Settings()
    prepare_state(settings)
    try:
        env = server_environment(settings)
    except TrackingMisconfigured as exc:
        raise fail(str(exc)) from None
    command = [sys.executable, "-m", *server_command(settings)]
    console.print(
        f"MLflow tracking server on http://{settings.tracking_host}:{settings.tracking_port}"
    )
    # exec: the server becomes this process, so signals (docker stop, Ctrl-C) reach it directly.
    os.execve(sys.executable, command, env)


@app.command()
def train(
    n_estimators: Annotated[int, typer.Option(min=1, help="Trees in the forest.")] = 100,
    max_depth: Annotated[int | None, typer.Option(min=1, help="Tree depth limit.")] = None,
    min_samples_split: Annotated[int, typer.Option(min=2)] = 2,
    min_samples_leaf: Annotated[int, typer.Option(min=1)] = 1,
    max_features: Annotated[
        MaxFeatures, typer.Option(help="Features per split.")
    ] = MaxFeatures.sqrt,
    criterion: Annotated[Criterion, typer.Option()] = Criterion.gini,
    seed: Annotated[int, typer.Option(help="Seed of the split, the forest and the CV.")] = 42,
    test_size: Annotated[float, typer.Option(min=0.05, max=0.5)] = 0.2,
    cv_folds: Annotated[int, typer.Option(min=2)] = 5,
    no_promote: Annotated[bool, typer.Option(help="Register only; never move champion.")] = False,
    force_promote: Annotated[bool, typer.Option(help="Make this version champion.")] = False,
) -> None:
    """Train, log to MLflow, register a version, and promote it if it passes the gate."""
    if no_promote and force_promote:
        raise fail("--no-promote and --force-promote contradict each other; give one")
    import warnings

    from irisops.export import ParityError
    from irisops.pipeline import run_training
    from irisops.registry import PromotionMode
    from irisops.report import training_summary
    from irisops.tracking import TrackingUnavailable
    from irisops.train import TrainParams

    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    params = TrainParams(
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_split=min_samples_split,
        min_samples_leaf=min_samples_leaf,
        max_features=None
        if max_features is MaxFeatures.all
        else cast(Literal["sqrt", "log2"], max_features.value),
        criterion=criterion.value,
        seed=seed,
        test_size=test_size,
        cv_folds=cv_folds,
    )
    mode = (
        PromotionMode.NEVER
        if no_promote
        else PromotionMode.FORCE
        if force_promote
        else PromotionMode.GATE
    )
    settings = Settings()
    try:
        with console.status("training") as status:

            def step(message: str) -> None:
                status.update(message)
                console.print(f"[dim]•[/] {message}", soft_wrap=True)

            result = run_training(settings, params, mode, step)
    except TrackingUnavailable as exc:
        raise fail(str(exc)) from None
    except ParityError as exc:
        raise fail(f"{exc}; nothing was published") from None
    training_summary(console, result, settings.registered_model)


def registry_client(settings: Settings, retries: int) -> "MlflowClient":
    """A client of a tracking server that answers, or the one-line error that says why not."""
    from mlflow import MlflowClient

    from irisops.tracking import TrackingUnavailable, configure_client, wait_for_server

    configure_client()
    try:
        wait_for_server(settings.tracking_uri, retries, settings.tracking_backoff)
    except TrackingUnavailable as exc:
        raise fail(str(exc)) from None
    return MlflowClient(settings.tracking_uri)


@app.command()
def models() -> None:
    """List registered versions with their aliases, metrics and promotion decisions."""
    from mlflow.exceptions import MlflowException

    from irisops.registry import TAG_PINNED
    from irisops.report import versions_table

    settings = Settings()
    client = registry_client(settings, 0)
    name = settings.registered_model
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise fail(f"no registered model {name!r} yet; run `irisops train` first") from None
    versions = client.search_model_versions(f"name = '{name}'")
    versions.sort(key=lambda v: int(v.version), reverse=True)
    metrics = {v.run_id: client.get_run(v.run_id).data.metrics for v in versions if v.run_id}
    aliases = dict(model.aliases)
    pinned = model.tags.get(TAG_PINNED)
    console.print(versions_table(name, versions, aliases, metrics, settings.gate_metric, pinned))


@app.command()
def report(
    version: Annotated[
        str | None, typer.Argument(help="Registered version; default: the challenger.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Also write the markdown to this file.")
    ] = None,
) -> None:
    """Compare a version with the champion in markdown: metrics, the gate's decision, the run."""
    from mlflow.exceptions import MlflowException

    from irisops import registry
    from irisops.report import comparison_markdown
    from irisops.tracking import run_url

    settings = Settings()
    client = registry_client(settings, settings.tracking_retries)
    name, metric = settings.registered_model, settings.gate_metric
    try:
        if version is None:
            challenger = registry.alias_version(client, name, registry.CHALLENGER)
            if challenger is None:
                raise fail(f"{name} has no challenger yet; run `irisops train` first")
            version = str(challenger.version)
        candidate = registry.version_record(client, name, version)
        champion = registry.champion(client, name, metric)
        against = registry.version_record(client, name, champion.version) if champion else None
        decision = registry.gate(client, name, metric, candidate)
    except MlflowException as exc:
        raise fail(f"cannot report on {name} v{version}: {exc.message}") from None
    url = None
    if candidate.run_id and candidate.experiment_id:
        url = run_url(settings.tracking_uri, candidate.experiment_id, candidate.run_id)
    text = comparison_markdown(name, candidate, against, decision, metric, url)
    if output is not None:
        output.write_text(text)
    sys.stdout.write(text)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered version to serve.")],
    pin: Annotated[
        bool | None,
        typer.Option(
            "--pin/--no-pin",
            help="Keep VERSION champion until the next `irisops promote`: training runs "
            "register challengers but do not replace it. --no-pin lets the gate replace it. "
            "Default: pin, unless VERSION is champion already (its pin stays as it is).",
            show_default=False,
        ),
    ] = None,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="Promote only if the promotion gate passes VERSION (no pin): CI's promotion.",
        ),
    ] = False,
) -> None:
    """Make VERSION the champion and publish it to the API (the rollback path)."""
    from mlflow.exceptions import MlflowException

    from irisops import registry
    from irisops.bundle import BundleError
    from irisops.release import promote_existing, promote_through_gate

    if gate and pin is not None:
        raise fail("--gate never pins; give --gate or --pin/--no-pin, not both")
    settings = Settings()
    name = settings.registered_model
    client = registry_client(settings, settings.tracking_retries)
    try:
        if gate:
            decision = promote_through_gate(client, settings, version)
            console.print(f"{name} v{version}: {decision.label} ({decision.reason})")
            return
        published = promote_existing(client, settings, version, pin=pin)
        pinned = registry.pinned_version(client, name) == version
    except BundleError as exc:
        raise fail(str(exc)) from None
    except MlflowException as exc:
        raise fail(f"cannot promote {name} v{version}: {exc.message}") from None
    state = "champion, pinned" if pinned else "champion"
    console.print(f"{name} v{version} is {state}, published to {published}")


@app.command()
def serve() -> None:
    """Serve the champion model over HTTP (FastAPI + onnxruntime), hot-reloading new ones."""
    from irisops.serving.server import run

    try:
        run(Settings())
    except ValueError as exc:  # an IRISOPS_MODEL_URI that is not a models:/ URI
        raise fail(str(exc)) from None


@app.command()
def up() -> None:
    """Start the local stack: tracking server, a first training if needed, and the API."""
    from irisops.stack import StackError, up

    try:
        up(Settings(), console)
    except StackError as exc:
        raise fail(str(exc)) from None
