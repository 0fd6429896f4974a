"""Service environment variables, ConfigMap/Secret data and pod volumes on the node."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from mkube.api.types import ConfigMap, ObjectMeta, Pod, Secret, Service
from mkube.client import FakeClient
from mkube.kubelet.envvars import pod_service_env, service_env
from mkube.kubelet.volumes import ConfigSource, VolumeError, VolumeManager


def svc(name: str, ns: str = "default", ip: str | None = "10.96.0.10", ports: list[dict] | None = None) -> Service:
    return Service.from_dict({"metadata": {"name": name, "namespace": ns},
                              "spec": {"clusterIP": ip, "ports": ports or [{"port": 6379}]}})


def a_pod(ns: str = "default", links: bool | None = None, volumes: list[dict] | None = None) -> Pod:
    spec: dict = {"containers": [{"name": "app", "image": "x:1"}], "volumes": volumes or []}
    if links is not None:
        spec["enableServiceLinks"] = links
    return Pod.from_dict({"metadata": {"name": "p", "namespace": ns, "uid": "uid-1"}, "spec": spec})


def test_service_env_as_kubernetes_writes_it() -> None:
    env = service_env(svc("redis-master", ports=[{"port": 6379, "name": "redis"}, {"port": 53, "protocol": "UDP"}]))
    assert env == {
        "REDIS_MASTER_SERVICE_HOST": "10.96.0.10",
        "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_MASTER_SERVICE_PORT_REDIS": "6379",
        "REDIS_MASTER_PORT": "tcp://10.96.0.10:6379",
        "REDIS_MASTER_PORT_6379_TCP": "tcp://10.96.0.10:6379",
        "REDIS_MASTER_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_6379_TCP_PORT": "6379",
        "REDIS_MASTER_PORT_6379_TCP_ADDR": "10.96.0.10",
        "REDIS_MASTER_PORT_53_UDP": "udp://10.96.0.10:53",
        "REDIS_MASTER_PORT_53_UDP_PROTO": "udp",
        "REDIS_MASTER_PORT_53_UDP_PORT": "53",
        "REDIS_MASTER_PORT_53_UDP_ADDR": "10.96.0.10",
    }
    assert service_env(svc("headless", ip="None")) == {}


def test_pod_service_env_selects_the_namespace_and_the_master_service() -> None:
    services = [svc("web", "shop"), svc("other", "elsewhere"), svc("kubernetes", "default", "10.96.0.1",
                                                                    [{"port": 443, "name": "https"}])]
    env = pod_service_env(a_pod("shop"), services)
    assert env["WEB_SERVICE_HOST"] == "10.96.0.10"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert not any(k.startswith("OTHER_") for k in env)
    no_links = pod_service_env(a_pod("shop", links=False), services)
    assert "WEB_SERVICE_HOST" not in no_links and no_links["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


@pytest.fixture
def client() -> FakeClient:
    c = FakeClient()
    c.create(ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"),
                       data={"greeting": "hello", "app.conf": "a=1\n"},
                       binary_data={"blob": base64.b64encode(b"\x00\x01").decode()}))
    c.create(Secret(metadata=ObjectMeta(name="sec", namespace="default"),
                    data={"password": base64.b64encode(b"s3cret").decode()}))
    return c


def test_config_source_decodes_secrets_and_caches(client: FakeClient) -> None:
    src = ConfigSource(client, ttl=60)
    assert src.get("secret", "default", "sec") == {"password": b"s3cret"}
    assert src.lookup("configmap", "default", "cfg") == {"greeting": "hello", "app.conf": "a=1\n", "blob": "\x00\x01"}
    assert src.get("configmap", "default", "missing") is None
    client.clear_actions()
    src.get("secret", "default", "sec")
    assert client.actions == []  # served from the cache


def test_volumes_are_written_with_modes_and_items(tmp_path: Path, client: FakeClient) -> None:
    vm = VolumeManager(str(tmp_path), ConfigSource(client))
    pod = a_pod(volumes=[
        {"name": "cache", "emptyDir": {}},
        {"name": "conf", "configMap": {"name": "cfg", "defaultMode": 0o644}},
        {"name": "picked", "configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "sub/hi.txt",
                                                                   "mode": 0o400}]}},
        {"name": "creds", "secret": {"secretName": "sec", "defaultMode": 0o600}},
        {"name": "host", "hostPath": {"path": str(tmp_path / "hostdir"), "type": "DirectoryOrCreate"}},
    ])
    paths = vm.prepare(pod)
    base = tmp_path / "pods" / "uid-1" / "volumes"
    assert paths == {"cache": str(base / "empty-dir" / "cache"), "conf": str(base / "configmap" / "conf"),
                     "picked": str(base / "configmap" / "picked"), "creds": str(base / "secret" / "creds"),
                     "host": str(tmp_path / "hostdir")}
    assert stat.S_IMODE(Path(paths["cache"]).stat().st_mode) == 0o777
    assert (Path(paths["conf"]) / "greeting").read_text() == "hello"
    assert (Path(paths["conf"]) / "blob").read_bytes() == b"\x00\x01"
    assert stat.S_IMODE((Path(paths["conf"]) / "app.conf").stat().st_mode) == 0o644
    assert sorted(p.name for p in Path(paths["picked"]).rglob("*") if p.is_file()) == ["hi.txt"]
    assert stat.S_IMODE((Path(paths["picked"]) / "sub" / "hi.txt").stat().st_mode) == 0o400
    assert (Path(paths["creds"]) / "password").read_bytes() == b"s3cret"
    assert stat.S_IMODE((Path(paths["creds"]) / "password").stat().st_mode) == 0o600
    assert (tmp_path / "hostdir").is_dir()

    # an update of the ConfigMap reaches the files; removed keys disappear
    cm = client.get(ConfigMap, "cfg", "default")
    cm.data = {"greeting": "bonjour"}
    cm.binary_data = None
    client.update(cm)
    vm.config.invalidate()  # type: ignore[union-attr]
    vm.prepare(pod)
    assert sorted(p.name for p in Path(paths["conf"]).iterdir()) == ["greeting"]
    assert (Path(paths["conf"]) / "greeting").read_text() == "bonjour"

    assert vm.pod_uids() == ["uid-1"]
    vm.cleanup("uid-1")
    assert not (tmp_path / "pods" / "uid-1").exists() and vm.pod_uids() == []
    assert (tmp_path / "hostdir").is_dir()  # hostPath is the user's


def test_missing_sources_fail_unless_optional(tmp_path: Path, client: FakeClient) -> None:
    vm = VolumeManager(str(tmp_path), ConfigSource(client))
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        vm.prepare(a_pod(volumes=[{"name": "v", "configMap": {"name": "nope"}}]))
    with pytest.raises(VolumeError, match="non-existent key: missing"):
        vm.prepare(a_pod(volumes=[{"name": "v", "configMap": {"name": "cfg",
                                                              "items": [{"key": "missing", "path": "m"}]}}]))
    paths = vm.prepare(a_pod(volumes=[{"name": "v", "secret": {"secretName": "nope", "optional": True}}]))
    assert list(Path(paths["v"]).iterdir()) == []
    with pytest.raises(VolumeError, match="not a directory"):
        vm.prepare(a_pod(volumes=[{"name": "h", "hostPath": {"path": str(tmp_path / "x"), "type": "Directory"}}]))
    with pytest.raises(VolumeError, match="invalid item path"):
        vm.prepare(a_pod(volumes=[{"name": "v", "configMap": {"name": "cfg",
                                                              "items": [{"key": "greeting", "path": "../x"}]}}]))


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    vm = VolumeManager(str(tmp_path / "root"), None, dry_run=True)
    paths = vm.prepare(a_pod(volumes=[{"name": "c", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "x"}}]))
    assert set(paths) == {"c", "s"} and not (tmp_path / "root").exists()
