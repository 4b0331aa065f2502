"""The `irisops` command: thin wrappers over the modules that do the work.

Heavy imports (MLflow, scikit-learn, uvicorn) happen inside each command, so
`irisops serve` never loads the training stack and `--help` answers at once.
"""

import errno
import logging
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast
from urllib.parse import urlsplit

import typer
from rich.console import Console

# Typer ships its own copy of click; its usage errors are raised from there.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

# Typer ships its own copy of click; its usage errors are raised from there.
from irisops.config import Settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from mlflow import MlflowClient
    from rich.status import Status

    from irisops.tracking import ErrorAnswer

app = typer.Typer(
    help="irisops: train an Iris RandomForest, track it in MLflow, serve the champion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help, without boxes and type tags (`<bool>` on every flag).
    rich_markup_mode=None,
)
console = Console()
err = Console(stderr=True)


DEBUG = "IRISOPS_DEBUG"
# What MLflow's client reports for a 401 or 403 from the tracking server.
REFUSED = {"UNAUTHENTICATED", "PERMISSION_DENIED"}
USAGE = 2


def fail(message: str, code: int = 1) -> typer.Exit:
    # soft_wrap: one line even when stderr is not a terminal (CI, docker logs).
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(code)


def causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def explain(exc: Exception) -> str:
    """One line a person can act on, for errors no command anticipated."""
    chain = causes(exc)
    full = next((c for c in chain if isinstance(c, OSError) and c.errno == errno.ENOSPC), None)
    if full is not None:
        where = f" for {full.filename}" if full.filename else ""
        return f"no space left on the device{where}: free space there and run again"
    from irisops.tracking import ErrorAnswer

    answer = next((c for c in chain if isinstance(c, ErrorAnswer)), None)
    if answer is not None:
        return server_failure(answer, tracking_uri())
    if any(getattr(cause, "error_code", None) in REFUSED for cause in chain):
        return (
            "the MLflow tracking server refused the credentials: set MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD to a user it knows"
        )
    if any(isinstance(cause, ConnectionError) or _is_requests_connection(cause) for cause in chain):
        return (
            f"the MLflow tracking server at {tracking_uri()} stopped answering; "
            "check that it runs and try again"
        )
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no details'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or Settings().tracking_uri


# How a store says it is out of space: SQLite ("database or disk is full"), the OS (ENOSPC).
FULL = re.compile(r"disk is full|no space left on device", re.IGNORECASE)


def server_failure(answer: "ErrorAnswer", uri: str) -> str:
    """The tracking server failed a request on every try: what it could not do, and why."""
    path = urlsplit(answer.url).path
    lines = [line.strip() for line in answer.message.splitlines() if line.strip()]
    # SQLAlchemy's lines start with the driver's exception class: "(sqlite3.OperationalError) "
    full = next((re.sub(r"^\([\w.]+\)\s*", "", line) for line in lines if FULL.search(line)), None)
    tries = f"HTTP {answer.status} on every try"
    if "/mlflow-artifacts/" in path:
        what = f"could not store the run's artifact {path.rsplit('/artifacts/', 1)[-1]}"
        if full is not None:
            return (
                f"the tracking server at {uri} {what}: {full}; "
                "free space in its artifact store and run again"
            )
        return (
            f"the tracking server at {uri} {what} ({tries}): free space in its artifact "
            "store, the usual cause (its log says for sure), and run again"
        )
    endpoint = path.split("/mlflow/", 1)[-1]
    if full is not None:
        return (
            f"the tracking server at {uri} could not write to its database: {full} "
            f"({tries} of {endpoint}); free space where its backend store lives and run again"
        )
    said = lines[0] if lines else "no details"
    return f"the tracking server at {uri} failed {endpoint} ({tries}): {said}"


def _is_requests_connection(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.ConnectionError)


def main() -> None:
    """The console script: every error is one line; `--debug`, anywhere, shows tracebacks."""
    args = sys.argv[1:]
    if "--debug" in args:
        args = [arg for arg in args if arg != "--debug"]
        os.environ[DEBUG] = "1"  # inherited by the children of `irisops up`
    try:
        code = app(args=args, prog_name="irisops", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.format_message())
        code = USAGE
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "irisops"
        message = exc.format_message().rstrip(".")
        code = fail(f"{message}; see `{where} --help`", USAGE).exit_code
    except typer.Abort:
        code = 130
    except Exception as exc:
        if os.environ.get(DEBUG):
            raise
        code = fail(f"{explain(exc)} (add --debug for the traceback)").exit_code
    raise SystemExit(code if isinstance(code, int) else 0)


