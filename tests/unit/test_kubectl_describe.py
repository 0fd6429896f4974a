"""describe text and the deployment/expose/run/apply helpers behind mkubectl, pure.

The describe layouts were checked line by line against kubectl v1.32 describing the same
objects on an mkube API server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from mkube.kubectl import deployments, polymorphic, resources
from mkube.kubectl.commands.apply import LAST_APPLIED, with_last_applied
from mkube.kubectl.commands.expose import build_service
from mkube.kubectl.commands.rollout import history_text
from mkube.kubectl.commands.run import build_pod
from mkube.kubectl.describe.generic import describe_generic, smart_label
from mkube.kubectl.describe.pods import describe_pod, qos_class
from mkube.kubectl.describe.services import describe_service, format_endpoints
from mkube.kubectl.describe.workloads import describe_deployment
from mkube.kubectl.describe.writer import PrefixWriter, events_section
from mkube.kubectl.errors import CommandError

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def deployment() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 2,
                         "creationTimestamp": "2026-11-27T20:30:27Z", "labels": {"app": "web"},
                         "annotations": {LAST_APPLIED: "{}", "deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                                           "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2,
                       "unavailableReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}}


def replicaset(name: str, revision: int, image: str, cause: str = "") -> Obj:
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                         "creationTimestamp": f"2026-11-27T20:3{revision}:00Z",
                         "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}]},
            "spec": {"replicas": 3, "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": name[-3:]}},
                "spec": {"containers": [{"name": "web", "image": image,
                                         "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
            "status": {"replicas": 3}}


def test_describe_deployment_like_kubectl() -> None:
    dep = deployment()
    new, old = deployments.split_new_old(dep, [replicaset("web-abc", 1, "nginx:1.24"),
                                               replicaset("web-def", 2, "nginx:1.25")])
    assert describe_deployment(dep, old, new, []) == """Name:                   web
Namespace:              default
CreationTimestamp:      Fri, 27 Nov 2026 20:30:27 +0000
Labels:                 app=web
Annotations:            deployment.kubernetes.io/revision: 2
Selector:               app=web
Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=web
  Containers:
   web:
    Image:         nginx:1.25
    Port:          80/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
