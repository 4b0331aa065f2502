"""Real-browser checks: the pages a person opens work in headless Chromium, offline.

Chromium comes from Debian (`make test` installs it when run as root); Playwright
drives it through `executable_path`, never downloading a browser of its own.
Screenshots land in test-artifacts/ for a person to look at.
"""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.conftest import ARTIFACTS, ApiFactory, Champion, Tracking
from tests.processes import Service, irisops, unavailable, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Debian's chromium is not installed (`make test` installs it when run as root)"
if CHROMIUM is None:
    unavailable(MISSING, "the browser tests skipped")
# What the workplace's probe found necessary: no sandbox as root, and no background
# traffic to Google's services on a machine without internet.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
# expect() waits 5 s by default: too little for the MLflow UI on a busy runner.
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_swagger_ui_try_it_out_shows_a_prediction(page: Page, api: Service) -> None:
    external: list[str] = []
    page.on(
        "request",
        lambda request: external.append(request.url) if "127.0.0.1" not in request.url else None,
    )
    page.goto(f"{api.url}/docs")
    operation = page.locator("#operations-predict-predict_predict_post")
    expect(operation).to_be_visible()
    operation.locator(".opblock-summary").click()
    page.get_by_role("button", name="Try it out").click()
    expect(operation.locator("textarea.body-param__text")).to_have_value(
        '{\n  "features": [\n    5.1,\n    3.5,\n    1.4,\n    0.2\n  ]\n}'
    )
    operation.get_by_role("button", name="Execute").click()
    result = operation.locator(".live-responses-table .response-col_description pre")
    expect(result.first).to_contain_text('"prediction": "setosa"')
    status = operation.locator(".live-responses-table tr.response td.response-col_status")
    expect(status.first).to_have_text("200")
    screenshot(page, "swagger-try-it-out.png")
    assert external == [], "the docs page must not need the internet"


def open_mlflow_page(page: Page, url: str, shown: Locator) -> None:
    """Open a page of MLflow's UI and wait for `shown`, reloading once past its error page.

    MLflow's UI once showed its error boundary ("Something went wrong") for a run page
    that the server answered normally, while other tests wrote to the same server; the
    same page renders on a reload. Anything else, or the error page twice, fails.
    """
    page.goto(url)
    try:
        expect(shown).to_be_visible(timeout=15_000)
    except AssertionError:
        if not page.get_by_role("heading", name="Something went wrong").is_visible():
            raise
        page.reload()
        expect(shown).to_be_visible()


def test_mlflow_ui_shows_the_run_metrics_and_confusion_matrix(
    page: Page, tracking: Tracking, champion: Champion
) -> None:
    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0]

    page.goto(tracking.uri)
    expect(page.get_by_text("iris", exact=True).first).to_be_visible()
    screenshot(page, "mlflow-home.png")

    run_page = f"{tracking.uri}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
    open_mlflow_page(page, run_page, page.get_by_text("test_accuracy").first)
    accuracy = f"{run.data.metrics['test_accuracy']}"
    expect(page.get_by_text(accuracy[:4]).first).to_be_visible()
    screenshot(page, "mlflow-run.png")

    page.goto(
        f"{tracking.uri}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
        "/artifacts/confusion_matrix.png"
    )
    image = page.get_by_role("img", name="confusion_matrix.png")
    expect(image.first).to_be_visible()
    width = image.first.evaluate("img => img.naturalWidth")
    assert width > 100, "the confusion matrix image loaded"
    screenshot(page, "mlflow-confusion-matrix.png")


def test_the_monitoring_report_opens_offline_with_its_plots(
    page: Page, api_factory: ApiFactory, tracking: Tracking, champion: Champion, tmp_path: Path
) -> None:
    env = tracking.env(champion.model_dir, IRISOPS_INFERENCE_LOG_DIR=str(tmp_path / "log"))
    served = api_factory.start(env, ready_path="/ready")
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 100
    answer = httpx.post(served.url + "/predict/batch", json={"instances": rows}, timeout=30)
    rid = answer.headers["X-Request-ID"]
    truth = [{"request_id": rid, "row": i, "true_class": "setosa"} for i in range(30)]
    assert httpx.post(served.url + "/feedback", json=truth).status_code == 200
    report = tmp_path / "report.html"
    wait_for(lambda: any((tmp_path / "log").glob("*.jsonl")))
    time.sleep(0.2)  # the writer's next pass flushes the feedback records
    result = irisops("monitor", "--output", str(report), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "300 live rows" in result.stdout
    page.goto(report.as_uri())
    expect(
        page.get_by_role("heading", name="Live inputs against the training data")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="petal_length")).to_be_visible()
    expect(page.get_by_role("cell", name="champion")).to_be_visible()
    for image in page.locator("img").all():
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("img").count() == 2
    screenshot(page, "monitoring-report.png")