@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks on errors, and MLflow's own lines (accepted anywhere)."
        ),
    ] = False,
) -> None:
    """irisops: train an Iris RandomForest, track it in MLflow, serve the champion."""


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
    max_depth: Annotated[
        int | None, typer.Option(min=1, help="Tree depth limit; omit it for unlimited depth.")
    ] = None,
    min_samples_split: Annotated[
        int, typer.Option(min=2, help="Samples a node needs before it may split.")
    ] = 2,
    min_samples_leaf: Annotated[int, typer.Option(min=1, help="Samples each leaf keeps.")] = 1,
    max_features: Annotated[
        MaxFeatures, typer.Option(help="Features considered at each split.")
    ] = MaxFeatures.sqrt,
    criterion: Annotated[Criterion, typer.Option(help="Split quality measure.")] = Criterion.gini,
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 1, help="Seed of the split, the forest and the CV.")
    ] = 42,
    test_size: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Share of the data held out for testing.")
    ] = 0.2,
    cv_folds: Annotated[
        int, typer.Option(min=2, help="Cross-validation folds over the training split.")
    ] = 5,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Register only; never move champion.")
    ] = False,
    force_promote: Annotated[
        bool, typer.Option("--force-promote", help="Make this version champion regardless.")
    ] = False,
) -> None:
    """Train, log to MLflow, register a version, and promote it if it passes the gate."""
    if no_promote and force_promote:
        raise fail("--no-promote and --force-promote contradict each other; give one")
    import warnings

    from irisops.bundle import BundleError
    from irisops.registry import PromotionMode
    from irisops.report import training_summary
    from irisops.tracking import TrackingUnavailable
    from irisops.training.export import ParityError
    from irisops.training.fit import InvalidParams, TrainParams
    from irisops.training.pipeline import run_training
    from irisops.training.provenance import DirtyTree

    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    if not os.environ.get(DEBUG):
        quiet_mlflow()
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
            result = run_training(settings, params, mode, progress(status))
    except InvalidParams as exc:
        raise fail(str(exc), USAGE) from None
    except (TrackingUnavailable, DirtyTree) as exc:
        raise fail(str(exc)) from None
    except ParityError as exc:
        raise fail(f"{exc}; nothing was published") from None
    except BundleError as exc:
        raise fail(str(exc)) from None
    training_summary(console, result, settings.registered_model)


def progress(status: "Status") -> "Callable[[str], None]":
    """Each stage as it starts: on the spinner, and as a line that stays."""

    def step(message: str) -> None:
        status.update(message)
        console.print(f"[dim]•[/] {message}", soft_wrap=True)

    return step


def quiet_mlflow() -> None:
    """MLflow's own lines say again what our progress and summary say; --debug shows them."""
    # Its log records; the notices it prints while registering follow this level too
    # (irisops.training.pipeline). Its errors still show.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # The run's and experiment's links, which it writes to stdout as a run ends.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def registry_client(settings: Settings, retries: int, code: int = 1) -> "MlflowClient":
    """A client of a tracking server that answers, or the one-line error that says why not."""
    from mlflow import MlflowClient

    from irisops.tracking import TrackingUnavailable, configure_client, wait_for_server

    def waiting(attempt: int, delay: float) -> None:
        err.print(
            f"tracking server at {settings.tracking_uri} not answering; "
            f"retry {attempt}/{retries} in {delay:.1f} s",
            soft_wrap=True,
            highlight=False,
        )

    configure_client()
    try:
        wait_for_server(settings.tracking_uri, retries, settings.tracking_backoff, waiting)
    except TrackingUnavailable as exc:
        raise fail(str(exc), code) from None
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
    from irisops.training.comparison import gate

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
        decision = gate(client, settings, candidate)
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
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="First show VERSION's live evidence from the API's shadow scoring and "
            "feedback (GET /monitoring), and record it on the version as tags.",
        ),
    ] = False,
) -> None:
    """Make VERSION the champion and publish it to the API (the rollback path)."""
    from mlflow.exceptions import MlflowException

    from irisops import registry
    from irisops.bundle import BundleError
    from irisops.release import promote_existing, promote_through_gate

    if gate and pin is not None:
        raise fail("--gate never pins; give --gate or --pin/--no-pin, not both", USAGE)
    version = version.removeprefix("v")
    if not version.isdigit():
        raise fail("VERSION is a number such as 3 (or v3); `irisops models` lists them", USAGE)
    settings = Settings()
    name = settings.registered_model
    client = registry_client(settings, settings.tracking_retries)
    if evidence:
        show_evidence(client, settings, version)
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
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise fail(f"cannot promote {name} v{version}: {exc.message}") from None
        known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        listed = ", ".join(map(str, known)) or "none yet"
        raise fail(f"{name} has no version {version}; its versions: {listed}") from None
    state = "champion, pinned" if pinned else "champion"
    console.print(f"{name} v{version} is {state}, published to {published}")


