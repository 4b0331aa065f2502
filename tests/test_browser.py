"""Real-browser checks: the pages a person opens work in headless Chromium, offline.

Chromium comes from Debian (`make test` installs it when run as root); Playwright
drives it through `executable_path`, never downloading a browser of its own.
Screenshots land in test-artifacts/ for a person to look at.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ARTIFACTS, Champion, Tracking
from tests.processes import Service, unavailable

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

    page.goto(f"{tracking.uri}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")
    expect(page.get_by_text("test_accuracy").first).to_be_visible()
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