OldReplicaSets:  web-abc (3/3 replicas created)
NewReplicaSet:   web-def (3/3 replicas created)
Events:          <none>
"""


POD: Obj = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p1", "namespace": "default", "labels": {"app": "web", "tier": "x"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "controller": True}]},
    "spec": {"nodeName": "node1", "containers": [
        {"name": "c1", "image": "busybox", "command": ["sh", "-c"], "args": ["sleep 1000"],
         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name",
                                                                                       "apiVersion": "v1"}}}],
         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
         "volumeMounts": [{"name": "data", "mountPath": "/data"}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"}, "periodSeconds": 5,
                            "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}}],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]},
    "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
               "startTime": "2026-11-27T20:30:27Z",
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "c1", "ready": True, "restartCount": 2, "containerID": "docker://abc",
                                      "imageID": "docker://sha", "state": {"running": {
                                          "startedAt": "2026-11-27T20:31:00Z"}}}]},
}


def test_describe_pod_sections() -> None:
    text = describe_pod(POD, None)
    lines = text.splitlines()
    assert lines[:13] == [
        "Name:         p1",
        "Namespace:    default",
        "Node:         node1/10.0.0.1",
        "Start Time:   Fri, 27 Nov 2026 20:30:27 +0000",
        "Labels:       app=web",
        "              tier=x",
        "Annotations:  <none>",
        "Status:       Running",
        "IP:           10.1.0.5",
        "IPs:",
        "  IP:           10.1.0.5",
        "Controlled By:  ReplicaSet/web-abc",
        "Containers:",
    ]
    for expected in ["    Ports:         80/TCP, 443/TCP", "    Host Ports:    0/TCP, 0/TCP", "      sleep 1000",
                     "    State:          Running", "      Started:      Fri, 27 Nov 2026 20:31:00 +0000",
                     "    Restart Count:  2", "      cpu:     200m", "    Readiness:  http-get http://:80/healthz "
                     "delay=0s timeout=1s period=5s #success=1 #failure=3", "      B:  p1 (v1:metadata.name)",
                     "      /data from data (rw)", "  Ready   True ",
                     "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)",
                     "QoS Class:       Burstable", "Tolerations:     k:NoSchedule op=Exists"]:
        assert expected in lines, expected
    assert "Events:" not in text  # events=None: not asked for


def test_qos_classes() -> None:
    assert qos_class(POD) == "Burstable"
    assert qos_class({"spec": {"containers": [{"name": "a"}]}}) == "BestEffort"
    both = {"cpu": "1", "memory": "1Gi"}
    assert qos_class({"spec": {"containers": [{"resources": {"limits": both, "requests": both}}]}}) == "Guaranteed"
    # without the API server's defaulting (requests := limits) kubectl also says Burstable
    assert qos_class({"spec": {"containers": [{"resources": {"limits": both}}]}}) == "Burstable"


def test_events_table_sorted_with_counts() -> None:
    now = datetime(2026, 11, 27, 21, 0, 0, tzinfo=UTC).timestamp()
    events = [
        {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting  ", "count": 5,
         "source": {"component": "kubelet"}, "firstTimestamp": "2026-11-27T20:41:00Z",
         "lastTimestamp": "2026-11-27T20:58:00Z"},
        {"type": "Normal", "reason": "Scheduled", "message": "assigned", "count": 1,
         "source": {"component": "default-scheduler"}, "firstTimestamp": "2026-11-27T20:40:00Z",
         "lastTimestamp": "2026-11-27T20:40:00Z"},
    ]
    w = PrefixWriter()
    events_section(w, events, now)
    assert w.text() == ("Events:\n"
                        "  Type     Reason     Age               From               Message\n"
                        "  ----     ------     ----              ----               -------\n"
                        "  Normal   Scheduled  20m               default-scheduler  assigned\n"
                        "  Warning  BackOff    2m (x5 over 19m)  kubelet            Back-off restarting\n")


def test_describe_service_and_endpoints_format() -> None:
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "type": "ClusterIP", "clusterIP": "10.96.0.10",
                    "clusterIPs": ["10.96.0.10"], "sessionAffinity": "None",
                    "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    ep = {"subsets": [{"addresses": [{"ip": f"10.1.0.{i}"} for i in range(1, 6)],
                       "ports": [{"port": 8080, "protocol": "TCP"}]}]}
    assert format_endpoints(ep, "") == "10.1.0.1:8080,10.1.0.2:8080,10.1.0.3:8080 + 2 more..."
    assert format_endpoints(None, "") == "<none>"
    lines = describe_service(svc, ep, []).splitlines()
    assert "Port:              <unset>  80/TCP" in lines
    assert "TargetPort:        8080/TCP" in lines
    assert lines[-1] == "Events:            <none>"


def test_generic_describer_smart_labels() -> None:
    assert smart_label("resourceVersion") == "Resource Version"
    assert smart_label("holderIdentity") == "Holder Identity"
    assert smart_label("uid") == "UID"
    assert smart_label("podIP") == "Pod IP"
    text = describe_generic({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": "n1", "namespace": "kube-node-lease", "uid": "u"},
                             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}, [])
    assert text.splitlines() == [
        "Name:         n1", "Namespace:    kube-node-lease", "Labels:       <none>", "Annotations:  <none>",
        "API Version:  coordination.k8s.io/v1", "Kind:         Lease", "Metadata:", "  UID:  u", "Spec:",
        "  Holder Identity:         n1", "  Lease Duration Seconds:  40", "Events:                    <none>"]


# ---------------------------------------------------------------- deployments

def test_rollout_status_messages() -> None:
    dep = deployment()
    assert deployments.status_message(dep) == (
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False, None)
    dep["status"].update(updatedReplicas=1)
    assert deployments.status_message(dep)[0] == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...')
    dep["status"].update(updatedReplicas=3, replicas=4)
    assert deployments.status_message(dep)[0] == (
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...')
    dep["status"].update(replicas=3, availableReplicas=3)
    assert deployments.status_message(dep) == ('deployment "web" successfully rolled out', True, None)
    dep["metadata"]["generation"] = 3
    assert deployments.status_message(dep)[0] == "Waiting for deployment spec update to be observed..."
    dep["status"]["observedGeneration"] = 3
    dep["status"]["conditions"] = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    assert deployments.status_message(dep)[2] == 'deployment "web" exceeded its progress deadline'


def test_rollback_target_and_patch() -> None:
    dep = deployment()
    rss = [replicaset("web-abc", 1, "nginx:1.24", "first"), replicaset("web-def", 2, "nginx:1.25")]
    assert deployments.rollback_target(dep, rss, 0)["metadata"]["name"] == "web-abc"
    assert deployments.rollback_target(dep, rss, 2)["metadata"]["name"] == "web-def"
    with pytest.raises(ValueError, match="unable to find specified revision 7 in history"):
        deployments.rollback_target(dep, rss, 7)
    with pytest.raises(ValueError, match='no rollout history found for deployment "web"'):
        deployments.rollback_target(dep, rss[:1], 0)
    patch = deployments.rollback_patch(dep, rss[0])
    assert patch[0] == {"op": "replace", "path": "/spec/template", "value": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.24", "ports": [{"containerPort": 80,
                                                                                   "protocol": "TCP"}]}]}}}
    # the deployment keeps its own revision and last-applied; the RS's other annotations come along
    assert patch[1]["value"] == {LAST_APPLIED: "{}", "deployment.kubernetes.io/revision": "2",
                                 "kubernetes.io/change-cause": "first"}


def test_history_text() -> None:
    rss = [replicaset("web-def", 2, "nginx:1.25", "kubectl set image"), replicaset("web-abc", 1, "nginx:1.24")]
    assert history_text(deployment(), rss, 0) == ("REVISION  CHANGE-CAUSE\n1         <none>\n"
                                                  "2         kubectl set image\n")
    assert history_text(deployment(), [], 0) == "No rollout history found."
    assert history_text(deployment(), rss, 1).startswith("Pod Template:\n  Labels:\tapp=web\n")
    with pytest.raises(CommandError, match="unable to find the specified revision"):
        history_text(deployment(), rss, 9)


# ---------------------------------------------------------------- expose / run / apply / logs

def test_expose_takes_selector_ports_and_labels_from_the_object() -> None:
    svc = build_service(resources.resolve_type("deploy"), deployment(), name=None, port=None, target_port=None,
                        protocol=None, type_="NodePort", selector=None, labels=None, cluster_ip=None,
                        external_ip=None)
    assert svc == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"selector": {"app": "web"}, "type": "NodePort",
                            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}
    pod = build_service(resources.resolve_type("po"), POD, name="p", port="8080,9090", target_port="http",
                        protocol="UDP", type_=None, selector=None, labels=None, cluster_ip=None, external_ip=None)
    assert pod["spec"]["selector"] == {"app": "web", "tier": "x"}
    assert pod["spec"]["ports"] == [{"port": 8080, "protocol": "UDP", "name": "port-1", "targetPort": "http"},
                                    {"port": 9090, "protocol": "UDP", "name": "port-2", "targetPort": "http"}]
    with pytest.raises(CommandError, match="couldn't find port via --port flag or introspection"):
        build_service(resources.resolve_type("po"), {"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {}},
                      name=None, port=None, target_port=None, protocol=None, type_=None, selector=None, labels=None,
                      cluster_ip=None, external_ip=None)


def test_run_builds_the_pod_kubectl_run_would() -> None:
    pod = build_pod("r", "busybox", port=80, restart="Never", env=("A=1",), labels=None, command=False,
                    args=("sleep", "10"), image_pull_policy=None)
    assert pod["metadata"] == {"name": "r", "labels": {"run": "r"}}
    assert pod["spec"] == {"containers": [{"name": "r", "image": "busybox", "resources": {},
                                           "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}],
                                           "args": ["sleep", "10"]}],
                           "dnsPolicy": "ClusterFirst", "restartPolicy": "Never"}
    cmd = build_pod("r", "busybox", port=None, restart="Always", env=(), labels="a=b,c=d", command=True,
                    args=("sh", "-c", "echo hi"), image_pull_policy="IfNotPresent")
    assert cmd["metadata"]["labels"] == {"a": "b", "c": "d"}
    assert cmd["spec"]["containers"][0]["command"] == ["sh", "-c", "echo hi"]


def test_last_applied_is_what_kubectl_stores() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
           "data": {"k": "<v>"}}
    out = with_last_applied(obj)
    stored = out["metadata"]["annotations"][LAST_APPLIED]
    assert stored == ('{"apiVersion":"v1","data":{"k":"\\u003cv\\u003e"},"kind":"ConfigMap","metadata":'
                      '{"annotations":{},"name":"c","namespace":"default"}}\n')
    assert json.loads(stored)["data"] == {"k": "<v>"}
    assert with_last_applied(out)["metadata"]["annotations"][LAST_APPLIED] == stored  # idempotent
    assert "annotations" not in obj["metadata"]  # input untouched


def test_logs_pod_choice_and_default_container() -> None:
    def pod(name: str, phase: str, node: str = "n", ready: bool = False, restarts: int = 0) -> Obj:
        return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"nodeName": node, "containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                           "containerStatuses": [{"restartCount": restarts}]}}
    pods = [pod("pending", "Pending"), pod("unassigned", "Running", node=""), pod("running", "Running"),
            pod("ready", "Running", ready=True), pod("crashy", "Running", restarts=3)]
    assert [p["metadata"]["name"] for p in polymorphic.sort_for_logging(pods)] == [
        "ready", "crashy", "running", "pending", "unassigned"]
    assert polymorphic.default_container(pods[0]) == ("a", True)
    pods[0]["metadata"]["annotations"] = {polymorphic.DEFAULT_CONTAINER: "b"}
    assert polymorphic.default_container(pods[0]) == ("b", False)
    assert polymorphic.all_container_names(pods[0]) == "a, b"
