"""What a deployment's tracking server and API report, read over their published ports."""

from typing import Any

import httpx

MODEL = "iris-classifier"


def get(url: str, auth: tuple[str, str] | None = None, **params: str) -> Any:
    response = httpx.get(url, params=params, auth=auth, timeout=30)
    response.raise_for_status()
    return response.json()


def registry(mlflow: str, auth: tuple[str, str] | None = None) -> dict[str, Any]:
    """Runs, registered versions and aliases, as the tracking server's REST API reports them."""
    api = f"{mlflow}/api/2.0/mlflow"
    experiment = get(f"{api}/experiments/get-by-name", auth, experiment_name="iris")["experiment"]
    runs = httpx.post(
        f"{api}/runs/search",
        json={"experiment_ids": [experiment["experiment_id"]], "max_results": 1000},
        auth=auth,
        timeout=30,
    ).json()["runs"]
    versions = get(f"{api}/model-versions/search", auth, filter=f"name='{MODEL}'")
    model = get(f"{api}/registered-models/get", auth, name=MODEL)["registered_model"]
    return {
        "runs": sorted(run["info"]["run_id"] for run in runs),
        "versions": sorted((v["version"] for v in versions["model_versions"]), key=int),
        "aliases": {alias["alias"]: alias["version"] for alias in model.get("aliases", [])},
    }


def served_version(api: str) -> str | None:
    """The version the API answers with, or None while it has no model (503 on /ready)."""
    try:
        response = httpx.get(f"{api}/ready", timeout=10)
    except httpx.HTTPError:
        return None
    return str(response.json()["model_version"]) if response.status_code == 200 else None
