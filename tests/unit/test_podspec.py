"""Pod spec -> runtime configs (podspec): env, $(VAR), resources, mounts, ports, hash."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mkube.api.types import Pod
from mkube.kubelet.podspec import (
    LABEL_GRACE,
    ConfigError,
    container_config,
    container_hash,
    expand,
    sandbox_config,
)
from mkube.kubelet.runtime.base import Mount, PortMapping


def pod(**spec: Any) -> Pod:
    return Pod.from_dict({
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 20, **spec},
    })


def test_sandbox_publishes_every_declared_port_once() -> None:
    p = pod(containers=[
        {"name": "a", "image": "x", "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]},
        {"name": "b", "image": "x", "ports": [{"containerPort": 8080, "protocol": "TCP"},
                                              {"containerPort": 9090, "hostPort": 19090, "hostIP": "127.0.0.1"}]},
    ], hostAliases=[{"ip": "10.0.0.5", "hostnames": ["db", "db.local"]}], hostname="front")
    cfg = sandbox_config(p, attempt=2)
    assert cfg.ports == [PortMapping(8080, "TCP", 0, ""), PortMapping(53, "UDP", 0, ""),
                         PortMapping(9090, "TCP", 19090, "127.0.0.1")]
    assert (cfg.pod_uid, cfg.namespace, cfg.name, cfg.hostname, cfg.attempt) == ("u-1", "shop", "web-1", "front", 2)
    assert cfg.extra_hosts == [("db", "10.0.0.5"), ("db.local", "10.0.0.5")]
    assert not cfg.host_network
    assert sandbox_config(pod(containers=[], hostNetwork=True)).host_network


def test_container_config_maps_the_spec() -> None:
    p = pod(containers=[{
        "name": "app", "image": "shop/web:3", "command": ["/bin/run", "--name=$(POD_NAME)"],
        "args": ["$(GREETING) world", "$$(literal)", "$(UNKNOWN)"], "workingDir": "/srv",
        "env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "MSG", "value": "$(GREETING) from $(POD_NAME)"},
            {"name": "DB", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "db"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True},
                         {"name": "cache", "mountPath": "/cache/sub", "subPath": "a/b"}],
        "securityContext": {"runAsUser": 1000},
    }], securityContext={"runAsGroup": 2000})

    def lookup(kind: str, ns: str, name: str) -> dict[str, str] | None:
        data = {("configmap", "shop", "cfg"): {"db": "postgres://db", "mode": "fast"},
                ("secret", "shop", "sec"): {"pw": "s3cret"}}
        return data.get((kind, ns, name))

    cfg = container_config(p, p.spec.containers[0], attempt=4, pod_ip="10.1.2.3",
                           volume_paths={"data": "/var/lib/mkube/pods/u-1/data", "cache": "/tmp/c/"}, lookup=lookup)
    assert cfg.name == "app" and cfg.image == "shop/web:3" and cfg.attempt == 4
    assert cfg.command == ["/bin/run", "--name=web-1"]
    assert cfg.args == ["hello world", "$(literal)", "$(UNKNOWN)"]
    assert cfg.working_dir == "/srv"
    assert cfg.env == {
        "CFG_db": "postgres://db", "CFG_mode": "fast", "GREETING": "hello", "POD_NAME": "web-1",
        "POD_IP": "10.1.2.3", "NODE": "node-a", "APP": "web", "MEM": "128", "MSG": "hello from web-1",
        "DB": "postgres://db", "PW": "s3cret",
    }
    assert (cfg.nano_cpus, cfg.cpu_shares, cfg.memory_limit) == (500_000_000, 256, 128 * 1024 * 1024)
    assert cfg.mounts == [Mount("/var/lib/mkube/pods/u-1/data", "/data", True), Mount("/tmp/c/a/b", "/cache/sub")]
    assert cfg.user == "1000:2000"
    assert cfg.labels == {LABEL_GRACE: "20"}
    assert cfg.spec_hash == container_hash(p.spec.containers[0])


def test_requests_default_to_limits_and_minimum_shares() -> None:
    p = pod(containers=[{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}}},
                        {"name": "b", "image": "x", "resources": {"requests": {"cpu": "1m"}}},
                        {"name": "c", "image": "x"}])
    a, b, c = (container_config(p, x) for x in p.spec.containers)
    assert (a.nano_cpus, a.cpu_shares) == (1_000_000_000, 1024)
    assert (b.nano_cpus, b.cpu_shares) == (None, 2)
    assert (c.nano_cpus, c.cpu_shares, c.memory_limit, c.user) == (None, None, None, None)


def test_config_errors() -> None:
    p = pod(containers=[
        {"name": "a", "image": "x", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}}]},
        {"name": "b", "image": "x", "envFrom": [{"secretRef": {"name": "s"}}]},
        {"name": "c", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
        {"name": "d", "image": "x", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
    ])
    for c in p.spec.containers:
        with pytest.raises(ConfigError):
            container_config(p, c, lookup=lambda kind, ns, name: None)


def test_hash_is_stable_and_sensitive() -> None:
    body = {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"}]}
    p1 = pod(containers=[body])
    p2 = pod(containers=[copy.deepcopy(body)])
    assert container_hash(p1.spec.containers[0]) == container_hash(p2.spec.containers[0])
    changed = pod(containers=[{**body, "image": "x:2"}])
    assert container_hash(changed.spec.containers[0]) != container_hash(p1.spec.containers[0])
    assert len(container_hash(p1.spec.containers[0])) == 16


def test_expand() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$(C)-$$(A)-$A", env) == "1-two-$(C)-$(A)-$A"
