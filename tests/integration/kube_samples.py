"""Valid sample objects of every served kind, and helpers the API-server tests share
(a full dump of the store over HTTP, reading watch streams)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx

from mkube.api.kinds import RESOURCES, ResourceType

Obj = dict[str, Any]

POD_SPEC: Obj = {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}

SAMPLES: dict[str, Obj] = {
    "Namespace": {"metadata": {"name": "sample-ns"}},
    "Node": {"metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a"}}, "spec": {},
             "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}},
    "Pod": {"metadata": {"name": "sample-pod", "labels": {"app": "sample"}}, "spec": POD_SPEC},
    "Service": {"metadata": {"name": "sample-svc"},
                "spec": {"selector": {"app": "sample"}, "ports": [{"port": 80, "targetPort": 8080,
                                                                    "protocol": "TCP"}]}},
    "Endpoints": {"metadata": {"name": "sample-svc"},
                  "subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]},
    "ConfigMap": {"metadata": {"name": "sample-cm"}, "data": {"key": "value"}},
    "Secret": {"metadata": {"name": "sample-secret"}, "type": "Opaque",
               "data": {"password": base64.b64encode(b"hunter2").decode()}},
    "Event": {"metadata": {"name": "sample-event"},
              "involvedObject": {"kind": "Pod", "name": "sample-pod", "namespace": "default", "apiVersion": "v1"},
              "reason": "Testing", "message": "a test event", "type": "Normal", "count": 1,
              "source": {"component": "tests"}},
    "Deployment": {"metadata": {"name": "sample-deploy", "labels": {"app": "sample"}},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sample"}},
                            "template": {"metadata": {"labels": {"app": "sample"}}, "spec": POD_SPEC}}},
    "ReplicaSet": {"metadata": {"name": "sample-rs", "labels": {"app": "sample-rs"}},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sample-rs"}},
                            "template": {"metadata": {"labels": {"app": "sample-rs"}}, "spec": POD_SPEC}}},
    "Lease": {"metadata": {"name": "sample-lease"},
              "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}},
}


def rt_of(kind: str) -> ResourceType:
    return next(rt for rt in RESOURCES if rt.kind == kind)


def sample(kind: str, name: str | None = None, **labels: str) -> Obj:
    """A fresh copy of the sample of `kind` with apiVersion/kind set."""
    rt = rt_of(kind)
    obj = copy.deepcopy(SAMPLES[kind])
    obj = {"apiVersion": rt.api_version, "kind": kind, **obj}
    if name:
        obj["metadata"]["name"] = name
    if labels:
        obj["metadata"].setdefault("labels", {}).update(labels)
    return obj


def pod(name: str, node: str | None = None, **labels: str) -> Obj:
    obj = sample("Pod", name, **labels)
    if node:
        obj["spec"]["nodeName"] = node
    return obj


def collection_url(base: str, kind: str, namespace: str | None = "default") -> str:
    rt = rt_of(kind)
    return base + rt.path(namespace if rt.namespaced else None)


def object_url(base: str, kind: str, name: str, namespace: str | None = "default", sub: str | None = None) -> str:
    rt = rt_of(kind)
    return base + rt.path(namespace if rt.namespaced else None, name, sub)


def dump(base: str) -> dict[tuple[str, str, str], Obj]:
    """Every object of every kind, keyed by (kind, namespace, name)."""
    out: dict[tuple[str, str, str], Obj] = {}
    with httpx.Client(timeout=30) as c:
        for rt in RESOURCES:
            r = c.get(base + rt.path())
            assert r.status_code == 200, r.text
            for item in r.json()["items"]:
                md = item["metadata"]
                out[(rt.kind, md.get("namespace", ""), md["name"])] = item
    return out


def read_events(resp: httpx.Response, count: int | None = None) -> list[Obj]:
    """Watch events from a streaming response, until `count` or the end of the stream."""
    events: list[Obj] = []
    for line in resp.iter_lines():
        if not line.strip():
            continue
        events.append(json.loads(line))
        if count is not None and len(events) >= count:
            break
    return events