@app.command()
def reproduce(
    run: Annotated[
        str, typer.Argument(help="A run id, or vN for version N of the registered model.")
    ],
) -> None:
    """Train RUN again from its record; exit 0 if identical, 1 if not, 2 if it cannot be tried."""
    import warnings

    settings = Settings()
    client = registry_client(settings, settings.tracking_retries, USAGE)
    recorded = recorded_run(client, settings, run)
    # The training stack loads only once there is a run to train again.
    from irisops.training import reproduce as reproducing

    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
    if not os.environ.get(DEBUG):
        quiet_mlflow()
    try:
        with console.status("reproducing") as status:
            verdict = reproducing.reproduce(client, recorded, progress(status), show)
    except reproducing.NoRecord as exc:
        raise fail(str(exc), USAGE) from None
    console.print(verdict.text, soft_wrap=True, markup=False, highlight=False)
    raise typer.Exit(0 if verdict.identical else 1)


def show(line: str) -> None:
    console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)


def recorded_run(client: "MlflowClient", settings: Settings, run: str) -> Any:
    """RUN's run, from its id or from a registered version's; exit 2 if there is none."""
    from mlflow.exceptions import MlflowException

    name, version = settings.registered_model, run.removeprefix("v")
    by_version = run.startswith("v") and version.isdigit()
    try:
        run_id = client.get_model_version(name, version).run_id if by_version else run
        return client.get_run(run_id or "")
    except MlflowException:
        where = f"{name} v{version}" if by_version else f"run {run!r}"
        raise fail(
            f"{where} is not on the tracking server at {settings.tracking_uri}: give a run id "
            "from its MLflow page or `irisops train`'s summary, or vN from `irisops models`",
            USAGE,
        ) from None


def show_evidence(client: "MlflowClient", settings: Settings, version: str) -> None:
    from irisops.monitoring.evidence import NoEvidence, live_evidence

    try:
        found = live_evidence(settings, version)
    except NoEvidence as exc:
        raise fail(f"no live evidence, nothing promoted: {exc}") from None
    for line in found.lines():
        console.print(line)
    for key, value in found.tags().items():
        client.set_model_version_tag(settings.registered_model, version, key, value)


@app.command()
def log(
    kind: Annotated[
        str, typer.Option(help="prediction, shadow or feedback records; all with --format jsonl.")
    ] = "prediction",
    version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time on, ISO 8601 (2026-12-01T10:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this time, ISO 8601.")] = None,
    form: Annotated[
        Literal["jsonl", "csv", "parquet"], typer.Option("--format", help="Output format.")
    ] = "jsonl",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Read the inference log back: filter it, export it to JSON lines, CSV or Parquet."""
    from irisops.monitoring import records

    settings = Settings()
    if kind not in records.KINDS:
        raise fail(f"--kind is one of {', '.join(records.KINDS)}, got {kind!r}", USAGE)
    selected = records.selected(
        settings.inference_log_path,
        kind=kind,
        version=version.removeprefix("v") if version else None,
        since=moment(since, "--since"),
        until=moment(until, "--until"),
    )
    try:
        written = records.write(selected, form, output)
    except ValueError as exc:
        raise fail(str(exc), USAGE) from None
    if output is not None:
        err.print(f"{written:,} rows written to {output}")


def moment(text: str | None, option: str) -> "datetime | None":
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        example = "2026-12-01T10:00Z"
        raise fail(f"{option} is an ISO 8601 time such as {example}, got {text!r}", USAGE) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def monitor(
    output: Annotated[Path, typer.Option(help="The HTML report to write.")] = Path(
        "monitoring-report.html"
    ),
) -> None:
    """Write an HTML report of live traffic: drift, shadow agreement, live accuracy."""
    from irisops import bundle
    from irisops.monitoring import records
    from irisops.monitoring.report import gather, page

    settings = Settings()
    try:
        _, metadata, _ = bundle.read_current(settings.served_model_dir)
        reference, title = metadata.reference, f"{metadata.registered_model} v{metadata.version}"
    except bundle.BundleError:
        reference, title = None, settings.registered_model
    evidence = gather(records.selected(settings.inference_log_path))
    output.write_text(page(reference, evidence, f"{title}: live traffic"))
    console.print(f"{len(evidence.rows):,} live rows; report written to {output}")


@app.command()
def serve() -> None:
    """Serve the champion model over HTTP (FastAPI + the forest evaluator), hot-reloading."""
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
