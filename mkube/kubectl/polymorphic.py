"""kubectl's polymorphic helpers: the pods behind a deployment/replicaset/service, the pod
`logs deploy/web` reads (podutils.ByLogging order), the container it defaults to."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from mkube.api.kinds import ResourceType
from mkube.api.selectors import format_labels, selector_to_string
from mkube.api.tables import parse_time
from mkube.client.interface import BaseClient
from mkube.kubectl.errors import CommandError

Obj = dict[str, Any]
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def pod_selector(rt: ResourceType, obj: Obj) -> str:
    """The label selector of the pods behind `obj` (deployment, replicaset, service)."""
    spec = obj.get("spec") or {}
    if rt.kind == "Service":
        selector = spec.get("selector") or {}
        if not selector:
            raise CommandError(f'service "{(obj.get("metadata") or {}).get("name")}" has no selector')
        return format_labels(selector)
    if rt.kind in ("Deployment", "ReplicaSet"):
        try:
            return selector_to_string(spec.get("selector"))
        except ValueError as e:
            raise CommandError(str(e)) from None
    raise CommandError(f"cannot attach to {rt.kind}: not implemented")


def _ready(pod: Obj) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _ready_time(pod: Obj) -> float:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True":
            t = parse_time(c.get("lastTransitionTime"))
            return t.timestamp() if t else 0.0
    return 0.0


def _restarts(pod: Obj) -> int:
    return max((int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []
                if isinstance(cs, Mapping)), default=0)


def _created(pod: Obj) -> float:
    t = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    return t.timestamp() if t else 0.0


def _by_logging(a: Obj, b: Obj) -> int:
    """podutils.ByLogging: assigned, Running, ready (longer), more restarts, older first."""
    na, nb = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return -1 if na else 1
    rank = {"Running": 0, "Unknown": 1, "Pending": 2}
    pa = rank.get(str((a.get("status") or {}).get("phase")), 3)
    pb = rank.get(str((b.get("status") or {}).get("phase")), 3)
    if pa != pb:
        return -1 if pa < pb else 1
    ra, rb = _ready(a), _ready(b)
    if ra != rb:
        return -1 if ra else 1
    if ra and rb and _ready_time(a) != _ready_time(b):
        ta, tb = _ready_time(a), _ready_time(b)
        return -1 if (ta and (not tb or ta < tb)) else 1
    if _restarts(a) != _restarts(b):
        return -1 if _restarts(a) > _restarts(b) else 1
    ca, cb = _created(a), _created(b)
    if ca != cb:
        return -1 if (ca and (not cb or ca < cb)) else 1
    return 0


def sort_for_logging(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=functools.cmp_to_key(_by_logging))


def pods_for(client: BaseClient, rt: ResourceType, obj: Obj, namespace: str) -> list[Obj]:
    """The pods behind `obj`, best candidate for logs first."""
    selector = pod_selector(rt, obj)
    items = client.list_raw("pods", namespace, label_selector=selector or None).get("items") or []
    return sort_for_logging(list(items))


def all_container_names(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    names += [f"{c.get('name')} (init)" for c in spec.get("initContainers") or [] if isinstance(c, Mapping)]
    return ", ".join(names)


def default_container(pod: Obj) -> tuple[str, bool]:
    """(the container kubectl picks when -c is not given, whether it had to choose)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, Mapping)]
    names = [str(c.get("name")) for c in containers]
    chosen = annotations.get(DEFAULT_CONTAINER)
    if chosen and chosen in names + [str(c.get("name")) for c in (pod.get("spec") or {}).get("initContainers") or []
                                     if isinstance(c, Mapping)]:
        return str(chosen), False
    if not names:
        raise CommandError(f'pod "{(pod.get("metadata") or {}).get("name")}" has no containers')
    return names[0], len(names) > 1
