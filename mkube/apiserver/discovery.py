"""Discovery documents (/version, /api, /apis, APIResourceLists), generated from the
kinds table, in the exact shapes kubectl and client-go read."""

from __future__ import annotations

import platform
from typing import Any

from mkube.api.kinds import RESOURCES, ResourceType, groups

Obj = dict[str, Any]
KUBE_VERSION = "v1.32.0"

# subresource -> (verbs, kind, group, version); group/version None = the parent's
_SUBRESOURCES: dict[str, tuple[tuple[str, ...], str | None, str | None, str | None]] = {
    "status": (("get", "patch", "update"), None, None, None),
    "scale": (("get", "patch", "update"), "Scale", "autoscaling", "v1"),
    "binding": (("create",), "Binding", None, None),
    "log": (("get",), None, None, None),
    "exec": (("create", "get"), "PodExecOptions", None, None),
    "finalize": (("update",), None, None, None),
}


def _mkube_version() -> str:
    try:
        from importlib.metadata import version

        return version("mkube")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return "0.0.0"


def version_info() -> Obj:
    mkube_version = _mkube_version()
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": f"{KUBE_VERSION}-mkube.{mkube_version}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython",
        "platform": f"{platform.system().lower()}/{'amd64' if platform.machine() == 'x86_64' else platform.machine()}",
    }


def api_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "apiVersion": "v1", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> Obj:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> Obj:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in groups().items() if g]}


def api_group(name: str) -> Obj | None:
    versions = groups().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource_entry(rt: ResourceType) -> Obj:
    entry: Obj = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
                  "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _subresource_entry(rt: ResourceType, sub: str) -> Obj:
    verbs, kind, group, version = _SUBRESOURCES.get(sub, (("get",), None, None, None))
    entry: Obj = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                  "kind": kind or rt.kind, "verbs": list(verbs)}
    if group is not None:
        entry["group"] = group
        entry["version"] = version
    return entry


def resource_list(group: str, version: str) -> Obj | None:
    """The APIResourceList of one group/version, or None if it is not served."""
    kinds = [rt for rt in RESOURCES if rt.group == group and rt.version == version]
    if not kinds:
        return None
    resources: list[Obj] = []
    for rt in kinds:
        resources.append(_resource_entry(rt))
        resources.extend(_subresource_entry(rt, sub) for sub in rt.subresources)
    if (group, version) == ("", "v1"):
        resources.append({"name": "bindings", "singularName": "binding", "namespaced": True, "kind": "Binding",
                          "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
