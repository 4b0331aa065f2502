"""The rules every container we deploy must meet, as functions that name each breach.

Written as checks that return what is wrong (rather than asserting), so the tests can
show each rule catching a manifest that breaks it, not only passing ours.
"""

import re
from collections.abc import Iterator
from typing import Any

from tests.k8s.manifests import Object, containers

UID = 10001
# What images.yml pushes: ghcr.io/<owner>/<repo>/<target>, here by tag *and* digest.
IMAGE = re.compile(
    r"^ghcr\.io/[a-z0-9-]+/[a-z0-9._-]+/(?P<target>api|trainer)"
    r":(?P<tag>[\w][\w.-]{0,127})@sha256:[0-9a-f]{64}$"
)
WRITABLE_VOLUMES = {"emptyDir", "persistentVolumeClaim"}
ALLOWED_VOLUMES = WRITABLE_VOLUMES | {"configMap", "secret", "projected"}
UNITS = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}


def quantity(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|)", value)
    assert match is not None, f"unsupported quantity {value!r}"
    return float(match[1]) * UNITS[match[2]]


def breaches(obj: Object) -> list[str]:
    """Every rule broken by any container OBJ runs, as 'Kind/name container: what'."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    return [
        f"{where} {container['name']}: {problem}"
        for pod, container in containers(obj)
        for problem in container_breaches(pod, container)
    ]


def container_breaches(pod: Object, container: Object) -> Iterator[str]:
    yield from image_breaches(container.get("image", ""))
    yield from security_breaches(pod, container)
    yield from resource_breaches(container.get("resources", {}))
    yield from scratch_breaches(pod, container)


def image_breaches(image: str) -> Iterator[str]:
    match = IMAGE.match(image)
    if match is None:
        yield f"image {image!r} is not ghcr.io/<owner>/<repo>/<api|trainer>:<tag>@sha256:<digest>"
    elif match["tag"] == "latest":
        yield f"image {image!r} is tagged latest"


def effective(pod: Object, container: Object, field: str) -> Any:
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    own = container.get("securityContext", {})
    return own[field] if field in own else pod.get("securityContext", {}).get(field)


def security_breaches(pod: Object, container: Object) -> Iterator[str]:
    own = container.get("securityContext", {})
    if effective(pod, container, "runAsNonRoot") is not True:
        yield "runAsNonRoot is not true"
    if effective(pod, container, "runAsUser") != UID:
        yield f"does not run as uid {UID}"
    if own.get("readOnlyRootFilesystem") is not True:
        yield "root filesystem is writable"
    if own.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation is not false"
    capabilities = own.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"] or capabilities.get("add"):
        yield f"capabilities are not exactly drop ALL: {capabilities}"
    if (effective(pod, container, "seccompProfile") or {}).get("type") != "RuntimeDefault":
        yield "seccomp profile is not RuntimeDefault"
    if own.get("privileged"):
        yield "privileged"


def resource_breaches(resources: Object) -> Iterator[str]:
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        if request is None or limit is None:
            yield f"no {resource} request and limit"
        elif quantity(request) > quantity(limit):
            yield f"{resource} request {request} exceeds its limit {limit}"


def scratch_breaches(pod: Object, container: Object) -> Iterator[str]:
    """A read-only root needs a scratch /tmp, and TMPDIR pointing at it."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for volume in volumes.values():
        if not set(volume) - {"name"} <= ALLOWED_VOLUMES:
            yield f"volume {volume['name']} is of a kind the restricted policy refuses"
    mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container.get("volumeMounts", [])}
    if "emptyDir" not in mounts.get("/tmp", {}):
        yield "no emptyDir mounted at /tmp"
    env = {var["name"]: var.get("value") for var in container.get("env", [])}
    if env.get("TMPDIR") != "/tmp":
        yield "TMPDIR is not /tmp"
