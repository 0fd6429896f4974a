"""Server-side Tables: the columns and cells kubectl prints for each kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mkube.api import kinds
from mkube.api.tables import columns_for, human_age, pod_status_reason, row_cells, table_for

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float = 60, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), **extra}


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (200, "3m20s"),
    (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 120, "3h2m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400 + 4 * 3600, "2d4h"), (3 * 86400, "3d"),
    (8 * 86400, "8d"), (400 * 86400, "400d"), (730 * 86400 + 86400 * 5, "2y5d"), (9 * 365 * 86400, "9y"),
])
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


def _headers(kind: str, wide: bool = False) -> list[str]:
    return [c["name"].upper() for c in columns_for(kind) if wide or c["priority"] == 0]


def test_column_headers_match_kubectl() -> None:
    assert _headers("Pod") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert _headers("Pod", wide=True) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                          "NOMINATED NODE", "READINESS GATES"]
    assert _headers("Deployment") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert _headers("Deployment", wide=True)[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert _headers("ReplicaSet") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert _headers("Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert _headers("Service", wide=True)[6:] == ["SELECTOR"]
    assert _headers("Endpoints") == ["NAME", "ENDPOINTS", "AGE"]
    assert _headers("Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert _headers("Node", wide=True)[5:] == ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION",
                                               "CONTAINER-RUNTIME"]
    assert _headers("Namespace") == ["NAME", "STATUS", "AGE"]
    assert _headers("ConfigMap") == ["NAME", "DATA", "AGE"]
    assert _headers("Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    assert _headers("Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert _headers("Lease") == ["NAME", "HOLDER", "AGE"]
    assert _headers("Scale") == ["NAME", "AGE"]  # kinds without a printer


def test_every_row_has_one_cell_per_column() -> None:
    for rt in kinds.RESOURCES:
        table = table_for(rt, [{"metadata": meta("x")}], NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), rt.kind


def test_table_body_shape() -> None:
    pod = {"metadata": meta("web", uid="u1"), "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    table = table_for(kinds.lookup("pods"), [pod], NOW)  # type: ignore[arg-type]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    col = table["columnDefinitions"][0]
    assert col == {"name": "Name", "type": "string", "format": "name", "description": col["description"],
                   "priority": 0}
    assert "object" not in table["rows"][0]
    with_meta = table_for("Pod", [pod], NOW, include_object="Metadata")
    assert with_meta["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                              "metadata": pod["metadata"]}
    assert table_for("Pod", [pod], NOW.timestamp(), include_object="Object")["rows"][0]["object"] is pod


# ---------------------------------------------------------------- pods

def _pod(status: dict[str, Any], *, containers: int = 1, init: int = 0, deleting: bool = False,
         **spec: Any) -> dict[str, Any]:
    md = meta("p", 300)
    if deleting:
        md["deletionTimestamp"] = ts(1)
    return {"metadata": md,
            "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)],
                     "initContainers": [{"name": f"i{i}"} for i in range(init)], **spec},
            "status": status}


def running(ready: bool = True, restarts: int = 0, last_finished: str | None = None) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "c0", "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return cs


@pytest.mark.parametrize(("pod", "status", "ready"), [
    (_pod({"phase": "Pending"}), "Pending", "0/1"),
    (_pod({"phase": "Pending", "containerStatuses": [
        {"name": "c0", "state": {"waiting": {"reason": "ContainerCreating"}}}]}), "ContainerCreating", "0/1"),
    (_pod({"phase": "Running", "containerStatuses": [running()]}), "Running", "1/1"),
    (_pod({"phase": "Running", "containerStatuses": [running(ready=False)]}), "Running", "0/1"),
    (_pod({"phase": "Running", "containerStatuses": [
        {"name": "c0", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
     "CrashLoopBackOff", "0/1"),
    (_pod({"phase": "Succeeded", "containerStatuses": [
        {"name": "c0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}), "Completed", "0/1"),
    (_pod({"phase": "Failed", "containerStatuses": [
        {"name": "c0", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}), "Error", "0/1"),
    (_pod({"phase": "Failed", "containerStatuses": [
        {"name": "c0", "state": {"terminated": {"exitCode": 137}}}]}), "ExitCode:137", "0/1"),
    (_pod({"phase": "Failed", "containerStatuses": [
        {"name": "c0", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}), "Signal:9", "0/1"),
    (_pod({"phase": "Running", "containerStatuses": [running()]}, deleting=True), "Terminating", "1/1"),
    (_pod({"phase": "Succeeded"}, deleting=True), "Succeeded", "0/1"),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"running": {}}}]}, init=1), "Init:0/1", "0/1"),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}]}, init=2), "Init:1/2", "0/1"),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}, init=1), "Init:CrashLoopBackOff",
     "0/1"),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"terminated": {"exitCode": 2}}}]}, init=1), "Init:ExitCode:2", "0/1"),
    (_pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i0", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}, init=1), "Init:Error", "0/1"),
    (_pod({"phase": "Running", "reason": "Evicted"}), "Evicted", "0/1"),
    (_pod({"phase": "Running", "reason": "NodeLost", "containerStatuses": [running()]}, deleting=True),
     "Unknown", "1/1"),
    (_pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}), "SchedulingGated", "0/1"),
    (_pod({"phase": "Running", "containerStatuses": [
        running(), {"name": "c1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "conditions": [{"type": "Ready", "status": "True"}]}, containers=2), "Running", "1/2"),
    (_pod({"phase": "Running", "containerStatuses": [
        running(), {"name": "c1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
        containers=2), "NotReady", "1/2"),
])
def test_pod_status_column(pod: dict[str, Any], status: str, ready: str) -> None:
    cells = row_cells("Pod", pod, NOW)
    assert cells[2] == status
    assert cells[1] == ready


def test_pod_restarts_column() -> None:
    pod = _pod({"phase": "Running", "containerStatuses": [running(restarts=3, last_finished=ts(300))]})
    assert row_cells("Pod", pod, NOW)[3] == "3 (5m ago)"
    pod = _pod({"phase": "Running", "containerStatuses": [running(restarts=2)]})
    assert row_cells("Pod", pod, NOW)[3] == "2"
    assert row_cells("Pod", _pod({"phase": "Pending"}), NOW)[3] == "0"


def test_pod_restartable_init_container_counts_as_container() -> None:
    pod = _pod({"phase": "Running", "initContainerStatuses": [
        {"name": "i0", "started": True, "ready": True, "restartCount": 1, "state": {"running": {}}}],
        "containerStatuses": [running()], "conditions": [{"type": "Initialized", "status": "True"}]},
        init=1)
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    reason, ready, total, restarts, _ = pod_status_reason(pod)
    assert (reason, ready, total, restarts) == ("Running", 2, 2, 1)


def test_pod_wide_cells_and_age() -> None:
    pod = _pod({"phase": "Running", "podIP": "10.1.0.4", "containerStatuses": [running()],
                "conditions": [{"type": "gate/x", "status": "True"}]},
               nodeName="node-1", readinessGates=[{"conditionType": "gate/x"}, {"conditionType": "gate/y"}])
    assert row_cells("Pod", pod, NOW) == ["p", "1/1", "Running", "0", "5m", "10.1.0.4", "node-1", "<none>", "1/2"]
    bare = _pod({"phase": "Pending", "podIPs": [{"ip": "10.9.9.9"}]})
    assert row_cells("Pod", bare, NOW)[5:] == ["10.9.9.9", "<none>", "<none>", "<none>"]


def test_finished_pods_carry_row_conditions() -> None:
    table = table_for("Pod", [_pod({"phase": "Succeeded"}), _pod({"phase": "Running"})], NOW)
    assert table["rows"][0]["conditions"][0]["type"] == "Completed"
    assert "conditions" not in table["rows"][1]


# ---------------------------------------------------------------- other kinds

def test_deployment_and_replicaset_rows() -> None:
    dep = {"metadata": meta("web", 7200),
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1"},
                                                         {"name": "b", "image": "busybox"}]}}},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert row_cells("Deployment", dep, NOW) == ["web", "2/3", 3, 2, "120m", "a,b", "nginx:1,busybox", "app=web"]
    rs = {**dep, "status": {"replicas": 3, "readyReplicas": 1}}
    assert row_cells("ReplicaSet", rs, NOW) == ["web", 3, 3, 1, "120m", "a,b", "nginx:1,busybox", "app=web"]
    assert row_cells("Deployment", {"metadata": meta("empty")}, NOW)[1:4] == ["0/0", 0, 0]


def test_service_rows() -> None:
    svc = {"metadata": meta("web"),
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "selector": {"app": "web"},
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}
    assert row_cells("Service", svc, NOW) == ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP",
                                              "60s", "app=web"]
    headless = {"metadata": meta("db"), "spec": {"type": "ClusterIP", "clusterIP": "None"}}
    assert row_cells("Service", headless, NOW)[2:5] == ["None", "<none>", "<none>"]
    assert row_cells("Service", headless, NOW)[6] == "<none>"
    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}}
    assert row_cells("Service", lb, NOW)[3] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert row_cells("Service", lb, NOW)[3] == "1.2.3.4"
    ext = {"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "example.com"}}
    assert row_cells("Service", ext, NOW)[1:5] == ["ExternalName", "<none>", "example.com", "<none>"]
    withip = {"metadata": meta("x"), "spec": {"type": "ClusterIP", "externalIPs": ["5.6.7.8"]}}
    assert row_cells("Service", withip, NOW)[3] == "5.6.7.8"


def test_endpoints_rows() -> None:
    ep = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]}
    assert row_cells("Endpoints", ep, NOW)[1] == "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    assert row_cells("Endpoints", {"metadata": meta("e")}, NOW)[1] == "<none>"
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    assert row_cells("Endpoints", headless, NOW)[1] == "10.0.0.1"
    v6 = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}
    assert row_cells("Endpoints", v6, NOW)[1] == "[fd00::1]:80"


def test_node_rows() -> None:
    node = {"metadata": {**meta("n1", 86400 * 3), "labels": {"node-role.kubernetes.io/control-plane": "",
                                                              "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0-mkube", "osImage": "Debian"}}}
    assert row_cells("Node", node, NOW) == ["n1", "Ready,SchedulingDisabled", "control-plane,worker", "3d",
                                            "v1.32.0-mkube", "192.168.1.5", "<none>", "Debian", "<unknown>",
                                            "<unknown>"]
    assert row_cells("Node", {"metadata": meta("n2")}, NOW)[1:3] == ["Unknown", "<none>"]
    notready = {"metadata": meta("n3"), "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert row_cells("Node", notready, NOW)[1] == "NotReady"


def test_namespace_configmap_secret_lease_rows() -> None:
    assert row_cells("Namespace", {"metadata": meta("ns"), "status": {"phase": "Active"}}, NOW) == [
        "ns", "Active", "60s"]
    assert row_cells("ConfigMap", {"metadata": meta("cm"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}},
                     NOW) == ["cm", 2, "60s"]
    assert row_cells("Secret", {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}}, NOW) == [
        "s", "Opaque", 1, "60s"]
    assert row_cells("Lease", {"metadata": meta("l"), "spec": {"holderIdentity": "node-1"}}, NOW) == [
        "l", "node-1", "60s"]
    assert row_cells("ConfigMap", {"metadata": {"name": "no-ts"}}, NOW)[2] == "<unknown>"


def test_event_rows() -> None:
    ev = {"metadata": meta("p.123"), "type": "Warning", "reason": "BackOff", "message": " Back-off restarting \n",
          "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
          "source": {"component": "kubelet", "host": "node-1"},
          "firstTimestamp": ts(600), "lastTimestamp": ts(30), "count": 5}
    assert row_cells("Event", ev, NOW) == ["30s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}",
                                           "kubelet, node-1", "Back-off restarting", "10m", 5, "p.123"]
    new_style = {"metadata": meta("e"), "type": "Normal", "reason": "Scheduled", "involvedObject": {"kind": "Node"},
                 "eventTime": ts(5), "reportingComponent": "default-scheduler"}
    cells = row_cells("Event", new_style, NOW)
    assert cells[0] == "5s" and cells[3] == "node" and cells[5] == "default-scheduler" and cells[8] == 1
