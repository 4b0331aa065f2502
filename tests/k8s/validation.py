"""Rendered objects checked the way the API server checks them: unknown fields and wrong types fail.

Built-in kinds are checked against the Kubernetes API's own types. The `kubernetes` Python
client is generated from the OpenAPI document of one Kubernetes release (the pinned 36.0.x
is release-1.36): its models name every field of every type, the JSON key it is spelled
as, and its type, and their constructors refuse a missing required field. That is the
server's structural check with `kubectl apply`'s default strict field validation, not its
semantic one (a port out of range, a bad label value), and no admission webhook.

Custom resources (KServe, the Prometheus Operator) have no model there: their fields come
from schemas vendored in crds/, each naming the source it was transcribed from. Inside
them, `x-kubernetes-type` hands an embedded Kubernetes type (a Container, a Volume) to the
same model check, and `x-kubernetes-inline` does so for a type whose fields are inlined
beside the custom ones (KServe's predictor inlines a PodSpec). As in a structural CRD under
strict validation, an object schema that lists properties accepts no others.

Two deliberate narrowings, both stricter than the server: quantities (`cpu: "1"`) must be
strings, as the client types them; and `object`, which in every type we render stands for
IntOrString, must be an integer or a string.
"""

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes.client as k8s

CRDS = Path(__file__).resolve().parent / "crds"
KUBERNETES_RELEASE = "release-1.36"

LIST = re.compile(r"^list\[(.+)\]$")
MAP = re.compile(r"^dict[\[(]str, (.+)[\])]$")
PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
    "object": (int, str),
}


def kubernetes_release() -> str:
    """The Kubernetes release the client's models were generated from, as it reports it."""
    report: str = k8s.Configuration().to_debug_report()
    return report.split("Version of the API: ", 1)[1].splitlines()[0].strip()


def errors(obj: Mapping[str, Any]) -> list[str]:
    """Every problem the API server would refuse OBJ for, each prefixed with Kind/name."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    model = builtin_model(api_version, kind)
    if model is not None:
        found = model_errors(obj, model, "")
    elif (api_version, kind) in crd_schemas():
        found = list(crd_errors(obj, crd_schemas()[api_version, kind]))
    else:
        found = [f": no type known for {api_version} {kind}"]
    return [f"{where}{problem}" for problem in found]


def builtin_model(api_version: str, kind: str) -> type | None:
    """The client's model for a built-in kind, if the API group really serves that kind.

    `apps/v1` is served by AppsV1Api, `networking.k8s.io/v1` by NetworkingV1Api, `v1` by
    CoreV1Api; the group serves a kind if its API has a create call for it. Checking the
    group this way keeps a right kind under a wrong group (`apps/v1` NetworkPolicy) out.
    """
    group, _, version = api_version.rpartition("/")
    parts = group.removesuffix(".k8s.io").split(".") if group else ["core"]
    api = getattr(k8s, "".join(p.capitalize() for p in parts) + version.capitalize() + "Api", None)
    call = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
    if api is None or not any(hasattr(api, f"create_{s}{call}") for s in ("namespaced_", "")):
        return None
    model: type | None = getattr(k8s, version.capitalize() + kind, None)
    return model


def model_errors(
    value: Any, model: type, path: str, inline: bool = False, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Unknown fields and wrong types in VALUE as MODEL, then its missing required fields.

    With `inline`, VALUE holds MODEL's fields beside others (listed in `skip`): those of
    MODEL are checked, and none is required.
    """
    if not isinstance(value, dict):
        return [f"{path}: expected an object ({model.__name__}), got {describe(value)}"]
    attributes = {key: attr for attr, key in model.attribute_map.items()}  # type: ignore[attr-defined]
    found: list[str] = []
    for key, item in value.items():
        if key in skip or item is None:
            continue
        if key not in attributes:
            found.append(f"{path}.{key}: unknown field (no such field in {model.__name__})")
            continue
        found += type_errors(item, model.openapi_types[attributes[key]], f"{path}.{key}")  # type: ignore[attr-defined]
    if found or inline:
        return found
    try:
        model(**{attributes[key]: item for key, item in value.items()})
    except ValueError as exc:  # the client's way of saying "required field missing"
        return [f"{path}: {exc} ({model.__name__})"]
    return []


def type_errors(value: Any, spelled: str, path: str) -> list[str]:
    """VALUE against a type as the client spells it: `list[V1Container]`, `dict(str, str)`, ..."""
    if match := LIST.match(spelled):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {describe(value)}"]
        return [
            e for i, item in enumerate(value) for e in type_errors(item, match[1], f"{path}[{i}]")
        ]
    if match := MAP.match(spelled):
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {describe(value)}"]
        return [e for k, item in value.items() for e in type_errors(item, match[1], f"{path}.{k}")]
    if spelled in PRIMITIVES:
        wrong = not isinstance(value, PRIMITIVES[spelled]) or (
            isinstance(value, bool) and spelled != "bool"
        )
        return [f"{path}: expected {spelled}, got {describe(value)}"] if wrong else []
    return model_errors(value, getattr(k8s, spelled), path)


def describe(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:40]}"


# --- custom resources ----------------------------------------------------------------------


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The vendored schemas, keyed by (apiVersion, kind), closed to unknown fields."""
    found = {}
    for path in sorted(CRDS.glob("*.json")):
        schema = closed(json.loads(path.read_text()))
        properties = schema["properties"]
        found[properties["apiVersion"]["const"], properties["kind"]["const"]] = schema
    return found


def closed(schema: Any) -> Any:
    """SCHEMA with `additionalProperties: false` on every object that lists its properties."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(item) for key, item in schema.items()}
    if "properties" in result and "x-kubernetes-inline" not in result:
        result.setdefault("additionalProperties", False)
    return result


def _embedded(
    validator: Any, model: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    for problem in model_errors(instance, getattr(k8s, model), ""):
        yield jsonschema.ValidationError(f"{model}{problem}")


def _inlined(
    validator: Any, model: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    own = frozenset(schema.get("properties", {}))
    for problem in model_errors(instance, getattr(k8s, model), "", inline=True, skip=own):
        yield jsonschema.ValidationError(f"{model}, inlined{problem}")


CrdValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    {"x-kubernetes-type": _embedded, "x-kubernetes-inline": _inlined},
)


def crd_errors(obj: Mapping[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    for error in CrdValidator(schema).iter_errors(obj):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        yield f"{path}: {error.message}"
