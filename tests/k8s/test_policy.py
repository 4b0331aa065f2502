"""What the rendered manifests promise, rule by rule, for every overlay and the KServe runtime.

Security (tests/k8s/policy.py) holds for every container, and each rule is shown catching
a container that breaks it. The rest reads the rendered objects the way the cluster will:
probes, the drain on SIGTERM against the server's own constants, registry mode, who may
reach the tracking server, and what each overlay changes.
"""

import base64
import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from irisops.config import REGISTERED_MODEL
from irisops.serving.server import DRAIN_TIMEOUT, IDLE_TICKS
from tests.k8s.manifests import KUSTOMIZATIONS, Object, containers, named, pod_spec, render
from tests.k8s.policy import UID, breaches

CHAMPION_URI = f"models:/{REGISTERED_MODEL}@champion"


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Object]]:
    return {name: render(directory) for name, directory in KUSTOMIZATIONS.items()}


def workloads(objects: list[Object]) -> list[Object]:
    return [obj for obj in objects if pod_spec(obj) is not None]


def env_of(container: Object) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


def api_container(objects: list[Object]) -> Object:
    first: Object = named(objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    return first


# --- security, resources, images: every container ------------------------------------------


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_container_meets_the_policy(rendered: dict[str, list[Object]], name: str) -> None:
    assert len(workloads(rendered[name])) >= 1
    assert [b for obj in rendered[name] for b in breaches(obj)] == []


def pod_level(field: str, value: object) -> Callable[[Object, Object], None]:
    def change(pod: Object, container: Object) -> None:
        container.get("securityContext", {}).pop(field, None)
        pod.setdefault("securityContext", {})[field] = value

    return change


def own(field: str, value: object) -> Callable[[Object, Object], None]:
    def change(pod: Object, container: Object) -> None:
        container.setdefault("securityContext", {})[field] = value

    return change


def image(reference: str) -> Callable[[Object, Object], None]:
    def change(pod: Object, container: Object) -> None:
        container["image"] = reference

    return change


def without_tmp(pod: Object, container: Object) -> None:
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]


def without_memory_limit(pod: Object, container: Object) -> None:
    del container["resources"]["limits"]["memory"]


def host_path(pod: Object, container: Object) -> None:
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})


