"""The kubelet's pod sync, node registration and heartbeats on a FakeClient + FakeRuntime.

The sync is driven from the test thread (no workers, no informers): `Source` reads the
fake API directly, enqueued keys are recorded, the runtime's clock is a FakeClock.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from mkube.api.types import ConfigMap, Lease, Node, ObjectMeta, Pod, Secret, Service
from mkube.client import FakeClient
from mkube.kubelet.kubelet import Kubelet
from mkube.kubelet.nodestatus import HostInfo
from mkube.kubelet.options import KubeletOptions
from mkube.kubelet.probes import ProbeManager
from mkube.kubelet.runtime.base import LABEL_POD_UID, ContainerConfig
from mkube.kubelet.runtime.fake import FakeClock, FakeRuntime
from mkube.kubelet.volumes import ConfigSource, VolumeManager

NODE = "node-a"
IMG = "mkube/hello:1"


class SpyRuntime(FakeRuntime):
    """FakeRuntime that remembers the config of every container it created."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.configs: list[ContainerConfig] = []

    def create_container(self, sandbox_id: str, cfg: ContainerConfig) -> str:
        self.configs.append(cfg)
        return super().create_container(sandbox_id, cfg)


class Source:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def pod_by_uid(self, uid: str) -> Pod | None:
        return next((p for p in self.client.list(Pod).items if p.metadata.uid == uid), None)

    def pod_by_key(self, namespace: str, name: str) -> Pod | None:
        return next((p for p in self.client.list(Pod, namespace).items if p.metadata.name == name), None)

    def pods_on_node(self, node_name: str) -> list[Pod]:
        return self.client.list(Pod, field_selector=f"spec.nodeName={node_name}").items

    def services(self) -> list[Service]:
        return self.client.list(Service).items


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type: str, reason: str, message: str) -> None:
        self.events.append((type, reason, message))

    def reasons(self) -> list[str]:
        return [e[1] for e in self.events]


class Harness:
    def __init__(self, tmp_path: Path, client: FakeClient | None = None, rt: SpyRuntime | None = None,
                 clock: FakeClock | None = None, probes: ProbeManager | None = None) -> None:
        self.client = client or FakeClient()
        self.clock = clock or FakeClock()
        self.rt = rt or SpyRuntime(NODE, clock=self.clock, images=[IMG])
        self.enqueued: list[tuple[str, float]] = []
        self.recorder = Recorder()
        opts = KubeletOptions(node_ip="10.0.0.5", port=10250, root_dir=str(tmp_path))
        config = ConfigSource(self.client, ttl=0)
        self.kubelet = Kubelet(NODE, self.rt, self.client, opts, source=Source(self.client),
                               enqueue=lambda node, uid, delay: self.enqueued.append((uid, delay)),
                               node_ip="10.0.0.5", port=10250, host=HostInfo("host-a"),
                               volumes=VolumeManager(str(tmp_path), config), config=config,
                               recorder=self.recorder, clock=self.clock, probes=probes)

    def create(self, name: str = "web", containers: list[dict[str, Any]] | None = None, **spec: Any) -> Pod:
        body = {"metadata": {"name": name, "namespace": "default"},
                "spec": {"nodeName": NODE, "containers": containers or [{"name": "app", "image": IMG}], **spec}}
        return self.client.create(Pod.from_dict(body))

    def sync(self, pod: Pod) -> Pod:
        self.kubelet.sync(pod.metadata.uid or "")
        return self.client.get(Pod, pod.metadata.name or "", pod.metadata.namespace)

    def running(self, pod: Pod) -> list[str]:
        return sorted(c.name for c in self.rt.list_containers({LABEL_POD_UID: pod.metadata.uid or ""})
                      if c.state == "running")


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_a_pod_runs_and_its_status_is_written_once(h: Harness) -> None:
    pod = h.sync(h.create(containers=[{"name": "app", "image": IMG, "ports": [{"containerPort": 80}]}]))
    assert pod.status.phase == "Running"
    cs = pod.status.container_statuses[0]  # type: ignore[index]
    assert cs.ready and cs.container_id.startswith("fake://")  # type: ignore[union-attr]
    assert pod.status.pod_ip and pod.status.host_ip == "10.0.0.5"
    assert pod.status.published_ports[0].host_port >= 32768  # type: ignore[index]
    assert h.recorder.reasons() == ["Pulled", "Created", "Started"]
    assert h.recorder.events[0][2] == f'Container image "{IMG}" already present on machine'
    h.client.clear_actions()
    h.sync(pod)  # nothing changed: no write
    assert [a.verb for a in h.client.actions if a.verb not in ("list", "get")] == []
    assert len(h.rt.configs) == 1


