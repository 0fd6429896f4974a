"""describe for deployments and replicasets (and the pod template both show)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mkube.api.selectors import selector_to_string
from mkube.kubectl.describe.pods import containers, volumes
from mkube.kubectl.describe.writer import (
    LEVEL_0,
    LEVEL_1,
    PrefixWriter,
    annotations_multiline,
    controller_of,
    dl,
    dm,
    events_section,
    labels_multiline,
    rfc1123z,
    s,
    tolerations_multiline,
)

Obj = dict[str, Any]


def selector_text(obj: Obj) -> str:
    try:
        return selector_to_string(dm(obj, "spec", "selector"))
    except ValueError:
        return "<invalid>"


def pod_template(w: PrefixWriter, template: Mapping[str, Any] | None) -> None:
    """DescribePodTemplate."""
    w.write(LEVEL_0, "Pod Template:\n")
    if template is None:
        w.write(LEVEL_1, "<unset>")
        return
    meta, spec = dm(template, "metadata"), dm(template, "spec")
    labels_multiline(w, "  Labels", dm(meta, "labels"))
    if dm(meta, "annotations"):
        annotations_multiline(w, "  Annotations", dm(meta, "annotations"))
    if spec.get("serviceAccountName"):
        w.write(LEVEL_1, f"Service Account:\t{s(spec.get('serviceAccountName'))}\n")
    if spec.get("initContainers"):
        containers(w, "Init Containers", dl(spec, "initContainers"), None, None, "  ")
    containers(w, "Containers", dl(spec, "containers"), None, None, "  ")
    volumes(w, dl(spec, "volumes"), "  ")
    if spec.get("priorityClassName"):
        w.write(LEVEL_1, f"Priority Class Name:\t{s(spec.get('priorityClassName'))}\n")
    labels_multiline(w, "  Node-Selectors", dm(spec, "nodeSelector"))
    tolerations_multiline(w, "  Tolerations", dl(spec, "tolerations"))


def _conditions(w: PrefixWriter, obj: Obj) -> None:
    conditions = [c for c in dl(obj, "status", "conditions") if isinstance(c, Mapping)]
    if conditions:
        w.write(LEVEL_0, "Conditions:\n  Type\tStatus\tReason\n")
        w.write(LEVEL_1, "----\t------\t------\n")
        for c in conditions:
            w.write(LEVEL_1, f"{s(c.get('type'))} \t{s(c.get('status'))}\t{s(c.get('reason'))}\n")


def _rs_list(items: list[Obj]) -> str:
    text = ", ".join(f"{s(dm(rs, 'metadata').get('name'))} ({s(dm(rs, 'status').get('replicas') or 0)}/"
                     f"{s(dm(rs, 'spec').get('replicas') or 0)} replicas created)" for rs in items)
    return text or "<none>"


def _int_or_str(v: Any) -> str:
    return s(v) if v is not None else "0"


def describe_deployment(dep: Obj, old_rss: list[Obj], new_rs: Obj | None, events: list[Obj] | None) -> str:
    w = PrefixWriter()
    meta, spec, status = dm(dep, "metadata"), dm(dep, "spec"), dm(dep, "status")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    w.write(LEVEL_0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    w.write(LEVEL_0, f"Selector:\t{selector_text(dep)}\n")
    w.write(LEVEL_0, f"Replicas:\t{s(spec.get('replicas') if spec.get('replicas') is not None else 1)} desired | "
                     f"{s(status.get('updatedReplicas') or 0)} updated | {s(status.get('replicas') or 0)} total | "
                     f"{s(status.get('availableReplicas') or 0)} available | "
                     f"{s(status.get('unavailableReplicas') or 0)} unavailable\n")
    strategy = dm(spec, "strategy")
    w.write(LEVEL_0, f"StrategyType:\t{s(strategy.get('type'))}\n")
    w.write(LEVEL_0, f"MinReadySeconds:\t{s(spec.get('minReadySeconds') or 0)}\n")
    ru = strategy.get("rollingUpdate")
    if isinstance(ru, Mapping):
        w.write(LEVEL_0, f"RollingUpdateStrategy:\t{_int_or_str(ru.get('maxUnavailable'))} max unavailable, "
                         f"{_int_or_str(ru.get('maxSurge'))} max surge\n")
    pod_template(w, dm(spec, "template"))
    _conditions(w, dep)
    if old_rss or new_rs is not None:
        w.write(LEVEL_0, f"OldReplicaSets:\t{_rs_list(old_rss)}\n")
        w.write(LEVEL_0, f"NewReplicaSet:\t{_rs_list([new_rs] if new_rs is not None else [])}\n")
    events_section(w, events)
    return w.text()


def pod_counts(pods: list[Obj], owner_uid: str) -> tuple[int, int, int, int]:
    """Running, waiting (Pending), succeeded, failed pods controlled by `owner_uid`."""
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for pod in pods:
        owners = [r for r in dl(pod, "metadata", "ownerReferences") if isinstance(r, Mapping) and r.get("controller")]
        if not owners or owners[0].get("uid") != owner_uid:
            continue
        phase = s(dm(pod, "status").get("phase"))
        if phase in counts:
            counts[phase] += 1
    return counts["Running"], counts["Pending"], counts["Succeeded"], counts["Failed"]


def describe_replicaset(rs: Obj, pods: list[Obj] | None, events: list[Obj] | None, pod_error: str = "") -> str:
    w = PrefixWriter()
    meta, spec, status = dm(rs, "metadata"), dm(rs, "spec"), dm(rs, "status")
    w.write(LEVEL_0, f"Name:\t{s(meta.get('name'))}\n")
    w.write(LEVEL_0, f"Namespace:\t{s(meta.get('namespace'))}\n")
    w.write(LEVEL_0, f"Selector:\t{selector_text(rs)}\n")
    labels_multiline(w, "Labels", dm(meta, "labels"))
    annotations_multiline(w, "Annotations", dm(meta, "annotations"))
    controlled_by = controller_of(rs)
    if controlled_by:
        w.write(LEVEL_0, f"Controlled By:\t{controlled_by}\n")
    desired = spec.get("replicas") if spec.get("replicas") is not None else 1
    w.write(LEVEL_0, f"Replicas:\t{s(status.get('replicas') or 0)} current / {s(desired)} desired\n")
    w.write(LEVEL_0, "Pods Status:\t")
    if pod_error or pods is None:
        w.write(LEVEL_0, f"error in fetching pods: {pod_error}\n")
    else:
        running, waiting, succeeded, failed = pod_counts(pods, s(meta.get("uid")))
        w.write(LEVEL_0, f"{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n")
    pod_template(w, dm(spec, "template"))
    _conditions(w, rs)
    events_section(w, events)
    return w.text()


__all__ = ["describe_deployment", "describe_replicaset", "pod_counts", "pod_template"]
