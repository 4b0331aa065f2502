"""Every kustomization renders, and every object it renders is valid for Kubernetes 1.36.

Valid as the API server's schema check would find it (tests/k8s/validation.py): for
built-in kinds against the Kubernetes API's own types, as generated into the pinned
`kubernetes` client; for KServe's and the Prometheus Operator's kinds against the fields of
their CRDs, vendored in tests/k8s/crds/. Nothing here talks to a cluster.
"""

import copy
from collections.abc import Callable

import pytest

from tests.k8s.manifests import KUSTOMIZATIONS, Object, named, render
from tests.k8s.validation import KUBERNETES_RELEASE, errors, kubernetes_release

KINDS = {
    "local": {
        "Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service",
        "PodDisruptionBudget", "Job", "CronJob", "NetworkPolicy",
    },
    "production": {
        "Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "Job", "CronJob", "NetworkPolicy", "ServiceMonitor",
    },
    "kserve": {"ServingRuntime", "InferenceService"},
}  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Object]]:
    return {name: render(directory) for name, directory in KUSTOMIZATIONS.items()}


def test_the_types_are_those_of_the_stated_kubernetes_release() -> None:
    assert kubernetes_release() == KUBERNETES_RELEASE


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renders_the_expected_kinds(rendered: dict[str, list[Object]], name: str) -> None:
    assert {obj["kind"] for obj in rendered[name]} == KINDS[name]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_object_is_valid(rendered: dict[str, list[Object]], name: str) -> None:
    assert [e for obj in rendered[name] for e in errors(obj)] == []


def container(obj: Object) -> Object:
    spec = obj["spec"]
    pod = spec if obj["kind"] == "ServingRuntime" else spec["template"]["spec"]
    first: Object = pod["containers"][0]
    return first


def typo(field: str) -> Callable[[Object], None]:
    def change(obj: Object) -> None:
        target = container(obj)
        target[field + "x"] = target.pop(field)

    return change


def settle(path: list[str | int], value: object) -> Callable[[Object], None]:
    def change(obj: Object) -> None:
        target = obj
        for step in path[:-1]:
            target = target[step]  # type: ignore[index]
        target[path[-1]] = value  # type: ignore[index]

    return change


# (kustomization, kind, name, change, what the error must say)
BROKEN = [
    pytest.param("production", "Deployment", "api", typo("image"), "imagex: unknown field",
                 id="deployment-typo"),
    pytest.param("production", "Deployment", "api", settle(["spec", "replicas"], "3"),
                 "spec.replicas: expected int, got str", id="deployment-wrong-type"),
    pytest.param("production", "Deployment", "api",
                 settle(["spec", "template", "spec", "containers", 0, "ports"], {"port": 8000}),
                 "ports: expected a list", id="container-ports-not-a-list"),
    pytest.param("production", "Deployment", "api",
                 settle(["spec", "template", "spec", "containers", 0, "resources", "limits",
                         "memory"], 512), "limits.memory: expected str", id="quantity-as-number"),
    pytest.param("production", "HorizontalPodAutoscaler", "api",
                 settle(["spec", "minReplica"], 3), "spec.minReplica: unknown field",
                 id="hpa-typo"),
    pytest.param("local", "CronJob", "train-scheduled", settle(["spec", "schedule"], 3),
                 "spec.schedule: expected str", id="cronjob-wrong-type"),
    pytest.param("local", "NetworkPolicy", "tracking-from-api-and-trainer",
                 settle(["apiVersion"], "apps/v1"), "no type known for apps/v1 NetworkPolicy",
                 id="kind-under-the-wrong-group"),
    pytest.param("production", "Deployment", "api",
                 lambda obj: container(obj).pop("name"), "`name`, must not be `None`",
                 id="required-field-missing"),
    pytest.param("kserve", "ServingRuntime", "irisops", typo("image"),
                 "V1Container.imagex: unknown field", id="runtime-container-typo"),
    pytest.param("kserve", "ServingRuntime", "irisops", settle(["spec", "protocolVersion"], "v2"),
                 "'protocolVersion' was unexpected", id="runtime-typo"),
    pytest.param("kserve", "ServingRuntime", "irisops",
                 settle(["spec", "supportedModelFormats", 0, "autoSelect"], "false"),
                 "'false' is not of type 'boolean'", id="runtime-wrong-type"),
    pytest.param("kserve", "InferenceService", "iris-classifier",
                 settle(["spec", "predictor", "model", "runtimes"], "irisops"),
                 "runtimes: unknown field", id="isvc-typo"),
    pytest.param("kserve", "InferenceService", "iris-classifier",
                 settle(["spec", "predictor", "minReplicas"], "2"),
                 "'2' is not of type 'integer'", id="isvc-wrong-type"),
    pytest.param("production", "ServiceMonitor", "api",
                 settle(["spec", "endpoints", 0, "intervall"], "30s"),
                 "'intervall' was unexpected", id="servicemonitor-typo"),
    pytest.param("production", "ServiceMonitor", "api",
                 settle(["spec", "endpoints", 0, "interval"], 30),
                 "30 is not of type 'string'", id="servicemonitor-wrong-type"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kind", "object_name", "change", "message"), BROKEN)
def test_a_broken_field_is_refused(
    rendered: dict[str, list[Object]],
    name: str,
    kind: str,
    object_name: str,
    change: Callable[[Object], None],
    message: str,
) -> None:
    obj = copy.deepcopy(named(rendered[name], kind, object_name))
    assert errors(obj) == []
    change(obj)
    found = errors(obj)
    assert any(message in error for error in found), found