def test_env_from_configmap_secret_fields_and_services(h: Harness) -> None:
    h.client.create(ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"), data={"color": "blue"}))
    h.client.create(Secret(metadata=ObjectMeta(name="sec", namespace="default"),
                           data={"token": base64.b64encode(b"t0k3n").decode()}))
    h.client.create(Service.from_dict({"metadata": {"name": "db", "namespace": "default"},
                                       "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 5432}],
                                                "selector": {"a": "b"}}}))
    env = [
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "DB_SERVICE_PORT", "value": "overridden"},
    ]
    env_from = [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}}]
    pod = h.sync(h.create(containers=[{"name": "app", "image": IMG, "env": env, "envFrom": env_from,
                                       "workingDir": "/srv", "command": ["sh"], "args": ["-c", "$(COLOR)"],
                                       "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]))
    assert pod.status.phase == "Running"
    cfg = h.rt.configs[-1]
    db_ip = h.client.get(Service, "db", "default").spec.cluster_ip
    assert cfg.env["COLOR"] == "blue" and cfg.env["TOKEN"] == "t0k3n" and cfg.env["CFG_color"] == "blue"
    assert cfg.env["token"] == "t0k3n" and cfg.env["POD"] == "web" and cfg.env["NODE"] == NODE
    assert cfg.env["HOST_IP"] == "10.0.0.5" and cfg.env["POD_IP"] == pod.status.pod_ip
    assert cfg.env["DB_SERVICE_HOST"] == db_ip and cfg.env["DB_SERVICE_PORT"] == "overridden"
    assert cfg.working_dir == "/srv" and cfg.command == ["sh"] and cfg.args == ["-c", "blue"]
    assert cfg.nano_cpus == 500_000_000 and cfg.memory_limit == 64 * 1024 * 1024


def test_missing_config_key_is_create_container_config_error(h: Harness) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]
    pod = h.sync(h.create(containers=[{"name": "app", "image": IMG, "env": env}]))
    state = pod.status.container_statuses[0].state  # type: ignore[index]
    assert state.waiting.reason == "CreateContainerConfigError"  # type: ignore[union-attr]
    assert "absent" in (state.waiting.message or "")  # type: ignore[union-attr]
    assert pod.status.phase == "Pending"
    assert ("Warning", "Failed") in [(t, r) for t, r, _ in h.recorder.events]
    assert any(delay > 0 for _, delay in h.enqueued)  # retried


def test_volumes_are_mounted_from_the_pod_dir(h: Harness, tmp_path: Path) -> None:
    h.client.create(ConfigMap(metadata=ObjectMeta(name="cfg", namespace="default"), data={"k": "v"}))
    pod = h.create(containers=[{"name": "app", "image": IMG, "volumeMounts": [
        {"name": "c", "mountPath": "/etc/c", "readOnly": True}, {"name": "scratch", "mountPath": "/scratch"}]}],
        volumes=[{"name": "c", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}])
    pod = h.sync(pod)
    mounts = {m.container_path: m for m in h.rt.configs[-1].mounts}
    assert Path(mounts["/etc/c"].source, "k").read_text() == "v" and mounts["/etc/c"].read_only
    assert Path(mounts["/scratch"].source).is_dir()
    assert str(tmp_path) in mounts["/scratch"].source


def test_missing_volume_source_waits_in_container_creating(h: Harness) -> None:
    pod = h.sync(h.create(containers=[{"name": "app", "image": IMG,
                                       "volumeMounts": [{"name": "c", "mountPath": "/c"}]}],
                          volumes=[{"name": "c", "secret": {"secretName": "later"}}]))
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"  # type: ignore[index,union-attr]
    assert "FailedMount" in h.recorder.reasons()
    assert h.rt.counts() == (0, 0)
    h.client.create(Secret(metadata=ObjectMeta(name="later", namespace="default"), data={}))
    assert h.sync(pod).status.phase == "Running"


def test_crash_loop_backoff_and_requeue_at_its_end(h: Harness) -> None:
    h.rt.script("app", exit_code=1, after_seconds=1)
    pod = h.sync(h.create())
    h.clock.advance(2)
    pod = h.sync(pod)  # exited: restarted at once (no back-off yet)
    assert pod.status.container_statuses[0].restart_count == 1  # type: ignore[index]
    h.clock.advance(2)
    h.enqueued.clear()
    pod = h.sync(pod)
    cs = pod.status.container_statuses[0]  # type: ignore[index]
    assert cs.state.waiting.reason == "CrashLoopBackOff"  # type: ignore[union-attr]
    assert cs.last_state.terminated.exit_code == 1  # type: ignore[union-attr]
    assert pod.status.phase == "Running"
    assert h.enqueued and 8 < h.enqueued[-1][1] <= 10.1
    backoff = [m for t, r, m in h.recorder.events if r == "BackOff"]
    assert backoff == [f"Back-off restarting failed container app in pod web_default({pod.metadata.uid})"]


@pytest.mark.parametrize("policy, code, phase", [("Never", 1, "Failed"), ("Never", 0, "Succeeded"),
                                                  ("OnFailure", 0, "Succeeded")])
def test_restart_policies_end_the_pod(h: Harness, policy: str, code: int, phase: str) -> None:
    h.rt.script("app", exit_code=code, after_seconds=1)
    pod = h.sync(h.create(restartPolicy=policy))
    h.clock.advance(2)
    pod = h.sync(pod)
    assert pod.status.phase == phase
    assert pod.status.container_statuses[0].state.terminated.exit_code == code  # type: ignore[index,union-attr]
    assert len(h.rt.configs) == 1  # not restarted
    pod = h.sync(pod)
    assert pod.status.phase == phase and len(h.rt.configs) == 1


def test_image_pull_errors_then_backoff_without_blocking_others(h: Harness) -> None:
    h.rt.missing_images.add("mkube/nope:1")
    bad = h.create("bad", containers=[{"name": "app", "image": "mkube/nope:1"}])
    good = h.create("good")
    bad = h.sync(bad)
    waiting = bad.status.container_statuses[0].state.waiting  # type: ignore[index,union-attr]
    assert waiting.reason == "ErrImagePull"  # type: ignore[union-attr]
    assert h.sync(good).status.phase == "Running"
    h.clock.advance(1)
    bad = h.sync(bad)
    assert bad.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"  # type: ignore[index,union-attr]
    msgs = [(r, m) for _, r, m in h.recorder.events]
    assert ("Pulling", 'Pulling image "mkube/nope:1"') in msgs
    assert ("Failed", "Error: ErrImagePull") in msgs and ("BackOff", 'Back-off pulling image "mkube/nope:1"') in msgs
    h.clock.advance(10)
    bad = h.sync(bad)
    assert bad.status.container_statuses[0].state.waiting.reason == "ErrImagePull"  # type: ignore[index,union-attr]
    never = h.sync(h.create("never", containers=[{"name": "app", "image": "mkube/other:1",
                                                  "imagePullPolicy": "Never"}]))
    assert never.status.container_statuses[0].state.waiting.reason == "ErrImageNeverPull"  # type: ignore[index,union-attr]


def test_deletion_stops_removes_and_confirms(h: Harness) -> None:
    pod = h.sync(h.create(terminationGracePeriodSeconds=5))
    uid = pod.metadata.uid or ""
    h.client.delete(Pod, "web", "default", grace_period_seconds=20)
    deleting = h.client.get(Pod, "web", "default")
    assert deleting.metadata.deletion_timestamp is not None
    h.kubelet.sync(uid)
    assert not h.client.exists(Pod, "web", "default")
    assert h.rt.counts() == (0, 0)
    assert ("Normal", "Killing", "Stopping container app") in h.recorder.events
    stops = [s for m, s in h.rt.history if m == "stop_container"]
    assert stops  # stopped before removal


def test_orphans_are_cleaned_up(h: Harness, tmp_path: Path) -> None:
    pod = h.sync(h.create(volumes=[{"name": "s", "emptyDir": {}}],
                          containers=[{"name": "app", "image": IMG, "volumeMounts": [{"name": "s", "mountPath": "/s"}]}]))
    uid = pod.metadata.uid or ""
    assert (tmp_path / "pods" / uid).is_dir()
    h.client.delete(Pod, "web", "default", grace_period_seconds=0)  # gone from the API at once
    h.kubelet.relist()
    h.kubelet.housekeeping()
    assert (uid, 0) in h.enqueued
    h.kubelet.sync(uid)
    assert h.rt.counts() == (0, 0) and not (tmp_path / "pods" / uid).exists()


def test_a_restarted_kubelet_adopts_containers_and_keeps_restart_counts(h: Harness, tmp_path: Path) -> None:
    h.rt.script("app", exit_code=[1, None], after_seconds=1)
    pod = h.sync(h.create())
    h.clock.advance(2)
    pod = h.sync(pod)
    assert pod.status.container_statuses[0].restart_count == 1  # type: ignore[index]
    created = len(h.rt.configs)
    fresh = Harness(tmp_path, client=h.client, rt=h.rt, clock=h.clock)  # no memory of the past
    pod = fresh.sync(pod)
    assert len(h.rt.configs) == created
    cs = pod.status.container_statuses[0]  # type: ignore[index]
    assert cs.restart_count == 1 and cs.state.running is not None  # type: ignore[union-attr]


def test_liveness_failure_restarts_the_container(tmp_path: Path) -> None:
    changed: list[str] = []
    probes = ProbeManager(on_change=lambda kl, uid: changed.append(uid), recorder_for=lambda kl: kl.recorder)
    h = Harness(tmp_path, probes=probes)
    h.rt.script("app", exec_results=1)  # every exec fails
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}
    pod = h.sync(h.create(containers=[{"name": "app", "image": IMG, "livenessProbe": probe}]))
    assert probes.count() == 1
    probes.start()
    try:
        import time

        deadline = time.monotonic() + 5
        while not changed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changed == [pod.metadata.uid]
        pod = h.sync(pod)
    finally:
        probes.stop()
    cs = pod.status.container_statuses[0]  # type: ignore[index]
    assert cs.restart_count == 1 and cs.state.running is not None  # type: ignore[union-attr]
    msgs = [(r, m) for _, r, m in h.recorder.events]
    assert ("Unhealthy", "Liveness probe failed: command ['check'] exited with 1") in msgs
    assert ("Killing", "Container app failed liveness probe, will be restarted") in msgs


def test_node_registration_status_and_lease(h: Harness) -> None:
    kl = h.kubelet
    assert kl.register()
    node = h.client.get(Node, NODE)
    assert node.metadata.labels["kubernetes.io/hostname"] == NODE  # type: ignore[index]
    assert node.metadata.labels["kubernetes.io/os"] == "linux"  # type: ignore[index]
    assert node.status.capacity == {"cpu": "4", "memory": "16Gi", "pods": "110"}
    assert node.internal_ip() == "10.0.0.5"
    assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250  # type: ignore[union-attr]
    assert node.status.node_info.kubelet_version == "v1.32.0-mkube"  # type: ignore[union-attr]
    assert node.status.node_info.container_runtime_version == "fake://0.1"  # type: ignore[union-attr]
    ready = node.condition("Ready")
    assert ready is not None and ready.status == "True" and ready.reason == "KubeletReady"
    kl.renew_lease()
    lease = h.client.get(Lease, NODE, "kube-node-lease")
    assert lease.spec.holder_identity == NODE and lease.spec.lease_duration_seconds == 40
    first = lease.spec.renew_time
    h.clock.advance(10)
    kl.renew_lease()
    assert h.client.get(Lease, NODE, "kube-node-lease").spec.renew_time != first
    # the runtime goes down: Ready=False at once (a change is written without waiting)
    h.rt.available = False
    kl.update_node_status()
    ready = h.client.get(Node, NODE).condition("Ready")
    assert ready is not None and (ready.status, ready.reason, ready.message) == (
        "False", "KubeletNotReady", "container runtime is down")
    # a second kubelet start updates the existing node instead of failing
    h.rt.available = True
    assert Harness(Path(kl.volumes.root), client=h.client, rt=h.rt, clock=h.clock).kubelet.register()
    assert h.client.get(Node, NODE).condition("Ready").status == "True"  # type: ignore[union-attr]


def test_logs_choose_current_and_previous_instances(h: Harness) -> None:
    h.rt.script("app", exit_code=[1, None], after_seconds=1, logs=b"hello\n")
    pod = h.sync(h.create())
    h.clock.advance(2)
    pod = h.sync(pod)
    current = h.kubelet.log_container(pod, "app", previous=False)
    previous = h.kubelet.log_container(pod, "app", previous=True)
    assert current.state == "running" and previous.state == "exited" and current.id != previous.id
    from mkube.api.errors import BadRequest

    with pytest.raises(BadRequest, match="not valid"):
        h.kubelet.log_container(pod, "nope", previous=False)
