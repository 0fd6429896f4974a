"""Defaulting and validation through the strategy entry points the API server calls."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from mkube.api import kinds, strategy
from mkube.api.errors import ApiError, BadRequest, Invalid
from mkube.api.kinds import ResourceType

Obj = dict[str, Any]


def rt(name: str) -> ResourceType:
    r = kinds.lookup(name)
    assert r is not None
    return r


PODS, DEPLOYS, RSS, SVCS = rt("pods"), rt("deployments"), rt("replicasets"), rt("services")
SECRETS, CMS, NSS, NODES = rt("secrets"), rt("configmaps"), rt("namespaces"), rt("nodes")
EVENTS, LEASES, EPS = rt("events"), rt("leases"), rt("endpoints")


def pod(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}], **spec}}


def deployment(**spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}, **spec}}


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


# ---------------------------------------------------------------- defaulting

def test_pod_defaults() -> None:
    body = pod()
    body["spec"]["containers"][0].update(
        ports=[{"containerPort": 80}],
        livenessProbe={"httpGet": {"port": 80}},
        readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 5},
        env=[{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        resources={"limits": {"cpu": "1", "memory": "64Mi"}})
    body["spec"]["containers"].append({"name": "side", "image": "busybox"})
    body["spec"]["volumes"] = [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}}]
    out = strategy.prepare_for_create(PODS, body)
    spec = out["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["schedulerName"], spec["terminationGracePeriodSeconds"],
            spec["enableServiceLinks"], spec["securityContext"]) == (
        "Always", "ClusterFirst", "default-scheduler", 30, True, {})
    c0, c1 = spec["containers"]
    assert c0["imagePullPolicy"] == "IfNotPresent"
    assert c1["imagePullPolicy"] == "Always"  # no tag means :latest
    assert c0["terminationMessagePath"] == "/dev/termination-log"
    assert c0["terminationMessagePolicy"] == "File"
    assert c0["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c0["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c0["readinessProbe"]["periodSeconds"] == 5
    assert c0["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert c0["resources"]["requests"] == {"cpu": "1", "memory": "64Mi"}  # requests default to limits
    assert spec["volumes"] == [{"name": "scratch", "emptyDir": {}},
                               {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}]
    assert out["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    assert "uid" not in out["metadata"] and "creationTimestamp" not in out["metadata"]


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy_default(image: str, policy: str) -> None:
    body = pod()
    body["spec"]["containers"][0]["image"] = image
    assert strategy.prepare_for_create(PODS, body)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_qos_classes() -> None:
    def qos(resources: Obj | None) -> str:
        body = pod()
        if resources is not None:
            body["spec"]["containers"][0]["resources"] = resources
        return str(strategy.prepare_for_create(PODS, body)["status"]["qosClass"])

    assert qos(None) == "BestEffort"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}}) == "Guaranteed"
    assert qos({"requests": {"cpu": "100m"}}) == "Burstable"
    assert qos({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}) == "Burstable"


def test_pod_status_is_reset_on_create() -> None:
    body = pod()
    body["status"] = {"phase": "Running", "podIP": "1.2.3.4"}
    assert strategy.prepare_for_create(PODS, body)["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_host_network_ports_default_host_port() -> None:
    body = pod(hostNetwork=True)
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    out = strategy.prepare_for_create(PODS, body)
    assert out["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_deployment_defaults() -> None:
    out = strategy.prepare_for_create(DEPLOYS, deployment())
    spec = out["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["dnsPolicy"] == "ClusterFirst"
    assert tspec["containers"][0]["imagePullPolicy"] == "Always"
    assert "enableServiceLinks" not in tspec  # a Pod default, not a template default
    assert out["status"] == {}
    recreate = strategy.prepare_for_create(DEPLOYS, deployment(strategy={"type": "Recreate"}))
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults() -> None:
    body = deployment()
    body.update(kind="ReplicaSet")
    out = strategy.prepare_for_create(RSS, body)
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_service_defaults() -> None:
    body = service(ports=[{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}])
    body["spec"]["ports"][0]["name"] = "http"
    spec = strategy.prepare_for_create(SVCS, body)["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "dns"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    np = strategy.prepare_for_create(SVCS, service(type="NodePort"))["spec"]
    assert np["externalTrafficPolicy"] == "Cluster"


def test_secret_namespace_node_defaults() -> None:
    sec = strategy.prepare_for_create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"user": "admin"},
                                                "data": {"x": "eA=="}})
    assert sec["type"] == "Opaque"
    assert sec["data"] == {"x": "eA==", "user": "YWRtaW4="}
    assert "stringData" not in sec
    ns = strategy.prepare_for_create(NSS, {"metadata": {"name": "team-a"}})
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    node = strategy.prepare_for_create(NODES, {"metadata": {"name": "n1"},
                                               "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


def test_defaults_never_override_client_values() -> None:
    body = pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=5)
    body["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = strategy.prepare_for_create(PODS, body)["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", "Default", 5)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_inputs_are_not_mutated() -> None:
    body = deployment()
    before = copy.deepcopy(body)
    strategy.prepare_for_create(DEPLOYS, body)
    assert body == before


# ---------------------------------------------------------------- invalid objects

def _set(path: str, value: Any) -> Callable[[Obj], None]:
    def apply(o: Obj) -> None:
        cur: Any = o
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur[int(p)] if p.isdigit() else cur.setdefault(p, {})
        last = parts[-1]
        if last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value
    return apply


C0 = "spec.containers.0"
TC0 = "spec.template.spec.containers.0"

# (resource, base object, mutation, [(field, reason, message fragment)])
INVALID: list[tuple[ResourceType, Callable[[], Obj], Callable[[Obj], None], list[tuple[str, str, str]]]] = [
    (PODS, pod, _set("metadata.name", "Bad_Name"),
     [("metadata.name", "FieldValueInvalid", 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')]),
    (PODS, pod, _set("metadata.name", "a" * 254),
     [("metadata.name", "FieldValueInvalid", "must be no more than 253 characters")]),
    (PODS, pod, _set("metadata.name", ""),
     [("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")]),
    (PODS, pod, _set("metadata.generateName", "Web-"),
     [("metadata.generateName", "FieldValueInvalid", "RFC 1123 subdomain")]),
    (PODS, pod, _set("metadata.namespace", "Bad.NS"),
     [("metadata.namespace", "FieldValueInvalid", "RFC 1123 label")]),
    (PODS, pod, _set("metadata.labels", {"bad key": "v", "ok": "-bad-"}),
     [("metadata.labels", "FieldValueInvalid", 'Invalid value: "bad key": name part must consist of'),
      ("metadata.labels", "FieldValueInvalid", 'Invalid value: "-bad-": a valid label must be')]),
    (PODS, pod, _set("metadata.labels", {"app": 1}),
     [("metadata.labels[app]", "FieldValueInvalid", "Invalid value: 1: must be a string")]),
    (PODS, pod, _set("metadata.annotations", {"a": "x" * (256 * 1024)}),
     [("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes")]),
    (PODS, pod, _set("metadata.ownerReferences", [{"apiVersion": "v1", "kind": "X", "name": "a", "uid": "1",
                                                   "controller": True},
                                                  {"apiVersion": "v1", "kind": "Y", "name": "b", "uid": "2",
                                                   "controller": True}]),
     [("metadata.ownerReferences", "FieldValueInvalid", "Only one reference can have Controller set to true")]),
    (PODS, pod, _set("spec.containers", []), [("spec.containers", "FieldValueRequired", "Required value")]),
    (PODS, pod, _set(f"{C0}.name", "Web_1"), [("spec.containers[0].name", "FieldValueInvalid", "RFC 1123 label")]),
    (PODS, pod, lambda o: o["spec"]["containers"].append({"name": "web", "image": "x"}),
     [("spec.containers[1].name", "FieldValueDuplicate", 'Duplicate value: "web"')]),
    (PODS, pod, _set("spec.initContainers", [{"name": "web", "image": "x"}]),
     [("spec.initContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "web"')]),
    (PODS, pod, _set(f"{C0}.image", ""), [("spec.containers[0].image", "FieldValueRequired", "Required value")]),
    (PODS, pod, _set(f"{C0}.image", " nginx"),
     [("spec.containers[0].image", "FieldValueInvalid", "must not have leading or trailing whitespace")]),
    (PODS, pod, _set(f"{C0}.ports", [{"containerPort": 70000}]),
     [("spec.containers[0].ports[0].containerPort", "FieldValueInvalid",
       "Invalid value: 70000: must be between 1 and 65535, inclusive")]),
    (PODS, pod, _set(f"{C0}.ports", [{"containerPort": "abc"}]),
     [("spec.containers[0].ports[0].containerPort", "FieldValueInvalid", 'Invalid value: "abc": must be an integer')]),
    (PODS, pod, _set(f"{C0}.ports", [{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]),
     [("spec.containers[0].ports[1].name", "FieldValueDuplicate", 'Duplicate value: "http"')]),
    (PODS, pod, _set(f"{C0}.ports", [{"containerPort": 80, "name": "HTTP_PORT_TOO_LONG"}]),
     [("spec.containers[0].ports[0].name", "FieldValueInvalid", "must be no more than 15 characters"),
      ("spec.containers[0].ports[0].name", "FieldValueInvalid", "must contain only alpha-numeric characters"),
      ("spec.containers[0].ports[0].name", "FieldValueInvalid", "must contain at least one letter (a-z)")]),
    (PODS, pod, _set(f"{C0}.ports", [{"containerPort": 80, "hostPort": 70000, "protocol": "HTTP"}]),
     [("spec.containers[0].ports[0].hostPort", "FieldValueInvalid", "must be between 1 and 65535"),
      ("spec.containers[0].ports[0].protocol", "FieldValueNotSupported",
       'Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"')]),
    (PODS, pod, _set(f"{C0}.ports", [{"protocol": "TCP"}]),
     [("spec.containers[0].ports[0].containerPort", "FieldValueRequired", "Required value")]),
    (PODS, pod, _set(f"{C0}.env", [{"name": "1BAD"}, {"name": "A", "value": "x", "valueFrom": {}}]),
     [("spec.containers[0].env[0].name", "FieldValueInvalid", "a valid environment variable name"),
      ("spec.containers[0].env[1].valueFrom", "FieldValueInvalid", "may not be specified when `value` is not empty"),
      ("spec.containers[0].env[1].valueFrom", "FieldValueInvalid", "must specify one of: `fieldRef`")]),
    (PODS, pod, _set(f"{C0}.volumeMounts", [{"name": "missing", "mountPath": "/data"}]),
     [("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "missing"')]),
    (PODS, lambda: pod(volumes=[{"name": "d", "emptyDir": {}}, {"name": "d", "emptyDir": {}}]), lambda o: None,
     [("spec.volumes[1].name", "FieldValueDuplicate", 'Duplicate value: "d"')]),
    (PODS, lambda: pod(volumes=[{"name": "d", "emptyDir": {}, "hostPath": {"path": "/x"}}]), lambda o: None,
     [("spec.volumes[0].hostPath", "FieldValueForbidden", "may not specify more than 1 volume type")]),
    (PODS, pod, _set(f"{C0}.livenessProbe", {"periodSeconds": 5}),
     [("spec.containers[0].livenessProbe", "FieldValueRequired", "must specify a handler type")]),
    (PODS, pod, _set(f"{C0}.livenessProbe", {"exec": {"command": ["x"]}, "tcpSocket": {"port": 80},
                                              "successThreshold": 2}),
     [("spec.containers[0].livenessProbe.tcpSocket", "FieldValueForbidden", "may not specify more than 1 handler"),
      ("spec.containers[0].livenessProbe.successThreshold", "FieldValueInvalid", "Invalid value: 2: must be 1")]),
    (PODS, pod, _set(f"{C0}.readinessProbe", {"httpGet": {"port": 1.5}}),
     [("spec.containers[0].readinessProbe.httpGet.port", "FieldValueInvalid",
       "Invalid value: 1.5: must be an integer or a string")]),
    (PODS, pod, _set(f"{C0}.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     [("spec.containers[0].resources.requests[cpu]", "FieldValueInvalid",
       'Invalid value: "2": must be less than or equal to cpu limit of 1')]),
    (PODS, pod, _set(f"{C0}.resources", {"requests": {"memory": "lots"}}),
     [("spec.containers[0].resources.requests[memory]", "FieldValueInvalid", "quantities must match the regular")]),
    (PODS, pod, _set(f"{C0}.resources", {"limits": {"gpu": "1"}}),
     [("spec.containers[0].resources.limits[gpu]", "FieldValueInvalid", "must be a standard resource type"),
      # requests default to limits, so the bad name shows up twice, as in Kubernetes
      ("spec.containers[0].resources.requests[gpu]", "FieldValueInvalid", "must be a standard resource type")]),
    (PODS, lambda: pod(restartPolicy="Sometimes"), lambda o: None,
     [("spec.restartPolicy", "FieldValueNotSupported",
       'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')]),
    (PODS, lambda: pod(activeDeadlineSeconds=0), lambda o: None,
     [("spec.activeDeadlineSeconds", "FieldValueInvalid", "must be between 1 and 2147483647, inclusive")]),
    (PODS, lambda: pod(tolerations=[{"key": "a", "operator": "Exists", "value": "b"},
                                    {"operator": "Equal", "value": "x"},
                                    {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]), lambda o: None,
     [("spec.tolerations[0].operator", "FieldValueInvalid", "value must be empty when `operator` is 'Exists'"),
      ("spec.tolerations[1].operator", "FieldValueInvalid", "operator must be Exists when `key` is empty"),
      ("spec.tolerations[2].effect", "FieldValueInvalid", "effect must be 'NoExecute'")]),
    (PODS, lambda: pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}}), lambda o: None,
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
       ".matchExpressions[0].values", "FieldValueRequired", "must be specified when `operator` is 'In'")]),
    (PODS, pod, _set("spec.containers", [{"image": "x"}]),
     [("spec.containers[0].name", "FieldValueRequired", "Required value")]),
    (DEPLOYS, deployment, _set("spec.replicas", -1),
     [("spec.replicas", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0")]),
    (DEPLOYS, deployment, _set("spec.replicas", "abc"),
     [("spec.replicas", "FieldValueInvalid", 'Invalid value: "abc": must be an integer')]),
    (DEPLOYS, deployment, _set("spec.selector", None), [("spec.selector", "FieldValueRequired", "Required value")]),
    (DEPLOYS, deployment, _set("spec.selector", {}),
     [("spec.selector", "FieldValueInvalid", "empty selector is invalid for deployment")]),
    (DEPLOYS, deployment, _set("spec.selector", {"matchLabels": {"app": "other"}}),
     [("spec.template.metadata.labels", "FieldValueInvalid", "`selector` does not match template `labels`")]),
    (DEPLOYS, deployment, _set("spec.selector", {"matchExpressions": [{"key": "a", "operator": "Exists",
                                                                      "values": ["x"]}]}),
     [("spec.selector.matchExpressions[0].values", "FieldValueForbidden", "may not be specified when `operator`")]),
    (DEPLOYS, deployment, _set("spec.template.spec.restartPolicy", "Never"),
     [("spec.template.spec.restartPolicy", "FieldValueNotSupported", 'supported values: "Always"')]),
    (DEPLOYS, deployment, _set(f"{TC0}.ports", [{"containerPort": 0}]),
     [("spec.template.spec.containers[0].ports[0].containerPort", "FieldValueRequired", "Required value")]),
    (DEPLOYS, deployment, _set("spec.strategy", {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     [("spec.strategy.rollingUpdate", "FieldValueForbidden", "may not be specified when strategy `type` is")]),
    (DEPLOYS, deployment, _set("spec.strategy", {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
     [("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid", "may not be 0 when `maxSurge` is 0")]),
    (DEPLOYS, deployment, _set("spec.strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x"}}),
     [("spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid", "a valid percent string")]),
    (DEPLOYS, deployment, _set("spec.strategy", {"type": "Blue"}),
     [("spec.strategy.type", "FieldValueNotSupported", 'supported values: "Recreate", "RollingUpdate"')]),
    (DEPLOYS, lambda: deployment(minReadySeconds=10), _set("spec.progressDeadlineSeconds", 5),
     [("spec.progressDeadlineSeconds", "FieldValueInvalid", "must be greater than minReadySeconds")]),
    (RSS, lambda: {**deployment(), "kind": "ReplicaSet"}, _set("spec.replicas", -3),
     [("spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0")]),
    (SVCS, service, _set("metadata.name", "1web"),
     [("metadata.name", "FieldValueInvalid", "a DNS-1035 label must consist of")]),
    (SVCS, service, _set("spec.ports", []), [("spec.ports", "FieldValueRequired", "Required value")]),
    (SVCS, service, _set("spec.ports", [{"port": 80}, {"port": 443}]),
     [("spec.ports[0].name", "FieldValueRequired", "Required value"),
      ("spec.ports[1].name", "FieldValueRequired", "Required value")]),
    (SVCS, service, _set("spec.ports", [{"name": "a", "port": 80}, {"name": "a", "port": 80}]),
     [("spec.ports[1].name", "FieldValueDuplicate", 'Duplicate value: "a"'),
      ("spec.ports[1]", "FieldValueDuplicate", 'Duplicate value: {"port":80,"protocol":"TCP"}')]),
    (SVCS, service, _set("spec.ports", [{"port": 0, "targetPort": 99999}]),
     [("spec.ports[0].port", "FieldValueInvalid", "must be between 1 and 65535, inclusive"),
      ("spec.ports[0].targetPort", "FieldValueInvalid", "must be between 1 and 65535, inclusive")]),
    (SVCS, service, _set("spec.ports", [{"port": 80, "nodePort": 30080}]),
     [("spec.ports[0].nodePort", "FieldValueForbidden", "may not be used when `type` is 'ClusterIP'")]),
    (SVCS, service, _set("spec.type", "Magic"),
     [("spec.type", "FieldValueNotSupported", 'Unsupported value: "Magic"')]),
    (SVCS, service, _set("spec.clusterIP", "not-an-ip"),
     [("spec.clusterIP", "FieldValueInvalid", "must be a valid IP address")]),
    (SVCS, service, _set("spec.type", "ExternalName"),
     [("spec.externalName", "FieldValueRequired", "Required value")]),
    (SVCS, lambda: service(type="NodePort", clusterIP="None"), lambda o: None,
     [("spec.clusterIP", "FieldValueInvalid", "may not be set to 'None' for NodePort services")]),
    (SECRETS, lambda: {"metadata": {"name": "s"}, "data": {"k": "not base64!"}}, lambda o: None,
     [("data[k]", "FieldValueInvalid", "illegal base64 data")]),
    (SECRETS, lambda: {"metadata": {"name": "s"}, "data": {"bad key": "eA=="}}, lambda o: None,
     [("data[bad key]", "FieldValueInvalid", "a valid config key must consist of")]),
    (SECRETS, lambda: {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}},
     lambda o: None, [("data[tls.key]", "FieldValueRequired", "Required value")]),
    (CMS, lambda: {"metadata": {"name": "c"}, "data": {"a/b": "x"}}, lambda o: None,
     [("data[a/b]", "FieldValueInvalid", "a valid config key")]),
    (CMS, lambda: {"metadata": {"name": "c"}, "data": {"a": "x"}, "binaryData": {"a": "eA=="}}, lambda o: None,
     [("data[a]", "FieldValueInvalid", "duplicate of key present in binaryData")]),
    (CMS, lambda: {"metadata": {"name": "c"}, "data": {"a": 1}}, lambda o: None,
     [("data[a]", "FieldValueInvalid", "Invalid value: 1: must be a string")]),
    (NSS, lambda: {"metadata": {"name": "my.ns"}}, lambda o: None,
     [("metadata.name", "FieldValueInvalid", "a lowercase RFC 1123 label must consist of")]),
    (NODES, lambda: {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}},
     lambda o: None, [("spec.taints[0].effect", "FieldValueNotSupported", 'Unsupported value: "Sometimes"')]),
    (NODES, lambda: {"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "four"}}}, lambda o: None,
     [("status.capacity[cpu]", "FieldValueInvalid", "quantities must match"),
      ("status.allocatable[cpu]", "FieldValueInvalid", "quantities must match")]),  # allocatable defaults
    (EVENTS, lambda: {"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"namespace": "b"}},
     lambda o: None, [("involvedObject.namespace", "FieldValueInvalid", "does not match event.namespace")]),
    (LEASES, lambda: {"metadata": {"name": "l", "namespace": "x"}, "spec": {"leaseDurationSeconds": 0}},
     lambda o: None, [("spec.leaseDurationSeconds", "FieldValueInvalid", "must be greater than 0")]),
    (EPS, lambda: {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "nope"}],
                                                           "ports": [{"port": 80, "protocol": "XTP"}]}]},
     lambda o: None, [("subsets[0].addresses[0].ip", "FieldValueInvalid", "must be a valid IP address"),
                      ("subsets[0].ports[0].protocol", "FieldValueNotSupported", 'Unsupported value: "XTP"')]),
]


@pytest.mark.parametrize(("resource", "base", "mutate", "expected"), INVALID,
                         ids=[f"{r.kind}-{i}" for i, (r, *_rest) in enumerate(INVALID)])
def test_invalid_objects(resource: ResourceType, base: Callable[[], Obj], mutate: Callable[[Obj], None],
                         expected: list[tuple[str, str, str]]) -> None:
    body = base()
    mutate(body)
    with pytest.raises(Invalid) as exc:
        strategy.prepare_for_create(resource, body)
    err = exc.value
    assert err.code == 422 and err.reason == "Invalid"
    assert err.kind == resource.kind and err.group == (resource.group or None)
    got = [(c.field, c.reason, c.message) for c in err.causes]
    for field, reason, fragment in expected:
        assert any(f == field and r == reason and fragment in m for f, r, m in got), (field, reason, fragment, got)
    assert len(got) == len(expected), got
    status = err.to_status()
    # Kubernetes' shape: the cause names its field apart; the message does not repeat it
    # (kubectl prints "field: message" itself).
    first = status["details"]["causes"][0]
    assert first["field"] == got[0][0] and not first["message"].startswith(got[0][0] + ":")
    assert f"{got[0][0]}: {got[0][2]}" in status["message"]


def test_invalid_message_reads_like_kubernetes() -> None:
    with pytest.raises(Invalid) as exc:
        strategy.prepare_for_create(DEPLOYS, deployment(replicas=-1))
    assert exc.value.message == (
        'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0')


def test_non_object_body_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        strategy.prepare_for_create(PODS, [1, 2])  # type: ignore[arg-type]


def test_valid_objects_of_every_kind_pass() -> None:
    objs: dict[str, Obj] = {
        "Pod": pod(), "Deployment": deployment(), "ReplicaSet": {**deployment(), "kind": "ReplicaSet"},
        "Service": service(), "ConfigMap": {"metadata": {"name": "c"}, "data": {"k": "v"}},
        "Secret": {"metadata": {"name": "s"}, "data": {"k": "dg=="}},
        "Namespace": {"metadata": {"name": "ns"}}, "Node": {"metadata": {"name": "node-1.example"}},
        "Event": {"metadata": {"name": "e.1", "namespace": "default"}, "involvedObject": {"kind": "Node",
                                                                                         "name": "n"}},
        "Lease": {"metadata": {"name": "n", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "n"}},
        "Endpoints": {"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                                                                "ports": [{"port": 80}]}]},
    }
    for kind, body in objs.items():
        r = kinds.by_kind(body.get("apiVersion") or ("apps/v1" if kind in ("Deployment", "ReplicaSet") else
                                                     "coordination.k8s.io/v1" if kind == "Lease" else "v1"), kind)
        assert r is not None
        strategy.prepare_for_create(r, body)


# ---------------------------------------------------------------- updates

def _created(resource: ResourceType, body: Obj) -> Obj:
    out = strategy.prepare_for_create(resource, body)
    md = out["metadata"]
    md.update(uid="uid-1", resourceVersion="5", creationTimestamp="2025-01-01T00:00:00Z", generation=1)
    return out


def test_update_keeps_status_and_server_metadata() -> None:
    old = _created(DEPLOYS, deployment())
    old["status"] = {"replicas": 1}
    body = deployment(replicas=3)
    body["status"] = {"replicas": 99}
    out = strategy.prepare_for_update(DEPLOYS, body, old)
    assert out["spec"]["replicas"] == 3
    assert out["status"] == {"replicas": 1}
    assert out["metadata"]["uid"] == "uid-1"
    assert out["metadata"]["creationTimestamp"] == "2025-01-01T00:00:00Z"
    assert strategy.spec_changed(DEPLOYS, out, old)


def test_update_immutable_fields() -> None:
    old = _created(DEPLOYS, deployment())
    body = deployment(selector={"matchLabels": {"app": "web", "v": "2"}})
    body["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    with pytest.raises(Invalid) as exc:
        strategy.prepare_for_update(DEPLOYS, body, old)
    assert [(c.field, c.message.split(":")[0]) for c in exc.value.causes] == [("spec.selector", "Invalid value")]
    assert "field is immutable" in exc.value.causes[0].message
    body = deployment()
    body["metadata"]["uid"] = "other"
    with pytest.raises(Invalid, match="metadata.uid: Invalid value: \"other\": field is immutable"):
        strategy.prepare_for_update(DEPLOYS, body, old)


def test_pod_update_allows_image_only() -> None:
    old = _created(PODS, pod(tolerations=[{"key": "a", "operator": "Exists"}]))
    old["spec"]["nodeName"] = "node-1"
    ok = pod(nodeName="node-1", tolerations=[{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
             activeDeadlineSeconds=100)
    ok["spec"]["containers"][0]["image"] = "nginx:1.26"
    ok["metadata"]["labels"] = {"new": "label"}
    out = strategy.prepare_for_update(PODS, ok, old)
    assert out["spec"]["containers"][0]["image"] == "nginx:1.26"
    bad = pod(nodeName="node-2", tolerations=[{"key": "a", "operator": "Exists"}])
    with pytest.raises(Invalid) as exc:
        strategy.prepare_for_update(PODS, bad, old)
    cause = exc.value.causes[0]
    assert (cause.field, cause.reason) == ("spec", "FieldValueForbidden")
    assert "pod updates may not change fields other than" in cause.message and "spec.nodeName" in cause.message
    removed = pod(nodeName="node-1")
    with pytest.raises(Invalid, match="existing toleration can not be modified"):
        strategy.prepare_for_update(PODS, removed, old)
    added = pod(nodeName="node-1", tolerations=[{"key": "a", "operator": "Exists"}])
    added["spec"]["containers"].append({"name": "x", "image": "y"})
    with pytest.raises(Invalid, match="may not add or remove containers"):
        strategy.prepare_for_update(PODS, added, old)


def test_service_update_keeps_allocations_and_refuses_cluster_ip_change() -> None:
    old = _created(SVCS, service(type="NodePort"))
    old["spec"].update(clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    out = strategy.prepare_for_update(SVCS, service(type="NodePort"), old)
    assert out["spec"]["clusterIP"] == "10.96.0.10"
    assert out["spec"]["ports"][0]["nodePort"] == 30080
    with pytest.raises(Invalid, match="spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"):
        strategy.prepare_for_update(SVCS, service(type="NodePort", clusterIP="10.96.0.11"), old)


def test_immutable_secret_and_configmap() -> None:
    old = _created(CMS, {"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True})
    with pytest.raises(Invalid) as exc:
        strategy.prepare_for_update(CMS, {"metadata": {"name": "c"}, "data": {"a": "2"}}, old)
    assert {(c.field, c.reason) for c in exc.value.causes} == {("data", "FieldValueForbidden"),
                                                               ("immutable", "FieldValueForbidden")}
    old_s = _created(SECRETS, {"metadata": {"name": "s"}, "data": {"a": "eA=="}})
    with pytest.raises(Invalid, match="type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"):
        strategy.prepare_for_update(SECRETS, {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth",
                                              "data": {"username": "eA=="}}, old_s)


def test_no_new_finalizers_while_deleting() -> None:
    old = _created(CMS, {"metadata": {"name": "c", "finalizers": ["a/b"]}})
    old["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z"
    out = strategy.prepare_for_update(CMS, {"metadata": {"name": "c", "finalizers": []}}, old)
    assert out["metadata"]["deletionTimestamp"] == "2025-01-02T00:00:00Z"
    with pytest.raises(Invalid, match="no new finalizers can be added"):
        strategy.prepare_for_update(CMS, {"metadata": {"name": "c", "finalizers": ["a/b", "c/d"]}}, old)


# ---------------------------------------------------------------- status updates

def test_status_update_takes_only_status() -> None:
    old = _created(PODS, pod())
    body = pod(nodeName="sneaky")
    body["metadata"]["labels"] = {"sneaky": "x"}
    body["status"] = {"phase": "Running", "podIP": "10.1.0.5",
                      "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                             "state": {"running": {"startedAt": "2025-01-01T00:00:01Z"}}}]}
    out = strategy.prepare_for_status_update(PODS, body, old)
    assert out["spec"] == old["spec"] and out["metadata"] == old["metadata"]
    assert out["status"]["phase"] == "Running" and out["status"]["podIP"] == "10.1.0.5"
    assert out["status"]["qosClass"] == "BestEffort"  # kept from the old status


def test_status_update_validation() -> None:
    old = _created(PODS, pod())
    with pytest.raises(Invalid, match="status.phase: Unsupported value: \"Sleeping\""):
        strategy.prepare_for_status_update(PODS, {"status": {"phase": "Sleeping"}}, old)
    with pytest.raises(Invalid, match=r"status.containerStatuses\[0\].restartCount: Invalid value: \"x\""):
        strategy.prepare_for_status_update(PODS, {"status": {"containerStatuses": [
            {"name": "web", "restartCount": "x"}]}}, old)
    done = copy.deepcopy(old)
    done["status"]["phase"] = "Succeeded"
    with pytest.raises(Invalid, match="terminal phase"):
        strategy.prepare_for_status_update(PODS, {"status": {"phase": "Running"}}, done)
    rs = _created(RSS, {**deployment(), "kind": "ReplicaSet"})
    with pytest.raises(Invalid, match="status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas"):
        strategy.prepare_for_status_update(RSS, {"status": {"replicas": 2, "readyReplicas": 3}}, rs)
    out = strategy.prepare_for_status_update(RSS, {"status": {"replicas": 2, "readyReplicas": 2,
                                                              "availableReplicas": 1}}, rs)
    assert out["status"]["replicas"] == 2 and out["spec"] == rs["spec"]


# ---------------------------------------------------------------- performance

def test_pod_create_is_fast() -> None:
    body = pod()
    body["metadata"]["labels"] = {"app": "web", "pod-template-hash": "abc123"}
    body["spec"]["containers"][0].update(ports=[{"containerPort": 80, "name": "http"}],
                                         resources={"requests": {"cpu": "100m", "memory": "64Mi"}},
                                         readinessProbe={"httpGet": {"port": "http"}})
    strategy.prepare_for_create(PODS, body)
    n = 300
    start = time.perf_counter()
    for _ in range(n):
        strategy.prepare_for_create(PODS, body)
    per_create = (time.perf_counter() - start) / n
    assert per_create < 0.001, f"{per_create * 1e6:.0f} us per pod create"


def test_errors_are_api_errors() -> None:
    with pytest.raises(ApiError):
        strategy.prepare_for_create(PODS, {"metadata": "nope"})