DIGEST = "sha256:" + "ab" * 32
BREAKS = [
    pytest.param(pod_level("runAsUser", 0), "does not run as uid", id="root"),
    pytest.param(pod_level("runAsNonRoot", False), "runAsNonRoot", id="may-run-as-root"),
    pytest.param(own("readOnlyRootFilesystem", False), "root filesystem is writable", id="rw-root"),
    pytest.param(own("allowPrivilegeEscalation", True), "allowPrivilegeEscalation",
                 id="escalation"),
    pytest.param(own("capabilities", {"drop": ["ALL"], "add": ["NET_ADMIN"]}), "capabilities",
                 id="capability-added"),
    pytest.param(own("capabilities", {"drop": ["NET_RAW"]}), "capabilities", id="not-all-dropped"),
    pytest.param(own("seccompProfile", {"type": "Unconfined"}), "seccomp", id="unconfined"),
    pytest.param(own("privileged", True), "privileged", id="privileged"),
    pytest.param(without_memory_limit, "no memory request and limit", id="no-memory-limit"),
    pytest.param(without_tmp, "no emptyDir mounted at /tmp", id="no-scratch-tmp"),
    pytest.param(host_path, "restricted policy refuses", id="host-path"),
    pytest.param(image("ghcr.io/irisops/irisops/api:latest@" + DIGEST), "tagged latest",
                 id="latest"),
    pytest.param(image("ghcr.io/irisops/irisops/api:0.1.0"), "is not ghcr.io", id="no-digest"),
    pytest.param(image("ghcr.io/irisops/irisops/api@" + DIGEST), "is not ghcr.io", id="no-tag"),
    pytest.param(image("docker.io/library/python:3.11@" + DIGEST), "is not ghcr.io",
                 id="not-our-image"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BREAKS)
@pytest.mark.parametrize(
    ("name", "kind", "object_name"),
    [("production", "Deployment", "api"), ("kserve", "ServingRuntime", "irisops")],
)
def test_each_rule_catches_a_container_that_breaks_it(
    rendered: dict[str, list[Object]],
    name: str,
    kind: str,
    object_name: str,
    change: Callable[[Object, Object], None],
    message: str,
) -> None:
    obj = copy.deepcopy(named(rendered[name], kind, object_name))
    assert breaches(obj) == []
    pod, container = next(containers(obj))
    change(pod, container)
    found = breaches(obj)
    assert any(message in breach for breach in found), found


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_processes_run_in_the_images_group(
    rendered: dict[str, list[Object]], name: str
) -> None:
    for obj in workloads(rendered[name]):
        pod = pod_spec(obj)
        assert pod is not None
        group = pod.get("securityContext", {}).get("runAsGroup")
        group = next(containers(obj))[1].get("securityContext", {}).get("runAsGroup", group)
        assert group == UID, obj["metadata"]["name"]


@pytest.mark.parametrize("name", ["local", "production"])
def test_pods_get_no_api_token_and_no_service_links(
    rendered: dict[str, list[Object]], name: str
) -> None:
    for obj in workloads(rendered[name]):
        pod = pod_spec(obj)
        assert pod is not None
        assert pod["automountServiceAccountToken"] is False, obj["metadata"]["name"]
        # A Service named mlflow would otherwise set MLFLOW_PORT=tcp://..., MLflow's --port.
        assert pod["enableServiceLinks"] is False, obj["metadata"]["name"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_image_is_one_release_of_ours(rendered: dict[str, list[Object]], name: str) -> None:
    references = {c["image"] for obj in rendered[name] for _, c in containers(obj)}
    tags = {re.sub(r"^.*:(.+)@.*$", r"\1", ref) for ref in references}
    assert len(tags) == 1, references


# --- probes and the drain ------------------------------------------------------------------


def probe_path(container: Object, probe: str) -> str:
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert get["port"] in ports or get["port"] in ports.values(), f"{probe} port {get['port']}"
    path: str = get["path"]
    return path


def api_like(rendered: dict[str, list[Object]]) -> list[Object]:
    return [api_container(rendered["local"]), api_container(rendered["production"])] + [
        c for _, c in containers(named(rendered["kserve"], "ServingRuntime", "irisops"))
    ]


def test_api_probes_read_ready_for_traffic_and_health_for_life(
    rendered: dict[str, list[Object]],
) -> None:
    for container in api_like(rendered):
        assert probe_path(container, "startupProbe") == "/ready"
        assert probe_path(container, "readinessProbe") == "/ready"
        assert probe_path(container, "livenessProbe") == "/health"


def test_the_tracking_server_is_probed_on_its_host_check_free_health(
    rendered: dict[str, list[Object]],
) -> None:
    for name in ("local", "production"):
        container = named(rendered[name], "Deployment", "mlflow")["spec"]["template"]["spec"][
            "containers"
        ][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe_path(container, probe) == "/health"


def test_the_grace_period_covers_pre_stop_drain_and_shutdown(
    rendered: dict[str, list[Object]],
) -> None:
    """preStop, then the drain (at most DRAIN_TIMEOUT), then uvicorn's graceful shutdown
    (int(DRAIN_TIMEOUT)), all inside the grace period, with time left to exit."""
    for name in ("local", "production"):
        pod = named(rendered[name], "Deployment", "api")["spec"]["template"]["spec"]
        command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop = float(command[1])
        # Long enough for endpoints to be withdrawn, and longer than one idle drain (0.3 s).
        assert pre_stop >= 5 > IDLE_TICKS * 0.1
        worst = pre_stop + DRAIN_TIMEOUT + int(DRAIN_TIMEOUT)
        assert pod["terminationGracePeriodSeconds"] >= worst + 5


def test_rolling_updates_never_take_a_replica_away_first(rendered: dict[str, list[Object]]) -> None:
    for name in ("local", "production"):
        strategy = named(rendered[name], "Deployment", "api")["spec"]["strategy"]
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0


# --- registry mode -------------------------------------------------------------------------


def test_replicas_follow_the_champion_alias_and_share_no_volume(
    rendered: dict[str, list[Object]],
) -> None:
    for name in ("local", "production"):
        deployment = named(rendered[name], "Deployment", "api")
        env = env_of(api_container(rendered[name]))
        assert env["IRISOPS_MODEL_URI"] == CHAMPION_URI
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert all(set(v) == {"name", "emptyDir"} for v in volumes), volumes


def test_the_tracking_server_reads_its_store_from_a_secret_and_a_config_map(
    rendered: dict[str, list[Object]],
) -> None:
    for name in ("local", "production"):
        mlflow = named(rendered[name], "Deployment", "mlflow")
        env = env_of(mlflow["spec"]["template"]["spec"]["containers"][0])
        secret = env["IRISOPS_BACKEND_STORE_URI"]["secretKeyRef"]
        assert secret["name"].startswith("irisops-tracking-store")
        assert secret["key"] == "backend-store-uri"
        config = env["IRISOPS_ARTIFACTS_DESTINATION"]["configMapKeyRef"]
        assert config["key"] == "artifacts-destination"
        config_map = named(rendered[name], "ConfigMap", config["name"])
        destination = config_map["data"]["artifacts-destination"]
        assert destination.startswith("s3://" if name == "production" else "/data/")


def test_the_local_store_lives_on_the_claim(rendered: dict[str, list[Object]]) -> None:
    objects = rendered["local"]
    pod = named(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "mlflow-data"}}
    named(objects, "PersistentVolumeClaim", "mlflow-data")
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "data")
    assert mount["mountPath"] == "/data"
    uri_secret = next(o for o in objects if o["kind"] == "Secret")
    assert uri_secret["metadata"]["name"].startswith("irisops-tracking-store")
    uri = base64.b64decode(uri_secret["data"]["backend-store-uri"]).decode()
    assert uri == "sqlite:////data/mlflow_data/mlflow.db"


def test_production_ships_no_secret(rendered: dict[str, list[Object]]) -> None:
    assert [o for o in rendered["production"] if o["kind"] == "Secret"] == []
    mlflow = named(rendered["production"], "Deployment", "mlflow")
    sources = mlflow["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert {"secretRef": {"name": "irisops-tracking-s3"}} in sources


def test_the_scheduled_training_runs_the_one_off_jobs_pod(
    rendered: dict[str, list[Object]],
) -> None:
    for name in ("local", "production"):
        job = named(rendered[name], "Job", "train")["spec"]["template"]
        cron = named(rendered[name], "CronJob", "train-scheduled")
        assert cron["spec"]["jobTemplate"]["spec"]["template"] == job
        assert job["spec"]["containers"][0]["args"] == ["train"]


# --- scale, spread, monitoring -------------------------------------------------------------


def test_local_runs_one_replica_and_no_autoscaler(rendered: dict[str, list[Object]]) -> None:
    assert named(rendered["local"], "Deployment", "api")["spec"]["replicas"] == 1
    assert not [o for o in rendered["local"] if o["kind"] == "HorizontalPodAutoscaler"]


def test_production_scales_three_to_ten_spread_across_nodes(
    rendered: dict[str, list[Object]],
) -> None:
    objects = rendered["production"]
    api = named(objects, "Deployment", "api")
    hpa = named(objects, "HorizontalPodAutoscaler", "api")
    assert (api["spec"]["replicas"], hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        3,
        3,
        10,
    )
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    pod = api["spec"]["template"]
    labels = pod["metadata"]["labels"]
    terms = pod["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert [t["podAffinityTerm"]["topologyKey"] for t in terms] == ["kubernetes.io/hostname"]
    assert terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == (
        "kubernetes.io/hostname",
        "DoNotSchedule",
    )


@pytest.mark.parametrize("name", ["local", "production"])
def test_the_disruption_budget_and_services_select_the_right_pods(
    rendered: dict[str, list[Object]], name: str
) -> None:
    objects = rendered[name]
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] == "Deployment"
    }

    def selected(selector: dict[str, str]) -> set[str]:
        return {d for d, labels in pods.items() if selector.items() <= labels.items()}

    assert selected(
        named(objects, "PodDisruptionBudget", "api")["spec"]["selector"]["matchLabels"]
    ) == {"api"}
    assert named(objects, "PodDisruptionBudget", "api")["spec"]["maxUnavailable"] == 1
    for service in ("api", "mlflow"):
        assert selected(named(objects, "Service", service)["spec"]["selector"]) == {service}


def test_the_service_monitor_scrapes_the_api_services_port(
    rendered: dict[str, list[Object]],
) -> None:
    objects = rendered["production"]
    monitor = named(objects, "ServiceMonitor", "api")["spec"]
    service = named(objects, "Service", "api")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == [
        p["name"] for p in service["spec"]["ports"]
    ]
    assert monitor["endpoints"][0]["path"] == "/metrics"


# --- network policies ----------------------------------------------------------------------


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector, for the two forms the policies use."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def allowed(rules: list[dict[str, Any]], peers: str, peer: dict[str, str], port: int) -> bool:
    """Whether any rule lets PEER (a pod of this namespace) through on PORT."""
    return any(
        (not rule.get(peers) or any(
            "namespaceSelector" not in p and matches(p["podSelector"], peer) for p in rule[peers]
        ))
        and (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        for rule in rules
    )  # fmt: skip


def ingress_admits(
    objects: list[Object], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether TARGET's ingress policies let SOURCE open PORT (no policy: everything may)."""
    policies = [
        o["spec"] for o in objects
        if o["kind"] == "NetworkPolicy" and "Ingress" in o["spec"]["policyTypes"]
        and matches(o["spec"]["podSelector"], target)
    ]  # fmt: skip
    return not policies or any(
        allowed(p.get("ingress", []), "from", source, port) for p in policies
    )


def egress_admits(
    objects: list[Object], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether SOURCE's egress policies let it open PORT on TARGET."""
    policies = [
        o["spec"] for o in objects
        if o["kind"] == "NetworkPolicy" and "Egress" in o["spec"]["policyTypes"]
        and matches(o["spec"]["podSelector"], source)
    ]  # fmt: skip
    return not policies or any(allowed(p.get("egress", []), "to", target, port) for p in policies)


def pod_labels(objects: list[Object]) -> dict[str, dict[str, str]]:
    found = {}
    for obj in workloads(objects):
        spec = obj["spec"].get("jobTemplate", {}).get("spec", obj["spec"])
        labels: dict[str, str] = spec["template"]["metadata"]["labels"]
        found[labels["app.kubernetes.io/component"]] = labels
    return found


def strangers(objects: list[Object], like: dict[str, str]) -> list[dict[str, str]]:
    """Pods labelled like LIKE but for one label, set to every value the policies mention."""
    values = {
        value
        for o in objects if o["kind"] == "NetworkPolicy"
        for value in re.findall(r"'values': \[([^\]]*)\]", str(o["spec"]))
        for value in re.findall(r"'([^']*)'", value)
    } | {"something-else"}  # fmt: skip
    return [{**like, key: value} for key in like for value in values if value != like[key]]


@pytest.mark.parametrize("name", ["local", "production"])
def test_only_the_api_and_the_trainer_reach_the_tracking_server(
    rendered: dict[str, list[Object]], name: str
) -> None:
    objects = rendered[name]
    labels = pod_labels(objects)
    assert set(labels) == {"api", "tracking", "trainer"}
    tracking = labels["tracking"]
    for client in ("api", "trainer"):
        assert ingress_admits(objects, labels[client], tracking, 5000)
        assert egress_admits(objects, labels[client], tracking, 5000)
        assert not ingress_admits(objects, labels[client], tracking, 5432), "only the server's port"
    others = strangers(objects, labels["api"]) + strangers(objects, labels["trainer"])
    admitted = [
        s for s in others if s not in labels.values() and ingress_admits(objects, s, tracking, 5000)
    ]
    assert admitted == []


@pytest.mark.parametrize("name", ["local", "production"])
def test_clients_reach_the_api_and_nothing_else(
    rendered: dict[str, list[Object]], name: str
) -> None:
    objects = rendered[name]
    labels = pod_labels(objects)
    stranger = {"app.kubernetes.io/name": "something-else"}
    assert ingress_admits(objects, stranger, labels["api"], 8000)
    assert not ingress_admits(objects, stranger, labels["api"], 9000)
    assert not ingress_admits(objects, stranger, labels["trainer"], 8000)
    for client in ("api", "trainer"):
        assert not egress_admits(objects, labels[client], stranger, 443), "no egress but the server"


# --- KServe --------------------------------------------------------------------------------


def test_the_kserve_runtime_is_the_api_on_kserves_port(rendered: dict[str, list[Object]]) -> None:
    runtime = named(rendered["kserve"], "ServingRuntime", "irisops")
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container"
    api = api_container(rendered["production"])
    assert container["image"] == api["image"]
    assert container["args"] == api["args"] == ["serve"]
    env = env_of(container)
    assert {**env, "IRISOPS_API_PORT": "8000"} == env_of(api)
    assert [p["containerPort"] for p in container["ports"]] == [int(env["IRISOPS_API_PORT"])]
    # Predictor pods count as API pods for deploy/k8s's network policies.
    assert runtime["spec"]["labels"].items() <= api_pod_labels(rendered).items()
    assert runtime["spec"]["protocolVersions"] == ["v2"]


def api_pod_labels(rendered: dict[str, list[Object]]) -> dict[str, str]:
    labels: dict[str, str] = named(rendered["production"], "Deployment", "api")["spec"]["template"][
        "metadata"
    ]["labels"]
    return labels


def test_the_inference_service_asks_for_that_runtime_by_the_served_name(
    rendered: dict[str, list[Object]],
) -> None:
    runtime = named(rendered["kserve"], "ServingRuntime", "irisops")
    service = named(rendered["kserve"], "InferenceService", REGISTERED_MODEL)
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"] in [
        {"name": f["name"], "version": f["version"]}
        for f in runtime["spec"]["supportedModelFormats"]
    ]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    assert "storageUri" not in model, "the runtime reads the registry, not a storage URI"
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
